"""``log_evidence`` of ``SL(model)`` against closed forms and BlackJAX's tempered SMC.

Closed forms: a normal mean (known noise), a conjugate regression with unknown noise variance
(normal–inverse-gamma: the marginal of y is a multivariate t), and normalised multimodal targets
with no data (log p = 0: two modes in d = 10, the 40 modes of FAB). The issue's goal: within 3
standard errors and 0.05 nats.

Reference posteriors (``cases.py``), where no closed form exists: BlackJAX's adaptive tempered SMC
from the prior (2,000 particles, target ESS 0.5, systematic resampling, 10 HMC moves of 10
leapfrog steps per temperature, step 0.5·d^(−1/4), the diagonal mass matrix re-estimated from the
particles at each temperature), its log normalising constant the sum of the increments; mean and
sd over ``--runs`` seeds. The goal: within 0.1 nats where the SL weights' k̂ < 0.7.

``SL(model)``: defaults, 2 chains (vectorized) x (1,000 warmup + 1,000 samples).

Needs ``blackjax`` (``pip install -e ".[bench]"``). Writes ``benchmarks/results/evidence.md``.
Run: ``python benchmarks/evidence.py [--only NAME] [--runs 4] [--quick]``.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC, Predictive
from numpyro.infer.util import potential_energy, unconstrain_fn
from scipy.special import gammaln

jax.config.update("jax_enable_x64", True)

from cases import multimodal_cases, reference_cases  # noqa: E402
from report import environment, write_result  # noqa: E402

from slppl import SL, log_evidence, site_layout  # noqa: E402
from slppl.tempering import temper  # noqa: E402

NUM_PARTICLES = 2000


# ---- closed forms ----------------------------------------------------------------------------
def normal_mean(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 2.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def normal_mean_exact(y):
    n = y.shape[0]
    cov = np.eye(n) + 4.0 * np.ones((n, n))
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (n * np.log(2 * np.pi) + logdet + y @ np.linalg.solve(cov, y))


A0, B0, V0 = 3.0, 2.0, 4.0


def nig_regression(x, y):
    sigma2 = numpyro.sample("sigma2", dist.InverseGamma(A0, B0))
    beta = numpyro.sample("beta", dist.Normal(0.0, jnp.sqrt(V0 * sigma2)).expand([x.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Normal(x @ beta, jnp.sqrt(sigma2)), obs=y)


def nig_regression_exact(x, y):
    n = y.shape[0]
    cov = np.eye(n) + V0 * x @ x.T
    _, logdet = np.linalg.slogdet(cov)
    quad = y @ np.linalg.solve(cov, y)
    return (-0.5 * n * np.log(2 * np.pi) - 0.5 * logdet + A0 * np.log(B0) - gammaln(A0) + gammaln(A0 + n / 2)
            - (A0 + n / 2) * np.log(B0 + 0.5 * quad))


def closed_form_cases():
    rng = np.random.default_rng(0)
    y = rng.normal(1.0, 1.0, 20)
    x = rng.normal(size=(40, 3))
    yr = x @ np.array([1.0, -0.5, 0.0]) + 0.7 * rng.normal(size=40)
    cases = [("normal mean (n = 20)", normal_mean, (jnp.asarray(y),), normal_mean_exact(y)),
             ("regression, unknown noise (normal-inverse-gamma, n = 40)", nig_regression,
              (jnp.asarray(x), jnp.asarray(yr)), nig_regression_exact(x, yr))]
    for case in multimodal_cases():
        if case.name.startswith(("two modes, d = 10", "40 modes")):
            cases.append((case.name + ", no data", case.model, case.args, 0.0))
    for case in reference_cases():
        if case.name.startswith("eight schools (non"):
            cases.append(("eight schools (non-centred), exact by quadrature over τ", case.model, case.args,
                          eight_schools_exact(*case.args)))
        if case.name.startswith("arK"):
            cases.append(("arK (AR(5)), exact by quadrature over σ", case.model, case.args, ark_exact(*case.args)))
    return cases


def ark_exact(y, K):
    """Given σ, (α, β) is a Gaussian linear regression on the lags: y[K:] ~ N(0, σ²·I + 10²·Φ·Φᵀ);
    then a trapezoid over u = log σ (HalfCauchy(2.5) prior, Jacobian σ)."""
    from scipy.special import logsumexp
    from scipy.stats import halfcauchy

    y = np.asarray(y, float)
    T = y.shape[0]
    phi = np.column_stack([np.ones(T - K)] + [y[K - k - 1:T - k - 1] for k in range(K)])
    target = y[K:]
    evals, evecs = np.linalg.eigh(100.0 * phi @ phi.T)
    proj = evecs.T @ target
    u = np.linspace(-10.0, 6.0, 16001)
    sigma2 = np.exp(2 * u)[:, None]
    log_lik = -0.5 * (np.sum(np.log(2 * np.pi * (evals + sigma2)), 1) + np.sum(proj**2 / (evals + sigma2), 1))
    return float(logsumexp(log_lik + halfcauchy(scale=2.5).logpdf(np.exp(u)) + u) + np.log(u[1] - u[0]))


def eight_schools_exact(sigma, y):
    """θ and μ integrate out in closed form given τ: y ~ N(0, diag(σ² + τ²) + 5²·11ᵀ); then a
    trapezoid over u = log τ (HalfCauchy(5) prior, Jacobian τ)."""
    from scipy.special import logsumexp
    from scipy.stats import halfcauchy, multivariate_normal

    sigma, y = np.asarray(sigma), np.asarray(y)
    u = np.linspace(-12.0, 9.0, 20001)
    tau = np.exp(u)
    log_lik = np.array([multivariate_normal(np.zeros(len(y)), np.diag(sigma**2 + t**2) + 25.0).logpdf(y) for t in tau])
    return float(logsumexp(log_lik + halfcauchy(scale=5.0).logpdf(tau) + u) + np.log(u[1] - u[0]))


def narrow_proposals():
    """A N(0, 1) target (log p = 0) with a given Gaussian denoiser of variance v: as v falls below
    1 the weights' tail grows heavy; how the estimate, its SE and k̂ follow."""
    from slppl.denoisers import Gaussian

    def model():
        numpyro.sample("x", dist.Normal(0.0, 1.0))

    rows = []
    for v in (1.0, 0.3, 0.1, 0.03, 0.01):
        mcmc = MCMC(SL(model, denoiser=Gaussian(jnp.zeros(1), v * jnp.eye(1)), num_steps=4), num_warmup=10,
                    num_samples=2000, progress_bar=False)
        mcmc.run(jax.random.PRNGKey(0))
        rows.append((v, log_evidence(mcmc, warn=False)))
    return rows


# ---- BlackJAX tempered SMC ---------------------------------------------------------------------
def smc_log_evidence(rng_key, model, args):
    import blackjax
    from blackjax.smc import extend_params, resampling
    from blackjax.smc.tuning.from_particles import particles_stds

    names = [s.name for s in site_layout(model, *args)]
    k_prior, k_run = jax.random.split(rng_key)
    draws = Predictive(model, num_samples=NUM_PARTICLES)(k_prior, *args)
    draws = {k: draws[k] for k in names}
    unconstrained = jax.vmap(lambda p: unconstrain_fn(model, args, {}, p))(draws)
    one = jax.tree_util.tree_map(lambda a: a[0], unconstrained)
    _, unravel = ravel_pytree(one)
    particles = jax.vmap(lambda p: ravel_pytree(p)[0])(unconstrained)
    d = particles.shape[1]

    def log_prior(z):
        return -potential_energy(temper(model, beta=0.0), args, {}, unravel(z))

    def log_lik(z):
        return -potential_energy(model, args, {}, unravel(z)) - log_prior(z)

    def params(stds):
        return extend_params({"step_size": 0.5 * d ** -0.25, "inverse_mass_matrix": stds**2,
                              "num_integration_steps": 10})

    smc = blackjax.inner_kernel_tuning(
        smc_algorithm=blackjax.adaptive_tempered_smc, logprior_fn=log_prior, loglikelihood_fn=log_lik,
        mcmc_step_fn=blackjax.hmc.build_kernel(), mcmc_init_fn=blackjax.hmc.init,
        resampling_fn=resampling.systematic, mcmc_parameter_update_fn=lambda key, state, info: params(
            particles_stds(state.particles)),
        initial_parameter_value=params(particles_stds(particles)), num_mcmc_steps=10, target_ess=0.5,
    )

    def cond(carry):
        return carry[1].sampler_state.tempering_param < 1.0

    def body(carry):
        key, state, n, log_z = carry
        key, sub = jax.random.split(key)
        state, info = smc.step(sub, state)
        return key, state, n + 1, log_z + info.log_likelihood_increment

    state = smc.init(particles)
    _, _, n, log_z = jax.jit(lambda s: jax.lax.while_loop(cond, body, (k_run, s, 0, 0.0)))(state)
    return float(log_z), int(n)


def sl_log_evidence(model, args, num_warmup, num_samples):
    mcmc = MCMC(SL(model), num_warmup=num_warmup, num_samples=num_samples, num_chains=2, chain_method="vectorized",
                progress_bar=False)
    start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(0), *args)
    jax.block_until_ready(mcmc.get_samples())  # JAX dispatches asynchronously: wait for the draws
    return log_evidence(mcmc, warn=False), time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="500 + 500 SL steps, 2 SMC runs")
    args = parser.parse_args(argv)
    steps = (500, 500) if args.quick else (1000, 1000)
    runs = 2 if args.quick else args.runs
    lines = ["# log p(data) from SL(model)'s proposal weights", "", "## Against closed forms", "",
             "| model | exact | SL estimate ± SE | error | error / SE | k̂ (max over chains) | SL wall s |",
             "|---|---|---|---|---|---|---|"]
    for name, model, model_args, exact in closed_form_cases():
        if args.only and args.only not in name:
            continue
        ev, wall = sl_log_evidence(model, model_args, *steps)
        err = ev.estimate - exact
        lines.append(f"| {name} | {exact:.4f} | {ev.estimate:.4f} ± {ev.se:.4f} | {err:+.4f} | {err / ev.se:+.2f} "
                     f"| {np.max(ev.pareto_k):.2f} | {wall:.0f} |")
        print(lines[-1], flush=True)
    lines += ["", "## A proposal too narrow: N(0, 1) target, Gaussian(0, v) denoiser, 4 SecondOrder steps, 2,000 draws",
              "", "| v | estimate ± SE (truth 0) | error / SE | k̂ |", "|---|---|---|---|"]
    if not args.only:
        for v, ev in narrow_proposals():
            lines.append(f"| {v:g} | {ev.estimate:.3f} ± {ev.se:.3f} | {ev.estimate / ev.se:+.1f} | {ev.pareto_k[0]:.2f} |")
            print(lines[-1], flush=True)
    lines += ["", "## Against tempered SMC", "",
              f"| model | SMC mean ± sd ({runs} runs) | SMC temperatures | SL estimate ± SE | SL − SMC | k̂ | SL wall s | SMC wall s per run |",
              "|---|---|---|---|---|---|---|---|"]
    cases = reference_cases() + [c for c in multimodal_cases() if c.name.startswith("label")]
    for case in cases:
        if (args.only and args.only not in case.name) or case.name.startswith("correlated"):
            continue
        ev, wall = sl_log_evidence(case.model, case.args, *steps)
        start = time.perf_counter()
        smc = [smc_log_evidence(jax.random.PRNGKey(seed), case.model, case.args) for seed in range(runs)]
        smc_wall = (time.perf_counter() - start) / runs
        values = np.array([v for v, _ in smc])
        lines.append(f"| {case.name} | {values.mean():.3f} ± {values.std(ddof=1):.3f} | {np.mean([n for _, n in smc]):.0f} "
                     f"| {ev.estimate:.3f} ± {ev.se:.3f} | {ev.estimate - values.mean():+.3f} | {np.max(ev.pareto_k):.2f} "
                     f"| {wall:.0f} | {smc_wall:.0f} |")
        print(lines[-1], flush=True)
    import blackjax

    lines += ["", environment(blackjax=blackjax.__version__) + ".", ""]
    write_result("evidence" + ("_quick" if args.quick else "") + ".md", lines)


if __name__ == "__main__":
    main()
