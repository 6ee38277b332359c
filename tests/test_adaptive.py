"""``SL(model)`` with no denoiser: fitted families, the adaptive warmup, the composite kernel."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from conftest import assert_within_mcse
from numpyro.diagnostics import effective_sample_size
from numpyro.infer import MCMC

from slppl import SL, flatten_draws, log_evidence, sample_trajectory
from slppl.denoisers import Gaussian, GaussianMixture, laplace
from slppl.denoisers.fit import fit_laplace, fit_mixture
from slppl.diagnostics import check_sl, pareto_khat
from slppl.integrators import Exact, SecondOrder
from slppl.time_grids import UniformOU
from slppl.trajectory import path_log_aux

D = 3


def bimodal_model():
    w = jnp.array([0.3, 0.7])
    means = jnp.stack([-2.0 * jnp.ones(D), 2.0 * jnp.ones(D)])
    numpyro.sample("x", dist.MixtureSameFamily(dist.Categorical(probs=w), dist.Normal(means, 0.7).to_event(1)))


def heavy_mode_weight(mcmc):
    x = np.asarray(mcmc.get_samples(group_by_chain=True)["x"])
    f = (x.mean(-1) > 0).astype(float)
    ess = float(effective_sample_size(f[..., None])[0])
    return f.mean(), np.sqrt(f.mean() * (1 - f.mean()) / ess), ess


def test_fitted_mixture_recovers_a_known_mixture():
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    n1, n2 = 1200, 2800
    a = jnp.array([-3.0, 1.0])
    b = jnp.array([2.0, -1.0])
    x = jnp.concatenate([a + 0.5 * jax.random.normal(k1, (n1, 2)), b + 1.5 * jax.random.normal(k2, (n2, 2))])
    fit = fit_mixture(k3, x)
    assert int(fit.num_components) == 2
    used = np.isfinite(np.asarray(fit.log_weights))
    w, means, covs = np.exp(np.asarray(fit.log_weights)[used]), np.asarray(fit.means)[used], np.asarray(fit.covs)[used]
    order = np.argsort(means[:, 0])
    w, means, covs = w[order], means[order], covs[order]
    p = n1 / (n1 + n2)
    assert_within_mcse(w[0], p, np.sqrt(p * (1 - p) / (n1 + n2)), what="weight")
    assert_within_mcse(means[0], a, 0.5 / np.sqrt(n1), what="mean of the narrow component")
    assert_within_mcse(means[1], b, 1.5 / np.sqrt(n2), what="mean of the wide component")
    # Sample variance of n Gaussian draws: sd ≈ var·sqrt(2/n).
    assert_within_mcse(np.diag(covs[0]), 0.25, 0.25 * np.sqrt(2 / n1), what="variance")
    assert_within_mcse(np.diag(covs[1]), 2.25, 2.25 * np.sqrt(2 / n2), what="variance")


def test_mixture_weights_are_corrected_by_the_target_density():
    """Draws with the wrong proportions (stuck walkers) still give the right weights."""
    x = jnp.concatenate([jnp.full((500, 1), -3.0), jnp.full((500, 1), 3.0)])
    x = x + jax.random.normal(jax.random.PRNGKey(0), (1000, 1))

    def U(z):
        return -jnp.logaddexp(jnp.log(0.1) - 0.5 * (z[0] + 3) ** 2, jnp.log(0.9) - 0.5 * (z[0] - 3) ** 2)

    den = GaussianMixture.fit(jax.random.PRNGKey(1), x, potential_fn=U)
    w = np.sort(np.exp(np.asarray(den.log_weights)))
    # 95 % from importance sampling + a 5 % defensive share of the draws' 0.5/0.5.
    np.testing.assert_allclose(w, [0.95 * 0.1 + 0.025, 0.95 * 0.9 + 0.025], atol=0.02)


def test_fit_accepts_numpyro_sample_dicts():
    def model():
        numpyro.sample("sigma", dist.HalfNormal(1.0))
        numpyro.sample("beta", dist.Normal(0, 1).expand([2]))

    sigma = jnp.exp(0.3 * jax.random.normal(jax.random.PRNGKey(0), (500,)))
    beta = jax.random.normal(jax.random.PRNGKey(1), (500, 2))
    flat = flatten_draws({"sigma": sigma, "beta": beta, "ignored": jnp.zeros(500)}, model)
    np.testing.assert_allclose(flat, jnp.column_stack([beta, jnp.log(sigma)]), rtol=1e-6)
    den = Gaussian.fit({"sigma": sigma, "beta": beta}, model)
    np.testing.assert_allclose(den.means[0], flat.mean(0), rtol=1e-6)
    with pytest.raises(ValueError, match="pass the model"):
        Gaussian.fit({"sigma": sigma})
    with pytest.raises(ValueError, match=r"lack the latent site\(s\) \['beta'\]"):
        Gaussian.fit({"sigma": sigma}, model)


def test_fits_take_the_models_arguments_as_mcmc_run_does():
    """``fit(draws, model, *model_args, **model_kwargs)`` everywhere; the older keywords still work, with a warning."""
    from slppl.denoisers import Empirical

    def model(n, scale=1.0):
        numpyro.sample("beta", dist.Normal(0, scale).expand([n]))

    draws = {"beta": jax.random.normal(jax.random.PRNGKey(0), (300, 3))}
    new = Gaussian.fit(draws, model, 3, scale=2.0)
    with pytest.warns(FutureWarning, match=r"Gaussian.fit\(..., model, \*model_args, \*\*model_kwargs\)"):
        old = Gaussian.fit(draws, model, model_args=(3,), model_kwargs={"scale": 2.0})
    np.testing.assert_array_equal(new.means, old.means)
    assert Empirical.fit(draws, model, 3, bandwidth=0.5).dim == 3
    mixture = GaussianMixture.fit(jax.random.PRNGKey(1), draws, model, 3, components=(1,), scale=2.0)
    assert mixture.dim == 3


def test_exact_integrator_and_path_scoring_agree_with_the_sampled_paths():
    den = GaussianMixture(jnp.array([0.4, 0.6]), jnp.array([[-1.0, 0.0], [1.5, 1.0]]),
                          jnp.stack([0.3 * jnp.eye(2), jnp.diag(jnp.array([1.0, 0.2]))]))
    times = UniformOU().times(1)
    traj = sample_trajectory(jax.random.PRNGKey(0), den, times, SecondOrder())
    # With one step the path is y_K alone: scoring it must give the sampler's own weight.
    log_aux, _ = path_log_aux(jax.random.PRNGKey(1), den, times, SecondOrder(), traj.y[None], traj.x)
    np.testing.assert_allclose(log_aux, traj.log_aux, rtol=1e-8)
    exact = sample_trajectory(jax.random.PRNGKey(2), den, times, Exact())
    np.testing.assert_allclose(exact.log_aux, -den.log_prob(exact.x), rtol=1e-10)


@pytest.mark.parametrize(
    "chain_method",
    # sequential is NumPyro's path for one chain too, which the tests below run in CI
    # parallel: test_numpyro_kernel runs it with a given denoiser, benchmarks/ with SL(model) (make test's budget)
    [pytest.param("sequential", marks=pytest.mark.slow), pytest.param("parallel", marks=pytest.mark.slow), "vectorized"],
)
def test_adaptive_kernel_finds_both_modes_with_every_chain_method(chain_method):
    mcmc = MCMC(SL(bimodal_model), num_warmup=200, num_samples=600, num_chains=2, chain_method=chain_method,
                progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # useful global moves: no "switched off" warning
        mcmc.run(jax.random.PRNGKey(0))
    weight, se, ess = heavy_mode_weight(mcmc)
    assert_within_mcse(weight, 0.7, se, what="mode weight")
    assert ess > 200
    extra = mcmc.get_extra_fields()
    for name in ("num_grad_evals", "num_potential_evals", "local_accept_prob"):
        assert extra[name].shape == (1200,)
    assert extra["proposal_log_weight"].shape == (1200, 32)  # the default num_proposals
    # Every proposal made (NaN would mark one not made, adaptation.PROPOSALS_BY_COST), counted.
    made = (~np.isnan(extra["proposal_log_weight"])).sum(-1)
    assert np.array_equal(made, extra["num_potential_evals"]) and np.all(made == 32)
    assert np.all(check_sl(mcmc).nan_proposals == 0.0)
    assert float(extra["accept_prob"].mean()) > 0.5
    assert np.all(pareto_khat(mcmc) < 0.7)
    # The model has no data and a normalised prior: its evidence is 1. Each chain's proposals are
    # whitened by its own fit, whose log |det| the estimate must add back.
    ev = log_evidence(mcmc)
    assert_within_mcse(ev.estimate, 0.0, ev.se, z=3.0, what="log evidence of a normalised prior")
    assert ev.se < 0.05
    assert ev.num_weights == 2 * 600 * 32 and ev.chains.shape == (2,)


def test_adaptation_is_frozen_after_warmup_and_a_second_run_compiles_nothing():
    traces, compiles = [], []

    def model(data):
        traces.append(1)
        mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        numpyro.sample("obs", dist.Normal(mu, 1.0), obs=data)

    def listen(event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listen)
    mcmc = MCMC(SL(model), num_warmup=100, num_samples=150, jit_model_args=True)
    # NumPyro's step-by-step loop (its progress-bar loop), which jit_model_args compiles once; NumPyro
    # switches it off under pytest-xdist and CI, and its other loop (fori_collect) is compiled anew
    # on every warmup and run (NumPyro 0.22), which no kernel can avoid.
    mcmc.progress_bar = True
    counts, compiled = [], []
    try:
        for k, data in enumerate([jnp.array([0.5, 1.5, 1.0]), jnp.array([-2.0, -1.5, -2.5]), jnp.array([3.0, 2.0, 4.0])]):
            before, compiled_before = len(traces), len(compiles)
            mcmc.warmup(jax.random.PRNGKey(k), data)
            warm = mcmc.post_warmup_state
            mcmc.run(warm.rng_key, data)
            counts.append(len(traces) - before)
            compiled.append(len(compiles) - compiled_before)
            last = mcmc.last_state
            for a, b in zip(jax.tree_util.tree_leaves((warm.mixture, warm.shift, warm.chol, warm.use_local)),
                            jax.tree_util.tree_leaves((last.mixture, last.shift, last.chol, last.use_local))):
                np.testing.assert_array_equal(a, b)
            mu = np.asarray(mcmc.get_samples()["mu"])
            prec = 1 / 100 + data.size
            ess = float(effective_sample_size(mu[None, :, None])[0])
            assert_within_mcse(mu.mean(), float(data.sum()) / prec, 1 / np.sqrt(prec * ess), what=f"mean on data set {k}")
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    # Later runs on new data trace the model only to find initial points, and compile nothing.
    assert counts[2] == counts[1] < counts[0]
    assert compiled[0] > 0 and compiled[1] == compiled[2] == 0, compiled


@pytest.mark.slow  # a non-default family / integrator; make test-all runs it (make test's budget)
def test_composite_kernel_with_discretised_paths_and_local_moves_stays_exact():
    """A Gaussian fit is wrong for a skewed target; local moves and path refreshes must keep it exact."""

    def model():
        numpyro.sample("x", dist.Gamma(2.0, 1.0))  # unconstrained log x: skewed

    kernel = SL(model, denoiser="gaussian", integrator=SecondOrder(), num_steps=4, num_local=1)
    mcmc = MCMC(kernel, num_warmup=200, num_samples=2000, num_chains=1, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(3))
    x = np.asarray(mcmc.get_samples()["x"])
    ess = float(effective_sample_size(x[None, :, None])[0])
    assert_within_mcse(x.mean(), 2.0, np.sqrt(2.0) / np.sqrt(ess), what="E[x]")
    assert_within_mcse((x**2).mean(), 6.0, np.sqrt(120.0 - 36.0) / np.sqrt(ess), what="E[x²]")
    assert float(mcmc.get_extra_fields()["local_accept_prob"].mean()) > 0.5
    assert bool(np.all(np.isfinite(mcmc.get_extra_fields()["potential_energy"])))


def test_improper_uniform_site_and_untraceable_arguments_work_and_laplace_never_returns_a_saddle():
    def model(y, noise):
        mu = numpyro.sample("mu", dist.ImproperUniform(dist.constraints.real, (), ()))
        numpyro.sample("y", dist.Normal(mu, noise), obs=y)

    y = jnp.array([1.0, 2.0, 0.5, 1.5])
    mcmc = MCMC(SL(model), num_warmup=100, num_samples=500, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), y, 1.0)  # a Python float: arguments that cannot be traced
    mu = np.asarray(mcmc.get_samples()["mu"])
    ess = float(effective_sample_size(mu[None, :, None])[0])
    assert_within_mcse(mu.mean(), 1.25, 0.5 / np.sqrt(ess), what="posterior mean under a flat prior")

    def saddle(x):
        return x[0] ** 2 - x[1] ** 2 + 0.1 * x[1] ** 4

    den = laplace(saddle, jnp.array([0.3, 0.0]))  # starts on the ridge: must not stop at the saddle
    assert abs(abs(float(den.means[0, 1])) - np.sqrt(5.0)) < 1e-3


def test_bad_input_for_the_adaptive_kernel_is_rejected_before_sampling():
    with pytest.raises(ValueError, match="not a family"):
        SL(bimodal_model, denoiser="flow")
    with pytest.raises(ValueError, match="correction='mh'"):
        SL(bimodal_model, correction=None)
    with pytest.raises(ValueError, match="num_walkers"):
        SL(bimodal_model, num_walkers=1)
    with pytest.raises(ValueError, match="integrator that follows the network"):
        SL(bimodal_model, denoiser="learned", integrator=Exact())
    with pytest.raises(ValueError, match="num_warmup >= 100"):
        MCMC(SL(bimodal_model), num_warmup=20, num_samples=10, progress_bar=False).run(jax.random.PRNGKey(0))


@pytest.mark.slow  # a non-default family / integrator; make test-all runs it (make test's budget)
def test_laplace_family_is_exact_where_the_posterior_is_gaussian_and_falls_back_where_there_is_no_mode():
    # Scales 10 and 0.01 with correlation 0.9: N(MAP, H⁻¹) is the posterior itself.
    cov = jnp.array([[100.0, 0.09], [0.09, 1e-4]])
    mean = jnp.array([3.0, -0.5])

    def model():
        numpyro.sample("x", dist.MultivariateNormal(mean, cov))

    mcmc = MCMC(SL(model, denoiser="laplace"), num_warmup=200, num_samples=1000, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), extra_fields=("accept_prob",))
    x = np.asarray(mcmc.get_samples()["x"])
    # The fitted component is the mode to optimiser precision (a fit to walkers' draws is not).
    state = mcmc.last_state
    u = state.mixture.means[jnp.argmax(state.mixture.log_weights)]
    np.testing.assert_allclose(state.shift + state.chol @ u, mean, rtol=1e-6, atol=1e-8)
    assert float(mcmc.get_extra_fields()["accept_prob"].mean()) > 0.95  # 32/33 = 0.97 for exact proposals
    ess = np.asarray(effective_sample_size(x[None]))
    assert_within_mcse(x.mean(0), np.asarray(mean), np.sqrt(np.diag(cov) / ess), what="mean")

    # A potential with no minimum: the fit falls back to the walkers' Gaussian, and the exact
    # kernel stays right (here a Gaussian, checked in its tails' mean of x²).
    fallback = fit_mixture(jax.random.PRNGKey(0), jnp.ones((10, 2)) * jnp.arange(10.0)[:, None], (1,))
    no_mode = fit_laplace(lambda x: -jnp.sum(x**2), jnp.ones(2), fallback)
    np.testing.assert_allclose(no_mode.means, fallback.means)


def test_walkers_that_never_move_warn_and_flag_every_draw():
    # Finite only at the start: every walker's NUTS move diverges, so there is nothing to fit.
    def U(x):
        return jnp.where(jnp.all(x == 0.0), 0.5 * jnp.sum(x**2), jnp.nan)

    mcmc = MCMC(SL(potential_fn=U), num_warmup=100, num_samples=20, progress_bar=False)
    with pytest.warns(RuntimeWarning, match="never moved"):
        mcmc.run(jax.random.PRNGKey(0), init_params=jnp.zeros(2), extra_fields=("diverging",))
    assert np.all(np.asarray(mcmc.get_extra_fields()["diverging"]))


def test_check_sl_warns_when_the_proposal_misses_the_posterior():
    # Made-up weights with a heavy right tail, as a proposal that misses part of the target gives.
    class Fake:
        def get_extra_fields(self, group_by_chain=False):
            rng = np.random.default_rng(0)
            return {"accept_prob": np.full((2, 1000), 0.3), "diverging": np.zeros((2, 1000), bool),
                    "proposal_log_weight": rng.standard_cauchy((2, 1000)) * 3}

    with pytest.warns(UserWarning, match="Pareto k-hat"):
        table = check_sl(Fake())
    assert np.all(table.pareto_k > 0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_sl(Fake(), warn=False)


def test_check_sl_warns_when_chains_disagree_or_diverge():
    """A chain stuck apart from the others (R-hat) and divergences are reported with a fix."""
    rng = np.random.default_rng(0)

    class Stuck:
        def get_extra_fields(self, group_by_chain=False):
            return {"accept_prob": np.full((2, 500), 0.9), "diverging": np.arange(1000).reshape(2, 500) % 50 == 0,
                    "proposal_log_weight": rng.normal(size=(2, 500))}

        def get_samples(self, group_by_chain=False):
            return {"x": rng.normal(size=(2, 500)) + np.array([[0.0], [3.0]])}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = check_sl(Stuck())
    messages = " ".join(str(w.message) for w in caught)
    assert "the chains disagree" in messages and "num_walkers" in messages
    assert "divergent local move" in messages and "Reparameterise" in messages
    assert table.r_hat.iloc[0] > 1.5 and np.allclose(table.diverging, 0.02)


def test_check_sl_tells_rejected_nan_proposals_from_divergent_moves():
    """A proposal landing where the model's density is not finite is rejected, and flagged
    `diverging` as NumPyro does; check_sl says which it was, and a rare one is not warned of."""

    def walled(bound):
        def model():
            x = numpyro.sample("x", dist.Normal(0.0, 1.0))
            numpyro.factor("wall", jnp.where(jnp.abs(x) < bound, 0.0, jnp.nan))
        return model

    def run(bound):
        model = walled(bound)
        mcmc = MCMC(SL(model, denoiser=Gaussian(jnp.zeros(1), 4.0 * jnp.eye(1)), num_steps=1), num_warmup=10,
                    num_samples=4000, progress_bar=False)
        mcmc.run(jax.random.PRNGKey(0))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = check_sl(mcmc)
        return table, " ".join(str(w.message) for w in caught)

    # N(0, 2²) proposals beyond |x| = 6: 0.27 %, routine; beyond |x| = 3.5: 8 %.
    rare, rare_said = run(6.0)
    common, common_said = run(3.5)
    for table in (rare, common):
        assert table.diverging[0] == pytest.approx(table.nan_proposals[0])  # one proposal per step
    assert 0 < rare.nan_proposals[0] < 0.01 and rare_said == ""
    assert 0.05 < common.nan_proposals[0] < 0.11
    assert "proposals had a NaN/Inf" in common_said and "local move" not in common_said


@pytest.mark.slow
def test_correlated_gaussian_in_100_dimensions_keeps_its_local_moves_and_gets_it_right():
    """A poor importance proposal (d = 100) must leave the local moves on instead of a sticky chain."""
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    from cases import correlated_gaussian

    case = correlated_gaussian()
    mean, cov = (np.asarray(a) for a in case.args)
    mcmc = MCMC(SL(case.model), num_warmup=1000, num_samples=1000, num_chains=2, chain_method="vectorized",
                progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), *case.args)
    x = np.asarray(mcmc.get_samples(group_by_chain=True)["x"])
    ess = effective_sample_size(x)
    sd = np.sqrt(np.diag(cov))
    assert bool(np.all(mcmc.last_state.use_local))
    assert_within_mcse(x.mean((0, 1)), mean, sd / np.sqrt(ess), what="means")


@pytest.mark.slow
def test_learned_family_trains_at_the_refit_and_stays_exact():
    pytest.importorskip("equinox")

    def banana():
        a = numpyro.sample("a", dist.Normal(0.0, 2.0))
        numpyro.sample("b", dist.Normal(0.3 * a**2 - 1.5, 0.5))

    mcmc = MCMC(SL(banana, denoiser="learned"), num_warmup=1000, num_samples=3000, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), extra_fields=("accept_prob",))
    assert float(mcmc.get_extra_fields()["accept_prob"].mean()) > 0.8  # 0.92 measured
    leaves = jax.tree_util.tree_leaves(mcmc.last_state.network)
    assert leaves and all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
    draws = mcmc.get_samples()
    # a ~ N(0, 2²); b = 0.3·a² − 1.5 + 0.5·ε: E b = −0.3, sd b = √(0.09·Var a² + 0.25) = √3.13.
    for name, mean, sd in (("a", 0.0, 2.0), ("b", -0.3, np.sqrt(3.13))):
        x = np.asarray(draws[name])
        assert_within_mcse(x.mean(), mean, sd / np.sqrt(float(effective_sample_size(x[None]))), what=name)


def _shell_model():
    # A thin spherical shell in d = 40: no Gaussian mixture covers it, so global moves are useless.
    x = numpyro.sample("x", dist.Normal(0, 3).expand([40]).to_event(1))
    numpyro.factor("shell", -0.5 * ((jnp.linalg.norm(x) - 5.0) / 0.0005) ** 2)


def test_useless_global_moves_warn_and_stop_for_sampling():
    mcmc = MCMC(SL(_shell_model), num_warmup=200, num_samples=100, progress_bar=False)
    with pytest.warns(RuntimeWarning, match="global moves left the current point in"):
        mcmc.run(jax.random.PRNGKey(0), extra_fields=("accept_prob", "num_potential_evals", "local_accept_prob",
                                                     "proposal_log_weight", "diverging", "use_global"))
    fields = mcmc.get_extra_fields()
    # Sampling pays for no proposals; the local moves carry the chain, and it stays on the shell.
    assert int(np.sum(fields["num_potential_evals"])) == 0
    assert float(np.mean(fields["accept_prob"])) == 0.0
    assert float(np.mean(fields["local_accept_prob"])) > 0.1  # NUTS moves (0.97 on jax 0.10, 0.42 on 0.12)
    x = np.asarray(mcmc.get_samples()["x"])
    with pytest.warns(UserWarning, match="switched off"):
        check_sl(mcmc)
    assert np.all(np.abs(np.linalg.norm(x, axis=1) - 5.0) < 0.01)
    assert len(np.unique(x[:, 0])) > 50  # the chain moves


def _seeds_family(d, p=0.7):
    """The seeds' two-component family as a flat prior and a factor (no prior draw near a mode)."""
    x = numpyro.sample("x", dist.ImproperUniform(dist.constraints.real_vector, (), (d,)))
    a = jnp.ones(d)
    numpyro.factor("mixture", jnp.logaddexp(jnp.log(p) - 0.5 * jnp.sum((x - (1 - p) * a) ** 2),
                                            jnp.log1p(-p) - 0.5 * jnp.sum((x + p * a) ** 2)))


def test_high_dimensional_fit_is_stored_diagonal_and_stays_exact():
    """Where not even one full covariance fits in the buffer (d = 40, 592 draws), the fit is kept
    diagonal in its own coordinates (O(K·d) a proposal); the tempered walkers still find the light
    mode and the composite kernel gets the weights right."""
    d = 40
    mcmc = MCMC(SL(_seeds_family), num_warmup=300, num_samples=1000, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), d)
    assert mcmc.last_state.mixture.eigvecs is None
    weight, se, ess = heavy_mode_weight(mcmc)
    assert ess > 200
    assert_within_mcse(weight, 0.7, se, what="heavy-mode weight")
    x = np.asarray(mcmc.get_samples()["x"])
    # Mean of the coordinates' average: 0 under the mixture, sd sqrt(p(1-p) + 1/d) ≈ 0.48.
    assert_within_mcse(x.mean(), 0.0, np.sqrt(0.21 + 1 / d) / np.sqrt(ess), what="mean")


def test_with_the_compilation_cache_on_the_compiled_step_has_no_host_callback(tmp_path):
    """JAX never stores a program with host callbacks: with the cache on, SL(model)'s step leaves
    its in-loop warnings to check_sl, so the whole sampler can be cached (benchmarks/compilation_cache.py)."""
    kernel = SL(bimodal_model)
    z = kernel._setup_model(jax.random.PRNGKey(0), (), {}, None)
    init_fn, sample = kernel._build_adaptive(100, False)
    state = init_fn(z, jax.random.PRNGKey(0), (), {})

    def lowered():
        return jax.jit(lambda s: sample(s, (), {})).lower(state).as_text()

    assert "callback" in lowered()  # the warnings, by default
    previous = jax.config.jax_compilation_cache_dir
    try:
        jax.config.update("jax_compilation_cache_dir", str(tmp_path))
        assert "callback" not in lowered()
    finally:
        jax.config.update("jax_compilation_cache_dir", previous)


def test_tempering_scales_the_likelihood_only_and_keeps_the_priors_jacobian():
    """At β = 0 the walkers' target is the prior in unconstrained coordinates, Jacobian included
    (NumPyro adds it as an observed factor site, which a tempering of every observed site scaled)."""
    from numpyro.infer.util import potential_energy

    from slppl.tempering import temper

    def model():
        s = numpyro.sample("s", dist.HalfNormal(1.0))
        numpyro.factor("extra", -s)  # a user's factor is likelihood: tempered
        numpyro.sample("y", dist.Normal(0.0, s), obs=1.0)

    z = {"s": jnp.array(0.4)}  # unconstrained: s = e^0.4
    s = np.exp(0.4)
    prior = float(dist.HalfNormal(1.0).log_prob(s)) + 0.4  # + log |ds/dz|
    lik = -s + float(dist.Normal(0.0, s).log_prob(1.0))
    for beta in (0.0, 0.5, 1.0):
        got = -float(potential_energy(temper(model, beta=beta), (), {}, z))
        np.testing.assert_allclose(got, prior + beta * lik, rtol=1e-10)
