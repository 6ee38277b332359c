"""Amortized denoisers: one training, then the exact kernel on data sets never seen, against NUTS.

Two conjugate models (exact posterior known):

- normal with unknown mean and variance (normal-inverse-gamma prior), 10 observations: the
  posterior's width depends on the data;
- beta-binomial, 3 counts of 20 trials, p on the logit scale: a skewed posterior.

For each: `Learned.fit_amortized` with default settings (10,000 prior-predictive simulations);
its stages alone (the linear regression base, the conditional-Gaussian base) for comparison; and,
as a reference no amortized Gaussian can beat, a Gaussian fitted to 4,000 exact posterior draws of
each data set. Then, on 8 unseen data sets, one chain of 2,000 draws after 100 warmup each, with
one compiled sampler for all data sets (`jit_model_args=True`), for SL and for NUTS: acceptance,
max |mean − truth|/sd over the parameters, min ESS, ESS per second. Then SBC
(`slppl.sbc`, 200 data sets, ranks of 99 draws) for both.

Run: ``python benchmarks/amortized.py [--quick]``; writes ``benchmarks/results/amortized.md``.
"""

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.diagnostics import effective_sample_size
from numpyro.infer import MCMC, NUTS

jax.config.update("jax_enable_x64", True)

from slppl import SL, sbc, simulate  # noqa: E402
from slppl.denoisers import Gaussian, Learned  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
A0, B0, N_NIG = 3.0, 2.0, 10
N_BIN, TRIALS = 3, 20


def nig(y):
    s2 = numpyro.sample("sigma2", dist.InverseGamma(A0, B0))
    mu = numpyro.sample("mu", dist.Normal(0.0, jnp.sqrt(s2)))
    numpyro.sample("y", dist.Normal(mu, jnp.sqrt(s2)).expand([N_NIG]), obs=y)


def nig_exact(rng, y, n):
    """Exact posterior draws {site: (n,)} (κ0 = 1, m0 = 0)."""
    k, ybar = y.size, y.mean()
    kn, an = 1.0 + k, A0 + k / 2
    bn = B0 + 0.5 * np.sum((y - ybar) ** 2) + k * ybar**2 / (2 * kn)
    s2 = bn / rng.gamma(an, size=n)
    return {"sigma2": s2, "mu": k * ybar / kn + np.sqrt(s2 / kn) * rng.normal(size=n)}


def beta_binomial(y):
    p = numpyro.sample("p", dist.Beta(2.0, 2.0))
    numpyro.sample("y", dist.Binomial(TRIALS, p).expand([N_BIN]), obs=y)


def beta_binomial_exact(rng, y, n):
    return {"p": rng.beta(2.0 + y.sum(), 2.0 + TRIALS * y.size - y.sum(), size=n)}


CASES = {
    "normal, unknown mean and variance (d = 2, 10 obs.)": (nig, jnp.zeros(N_NIG), nig_exact),
    "beta-binomial, logit p (d = 1, 3 counts)": (beta_binomial, jnp.zeros(N_BIN), beta_binomial_exact),
}


def run_case(name, model, shape_arg, exact, num_sets, num_sbc, rows, sbc_rows):
    from slppl import flatten_draws

    t0 = time.time()
    den = Learned.fit_amortized(jax.random.PRNGKey(0), model, shape_arg)
    fit_s = time.time() - t0
    linear = Learned.fit_amortized(jax.random.PRNGKey(0), model, shape_arg, num_base_iters=0, num_iters=0)
    base = Learned.fit_amortized(jax.random.PRNGKey(0), model, shape_arg, num_iters=0)
    sims = simulate(jax.random.PRNGKey(12345), model, shape_arg, num_simulations=num_sets)
    datasets = [sims.data["y"][i] for i in range(num_sets)]
    rng = np.random.default_rng(0)

    def stats(mcmc, y, truth_draws):
        smp = mcmc.get_samples()
        z, ess = 0.0, np.inf
        for site, ref in truth_draws.items():
            draws = np.asarray(smp[site])
            z = max(z, abs(draws.mean() - ref.mean()) / ref.std())
            ess = min(ess, float(effective_sample_size(draws[None])))
        acc = mcmc.get_extra_fields().get("accept_prob")
        return z, ess, float(np.mean(acc)) if acc is not None else np.nan

    samplers = {
        "SL, linear base only": SL(model, denoiser=linear, num_steps=25),
        "SL, conditional-Gaussian base": SL(model, denoiser=base, num_steps=25),
        f"SL, Learned.fit_amortized (fit {fit_s:.0f} s; residual kept: {den.settings.get('residual_kept')})":
            SL(model, denoiser=den, num_steps=25),
        "NUTS": NUTS(model),
    }
    for label, kernel in samplers.items():
        mcmc = MCMC(kernel, num_warmup=100, num_samples=2000, progress_bar=False, jit_model_args=True)
        zs, esss, accs, secs = [], [], [], []
        for i, y in enumerate(datasets):
            truth = exact(rng, np.asarray(y), 200_000)
            t = time.time()
            mcmc.run(jax.random.PRNGKey(i), y, extra_fields=("accept_prob",))
            jax.block_until_ready(mcmc.get_samples())
            # The first run compiles; every later one reuses it, which is what amortization buys.
            if i:
                secs.append(time.time() - t)
            z, ess, acc = stats(mcmc, y, truth)
            zs.append(z), esss.append(ess), accs.append(acc)
        rows.append((name, label, np.mean(accs), np.min(accs), np.max(zs), np.min(esss),
                     np.median(esss) / np.median(secs)))
        print(rows[-1], flush=True)
    # Reference: a Gaussian fitted per data set to exact draws (no amortization can beat its shape).
    accs = []
    for i, y in enumerate(datasets):
        draws = flatten_draws({k: jnp.asarray(v) for k, v in exact(rng, np.asarray(y), 4000).items()}, model, y)
        mcmc = MCMC(SL(model, denoiser=Gaussian.fit(draws), num_steps=25), num_warmup=100, num_samples=2000,
                    progress_bar=False)
        mcmc.run(jax.random.PRNGKey(i), y, extra_fields=("accept_prob",))
        accs.append(float(mcmc.get_extra_fields()["accept_prob"].mean()))
    rows.append((name, "SL, Gaussian fitted per data set to 4,000 exact draws (reference)", np.mean(accs),
                 np.min(accs), np.nan, np.nan, np.nan))
    print(rows[-1], flush=True)
    for label, kern in (("SL, Learned.fit_amortized", lambda m: SL(m, denoiser=den, num_steps=25)),
                        ("SL, linear base only, raw draws (correction=None)",
                         lambda m: SL(m, denoiser=linear, num_steps=25, correction=None)),
                        ("NUTS", NUTS)):
        t = time.time()
        res = sbc(jax.random.PRNGKey(1), model, shape_arg, kernel=kern, num_datasets=num_sbc, num_warmup=100,
                  num_samples=500, progress_bar=False)
        sbc_rows.append((name, label, num_sbc, ", ".join(f"{n} {p:.3f}" for n, p in zip(res.names, res.pvalues)),
                         res.passed(), float(np.min(res.min_ess)), time.time() - t))
        print(sbc_rows[-1], flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    num_sets, num_sbc = (3, 40) if args.quick else (8, 200)
    rows, sbc_rows = [], []
    for name, (model, shape_arg, exact) in CASES.items():
        run_case(name, model, shape_arg, exact, num_sets, num_sbc, rows, sbc_rows)
    lines = [
        "# Amortized denoisers on unseen data sets (`benchmarks/amortized.py`)", "",
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, jax {jax.__version__}, "
        f"numpyro {numpyro.__version__}; {time.strftime('%Y-%m-%d')}; float64; {num_sets} unseen data sets, "
        "1 chain × (100 + 2000) each; ESS/s: median ESS over median seconds per run, first (compiling) run "
        "excluded.", "",
        "| model | sampler | mean accept | min accept | max z (vs exact) | min ESS | ESS/s |",
        "|---|---|---|---|---|---|---|",
    ]
    def num(v, fmt):
        return "–" if np.isnan(v) else format(v, fmt)

    for r in rows:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.3f} | {num(r[4], '.3f')} | {num(r[5], '.0f')} | "
                     f"{num(r[6], '.0f')} |")
    lines += ["", "SBC (ranks of the prior draw among 99 thinned draws of 500, 10 bins, χ² p-value per coordinate; "
              "passed: every p > 0.01/d):", "",
              "| model | sampler | data sets | p-values | passed | min ESS | seconds |", "|---|---|---|---|---|---|---|"]
    for r in sbc_rows:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.0f} | {r[6]:.0f} |")
    out = os.path.join(HERE, "results", "amortized" + ("_quick" if args.quick else "") + ".md")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
