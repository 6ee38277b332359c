"""Learned denoisers against closed-form fits of the same draws: acceptance of the exact kernel.

For each target, 4,000 exact draws (made directly, no MCMC) are given to every fit: a Gaussian
(mean and shrunk covariance), a Gaussian mixture (EM + BIC, weights re-estimated against the
target), a KDE (`Empirical`, whitened), and `Learned` on the mixture: the default MLP and the
coordinatewise network, both trained on the kernel's grid with the stable-target loss and their
Jacobian as covariance (the defaults of ``Learned.fit`` but the architecture). Each then drives the
exact kernel with the same grid and integrator (Karras, 25 steps, SecondOrder: a network cannot
draw exact paths; ``--grid ou`` for UniformOU, whose last step jumps from t = 3 to 10⁴ in one
Gaussian draw, which no correction of the mean can make right): 4 chains x 1,500 steps after 100; acceptance ± its MCSE, the largest
error of the means and sds in target sds (against the draws' own moments over 200,000 exact
draws), the training time, and whether ``Learned.fit`` kept its network (the variance of the
exact log weights on 256 target paths, trained against base alone).

Run: ``python benchmarks/learned_denoisers.py [--quick] [--only NAME]``; writes
``benchmarks/results/learned_denoisers.md``.
"""

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.diagnostics import effective_sample_size

jax.config.update("jax_enable_x64", True)

from slppl import kernel as core  # noqa: E402
from slppl.denoisers import Empirical, Gaussian, GaussianMixture, Learned  # noqa: E402
from slppl.integrators import SecondOrder  # noqa: E402
from slppl.time_grids import Karras, UniformOU  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- targets: (potential on a flat vector, exact sampler) ----------------------------------
def banana(d=2):
    def U(x):
        return 0.5 * (x[0] / 2.0) ** 2 + 0.5 * jnp.sum(((x[1:] - 0.3 * x[0] ** 2 + 1.5) / 0.5) ** 2)

    def draw(rng, n):
        a = 2.0 * rng.normal(size=n)
        rest = 0.3 * a[:, None] ** 2 - 1.5 + 0.5 * rng.normal(size=(n, d - 1))
        return np.concatenate([a[:, None], rest], 1)

    return f"banana, d = {d}", U, draw


def funnel(d=4):
    """Neal's funnel: v ~ N(0, 1.5²), x_i | v ~ N(0, e^v)."""

    def U(x):
        v, rest = x[0], x[1:]
        return 0.5 * (v / 1.5) ** 2 + 0.5 * jnp.sum(rest**2) * jnp.exp(-v) + 0.5 * (d - 1) * v

    def draw(rng, n):
        v = 1.5 * rng.normal(size=n)
        return np.concatenate([v[:, None], np.exp(v / 2)[:, None] * rng.normal(size=(n, d - 1))], 1)

    return f"funnel, d = {d}", U, draw


def double_wells(d=8):
    """Product of d double wells exp(−2(x² − 1)²): 2^d modes of equal mass."""

    def U(x):
        return 2.0 * jnp.sum((x**2 - 1.0) ** 2)

    grid = np.linspace(-3, 3, 60001)
    cdf = np.cumsum(np.exp(-2.0 * (grid**2 - 1.0) ** 2))
    cdf /= cdf[-1]

    def draw(rng, n):
        return np.interp(rng.uniform(size=(n, d)), cdf, grid)

    return f"double wells, d = {d}", U, draw


def correlated(d=10):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    cov = a @ a.T + 0.3 * np.eye(d)
    prec = np.linalg.inv(cov)
    chol = np.linalg.cholesky(cov)

    def U(x):
        return 0.5 * x @ (prec @ x)

    def draw(rng, n):
        return rng.normal(size=(n, d)) @ chol.T

    return f"correlated Gaussian, d = {d}", U, draw


TARGETS = [banana(8), funnel(10), double_wells(8), correlated(10)]


def _kept(den):
    """Whether Learned.fit kept its trained network (the exact weights decide), with both variances."""
    if not isinstance(den, Learned) or den.validation is None:
        return ""
    v = den.validation
    return f"{'yes' if den.settings['residual_kept'] else 'no'} ({v['trained']:.3g} vs {v['base']:.3g})"


def run_kernel(den, U, x0, times, chains, steps, key):
    step = core.build_kernel(den, times, SecondOrder())

    def chain(key):
        def body(s, _):
            s = step(s, U)
            return s, (s.accept_prob, s.z)

        return jax.lax.scan(body, core.init(x0, U, key, den), None, length=steps)[1]

    return jax.jit(jax.vmap(chain))(jax.random.split(key, chains))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 chains x 300 steps, 500 training iterations")
    parser.add_argument("--only", default=None)
    parser.add_argument("--grid", choices=("karras", "ou"), default="karras")
    args = parser.parse_args(argv)
    chains, steps, burn, iters = (2, 400, 100, 500) if args.quick else (4, 1600, 100, None)
    times = (Karras() if args.grid == "karras" else UniformOU()).times(25)
    lines = [
        "# Learned denoisers against closed-form fits of the same 4,000 exact draws",
        "",
        f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, jax {jax.__version__}, "
        f"float64; exact kernel, {'Karras' if args.grid == 'karras' else 'UniformOU'} grid, SecondOrder, 25 steps; {chains} chains x {steps - burn} steps "
        f"after {burn}. Errors: max over coordinates of |mean − truth|/sd and |sd/sd_truth − 1|.",
        "",
        "| target | denoiser | fit s | acceptance ± MCSE | max mean err (sd) | max sd err | divergent | residual kept |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, U, draw in TARGETS:
        if args.only and args.only not in name:
            continue
        rng = np.random.default_rng(0)
        draws = jnp.asarray(draw(rng, 4000))
        truth = draw(np.random.default_rng(1), 200_000)
        t_mean, t_sd = truth.mean(0), truth.std(0)
        fits = {
            "Gaussian": lambda: Gaussian.fit(draws),
            "mixture (EM, BIC)": lambda: GaussianMixture.fit(jax.random.PRNGKey(0), draws, potential_fn=U),
            "KDE (Empirical)": lambda: Empirical(draws),
            "Learned, MLP": lambda: Learned.fit(jax.random.PRNGKey(1), draws, potential_fn=U, times=times,
                                                **({"num_iters": iters} if iters else {})),
            "Learned, coordinatewise": lambda: Learned.fit(jax.random.PRNGKey(1), draws, potential_fn=U, times=times,
                                                           architecture="coordinatewise",
                                                           **({"num_iters": iters} if iters else {})),
        }
        for label, make in fits.items():
            start = time.perf_counter()
            den = make()
            jax.block_until_ready(jax.tree_util.tree_leaves(vars(den)))
            fit_s = time.perf_counter() - start
            acc, z = run_kernel(den, U, draws[0], times, chains, steps, jax.random.PRNGKey(2))
            acc, z = np.asarray(acc)[:, burn:], np.asarray(z)[:, burn:]
            ess = float(effective_sample_size(acc[..., None])[0]) if acc.std() > 0 else 1.0
            flat = z.reshape(-1, z.shape[-1])
            ok = np.all(np.isfinite(flat), 1)
            mean_err = np.max(np.abs(flat[ok].mean(0) - t_mean) / t_sd)
            sd_err = np.max(np.abs(flat[ok].std(0) / t_sd - 1))
            lines.append(f"| {name} | {label} | {fit_s:.1f} | {acc.mean():.3f} ± {acc.std() / np.sqrt(ess):.3f} "
                         f"| {mean_err:.3f} | {sd_err:.3f} | {int((~ok).sum())} | {_kept(den)} |")
            print(lines[-1], flush=True)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", "learned_denoisers" + ("" if args.grid == "karras" else "_ou")
                       + ("_quick" if args.quick else "") + ".md")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
