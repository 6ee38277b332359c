"""Raw SL draws against known targets, and the exactness of the MH correction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import Z, assert_within_mcse
from numpyro.diagnostics import effective_sample_size

from slppl import kernel as core
from slppl.denoisers import Discrete, Empirical, Gaussian, GaussianMixture
from slppl.integrators import SecondOrder
from slppl.time_grids import UniformOU
from slppl.trajectory import sample

TIMES = UniformOU().times(50)


def test_raw_draws_match_a_gaussian():
    a, cov = jnp.array([0.5, -1.0, 2.0]), jnp.diag(jnp.array([0.3, 1.0, 2.0]))
    n = 4000
    x = sample(jax.random.PRNGKey(0), Gaussian(a, cov), n, TIMES, SecondOrder()).x
    assert_within_mcse(x.mean(0), a, jnp.sqrt(jnp.diag(cov) / n), what="mean")
    assert_within_mcse(x.var(0), jnp.diag(cov), jnp.sqrt(2 * jnp.diag(cov) ** 2 / (n - 1)), what="variance")


@pytest.mark.slow  # raw (uncorrected) draws; the exact kernel's mode weights are tested in CI (make test's budget)
def test_raw_draws_match_the_mode_weights_of_a_mixture(bimodal):
    n = 4000
    x = sample(jax.random.PRNGKey(1), bimodal(10), n, TIMES, SecondOrder()).x
    p = 0.7
    assert_within_mcse(jnp.mean(x.mean(1) > 0), p, np.sqrt(p * (1 - p) / n), what="mode weight")


def test_raw_draws_land_on_a_discrete_support_with_the_right_frequencies():
    support = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])
    probs = jnp.array([0.1, 0.2, 0.3, 0.25, 0.15])
    n = 4000
    times = UniformOU(1e-3, 1e4).times(50)
    x = sample(jax.random.PRNGKey(2), Discrete(support, jnp.log(probs)), n, times, SecondOrder(), final="sample").x
    dist = jnp.linalg.norm(x[:, None, :] - support[None], axis=-1)
    assert float(dist.min(1).max()) < 1e-6, "a raw draw is not on the support"
    freq = jnp.bincount(dist.argmin(1), length=5) / n
    assert_within_mcse(freq, probs, jnp.sqrt(probs * (1 - probs) / n), what="support frequencies")


def run_chains(step, state, num_samples):
    def body(s, _):
        s = step(s)
        return s, (s.z, s.accept_prob, s.diverging)

    return jax.lax.scan(body, state, None, length=num_samples)[1]


def test_mh_correction_removes_the_bias_of_a_wrong_denoiser():
    """A single Gaussian fitted to a two-mode target: raw draws are unimodal and miss the mass
    near a mode; the MH-corrected chain recovers it."""
    target = GaussianMixture(jnp.array([0.3, 0.7]), jnp.array([[-2.0], [2.0]]), jnp.full((2, 1, 1), 0.5))
    mean = jnp.array([0.8])
    var = 0.5 + 4.0 - 0.8**2
    wrong = Gaussian(mean, jnp.array([[var]]))
    near_mode = lambda x: (jnp.abs(x[..., 0] - 2.0) < 1.0).astype(float)
    truth = 0.7 * float(jax.scipy.special.erf(1.0))  # P(|N(0, 0.5)| < 1) = erf(1)

    n = 4000
    raw = sample(jax.random.PRNGKey(3), wrong, n, TIMES, SecondOrder()).x
    p_raw = float(near_mode(raw).mean())
    assert abs(p_raw - truth) > 10 * np.sqrt(truth * (1 - truth) / n), "the raw draws should be biased"

    U = lambda x: -target.log_prob(x)
    step = core.build_kernel(wrong, TIMES, SecondOrder(), correction="mh")
    chains, draws = 8, 1500
    keys = jax.random.split(jax.random.PRNGKey(4), chains)
    init = jax.vmap(lambda k: core.init(jnp.zeros(1), U, k, wrong))(keys)
    z, acc, div = jax.vmap(lambda s: run_chains(lambda s_: step(s_, U), s, draws))(init)
    z = z[:, 100:]  # burn-in
    f = np.asarray(near_mode(z))
    ess = float(effective_sample_size(f[..., None])[0])
    se = np.sqrt(truth * (1 - truth) / ess)
    assert ess > 1000
    assert_within_mcse(f.mean(), truth, se, what="P(near the heavy mode) under MH")
    assert 0.3 < float(acc.mean()) < 0.95
    assert not bool(div.any())


@pytest.mark.parametrize("d, seed", [(10, 5), pytest.param(100, 7, marks=pytest.mark.slow)])
def test_mh_chain_matches_the_bimodal_target(bimodal, d, seed):
    den = bimodal(d)
    U = lambda x: -den.log_prob(x)
    step = core.build_kernel(den, TIMES, SecondOrder())
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    init = jax.vmap(lambda k: core.init(jnp.zeros(d), U, k, den))(keys)
    z, acc, _ = jax.vmap(lambda s: run_chains(lambda s_: step(s_, U), s, 1000))(init)
    f = np.asarray(z.mean(-1) > 0, dtype=float)[:, 10:]
    ess = float(effective_sample_size(f[..., None])[0])
    assert_within_mcse(f.mean(), 0.7, np.sqrt(0.21 / ess), what=f"mode weight under MH, d = {d}")
    assert float(acc[:, 10:].mean()) > 0.9


def test_mixture_posterior_draws_have_the_closed_form_moments():
    den = GaussianMixture(jnp.array([0.4, 0.6]), jnp.array([[-1.0, 0.0], [1.0, 0.5]]),
                          jnp.stack([jnp.array([[0.5, 0.2], [0.2, 0.4]]), 0.3 * jnp.eye(2)]))
    y, t, n = jnp.array([0.2, -0.1]), 0.8, 4000
    keys = jax.random.split(jax.random.PRNGKey(6), n)
    x = jax.vmap(lambda k: den.sample_posterior(k, y, t, ()))(keys)
    m, cov, _, _ = den.estimate_with_cov(None, y, t, ())
    assert_within_mcse(x.mean(0), m, jnp.sqrt(jnp.diag(cov) / n), what="posterior mean")



def test_empirical_denoiser_from_earlier_draws_is_an_exact_proposal():
    """Draws of the target turned into a denoiser: the floored final Gaussian keeps a density, so
    the MH chain stays exact (mode weight) and accepts often."""
    target = GaussianMixture(jnp.array([0.3, 0.7]), jnp.array([[-2.0, -2.0], [2.0, 2.0]]),
                             jnp.stack([0.5 * jnp.eye(2)] * 2))
    den = Empirical(target.sample(jax.random.PRNGKey(8), 300))
    U = lambda x: -target.log_prob(x)
    step = core.build_kernel(den, TIMES, SecondOrder())
    keys = jax.random.split(jax.random.PRNGKey(9), 4)
    init = jax.vmap(lambda k: core.init(jnp.zeros(2), U, k, den))(keys)
    z, acc, div = jax.vmap(lambda s: run_chains(lambda s_: step(s_, U), s, 1500))(init)
    f = np.asarray(z.sum(-1) > 0, dtype=float)[:, 10:]
    ess = float(effective_sample_size(f[..., None])[0])
    assert_within_mcse(f.mean(), 0.7, np.sqrt(0.21 / ess), what="mode weight with an Empirical denoiser")
    assert float(acc[:, 10:].mean()) > 0.3
    assert not bool(div.any())
