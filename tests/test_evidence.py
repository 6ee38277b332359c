"""``log_evidence``: the marginal likelihood from SL's proposal weights, against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from conftest import assert_within_mcse
from numpyro.infer import MCMC, NUTS
from scipy.stats import multivariate_normal

from slppl import SL, log_evidence
from slppl.denoisers import Gaussian

# The goal: within 3 standard errors (and 0.05 nats) of the closed form.
Z_EVIDENCE = 3.0


def regression(x, y):
    beta = numpyro.sample("beta", dist.Normal(0.0, 2.0).expand([x.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Normal(x @ beta, 0.5), obs=y)


def _regression_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    y = x @ np.array([1.0, -0.5, 0.0]) + 0.5 * rng.normal(size=30)
    # Conjugate: y ~ N(0, σ² I + τ² X Xᵀ); the posterior of beta is Gaussian.
    exact = multivariate_normal(np.zeros(30), 0.25 * np.eye(30) + 4.0 * x @ x.T).logpdf(y)
    prec = x.T @ x / 0.25 + np.eye(3) / 4.0
    cov = np.linalg.inv(prec)
    return jnp.asarray(x), jnp.asarray(y), exact, cov @ (x.T @ y) / 0.25, cov


def test_log_evidence_of_a_conjugate_regression_matches_its_closed_form():
    x, y, exact, mean, cov = _regression_data()
    # A proposal off the posterior (shifted, too wide): the weights vary, the estimate must not be biased.
    den = Gaussian(jnp.asarray(mean + 0.3 * np.sqrt(np.diag(cov))), jnp.asarray(1.5 * cov))
    mcmc = MCMC(SL(regression, denoiser=den, num_steps=8), num_warmup=50, num_samples=2000, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.warmup(jax.random.PRNGKey(0), x, y)
    with pytest.raises(ValueError, match="sampling phase"):  # warmup alone: refused
        log_evidence(mcmc)
    mcmc.run(jax.random.PRNGKey(1), x, y)
    ev = log_evidence(mcmc)
    assert_within_mcse(ev.estimate, exact, ev.se, z=Z_EVIDENCE, what="log evidence")
    assert ev.se < 0.05 and ev.num_weights == 4000 and np.all(ev.pareto_k < 0.5)
    assert ev.chains.shape == (2,)


def test_log_evidence_refuses_what_does_not_estimate_it():
    x, y, _, mean, cov = _regression_data()
    den = Gaussian(jnp.asarray(mean), jnp.asarray(cov))
    raw = MCMC(SL(regression, denoiser=den, num_steps=4, correction=None), num_warmup=5, num_samples=20,
               progress_bar=False)
    raw.run(jax.random.PRNGKey(0), x, y)
    with pytest.raises(ValueError, match="correction='mh'"):
        log_evidence(raw)
    nuts = MCMC(NUTS(regression), num_warmup=5, num_samples=5, progress_bar=False)
    nuts.run(jax.random.PRNGKey(0), x, y)
    with pytest.raises(TypeError, match="SL kernel, not MCMC with NUTS"):
        log_evidence(nuts)


def test_log_evidence_warns_when_the_weights_have_a_heavy_tail():
    def model():
        numpyro.sample("x", dist.Normal(0.0, 1.0))

    # A proposal of variance 0.1 for a target of variance 1: the weights' tail index is 0.9 (> 0.5,
    # infinite variance); the estimate of log 1 = 0 was -0.33 ± 0.07, the SE meaningless.
    mcmc = MCMC(SL(model, denoiser=Gaussian(jnp.zeros(1), 0.1 * jnp.eye(1)), num_steps=4), num_warmup=10,
                num_samples=2000, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0))
    with pytest.warns(UserWarning, match="k-hat"):
        ev = log_evidence(mcmc)
    assert np.all(ev.pareto_k > 0.5)
