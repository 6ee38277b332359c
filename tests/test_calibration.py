"""Simulation-based calibration (Talts et al. 2018) of NUTS and the exact SL kernels.

Exactness means that *every* SL kernel with the MH correction passes SBC, including one whose
denoiser is deliberately poor (data-blind and too wide): it only mixes more slowly. The same poor
denoiser's raw draws (no correction) must fail, which shows the test can fail. Each check is a
Bonferroni-corrected chi-square test at level 0.01 over 100 simulated data sets.
"""

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import NUTS

from slppl import SL, sbc
from slppl.denoisers import Gaussian

pytestmark = pytest.mark.slow  # ~3 min; `make test-all` runs it

ALPHA = 0.01
N_OBS = 5


def normal_mean(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 2.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def normal_inverse_gamma(y):
    s2 = numpyro.sample("sigma2", dist.InverseGamma(3.0, 2.0))
    mu = numpyro.sample("mu", dist.Normal(0.0, jnp.sqrt(s2)))
    numpyro.sample("y", dist.Normal(mu, jnp.sqrt(s2)), obs=y)


# Data-blind and 7x wider than the posterior (sd 0.44): a poor proposal, but one that covers.
POOR = Gaussian(jnp.zeros(1), 9.0 * jnp.eye(1))

KERNELS = {
    "NUTS": NUTS,
    "SL, poor given denoiser": lambda m: SL(m, denoiser=POOR, num_steps=5, num_proposals=32),
    "SL(model), mixture": SL,
    "SL(model), gaussian": lambda m: SL(m, denoiser="gaussian"),
    "SL(model), laplace": lambda m: SL(m, denoiser="laplace"),
}


@pytest.mark.parametrize("name", list(KERNELS))
def test_exact_kernels_pass_sbc(name):
    res = sbc(jax.random.PRNGKey(0), normal_mean, jnp.zeros(N_OBS), kernel=KERNELS[name], num_datasets=100,
              num_warmup=200, num_samples=500, progress_bar=False)
    assert res.passed(ALPHA), (name, res.pvalues, res.min_ess.min())


def test_sbc_on_a_constrained_two_parameter_model():
    for kernel in (NUTS, SL):
        res = sbc(jax.random.PRNGKey(1), normal_inverse_gamma, jnp.zeros(10), kernel=kernel, num_datasets=100,
                  num_warmup=200, num_samples=500, progress_bar=False)
        assert res.passed(ALPHA), (kernel, res.names, res.pvalues)


def test_raw_draws_of_the_poor_denoiser_fail_sbc():
    res = sbc(jax.random.PRNGKey(0), normal_mean, jnp.zeros(N_OBS),
              kernel=lambda m: SL(m, denoiser=POOR, num_steps=5, correction=None),
              num_datasets=100, num_warmup=10, num_samples=500, progress_bar=False)
    assert not res.passed(ALPHA), res.pvalues
