"""The learned denoiser: training, the exact kernel with it, save/load and bad files."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from conftest import assert_within_mcse
from numpyro.diagnostics import effective_sample_size
from numpyro.infer import MCMC

pytest.importorskip("equinox")
pytest.importorskip("optax")

from slppl import SL, sample_trajectory  # noqa: E402
from slppl.denoisers import Gaussian, Learned  # noqa: E402
from slppl.denoisers.learned import log_weight_variance  # noqa: E402
from slppl.integrators import SecondOrder  # noqa: E402
from slppl.time_grids import UniformOU  # noqa: E402


def banana_potential(x):
    # A banana of scale ~3 along x[0]: x[1] | x[0] ~ N(0.3·x[0]² − 1.5, 0.5²).
    return 0.5 * (x[0] / 2.0) ** 2 + 0.5 * ((x[1] - 0.3 * x[0] ** 2 + 1.5) / 0.5) ** 2


def banana_draws(key, n):
    k1, k2 = jax.random.split(key)
    a = 2.0 * jax.random.normal(k1, (n,))
    b = 0.3 * a**2 - 1.5 + 0.5 * jax.random.normal(k2, (n,))
    return jnp.stack([a, b], -1)


def test_learned_on_a_gaussian_target_stays_close_to_the_analytic_denoiser():
    cov = jnp.array([[4.0, 1.0], [1.0, 1.0]])
    exact = Gaussian(jnp.array([1.0, -1.0]), cov)
    draws = exact.sample(jax.random.PRNGKey(0), 4000)
    den = Learned.fit(jax.random.PRNGKey(1), draws, base="gaussian", num_iters=500)
    ys = jax.random.normal(jax.random.PRNGKey(2), (50, 2)) * 3.0
    for t in (0.0, 0.1, 1.0, 10.0):
        got = jax.vmap(lambda y: den.estimate(None, y, t, ())[0])(ys * jnp.sqrt(t + t * t))
        want = jax.vmap(lambda y: exact.estimate(None, y, t, ())[0])(ys * jnp.sqrt(t + t * t))
        post_sd = jnp.sqrt(jnp.diag(jnp.linalg.inv(jnp.linalg.inv(cov) + t * jnp.eye(2))))
        # Within 0.1 posterior sd at t (the fitted Gaussian's own error from 4000 draws is ~0.03).
        assert float(jnp.max(jnp.abs(got - want) / post_sd)) < 0.1, t


@pytest.mark.slow  # the Gaussian-target and save/load tests cover Learned in CI
def test_learned_banana_beats_its_gaussian_base_and_the_exact_kernel_stays_exact():
    draws = banana_draws(jax.random.PRNGKey(0), 4000)
    learned = Learned.fit(jax.random.PRNGKey(1), draws, base="gaussian", num_iters=2000)
    untrained = Learned.fit(jax.random.PRNGKey(1), draws, base="gaussian", num_iters=0)  # the Gaussian base itself

    def acceptance(den, key):
        kernel = SL(potential_fn=banana_potential, denoiser=den, grid=UniformOU(), num_steps=25)
        mcmc = MCMC(kernel, num_warmup=50, num_samples=1500, progress_bar=False)
        mcmc.run(key, init_params=jnp.array([0.0, -1.5]), extra_fields=("accept_prob",))
        return float(mcmc.get_extra_fields()["accept_prob"].mean()), np.asarray(mcmc.get_samples())

    acc_base, _ = acceptance(untrained, jax.random.PRNGKey(3))
    acc, x = acceptance(learned, jax.random.PRNGKey(3))
    assert acc > acc_base + 0.05, (acc, acc_base)
    ess = np.asarray(effective_sample_size(x[None]))
    # The banana's moments: E x0 = 0, E x1 = 0.3·4 − 1.5 = −0.3; sd x0 = 2, sd x1 = sqrt(0.09·32 + 0.25).
    sd = np.array([2.0, np.sqrt(0.09 * 32 + 0.25)])
    assert_within_mcse(x.mean(0), np.array([0.0, -0.3]), sd / np.sqrt(ess), what="banana mean")


def test_save_then_load_gives_identical_draws(tmp_path):
    # The coordinatewise network: its base's arrays (a one-component mixture) and the architecture
    # are saved too (the MLP is loaded in the bad-files test below).
    draws = banana_draws(jax.random.PRNGKey(0), 1000)
    den = Learned.fit(jax.random.PRNGKey(1), draws, base="gaussian", num_iters=50, architecture="coordinatewise")
    path = tmp_path / "banana.npz"
    den.save(path)
    again = Learned.load(path)
    times = UniformOU().times(10)
    a = sample_trajectory(jax.random.PRNGKey(5), den, times, SecondOrder())
    b = sample_trajectory(jax.random.PRNGKey(5), again, times, SecondOrder())
    np.testing.assert_array_equal(np.asarray(a.x), np.asarray(b.x))
    assert again.settings == den.settings


def model_two_sites():
    numpyro.sample("a", dist.Normal(0.0, 1.0))
    numpyro.sample("b", dist.Normal(0.0, 1.0).expand([2]).to_event(1))


def model_other():
    numpyro.sample("c", dist.Normal(0.0, 1.0).expand([3]).to_event(1))


def test_corrupted_and_mismatched_files_are_rejected(tmp_path):
    draws = {"a": jnp.zeros(200) + jax.random.normal(jax.random.PRNGKey(0), (200,)),
             "b": jax.random.normal(jax.random.PRNGKey(1), (200, 2))}
    den = Learned.fit(jax.random.PRNGKey(2), draws, model_two_sites, base="gaussian", num_iters=20,
                      covariance="base")  # the file format is under test, not the covariance
    # With the model's density the residual is kept only if the exact weights say it helps.
    assert den.settings["residual_kept"] == (den.validation["trained"] <= den.validation["base"])
    path = tmp_path / "den.npz"
    den.save(path)
    Learned.load(path, model_two_sites)  # the right model is accepted
    with pytest.raises(ValueError, match="trained on latent sites"):
        Learned.load(path, model_other)
    with pytest.raises(ValueError, match="trained on latent sites"):  # before any sampling
        MCMC(SL(model_other, denoiser=Learned.load(path)), num_warmup=1, num_samples=1,
             progress_bar=False).run(jax.random.PRNGKey(0))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match="not a readable slppl Learned file"):
        Learned.load(truncated)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, header=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="not a readable slppl Learned file"):
        Learned.load(pickled)  # object arrays need pickle: refused, never executed
    wrong_shape = tmp_path / "wrong.npz"
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["net_0"] = np.zeros((3, 3))
    np.savez(wrong_shape, **arrays)
    with pytest.raises(ValueError, match="net_0 has shape"):
        Learned.load(wrong_shape)


def test_log_weight_variance_is_zero_for_the_exact_denoiser_and_not_for_a_wrong_one():
    exact = Gaussian(jnp.array([1.0, -1.0]), jnp.eye(2))
    draws = exact.sample(jax.random.PRNGKey(0), 500)

    def U(x):
        return 0.5 * jnp.sum((x - jnp.array([1.0, -1.0])) ** 2)

    times = UniformOU().times(25)
    var_exact, ok = log_weight_variance(jax.random.PRNGKey(1), exact, draws, U, times)
    wrong = Gaussian(jnp.array([0.0, 0.0]), 0.5 * jnp.eye(2))
    var_wrong, _ = log_weight_variance(jax.random.PRNGKey(1), wrong, draws, U, times)
    # SecondOrder is exact for a Gaussian denoiser, so the exact one's weights are constant.
    assert bool(ok) and float(var_exact) < 1e-8 and float(var_wrong) > 0.1


def test_a_given_denoiser_of_a_small_scale_target_works_with_the_default_grid():
    # The banana shrunk 10×: on the unscaled default grid a fitted mixture's acceptance was 0.31.
    from slppl.denoisers import GaussianMixture

    draws = banana_draws(jax.random.PRNGKey(0), 4000) * 0.1

    def U(x):
        return banana_potential(x / 0.1)

    den = GaussianMixture.fit(jax.random.PRNGKey(1), draws, potential_fn=U)
    mcmc = MCMC(SL(potential_fn=U, denoiser=den, num_steps=25), num_warmup=50, num_samples=1000, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(2), init_params=draws[0], extra_fields=("accept_prob",))
    assert float(mcmc.get_extra_fields()["accept_prob"].mean()) > 0.6


def wells_potential(x):
    return 2.0 * jnp.sum((x**2 - 1.0) ** 2)


def wells_draws(n, d, seed=0):
    # Inverse-CDF draws of exp(−2(x² − 1)²), independently per coordinate: 2^d equal modes.
    grid = np.linspace(-3, 3, 60001)
    cdf = np.cumsum(np.exp(-2.0 * (grid**2 - 1.0) ** 2))
    return jnp.asarray(np.interp(np.random.default_rng(seed).uniform(size=(n, d)), cdf / cdf[-1], grid))


def test_the_jacobian_covariance_of_an_untrained_network_is_the_base_covariance():
    # Tweedie: the mixture's own denoiser has Jacobian Cov(x | y_t), so with a zero residual the
    # "jacobian" covariance must be the base's closed form at every t, t = 0 included.
    draws = banana_draws(jax.random.PRNGKey(0), 1000)
    den = Learned.fit(jax.random.PRNGKey(1), draws, num_iters=0, architecture="coordinatewise")
    assert den.settings["covariance"] == "jacobian"
    ys = jax.random.normal(jax.random.PRNGKey(2), (5, 2))
    for t in (0.0, 0.3, 10.0, 1e4):
        for y in ys * np.sqrt(t + t * t + 1.0):
            m, cov, _, _ = den.estimate_with_cov(None, y, t, ())
            m_base, cov_base, _, _ = den.base.estimate_with_cov(None, y, t, ())
            np.testing.assert_allclose(np.asarray(m), np.asarray(m_base), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(np.asarray(cov), np.asarray(cov_base), rtol=1e-6, atol=1e-12)


def test_beyond_the_trained_times_the_residual_fades_instead_of_extrapolating():
    from slppl.denoisers.networks import _network, residual

    net = _network(jax.random.PRNGKey(0), 2, 16, 2, 4, jnp.float64)
    net = jax.tree_util.tree_map(lambda a: a + 0.1 if isinstance(a, jax.Array) else a, net)  # a non-zero output
    y, loc, scale = jnp.array([0.3, -2.0]), jnp.zeros(2), jnp.array([1.0, 2.0])
    inside = residual(net, 4, y, 5.0, loc, scale, t_max=10.0)
    np.testing.assert_allclose(inside, residual(net, 4, y, 5.0, loc, scale))  # untouched within the range
    far = residual(net, 4, y, 1e4, loc, scale, t_max=10.0)
    # The time features stay at t_max, the output shrinks by √(t_max/t) on top of c_out(t).
    from slppl.denoisers.networks import _embed

    h = y / jnp.sqrt(1.0 + 1e4 + 1e8 * scale**2)
    want = jnp.sqrt(10.0 / 1e4) * scale / jnp.sqrt(1.0 + 1e4 * scale**2) * net(jnp.concatenate([h, _embed(10.0, 4, y.dtype)]))
    np.testing.assert_allclose(far, want, rtol=1e-12)


def test_bad_settings_are_named():
    draws = banana_draws(jax.random.PRNGKey(0), 100)
    for kwargs, match in ((dict(architecture="cnn"), "architecture must be one of"),
                          (dict(covariance="full"), "covariance must be 'jacobian' or 'base'"),
                          (dict(target="tsm"), "target must be one of")):
        with pytest.raises(ValueError, match=match):
            Learned.fit(jax.random.PRNGKey(1), draws, base="gaussian", num_iters=2, **kwargs)


@pytest.mark.slow  # ~45 s; the Jacobian, fading and save/load tests cover the parts in CI
def test_coordinatewise_network_pays_on_independent_double_wells():
    # 2^6 equal modes: the mixture fitted to 4,000 draws is a poor proposal, while the exact denoiser
    # acts coordinate by coordinate, which the coordinatewise network can learn. The exact kernel's
    # acceptance must rise by more than 4 MCSE over the mixture's, and stay exact (means 0, 4 MCSE).
    from slppl.time_grids import Karras

    d = 6
    draws = wells_draws(4000, d)
    times = Karras().times(25)
    base = Learned.fit(jax.random.PRNGKey(1), draws, potential_fn=wells_potential, num_iters=0)
    learned = Learned.fit(jax.random.PRNGKey(1), draws, potential_fn=wells_potential, times=times,
                          architecture="coordinatewise", num_iters=1500)
    assert learned.settings["residual_kept"]

    def run(den):
        kernel = SL(potential_fn=wells_potential, denoiser=den, grid=Karras(), num_steps=25)
        mcmc = MCMC(kernel, num_warmup=50, num_samples=1000, num_chains=2, chain_method="sequential", progress_bar=False)
        mcmc.run(jax.random.PRNGKey(3), init_params=jnp.tile(draws[:1], (2, 1)), extra_fields=("accept_prob",))
        acc = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["accept_prob"])
        return acc, np.asarray(mcmc.get_samples(group_by_chain=True))

    acc_base, _ = run(base)
    acc, x = run(learned)
    mcse = np.sqrt(acc.var() / float(effective_sample_size(acc[..., None])[0]) + acc_base.var() / float(
        effective_sample_size(acc_base[..., None])[0]))
    assert acc.mean() > acc_base.mean() + 4 * mcse, (acc.mean(), acc_base.mean(), mcse)
    ess = np.asarray(effective_sample_size(x))
    sd = float(np.asarray(draws).std())
    assert_within_mcse(x.reshape(-1, d).mean(0), np.zeros(d), sd / np.sqrt(ess), what="double-well means")
