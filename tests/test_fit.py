"""Covariance types of the fitted mixtures: each recovers its structure and BIC picks it; fits on
awkward input (rounding, near-singular draws, float32) never crash."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_within_mcse

from slppl.denoisers import GaussianMixture
from slppl.denoisers.fit import COVARIANCE_TYPES, fit_gaussian, fit_mixture, num_parameters


def _two_components(rng, n, mean_a, mean_b, chol_a, chol_b, p=0.3):
    n_a = int(p * n)
    d = mean_a.shape[0]
    a = mean_a + rng.standard_normal((n_a, d)) @ chol_a.T
    b = mean_b + rng.standard_normal((n - n_a, d)) @ chol_b.T
    return np.concatenate([a, b]), n_a


def _structures(d, rng):
    """One pair of component covariances (as Cholesky factors) per covariance type."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    shared = q @ np.diag(np.linspace(0.3, 3.0, d))  # correlated, shared by both components
    return {
        "spherical": (0.5 * np.eye(d), 1.5 * np.eye(d)),
        "diag": (np.diag(np.linspace(0.3, 2.0, d)), np.diag(np.linspace(2.0, 0.3, d))),
        "full": (np.linalg.cholesky(shared @ shared.T), np.linalg.cholesky(np.diag(np.linspace(0.5, 2, d)) + 0.9)),
        # A scale mixture (same mean): the overall covariance has the components' shape.
        "scaled": (0.7 * shared, 1.4 * shared),
    }


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_each_covariance_type_recovers_its_structure_and_bic_picks_it(kind):
    rng = np.random.default_rng(0)
    d, n = 8, 6000
    chol_a, chol_b = _structures(d, rng)[kind]
    mean_a, mean_b = (np.zeros(d), np.zeros(d)) if kind == "scaled" else (-4.0 * np.ones(d), 4.0 * np.ones(d))
    x, n_a = _two_components(rng, n, mean_a, mean_b, chol_a, chol_b)
    fit = fit_mixture(jax.random.PRNGKey(1), jnp.asarray(x))
    assert COVARIANCE_TYPES[int(fit.covariance_type)] == kind
    assert int(fit.num_components) == 2
    # Components in the order they were drawn: by mean, or (same means) by size.
    key = np.trace(np.asarray(fit.covs)[:2], axis1=1, axis2=2) if kind == "scaled" else np.asarray(fit.means)[:2, 0]
    order = np.argsort(key)
    covs = np.asarray(fit.covs)[:2][order]
    w = np.exp(np.asarray(fit.log_weights)[:2][order])
    assert_within_mcse(w[0], 0.3, np.sqrt(0.21 / n), what="weight")
    for cov, chol, m in ((covs[0], chol_a, n_a), (covs[1], chol_b, n - n_a)):
        truth = chol @ chol.T
        # Each entry of a sample covariance of m draws has sd sqrt((Σ_ii Σ_jj + Σ_ij²)/m).
        se = np.sqrt((np.outer(np.diag(truth), np.diag(truth)) + truth**2) / m)
        assert_within_mcse(cov, truth, se, what=f"{kind} covariance")


def test_high_dimension_picks_a_structured_type_and_keeps_the_weights():
    """The seeds' family in d = 128 from 2,000 draws: a full covariance would need 8,384 parameters
    a component (more than the draws), the spherical type gets the weights right."""
    rng = np.random.default_rng(1)
    d, n, p = 128, 2000, 0.7
    a = np.ones(d)
    x, n_light = _two_components(rng, n, -p * a, (1 - p) * a, np.eye(d), np.eye(d), p=1 - p)
    fit = fit_mixture(jax.random.PRNGKey(0), jnp.asarray(x))
    assert num_parameters("full", 1, d) > n
    assert COVARIANCE_TYPES[int(fit.covariance_type)] == "spherical"
    assert int(fit.num_components) == 2
    w = np.exp(np.asarray(fit.log_weights)[:2])
    heavy = w[np.argmax(np.asarray(fit.means)[:2, 0])]
    assert_within_mcse(heavy, p, np.sqrt(p * (1 - p) / n), what="heavy weight")
    assert np.allclose(np.diagonal(np.asarray(fit.covs)[:2], axis1=1, axis2=2), 1.0, atol=0.1)


def test_ledoit_wolf_shrinks_few_draws_and_leaves_many_alone():
    rng = np.random.default_rng(2)
    d = 50
    few = rng.standard_normal((60, d)) * 2.0
    _, cov = fit_gaussian(jnp.asarray(few))
    sample = np.cov(few.T, bias=True)
    off = ~np.eye(d, dtype=bool)
    # The true covariance is 4·I: shrinkage pulls the noisy off-diagonal toward 0.
    assert np.abs(np.asarray(cov)[off]).mean() < 0.5 * np.abs(sample[off]).mean()
    assert np.allclose(np.diag(np.asarray(cov)), np.diag(sample))
    corr = np.array([[1.0, 0.9], [0.9, 1.0]])
    many = rng.standard_normal((20000, 2)) @ np.linalg.cholesky(corr).T
    _, cov = fit_gaussian(jnp.asarray(many))
    assert abs(float(cov[0, 1]) - 0.9) < 0.03


def test_fits_on_awkward_input_do_not_crash():
    rng = np.random.default_rng(3)
    # Many modes in d = 32, float32: the fit's covariances are symmetric only up to rounding.
    centres = rng.uniform(-10, 10, (12, 32))
    x = (centres[rng.integers(0, 12, 2000)] + rng.standard_normal((2000, 32))).astype(np.float32)
    den = GaussianMixture.fit(jax.random.PRNGKey(0), jnp.asarray(x))  # float32 arrays stay float32
    assert np.all(np.isfinite(np.asarray(den.eigvals)))
    # Near-singular draws: a constant coordinate and a duplicated one.
    y = rng.standard_normal((500, 4))
    y = np.concatenate([y, y[:, :1], np.full((500, 1), 3.0)], axis=1)
    den = GaussianMixture.fit(jax.random.PRNGKey(1), jnp.asarray(y))
    assert np.all(np.isfinite(np.asarray(den.means)))
    # A covariance asymmetric at the level of rounding is symmetrised; a really asymmetric one is refused.
    c = np.array([[2.0, 0.3], [0.3 + 1e-14, 1.0]])
    GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), c[None])
    with pytest.raises(ValueError, match="symmetric"):
        GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), np.array([[[2.0, 0.3], [0.5, 1.0]]]))


def test_unknown_covariance_type_is_refused():
    with pytest.raises(ValueError, match="covariance_types"):
        fit_mixture(jax.random.PRNGKey(0), jnp.zeros((10, 2)), covariance_types=("tied",))


@pytest.mark.parametrize("kind", ["spherical", "scaled"])
def test_diagonal_fit_is_the_same_mixture_kept_in_its_own_coordinates(kind):
    """``fit_diagonal`` stores (K, d) variances in its type's coordinates: the same density as the
    type's fit in the draws' units, through the map, at O(K·d) cost."""
    from slppl.denoisers.fit import DIAGONAL_TYPES, fit_diagonal, mixture_log_prob

    rng = np.random.default_rng(2)
    d, n = (128, 2000) if kind == "spherical" else (8, 6000)
    if kind == "spherical":
        x, _ = _two_components(rng, n, -0.7 * np.ones(d), 0.3 * np.ones(d), np.eye(d), np.eye(d), p=0.3)
    else:
        chol_a, chol_b = _structures(d, rng)["scaled"]
        x, _ = _two_components(rng, n, np.zeros(d), np.zeros(d), chol_a, chol_b)
    x = jnp.asarray(x)
    fit, loc, chol = fit_diagonal(jax.random.PRNGKey(0), x)
    full = fit_mixture(jax.random.PRNGKey(0), x, covariance_types=DIAGONAL_TYPES)
    assert COVARIANCE_TYPES[int(fit.covariance_type)] == kind == COVARIANCE_TYPES[int(full.covariance_type)]
    assert fit.covs.shape == (8, d) and int(fit.num_components) == 2
    u = jax.scipy.linalg.solve_triangular(chol, (x[:50] - loc).T, lower=True).T
    log_det = jnp.sum(jnp.log(jnp.diagonal(chol)))
    np.testing.assert_allclose(mixture_log_prob(u, fit.log_weights, fit.means, fit.covs) - log_det,
                               mixture_log_prob(x[:50], full.log_weights, full.means, full.covs), rtol=1e-6)
