"""Bayes factors from SL runs: which polynomial degree do the data support?

The same 40 points, fitted by polynomial regressions of degree 1, 2 and 3 (coefficients
N(0, 1), known noise 0.3; the data come from a quadratic). ``SL(model)`` samples each posterior;
``slppl.log_evidence`` reads log p(y | degree) off the same run, from its proposals' exact weights,
at no extra cost. These models are conjugate, so the exact evidence is known and printed beside it:
y ~ N(0, σ²·I + Φ·Φᵀ). The Bayes factor of two degrees is the difference of their log evidences.

Run: ``python examples/bayes_factor.py [--num-samples 1000] [--out DIR]`` (writes a plot with --out).
"""

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC
from scipy.stats import multivariate_normal

jax.config.update("jax_enable_x64", True)

from slppl import SL, log_evidence  # noqa: E402

NOISE = 0.3


def features(x, degree):
    return jnp.stack([x**k for k in range(degree + 1)], -1)


def polynomial(x, degree, y=None):
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([degree + 1]).to_event(1))
    numpyro.sample("y", dist.Normal(features(x, degree) @ beta, NOISE), obs=y)


def exact_log_evidence(x, y, degree):
    phi = np.asarray(features(x, degree))
    return multivariate_normal(np.zeros(len(y)), NOISE**2 * np.eye(len(y)) + phi @ phi.T).logpdf(np.asarray(y))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-warmup", type=int, default=1000)
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--out", default=None, help="folder for bayes_factor.png")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = jnp.linspace(-1.0, 1.0, 40)
    y = jnp.asarray(0.5 + x - 0.8 * x**2 + NOISE * rng.normal(size=40))
    rows = []
    for degree in (1, 2, 3):
        mcmc = MCMC(SL(polynomial), num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=2,
                    chain_method="vectorized", progress_bar=False)
        mcmc.run(jax.random.PRNGKey(degree), x, degree, y)
        ev = log_evidence(mcmc)
        rows.append((degree, ev, exact_log_evidence(x, y, degree)))
    print("| degree | log p(y), SL ± SE | exact | k̂ | log Bayes factor against degree 2, SL | exact |")
    print("|---|---|---|---|---|---|")
    ref_sl, ref_exact = rows[1][1].estimate, rows[1][2]
    for degree, ev, exact in rows:
        print(f"| {degree} | {ev.estimate:.3f} ± {ev.se:.3f} | {exact:.3f} | {np.max(ev.pareto_k):.2f} "
              f"| {ev.estimate - ref_sl:+.3f} | {exact - ref_exact:+.3f} |")
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        os.makedirs(args.out, exist_ok=True)
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        degrees = [r[0] for r in rows]
        ax.errorbar(degrees, [r[1].estimate for r in rows], yerr=[3 * r[1].se for r in rows], fmt="o",
                    label="SL(model), ± 3 SE")
        ax.plot(degrees, [r[2] for r in rows], "kx", label="exact")
        ax.set_xticks(degrees)
        ax.set_xlabel("polynomial degree")
        ax.set_ylabel("log p(y | degree)")
        ax.legend()
        fig.tight_layout()
        path = os.path.join(args.out, "bayes_factor.png")
        fig.savefig(path, dpi=120)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
