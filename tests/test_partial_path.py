"""Partial-path SL moves are exact: a chain of them alone, with a deliberately poor proposal,
keeps the target's moments and mode weights (within 4 MCSE)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_within_mcse
from numpyro.diagnostics import effective_sample_size

from slppl.denoisers import Gaussian, GaussianMixture
from slppl.partial_path import partial_path_move


def _chain(key, x0, proposal, potential, restart_time, num_steps, num_proposals=4, num_active=None):
    log_prob = proposal.log_prob

    def step(carry, key):
        x, log_weight = carry
        move = partial_path_move(key, x, log_weight, proposal.params, restart_time, potential, num_proposals,
                                 num_active=num_active)
        x = jnp.where(move.accept, move.x, x)
        log_weight = jnp.where(move.accept, move.log_weight, log_weight)
        return (x, log_weight), (x, move.accept_prob)

    log_weight0 = -potential(x0) - log_prob(x0)
    _, (xs, accept) = jax.lax.scan(step, (x0, log_weight0), jax.random.split(key, num_steps))
    return np.asarray(xs), np.asarray(accept)


def _check_moments(xs, mean, sd, what):
    ess = np.asarray(effective_sample_size(xs[None]))
    assert_within_mcse(xs.mean(0), mean, sd / np.sqrt(ess), what=f"{what} mean")
    # Var of x² for a Gaussian: 2σ⁴ + 4μ²σ²; the second moment's MCSE from it.
    second = xs**2
    ess2 = np.asarray(effective_sample_size(second[None]))
    assert_within_mcse(second.mean(0), mean**2 + sd**2, np.sqrt(2 * sd**4 + 4 * mean**2 * sd**2) / np.sqrt(ess2),
                       what=f"{what} second moment")


@pytest.mark.parametrize("restart_time", [0.0, 1.0, 20.0])
def test_partial_path_moves_keep_a_gaussian(restart_time):
    mean, sd = np.array([1.0, -2.0, 0.5]), np.array([1.0, 0.5, 2.0])

    def potential(x):
        return 0.5 * jnp.sum(((x - mean) / sd) ** 2)

    # Off-centre and too narrow in one coordinate: weights vary, the move must correct them.
    proposal = Gaussian(jnp.array([0.0, -1.5, 0.0]), jnp.diag(jnp.array([1.5, 0.3, 3.0]) ** 2))
    xs, accept = _chain(jax.random.PRNGKey(0), jnp.zeros(3), proposal, potential, restart_time, 6000)
    _check_moments(xs[500:], mean, sd, f"t_r = {restart_time}")
    assert 0.05 < accept.mean() < 1.0


def test_partial_path_moves_keep_mode_weights_and_accept_more_as_the_restart_time_grows():
    # Target 0.3·N(−2, 0.5²) + 0.7·N(2, 0.5²); proposal with the weights swapped and wider components.
    def potential(x):
        return -jnp.logaddexp(jnp.log(0.3) - 0.5 * ((x[0] + 2) / 0.5) ** 2, jnp.log(0.7) - 0.5 * ((x[0] - 2) / 0.5) ** 2)

    proposal = GaussianMixture(jnp.array([0.6, 0.4]), jnp.array([[-2.0], [2.0]]), jnp.full((2, 1, 1), 0.8**2))
    accepts = []
    for t in (0.0, 4.0):
        xs, accept = _chain(jax.random.PRNGKey(1), jnp.array([2.0]), proposal, potential, t, 8000)
        heavy = (xs[1000:, 0] > 0).astype(float)
        ess = float(effective_sample_size(heavy[None, :, None])[0])
        assert_within_mcse(heavy.mean(), 0.7, np.sqrt(0.21 / ess), what=f"heavy weight at t_r = {t}")
        accepts.append(accept.mean())
    assert accepts[1] > accepts[0]



def test_a_move_making_fewer_proposals_gives_the_others_no_weight_and_stays_exact():
    """``num_active``: whole chunks made, the rest NaN and never chosen; the chain keeps a Gaussian."""
    mean, sd = np.array([1.0, -2.0]), np.array([1.0, 0.5])

    def potential(x):
        return 0.5 * jnp.sum(((x - mean) / sd) ** 2)

    nu = Gaussian(jnp.asarray(mean), jnp.diag(jnp.asarray(sd) ** 2))
    x = jnp.asarray(mean)
    move = partial_path_move(jax.random.PRNGKey(0), x, -potential(x) - nu.log_prob(x), nu.params, 0.0, potential, 32,
                             chunk=4, num_active=6)  # rounded up to 8
    made = ~np.isnan(np.asarray(move.proposal_log_weight))
    assert made.tolist() == [True] * 8 + [False] * 24 and not bool(move.diverging)
    assert float(move.accept_prob) == pytest.approx(8 / 9)  # ν = μ: equal weights among 8 + 1

    proposal = Gaussian(jnp.array([0.0, -1.5]), jnp.diag(jnp.array([1.5, 0.3]) ** 2))
    xs, _ = _chain(jax.random.PRNGKey(2), jnp.zeros(2), proposal, potential, 0.0, 6000, num_proposals=8, num_active=4)
    _check_moments(xs[500:], mean, sd, "4 of 8 proposals made")
