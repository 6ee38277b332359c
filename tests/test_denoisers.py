import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slppl import tweedie
from slppl.denoisers import Discrete, Empirical, FunctionDenoiser, Gaussian, GaussianMixture

KEY = jax.random.PRNGKey(0)


def random_spd(key, d):
    a = jax.random.normal(key, (d, d))
    return a @ a.T / d + 0.2 * jnp.eye(d)


def gaussian_posterior(a, cov, y, t):
    prec = jnp.linalg.inv(cov) + t * jnp.eye(a.size)
    post_cov = jnp.linalg.inv(prec)
    return post_cov @ (jnp.linalg.solve(cov, a) + y), post_cov


@pytest.mark.parametrize("t", [0.0, 0.3, 5.0, 1e4])
def test_gaussian_matches_closed_form(t):
    d = 4
    a, cov = jnp.arange(d) - 1.0, random_spd(jax.random.PRNGKey(1), d)
    y = jax.random.normal(jax.random.PRNGKey(2), (d,))
    m, c, _, _ = Gaussian(a, cov).estimate_with_cov(KEY, y, t, ())
    m_ref, c_ref = gaussian_posterior(a, cov, y, t)
    np.testing.assert_allclose(m, m_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(c, c_ref, rtol=1e-8, atol=1e-12)


def make_mixture(d=3, k=3):
    keys = jax.random.split(jax.random.PRNGKey(3), k + 1)
    covs = jnp.stack([random_spd(kk, d) for kk in keys[:k]])
    means = 2.0 * jax.random.normal(keys[k], (k, d))
    return GaussianMixture(jnp.array([0.2, 0.5, 0.3])[:k], means, covs)


def make_discrete(d=3, n=6):
    support = jax.random.normal(jax.random.PRNGKey(4), (n, d))
    return Discrete(support, jnp.linspace(-1.0, 1.0, n))


@pytest.mark.parametrize("make", [make_mixture, make_discrete, lambda: Empirical(jax.random.normal(KEY, (50, 3)), 0.3)])
@pytest.mark.parametrize("t", [0.0, 0.5, 4.0])
def test_closed_form_covariance_is_the_jacobian_of_the_mean(make, t):
    """Tweedie's second identity: Cov(x | y_t = y) = ∂m/∂y."""
    den = make()
    y = 0.5 * jax.random.normal(jax.random.PRNGKey(5), (den.dim,))
    _, cov, _, _ = den.estimate_with_cov(KEY, y, t, ())
    jac = jax.jacfwd(lambda y_: den.estimate(KEY, y_, t, ())[0])(y)
    np.testing.assert_allclose(cov, jac, atol=1e-8)


def test_mixture_at_t0_returns_its_mean():
    den = make_mixture()
    m, _, _ = den.estimate(KEY, jnp.zeros(3), 0.0, ())
    np.testing.assert_allclose(m, jnp.exp(den.log_weights) @ den.means, atol=1e-12)


def test_discrete_localises_on_a_support_point_at_large_t():
    den = make_discrete()
    x = den.support[2]
    m, _, _ = den.estimate(KEY, 1e4 * x, 1e4, ())
    np.testing.assert_allclose(m, x, atol=1e-8)


def test_empirical_is_the_kde_mixture_and_tends_to_the_discrete_denoiser():
    draws = jax.random.normal(KEY, (200, 2))
    y, t, h = jnp.array([0.3, -0.2]), 2.0, 0.4
    draws = draws * jnp.array([1.0, 5.0])  # different scales: the whitened kernel follows them
    cov = jnp.cov(draws, rowvar=False)
    for whiten, kernel in ((False, h**2 * jnp.eye(2)), (True, h**2 * cov)):
        emp = Empirical(draws, bandwidth=h, whiten=whiten)
        kde = GaussianMixture(jnp.ones(200), draws, jnp.stack([kernel] * 200))
        for a, b in zip(emp.estimate_with_cov(KEY, y, t, ())[:2], kde.estimate_with_cov(KEY, y, t, ())[:2]):
            np.testing.assert_allclose(a, b, atol=1e-10)
        np.testing.assert_allclose(emp.log_prob(y), kde.log_prob(y), rtol=1e-10)
    tiny = Empirical(draws, bandwidth=1e-6)
    np.testing.assert_allclose(tiny.estimate(KEY, y, t, ())[0], Discrete(draws, jnp.zeros(200)).estimate(KEY, y, t, ())[0], atol=1e-8)
    assert Empirical(draws).bandwidth > 0  # Silverman's rule by default


def test_tweedie_score_matches_the_gaussian_marginal_score():
    """∇ log p_t(y) = m − y/t with p_t = N(t·a, t·I + t²·Σ)."""
    d, t = 3, 0.7
    a, cov = jnp.array([1.0, -0.5, 0.2]), random_spd(jax.random.PRNGKey(6), d)
    y = jnp.array([0.4, 0.1, -0.3])
    log_p = lambda y_: jax.scipy.stats.multivariate_normal.logpdf(y_, t * a, t * jnp.eye(d) + t**2 * cov)
    m, _, _ = Gaussian(a, cov).estimate(KEY, y, t, ())
    np.testing.assert_allclose(tweedie.score_from_denoiser(m, y, t), jax.grad(log_p)(y), rtol=1e-8)
    np.testing.assert_allclose(tweedie.denoiser_from_score(jax.grad(log_p)(y), y, t), m, rtol=1e-8)
    den = tweedie.DenoiserFromScore(jax.grad(lambda y_, t_: jax.scipy.stats.multivariate_normal.logpdf(
        y_, t_ * a, t_ * jnp.eye(d) + t_**2 * cov)), d)
    np.testing.assert_allclose(den.estimate(KEY, y, t, ())[0], m, rtol=1e-8)


def test_ou_coordinates_round_trip_and_ou_score():
    y, t, m = jnp.array([0.3, -1.0]), 0.8, jnp.array([0.1, 0.2])
    X, s = tweedie.sl_to_ou(y, t)
    y2, t2 = tweedie.ou_to_sl(X, s)
    np.testing.assert_allclose(y2, y, rtol=1e-10)
    np.testing.assert_allclose(t2, t, rtol=1e-10)
    score_ou = tweedie.ou_score_from_denoiser(m, X, s)
    # The OU score is the SL score seen through y = √(t(t+1))·X.
    np.testing.assert_allclose(score_ou, jnp.sqrt(t * (t + 1)) * tweedie.score_from_denoiser(m, y, t), rtol=1e-10)
    np.testing.assert_allclose(tweedie.denoiser_from_ou_score(score_ou, X, s), m, rtol=1e-10)


def test_function_denoiser_differentiates_for_its_covariance():
    den = FunctionDenoiser(lambda y, t: y / (1.0 + t), dim=2)
    _, cov, _, _ = den.estimate_with_cov(KEY, jnp.ones(2), 3.0, ())
    np.testing.assert_allclose(cov, 0.25 * jnp.eye(2))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: GaussianMixture(jnp.array([0.5, 0.5]), jnp.zeros((3, 2)), jnp.stack([jnp.eye(2)] * 3)), "weights for"),
        (lambda: GaussianMixture(jnp.array([-1.0, 2.0]), jnp.zeros((2, 2)), jnp.stack([jnp.eye(2)] * 2)), "non-negative"),
        (lambda: GaussianMixture(jnp.ones(2), jnp.zeros((2, 2)), jnp.stack([jnp.eye(3)] * 2)), "covs must have shape"),
        (lambda: Gaussian(jnp.zeros(2), jnp.array([[1.0, 2.0], [0.0, 1.0]])), "symmetric"),
        (lambda: Gaussian(jnp.zeros(2), -jnp.eye(2)), "positive semi-definite"),
        (lambda: Gaussian(jnp.array([0.0, jnp.nan]), jnp.eye(2)), "NaN"),
        (lambda: Discrete(jnp.zeros((3, 2)), jnp.zeros(2)), "log_probs must have shape"),
        (lambda: Empirical(jnp.zeros((1, 2))), "at least two"),
        (lambda: Empirical(jnp.zeros((5, 2)), bandwidth=0.0), "bandwidth must be positive"),
    ],
)
def test_bad_denoiser_input_is_rejected(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_laplace_recovers_a_gaussian_potential_exactly():
    from slppl.denoisers import laplace

    a, cov = jnp.array([1.0, -2.0, 0.5]), random_spd(jax.random.PRNGKey(7), 3)
    prec = jnp.linalg.inv(cov)
    den = laplace(lambda x: 0.5 * (x - a) @ prec @ (x - a), jnp.zeros(3))
    m, c, _, _ = den.estimate_with_cov(KEY, jnp.zeros(3), 0.0, ())
    np.testing.assert_allclose(m, a, atol=1e-6)
    np.testing.assert_allclose(c, cov, atol=1e-6)


def test_laplace_escapes_a_saddle_and_refuses_a_flat_direction():
    from slppl.denoisers import laplace

    saddle = lambda x: 0.5 * x[0] ** 2 - 0.5 * x[1] ** 2 + 0.01 * x[1] ** 4  # BFGS from x1 = 0 stays on it
    den = laplace(saddle, jnp.array([1.0, 0.0]))  # minima at x1 = ±5, Hessian diag(1, 2)
    np.testing.assert_allclose(jnp.abs(den.means[0]), [0.0, 5.0], atol=1e-6)
    np.testing.assert_allclose(jnp.sort(den.eigvals[0]), [0.5, 1.0], atol=1e-6)
    flat = lambda x: 0.5 * x[0] ** 2  # x1 is not identified
    with pytest.raises(ValueError, match="positive definite Hessian"):
        laplace(flat, jnp.array([1.0, 0.0]))


def test_flat_potential_matches_the_model_density():
    import numpyro
    import numpyro.distributions as dist

    from slppl import flat_potential

    def model():
        numpyro.sample("b", dist.Normal(1.0, 2.0).expand([2]))
        numpyro.sample("a", dist.Normal(0.0, 1.0))

    U, x0, layout = flat_potential(model)
    assert [s.name for s in layout] == ["a", "b"] and x0.shape == (3,)
    x = jnp.array([0.3, -1.0, 2.0])
    expected = -(dist.Normal(0.0, 1.0).log_prob(0.3) + dist.Normal(1.0, 2.0).log_prob(jnp.array([-1.0, 2.0])).sum())
    np.testing.assert_allclose(U(x), expected, rtol=1e-10)


def test_diagonal_mixture_params_match_the_same_mixture_with_identity_eigenvectors():
    """``eigvecs=None`` (the adaptive kernel's high-dimensional fits) is the same denoiser, in O(K·d)."""
    from slppl.denoisers.mixture import MixtureDenoiser, MixtureParams

    k, d = 3, 5
    key = jax.random.PRNGKey(0)
    log_w = jnp.log(jnp.array([0.2, 0.5, 0.3]))
    means = jax.random.normal(key, (k, d))
    var = jnp.exp(jax.random.normal(jax.random.PRNGKey(1), (k, d)))
    diag = MixtureDenoiser.from_params(MixtureParams(log_w, means, var, None))
    full = MixtureDenoiser.from_params(MixtureParams(log_w, means, var, jnp.broadcast_to(jnp.eye(d), (k, d, d))))
    y, t, x = jnp.linspace(-1.0, 2.0, d), 0.7, jnp.linspace(0.5, -0.5, d)
    for a, b in zip(diag.estimate_with_cov(key, y, t, ())[:2], full.estimate_with_cov(key, y, t, ())[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(diag.log_prob(x), full.log_prob(x), rtol=1e-12)
    np.testing.assert_allclose(diag.sample(key, 4), full.sample(key, 4), rtol=1e-12)
    np.testing.assert_allclose(diag.sample_posterior(key, y, t, ()), full.sample_posterior(key, y, t, ()), rtol=1e-12)
    np.testing.assert_allclose(diag.marginal_variance(), full.marginal_variance(), rtol=1e-12)
