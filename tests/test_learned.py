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
    draws = banana_draws(jax.random.PRNGKey(0), 1000)
    den = Learned.fit(jax.random.PRNGKey(1), draws, num_iters=50)  # the mixture base: its arrays saved too
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
    den = Learned.fit(jax.random.PRNGKey(2), draws, model_two_sites, base="gaussian", num_iters=20)
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
