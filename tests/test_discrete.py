"""Discrete latents: the product final draw, exact enumeration and mean field, on small Ising models."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_within_mcse
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

from slppl import kernel as core
from slppl.denoisers import Discrete, Gaussian, MeanField
from slppl.integrators import SecondOrder
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


def run_chains(den, U, n, steps=6000, chains=4):
    step = core.build_kernel(den, Karras().times(10), SecondOrder(), final="product")

    def chain(key):
        def body(s, _):
            s = step(s, U)
            return s, (s.accept_prob, s.z)

        return jax.lax.scan(body, core.init(jnp.ones(n), U, key, den), None, length=steps)[1]

    acc, z = jax.jit(jax.vmap(chain))(jax.random.split(jax.random.PRNGKey(0), chains))
    return np.asarray(acc)[:, 100:], np.asarray(z)[:, 100:]


@pytest.mark.parametrize("proposal", ["mean field", "enumeration, wrong couplings"])
def test_exact_kernel_on_spins_gets_every_single_site_and_pair_marginal(proposal):
    J, h, configs, p = ising()
    Jj, hj = jnp.asarray(J), jnp.asarray(h)

    def U(x):
        return -(0.5 * x @ (Jj @ x) + hj @ x)

    if proposal == "mean field":
        den = MeanField(U, values=(-1.0, 1.0), dim=N)
    else:  # the right support, the couplings at a third: an approximate proposal the kernel corrects
        wrong = 0.5 * np.einsum("ki,ij,kj->k", configs, J / 3, configs) + configs @ h
        den = Discrete(jnp.asarray(configs), jnp.asarray(wrong))
    acc, z = run_chains(den, U, N)
    assert np.all(np.abs(z) == 1.0)  # every draw a configuration
    assert 0.05 < acc.mean() < 0.99
    pairs = np.stack([z[..., i] * z[..., j] for i, j in itertools.combinations(range(N), 2)], -1)
    exact_pairs = np.array([p @ (configs[:, i] * configs[:, j]) for i, j in itertools.combinations(range(N), 2)])
    for draws, truth, what in ((z, p @ configs, "magnetisation"), (pairs, exact_pairs, "pair correlation")):
        ess = effective_sample_size(draws)
        se = draws.reshape(-1, draws.shape[-1]).std(0) / np.sqrt(ess)
        assert_within_mcse(draws.reshape(-1, draws.shape[-1]).mean(0), truth, se, what=what)
        assert np.max(split_gelman_rubin(draws)) < 1.01


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
