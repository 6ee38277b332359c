"""Each integrator against the closed-form marginal of y_t on a Gaussian target.

For x ~ N(a, Σ), y_t = t·x + B_t is N(t·a, t·I + t²·Σ). The second-order step is exact at any step
size; the others converge as the grid refines, so they get a fine grid.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import Z, assert_within_mcse

from slppl.denoisers import Discrete, Gaussian
from slppl.denoisers.base import FunctionDenoiser
from slppl.integrators import EulerMaruyama, OUExponential, ProbabilityFlowODE, SecondOrder
from slppl.kernel import check_combination
from slppl.time_grids import Geometric
from slppl.trajectory import sample

A = jnp.array([1.0, -0.5])
COV = jnp.array([[0.8, 0.3], [0.3, 0.5]])
N = 4000


@pytest.mark.parametrize(
    "integrator, num_steps",
    [(SecondOrder(), 4), (EulerMaruyama(), 400), (OUExponential(), 400), (ProbabilityFlowODE(), 400)],
)
def test_marginal_of_y_t_on_a_gaussian_target(integrator, num_steps):
    t_end = 3.0
    times = Geometric(1e-3, t_end).times(num_steps)
    y = sample(jax.random.PRNGKey(0), Gaussian(A, COV), N, times, integrator).y
    mean, cov = t_end * A, t_end * jnp.eye(2) + t_end**2 * COV
    assert_within_mcse(y.mean(0), mean, jnp.sqrt(jnp.diag(cov) / N), what="mean of y_t")
    # Var of a sample variance of a Gaussian: 2σ⁴/(N−1).
    var = jnp.diag(cov)
    assert_within_mcse(y.var(0), var, jnp.sqrt(2 * var**2 / (N - 1)), what="variance of y_t")
    corr_hat = np.corrcoef(np.asarray(y).T)[0, 1]
    corr = cov[0, 1] / jnp.sqrt(cov[0, 0] * cov[1, 1])
    assert_within_mcse(corr_hat, corr, (1 - corr**2) / np.sqrt(N), what="correlation of y_t")


def test_euler_is_visibly_biased_on_a_coarse_grid():
    """Guards the test above against being unable to fail: 4 Euler steps are far off."""
    t_end = 3.0
    y = sample(jax.random.PRNGKey(0), Gaussian(A, COV), N, Geometric(1e-3, t_end).times(4), EulerMaruyama()).y
    var = t_end + t_end**2 * jnp.diag(COV)
    assert np.any(np.abs(y.var(0) - var) > Z * np.sqrt(2 * var**2 / (N - 1)))


@pytest.mark.parametrize("integrator", [SecondOrder(), ProbabilityFlowODE()])
def test_exact_denoiser_and_exact_step_give_constant_weights(integrator):
    """With a Gaussian target, its exact denoiser and the second-order step, the proposal is the
    target's path law, so every importance weight is the same (acceptance 1)."""
    den = Gaussian(A, COV)
    out = sample(jax.random.PRNGKey(1), den, 500, Geometric().times(10), integrator)
    log_w = out.log_aux + jax.vmap(den.log_prob)(out.x)
    if integrator.stochastic:
        assert float(jnp.std(log_w)) < 1e-8
    else:
        # The ODE's exponential step is exact only for constant m, so weights vary a little.
        assert float(jnp.std(log_w)) < 0.5


def test_ode_log_q_is_minus_the_log_det_of_its_step():
    den = Gaussian(A, COV)
    y, t, t_next = jnp.array([0.3, 0.2]), 0.5, 0.9
    m, cov, _, _ = den.estimate_with_cov(None, y, t, ())
    _, log_q = ProbabilityFlowODE().step(None, y, t, t_next, m, cov)
    step = lambda y_: ProbabilityFlowODE().step(None, y_, t, t_next, den.estimate(None, y_, t, ())[0], cov)[0]
    np.testing.assert_allclose(log_q, -jnp.linalg.slogdet(jax.jacfwd(step)(y))[1], rtol=1e-10)


def test_ode_is_deterministic_after_its_first_step():
    den = Gaussian(A, COV)
    times = Geometric().times(8)
    y1 = jnp.array([0.01, -0.02])
    runs = [ProbabilityFlowODE().step(jax.random.PRNGKey(k), y1, times[1], times[2], *den.estimate_with_cov(None, y1, times[1], ())[:2])[0] for k in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_combinations_without_an_exact_correction_are_rejected():
    class Randomised(FunctionDenoiser):
        deterministic = False

    den = Randomised(lambda y, t: y / (1 + t), dim=2)
    with pytest.raises(ValueError, match="deterministic denoiser"):
        check_combination(den, ProbabilityFlowODE(), "mh", "gaussian")
    check_combination(den, SecondOrder(), "mh", "gaussian")  # a stochastic step is fine
    check_combination(den, ProbabilityFlowODE(), None, "gaussian")  # raw draws are fine
    with pytest.raises(ValueError, match="no density"):
        check_combination(Discrete(jnp.zeros((2, 2)), jnp.zeros(2)), SecondOrder(), "mh", "gaussian")
    check_combination(Discrete(jnp.zeros((2, 2)), jnp.zeros(2)), SecondOrder(), None, "sample")
    with pytest.raises(ValueError, match="final='gaussian'"):
        check_combination(Gaussian(A, COV), SecondOrder(), "mh", "mean")
    with pytest.raises(ValueError, match="correction must be"):
        check_combination(Gaussian(A, COV), SecondOrder(), "metropolis", "gaussian")
