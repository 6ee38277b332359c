"""Discrete latents: the product final draw, exact enumeration and mean field, on small Ising models."""

import itertools

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from conftest import assert_within_mcse
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from numpyro.infer import MCMC, Predictive

from slppl import SL, log_evidence
from slppl import kernel as core
from slppl.trajectory import sample
from slppl.denoisers import TAP, Discrete, Gaussian, InnerGibbs, MeanField
from slppl.discrete_model import default_denoiser
from slppl.integrators import SecondOrder, TwoPoint
from slppl.time_grids import Karras

N = 6


def ising(seed=0, n=N, coupling=0.4):
    rng = np.random.default_rng(seed)
    J = np.triu(coupling * rng.normal(size=(n, n)), 1)
    J = J + J.T
    h = 0.3 * rng.normal(size=n)
    configs = np.array(list(itertools.product([-1.0, 1.0], repeat=n)))
    logp = 0.5 * np.einsum("ki,ij,kj->k", configs, J, configs) + configs @ h
    p = np.exp(logp - logp.max())
    p /= p.sum()
    return J, h, configs, p


def run_chains(den, U, n, steps=6000, chains=4, integrator=None):
    step = core.build_kernel(den, Karras().times(10), integrator or SecondOrder(), final="product")

    def chain(key):
        def body(s, _):
            s = step(s, U)
            return s, (s.accept_prob, s.z)

        return jax.lax.scan(body, core.init(jnp.ones(n), U, key, den), None, length=steps)[1]

    acc, z = jax.jit(jax.vmap(chain))(jax.random.split(jax.random.PRNGKey(0), chains))
    return np.asarray(acc)[:, 100:], np.asarray(z)[:, 100:]


# make test's budget: the core's mean-field and inner-Gibbs cases are slow (both run through NumPyro below).
@pytest.mark.parametrize("proposal", [pytest.param("mean field", marks=pytest.mark.slow), "enumeration, wrong couplings",
                                      "TAP, two-point move", pytest.param("inner Gibbs, two-point move",
                                                                          marks=pytest.mark.slow)])
def test_exact_kernel_on_spins_gets_every_single_site_and_pair_marginal(proposal):
    J, h, configs, p = ising()
    Jj, hj = jnp.asarray(J), jnp.asarray(h)

    def U(x):
        return -(0.5 * x @ (Jj @ x) + hj @ x)

    integrator = None
    if proposal == "mean field":
        den = MeanField(U, values=(-1.0, 1.0), dim=N)
    elif proposal.startswith("TAP"):
        den = TAP(U, values=(-1.0, 1.0), dim=N, num_iters=20)
        integrator = TwoPoint(np.tile([-1.0, 1.0], (N, 1)))
    elif proposal.startswith("inner Gibbs"):  # a randomised denoiser: its draws are part of the proposal
        den = InnerGibbs(U, values=(-1.0, 1.0), dim=N)
        integrator = TwoPoint(np.tile([-1.0, 1.0], (N, 1)))
    else:  # the right support, the couplings at a third: an approximate proposal the kernel corrects
        wrong = 0.5 * np.einsum("ki,ij,kj->k", configs, J / 3, configs) + configs @ h
        den = Discrete(jnp.asarray(configs), jnp.asarray(wrong))
    acc, z = run_chains(den, U, N, steps=3000 if integrator else 6000, integrator=integrator)
    assert np.all(np.abs(z) == 1.0)  # every draw a configuration
    assert 0.05 < acc.mean() < 0.99
    pairs = np.stack([z[..., i] * z[..., j] for i, j in itertools.combinations(range(N), 2)], -1)
    exact_pairs = np.array([p @ (configs[:, i] * configs[:, j]) for i, j in itertools.combinations(range(N), 2)])
    for draws, truth, what in ((z, p @ configs, "magnetisation"), (pairs, exact_pairs, "pair correlation")):
        ess = effective_sample_size(draws)
        se = draws.reshape(-1, draws.shape[-1]).std(0) / np.sqrt(ess)
        assert_within_mcse(draws.reshape(-1, draws.shape[-1]).mean(0), truth, se, what=what)
        assert np.max(split_gelman_rubin(draws)) < 1.01


def test_two_point_move_is_exact_where_the_tilted_law_is_a_product():
    # Independent spins: mean field is the exact denoiser, so only the move can make the weights vary.
    h = jnp.linspace(-1.0, 1.0, 8)

    def U(x):
        return -h @ x

    den = MeanField(U, values=(-1.0, 1.0), dim=8)
    spreads = {}
    for name, integrator in (("two-point", TwoPoint(np.tile([-1.0, 1.0], (8, 1)))), ("second order", SecondOrder())):
        paths = sample(jax.random.PRNGKey(0), den, 8, Karras().times(10), integrator, final="product")
        spreads[name] = float(jnp.std(paths.log_aux - jax.vmap(U)(paths.x)))
    assert spreads["two-point"] < 1e-8 < 0.1 < spreads["second order"]


def test_default_denoiser_is_mean_field_only_where_the_potential_is_linear_in_each_coordinate():
    J, h, _, _ = ising()
    values = np.tile([0.0, 1.0], (N, 1))

    def ising_on_bits(b):
        s = 2.0 * b - 1.0
        return -(0.5 * s @ jnp.asarray(J) @ s + jnp.asarray(h) @ s)

    def collapsed_like(g):  # a log-determinant in the indicators, as in collapsed spike-and-slab
        return 0.5 * jnp.linalg.slogdet(jnp.eye(N) + g[:, None] * jnp.asarray(J @ J.T + np.eye(N)))[1]

    key = jax.random.PRNGKey(0)
    assert default_denoiser(key, ising_on_bits, values) == "mean_field"
    assert default_denoiser(key, collapsed_like, values) == "gibbs"
    assert default_denoiser(key, lambda b: jnp.sum((b @ jnp.asarray(J)) ** 2), values) == "gibbs"  # b_i² terms


def test_bad_discrete_input_is_rejected_before_sampling():
    with pytest.raises(ValueError, match="every combination"):
        core.build_kernel(Discrete(jnp.array([[0.0, 0.0], [1.0, 1.0]]), jnp.zeros(2)), Karras().times(4),
                          SecondOrder(), final="product")
    with pytest.raises(ValueError, match="does not give"):
        core.build_kernel(Gaussian(jnp.zeros(2), jnp.eye(2)), Karras().times(4), SecondOrder(), final="product")
    with pytest.raises(ValueError, match="final='product'"):
        core.build_kernel(Discrete(jnp.array([[0.0], [1.0]]), jnp.zeros(2)), Karras().times(4), SecondOrder())
    with pytest.raises(ValueError, match="pairs a < b"):
        MeanField(lambda x: 0.0, values=jnp.array([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="dim=d"):
        MeanField(lambda x: 0.0, values=(0.0, 1.0))


def ising_model(J, h):
    def model():
        b = numpyro.sample("b", dist.Bernoulli(0.5).expand([N]).to_event(1))
        s = numpyro.deterministic("s", 2.0 * b - 1.0)
        numpyro.factor("ising", 0.5 * s @ jnp.asarray(J) @ s + jnp.asarray(h) @ s)

    return model


def test_numpyro_model_with_bernoulli_sites_runs_through_mcmc_predictive_and_arviz():
    J, h, configs, p = ising(seed=1)
    model = ising_model(J, h)
    mcmc = MCMC(SL(model), num_warmup=50, num_samples=1200, num_chains=2, chain_method="vectorized",
                progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0))
    samples = mcmc.get_samples(group_by_chain=True)
    assert samples["b"].dtype == jnp.int32 and set(np.unique(samples["b"])) <= {0, 1}
    s = np.asarray(samples["s"])
    ess = effective_sample_size(s)
    assert_within_mcse(s.reshape(-1, N).mean(0), p @ configs, s.reshape(-1, N).std(0) / np.sqrt(ess),
                       what="magnetisation")
    assert np.max(split_gelman_rubin(s)) < 1.01
    # The evidence of a model whose prior is uniform on {0,1}^N: the Ising partition function / 2^N.
    logp = 0.5 * np.einsum("ki,ij,kj->k", configs, J, configs) + configs @ h
    ev = log_evidence(mcmc)
    assert_within_mcse(ev.estimate, np.log(np.exp(logp).sum()) - N * np.log(2.0), ev.se, z=3.0, what="log Z")
    draws = Predictive(model, mcmc.get_samples())(jax.random.PRNGKey(1))
    assert draws["s"].shape == (2400, N)
    idata = az.from_numpyro(mcmc)
    assert "b" in idata.posterior if hasattr(idata, "posterior") else "b" in idata["posterior"]


def test_numpyro_models_sl_cannot_sample_are_refused_with_the_way_out():
    def mixed():
        numpyro.sample("b", dist.Bernoulli(0.5))
        numpyro.sample("x", dist.Normal(0.0, 1.0))

    def counts():
        numpyro.sample("n", dist.Poisson(3.0))

    def three_categories():
        numpyro.sample("c", dist.Categorical(probs=jnp.ones(3) / 3))

    with pytest.raises(ValueError, match=r"Gibbs\(\[\(SL\(model\), discrete_latent_sites\)"):
        MCMC(SL(mixed), num_warmup=10, num_samples=10, progress_bar=False).run(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="'n' .* no finite support"):
        MCMC(SL(counts), num_warmup=10, num_samples=10, progress_bar=False).run(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="denoiser='mean_field' needs two-valued sites"):
        MCMC(SL(three_categories, denoiser="mean_field"), num_warmup=10, num_samples=10,
             progress_bar=False).run(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="final='product'"):
        MCMC(SL(ising_model(*ising()[:2]), denoiser=Gaussian(jnp.zeros(N), jnp.eye(N))), num_warmup=10,
             num_samples=10, progress_bar=False).run(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="denoiser='laplace' fits continuous latents"):
        MCMC(SL(ising_model(*ising()[:2]), denoiser="laplace"), num_warmup=100, num_samples=10,
             progress_bar=False).run(jax.random.PRNGKey(0))


def test_mixed_model_runs_as_a_gibbs_block_beside_nuts():
    # SL on the indicators given θ, NUTS on θ given the indicators; the truth by enumeration and quadrature.
    from numpyro.infer import NUTS, Gibbs
    from numpyro.infer.gibbs import discrete_latent_sites

    w, y, d = jnp.array([1.0, -0.5, 0.8]), 1.3, 3

    def model():
        theta = numpyro.sample("theta", dist.Normal(0.0, 1.0))
        s = numpyro.sample("s", dist.Bernoulli(logits=theta * jnp.ones(d)).to_event(1))
        numpyro.sample("y", dist.Normal(theta + s @ w, 0.5), obs=y)

    configs = np.array(list(itertools.product([0.0, 1.0], repeat=d)))
    theta = np.linspace(-8.0, 8.0, 4001)
    log_p = (-0.5 * theta**2 + configs.sum(1)[:, None] * theta - d * np.logaddexp(0.0, theta)
             - 0.5 * ((y - theta - (configs @ np.asarray(w))[:, None]) / 0.5) ** 2)
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    with pytest.raises(NotImplementedError, match="cannot follow a target"):  # continuous, denoiser built in warmup
        SL(model).refresh(None, (), {})
    mcmc = MCMC(Gibbs([(SL(model), discrete_latent_sites), (NUTS(model), None)]), num_warmup=100,
                num_samples=700, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(1), extra_fields=("block_states.0.accept_prob",))
    draws = mcmc.get_samples()
    assert 0.2 < float(np.mean(mcmc.get_extra_fields()["block_states.0.accept_prob"])) < 1.0
    for name, est, truth in (("s", np.asarray(draws["s"], float), p.sum(1) @ configs),
                             ("theta", np.asarray(draws["theta"])[:, None], [p.sum(0) @ theta])):
        ess = effective_sample_size(est[None])
        assert_within_mcse(est.mean(0), truth, est.std(0) / np.sqrt(ess), what=name)


def test_categorical_sites_with_three_values_get_every_marginal():
    # A Potts chain: 5 labels in {0, 1, 2} with their own priors, neighbours rewarded for agreeing.
    probs = np.array([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3], [0.1, 0.6, 0.3], [0.4, 0.4, 0.2]])
    d, k = probs.shape

    def potts():
        c = numpyro.sample("c", dist.Categorical(jnp.asarray(probs)).to_event(1))
        numpyro.factor("agree", 0.8 * jnp.sum(c[1:] == c[:-1]))

    configs = np.array(list(itertools.product(range(k), repeat=d)))
    log_w = np.log(probs[np.arange(d), configs]).sum(1) + 0.8 * (configs[:, 1:] == configs[:, :-1]).sum(1)
    w = np.exp(log_w - log_w.max())
    truth = ((w / w.sum())[:, None, None] * (configs[..., None] == np.arange(k))).sum(0).reshape(-1)
    mcmc = MCMC(SL(potts), num_warmup=100, num_samples=1500, num_chains=2, chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0))
    c = np.asarray(mcmc.get_samples(group_by_chain=True)["c"])
    assert c.dtype == np.int32 and set(np.unique(c)) == {0, 1, 2}
    onehot = (c[..., None] == np.arange(k)).astype(float).reshape(2, -1, d * k)
    ess = effective_sample_size(onehot)
    flat = onehot.reshape(-1, d * k)
    assert_within_mcse(flat.mean(0), truth, flat.std(0) / np.sqrt(ess), what="P(c_i = k)")
    assert np.max(split_gelman_rubin(onehot)) < 1.02  # 2 short chains (ESS ~ 700): 1.01 needs longer runs
