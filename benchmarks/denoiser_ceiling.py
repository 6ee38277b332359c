"""The ceiling a learned denoiser could reach: the exact denoiser by quadrature, on the same grid.

Banana and Neal's funnel (the targets of ``learned_denoisers.py``) are conditionally Gaussian given
their first coordinate ``a``: the tilted measure's other coordinates integrate out in closed form,
and ``a``'s posterior is one-dimensional, done on a fine grid (the trapezoid rule, spectrally
accurate for a smooth density that decays). The mean is exact up to quadrature; its covariance is
its Jacobian (Tweedie). Driving the exact kernel with it on the grid ``learned_denoisers.py`` uses
(Karras, SecondOrder) gives the acceptance no denoiser, learned or fitted, can beat at that
grid; the gap to the mixture is all a network could gain. Steps 25 (the benchmark's) and 50
separate the denoiser's error from the discretisation's.

The second table says why a network trained by regression does not close the gap: at each time of
the grid, over 2,000 exact draws, the mixture's squared error against the exact denoiser in units
of the posterior variance ``c_out²`` (what the regression loss would have to lose), the loss that
no denoiser can remove (``|x − m_exact|²/c_out²``, DSM's floor), and each time's share of the
discretised path KL ``½ Σ E|m_mix − m_exact|² Δt`` (Girsanov), which is what acceptance pays for.

Run: ``python benchmarks/denoiser_ceiling.py [--quick]``; writes ``benchmarks/results/denoiser_ceiling.md``.
"""

import argparse
import os
import platform

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.diagnostics import effective_sample_size

jax.config.update("jax_enable_x64", True)

from learned_denoisers import banana, funnel, run_kernel  # noqa: E402

from slppl.denoisers import FunctionDenoiser, GaussianMixture  # noqa: E402
from slppl.time_grids import Karras  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def _gaussian_factor(mu, var, y, t):
    """log ∫ N(x; mu, var) exp(y·x − t·x²/2) dx and the tilted mean, elementwise."""
    prec = 1.0 / var + t
    lin = mu / var + y
    return 0.5 * lin**2 / prec - 0.5 * mu**2 / var - 0.5 * jnp.log(var * prec), lin / prec


def conditional_denoiser(d, prior_a, cond, nodes):
    """The exact denoiser of ``a ~ prior_a`` (log density), ``x_i | a ~ N(cond(a))`` independent.

    ``cond(a) -> (mean, var)`` of each of the other ``d − 1`` coordinates given ``a``.
    """

    def mean(y, t):
        mu, var = cond(nodes)  # (K,)
        logf, m = _gaussian_factor(mu[:, None], var[:, None], y[None, 1:], t)  # (K, d-1)
        logw = prior_a(nodes) + y[0] * nodes - 0.5 * t * nodes**2 + logf.sum(1)
        w = jax.nn.softmax(logw)
        return jnp.concatenate([jnp.sum(w * nodes)[None], w @ m])

    return FunctionDenoiser(mean, dim=d)


def exact(name, d):
    if name == "banana":
        return conditional_denoiser(d, lambda a: -0.5 * (a / 2.0) ** 2,
                                    lambda a: (0.3 * a**2 - 1.5, jnp.full_like(a, 0.25)),
                                    jnp.linspace(-12.0, 12.0, 12001))
    return conditional_denoiser(d, lambda v: -0.5 * (v / 1.5) ** 2,
                                lambda v: (jnp.zeros_like(v), jnp.exp(v)), jnp.linspace(-9.0, 9.0, 9001))


def gap_rows(name, draw, draws, mixture, oracle):
    x = jnp.asarray(draw(np.random.default_rng(5), 2000))
    scale = draws.std(0)
    times = np.asarray(Karras().times(25))
    rows, kl = [], []
    for i, t in enumerate(times[1:]):
        y = t * x + np.sqrt(t) * jax.random.normal(jax.random.PRNGKey(i), x.shape, x.dtype)
        m_mix = jax.vmap(lambda y_: mixture.estimate(None, y_, t, ())[0])(y)
        m_exact = jax.vmap(lambda y_: oracle.estimate(None, y_, t, ())[0])(y)
        c2 = scale**2 / (1 + t * scale**2)
        gap = float(jnp.mean(jnp.sum((m_mix - m_exact) ** 2 / c2, 1)))
        floor = float(jnp.mean(jnp.sum((x - m_exact) ** 2 / c2, 1)))
        kl.append(0.5 * float(jnp.mean(jnp.sum((m_mix - m_exact) ** 2, 1))) * (times[i + 1] - times[i]))
        rows.append((t, gap, floor))
    return [f"| {name} | {t:.3g} | {gap:.4f} | {floor:.3f} | {gap / floor:.4f} | {k / sum(kl):.2f} |"
            for (t, gap, floor), k in zip(rows, kl)] + [f"| {name} | total path KL | | | | {sum(kl):.3f} |"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 chains x 300 steps, 25 steps only")
    args = parser.parse_args(argv)
    chains, steps, burn = (2, 400, 100) if args.quick else (4, 700, 100)
    num_steps = (25,) if args.quick else (25, 50)
    lines = [
        "# The exact denoiser (quadrature) against the mixture: the ceiling of a learned denoiser",
        "",
        f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, jax {jax.__version__}, "
        f"float64; exact kernel, Karras grid, SecondOrder; {chains} chains x {steps - burn} steps after {burn}; "
        "the mixture is fitted to 4,000 exact draws as in learned_denoisers.py.",
        "",
        "| target | steps | mixture acceptance ± MCSE | exact denoiser acceptance ± MCSE |",
        "|---|---|---|---|",
    ]
    gaps = ["", "| target | t | mixture's error / c_out² | DSM floor / c_out² | ratio | path-KL share |",
            "|---|---|---|---|---|---|"]

    def acceptance(den, U, x0, times):
        acc = np.asarray(run_kernel(den, U, x0, times, chains, steps, jax.random.PRNGKey(2))[0])[:, burn:]
        ess = float(effective_sample_size(acc[..., None])[0]) if acc.std() > 0 else 1.0
        return f"{acc.mean():.3f} ± {acc.std() / np.sqrt(ess):.3f}"

    for key, (name, U, draw) in (("banana", banana(8)), ("funnel", funnel(10))):
        draws = jnp.asarray(draw(np.random.default_rng(0), 4000))
        mixture = GaussianMixture.fit(jax.random.PRNGKey(0), draws, potential_fn=U)
        oracle = exact(key, draws.shape[1])
        for n in num_steps:
            times = Karras().times(n)
            lines.append(f"| {name} | {n} | {acceptance(mixture, U, draws[0], times)} "
                         f"| {acceptance(oracle, U, draws[0], times)} |")
            print(lines[-1], flush=True)
        gaps += gap_rows(name, draw, draws, mixture, oracle)
    lines += gaps
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "denoiser_ceiling" + ("_quick" if args.quick else "") + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
