"""Spike-and-slab variable selection: SL on the indicators against DiscreteHMCGibbs and NUTS.

y = X·(γ ⊙ β) + ε, with p = 12 candidate predictors (correlated in pairs), γ_j ~ Bernoulli(0.2),
β_j ~ N(0, τ² = 1), ε ~ N(0, σ² = 1), n = 60. Three ways to write it for NumPyro:

- **collapsed** (for ``SL(model)``): β integrates out in closed form, so the model's only latent
  sites are the 12 Bernoulli indicators. ``log p(y | γ)`` is not linear in each γ_j, so SL builds
  its inner-Gibbs denoiser (:class:`~slppl.denoisers.InnerGibbs`), not mean field.
- **uncollapsed** (for NumPyro's ``DiscreteHMCGibbs`` with NUTS on β, and for SL on γ as a block of
  NumPyro's ``Gibbs`` beside NUTS on β): the same posterior of γ, since a β_j whose γ_j is 0 keeps
  its prior.
- **summed out** (for NUTS alone): the uncollapsed model with the 4,096 indicator vectors summed
  out of the likelihood by hand; the inclusion probabilities are Rao–Blackwellised from the β draws.

The truth: all 2^12 = 4,096 indicator vectors enumerated. Reported, for several seeds: each
method's inclusion probabilities against it in Monte Carlo standard errors, the smallest ESS over
the indicators, wall time (compilation included) and ESS per second.

Run: ``python examples/spike_and_slab.py [--num-samples 4000] [--seeds 3]``.
"""

import argparse
import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from numpyro.infer import MCMC, NUTS, DiscreteHMCGibbs, Gibbs
from numpyro.infer.gibbs import discrete_latent_sites

jax.config.update("jax_enable_x64", True)

from slppl import SL  # noqa: E402

P, N, PRIOR_INCLUSION, TAU2, SIGMA2 = 12, 60, 0.2, 1.0, 1.0


def data():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(N, P // 2))
    X = np.repeat(z, 2, axis=1) + 0.6 * rng.normal(size=(N, P))  # pairs of correlated predictors
    beta = np.zeros(P)
    beta[[0, 3, 6]] = [1.5, -1.0, 0.7]
    return X, X @ beta + np.sqrt(SIGMA2) * rng.normal(size=N)


def log_marginal(gamma, X, y):
    """log N(y; 0, σ²·I + τ²·X·diag(γ)·Xᵀ), in p dimensions."""
    c = TAU2 / SIGMA2
    xty = X.T @ y
    m = jnp.eye(X.shape[1]) + c * gamma[:, None] * (X.T @ X)
    quad = (y @ y - c * xty @ jnp.linalg.solve(m, gamma * xty)) / SIGMA2
    logdet = X.shape[0] * jnp.log(SIGMA2) + jnp.linalg.slogdet(m)[1]
    return -0.5 * (quad + logdet + X.shape[0] * jnp.log(2 * jnp.pi))


def collapsed(X, y):
    with numpyro.plate("predictors", X.shape[1]):
        gamma = numpyro.sample("gamma", dist.Bernoulli(PRIOR_INCLUSION))
    numpyro.factor("y", log_marginal(gamma, X, y))


def uncollapsed(X, y):
    with numpyro.plate("predictors", X.shape[1]):  # DiscreteHMCGibbs enumerates sites in a plate
        gamma = numpyro.sample("gamma", dist.Bernoulli(PRIOR_INCLUSION))
        beta = numpyro.sample("beta", dist.Normal(0.0, np.sqrt(TAU2)))
    numpyro.sample("y", dist.Normal(X @ (gamma * beta), np.sqrt(SIGMA2)), obs=y)


CONFIGS = np.array(list(itertools.product([0.0, 1.0], repeat=P)))
LOG_PRIOR = CONFIGS.sum(1) * np.log(PRIOR_INCLUSION) + (P - CONFIGS.sum(1)) * np.log1p(-PRIOR_INCLUSION)


def enumerated(X, y):
    log_post = jax.vmap(lambda g: log_marginal(g, jnp.asarray(X), jnp.asarray(y)))(jnp.asarray(CONFIGS))
    w = np.exp(np.asarray(log_post) + LOG_PRIOR - np.max(np.asarray(log_post) + LOG_PRIOR))
    return (w / w.sum()) @ CONFIGS


def _log_joint_gamma(beta, X, y):
    """``log p(γ, y | β)`` for all 4,096 indicator vectors."""
    resid = y[None, :] - (jnp.asarray(CONFIGS) * beta[None, :]) @ X.T
    return jnp.asarray(LOG_PRIOR) - 0.5 * jnp.sum(resid**2, 1) / SIGMA2


def summed_out(X, y):
    """The uncollapsed model with the indicators summed out by hand (what NumPyro's enumeration
    computes; the funsor backend it needs is not installed): NUTS on β alone."""
    beta = numpyro.sample("beta", dist.Normal(jnp.zeros(X.shape[1]), np.sqrt(TAU2)).to_event(1))
    numpyro.factor("y", jax.scipy.special.logsumexp(_log_joint_gamma(beta, X, y))
                   - 0.5 * X.shape[0] * jnp.log(2 * jnp.pi * SIGMA2))


def inclusion_given_beta(beta_draws, X, y):
    """``P(γ_j = 1 | β, y)`` for each draw of β (Rao–Blackwellised inclusion probabilities)."""
    def one(beta):
        return jax.nn.softmax(_log_joint_gamma(beta, X, y)) @ jnp.asarray(CONFIGS)

    return np.asarray(jax.lax.map(one, jnp.asarray(beta_draws).reshape(-1, P))).reshape(beta_draws.shape)


def summary(name, gamma, truth, wall):
    ess = effective_sample_size(gamma)
    flat = gamma.reshape(-1, P)
    se = np.sqrt(np.maximum(flat.mean(0) * (1 - flat.mean(0)), 1e-12) / ess)
    z = np.abs(flat.mean(0) - truth) / se
    ok = np.isfinite(ess)
    rate = np.nanmin(ess) / wall
    return (f"| {name} | {z[ok].max():.2f} | {np.nanmin(ess):.0f} | {np.nanmax(split_gelman_rubin(gamma)):.3f} "
            f"| {wall:.0f} | {rate:.1f} |"), rate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-warmup", type=int, default=500)
    parser.add_argument("--num-samples", type=int, default=4000)
    parser.add_argument("--num-proposals", type=int, default=None, help="SL paths per step (i-SIR)")
    parser.add_argument("--seeds", type=int, default=3, help="runs of each sampler, seeds 0, 1, ...")
    parser.add_argument("--sl-only", action="store_true")
    args = parser.parse_args(argv)
    X, y = data()
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    truth = enumerated(X, y)
    runs = {"SL(model), collapsed": lambda: SL(collapsed, num_proposals=args.num_proposals),
            "Gibbs(SL on γ, NUTS on β), uncollapsed": lambda: Gibbs([(SL(uncollapsed), discrete_latent_sites),
                                                                     (NUTS(uncollapsed), None)]),
            "DiscreteHMCGibbs(NUTS), uncollapsed": lambda: DiscreteHMCGibbs(NUTS(uncollapsed)),
            "NUTS, γ summed out (4,096 terms)": lambda: NUTS(summed_out)}
    rows, rates = [], {}
    for name, make in runs.items():
        if args.sl_only and "SL" not in name:
            continue
        for seed in range(args.seeds):
            mcmc = MCMC(make(), num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=4,
                        chain_method="vectorized" if name.startswith("SL") else "sequential", progress_bar=False)
            fields = {"SL": ("accept_prob",), "Gi": ("block_states.0.accept_prob",)}.get(name[:2], ())
            start = time.perf_counter()
            mcmc.run(jax.random.PRNGKey(seed), Xj, yj, extra_fields=fields)
            jax.block_until_ready(mcmc.get_samples())  # JAX dispatches asynchronously: wait for the draws
            wall = time.perf_counter() - start
            samples = mcmc.get_samples(group_by_chain=True)
            if "gamma" in samples:
                gamma = np.asarray(samples["gamma"], float)
            else:
                gamma = inclusion_given_beta(np.asarray(samples["beta"]), Xj, yj)
            row, rate = summary(name, gamma, truth, wall)
            accept = f"{float(np.mean(mcmc.get_extra_fields()[fields[0]])):.2f}" if fields else ""
            rows.append(row.replace(f"| {name} |", f"| {name} | {seed} | {accept} |"))
            rates.setdefault(name, []).append(rate)
    print("inclusion probabilities (enumerated):", np.round(truth, 3).tolist())
    print(f"4 chains x ({args.num_warmup} + {args.num_samples}) each; wall time includes compilation")
    print("| sampler | seed | SL acceptance | max error / MCSE | min ESS | max R-hat | wall s | min ESS / s |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("median min ESS / s: " + "; ".join(f"{name} {np.median(r):.1f}" for name, r in rates.items()))


if __name__ == "__main__":
    main()
