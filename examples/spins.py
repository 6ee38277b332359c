"""What the spin-glass examples share: GOE couplings, SL with a TAP denoiser, and Glauber chains.

A pairwise model on spins ``x ∈ {−1, 1}^n``, ``μ(x) ∝ exp(½·xᵀJx)`` with ``J`` symmetric and a
zero diagonal. SL runs through NumPyro's ``MCMC`` on its potential, with the TAP denoiser (mean
field plus the Onsager term, solved by AMP), the two-point move and the exact correction; the
reference is heat-bath Glauber dynamics on the same couplings, many long chains.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import MCMC

from slppl import SL
from slppl.denoisers import TAP
from slppl.integrators import TwoPoint
from slppl.time_grids import Karras


def arguments(description, n, num_warmup, num_samples, glauber_sweeps, glauber_chains):
    """The examples' command line: the size, SL's run and the Glauber reference, with these defaults."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--n", type=int, default=n)
    parser.add_argument("--num-warmup", type=int, default=num_warmup)
    parser.add_argument("--num-samples", type=int, default=num_samples)
    parser.add_argument("--num-chains", type=int, default=4)
    parser.add_argument("--num-steps", type=int, default=50)
    parser.add_argument("--glauber-sweeps", type=int, default=glauber_sweeps)
    parser.add_argument("--glauber-chains", type=int, default=glauber_chains)
    parser.add_argument("--progress-bar", action="store_true")
    return parser


def goe(rng, n):
    """A GOE matrix with zero diagonal: ``A_ij = A_ji ~ N(0, 1/n)``."""
    g = rng.normal(size=(n, n)) / np.sqrt(n)
    a = (g + g.T) / np.sqrt(2.0)
    np.fill_diagonal(a, 0.0)
    return a


def sl_spins(couplings, num_warmup, num_samples, num_chains=4, seed=0, num_steps=50, num_iters=30,
             progress_bar=True):
    """``(draws (chains, samples, n), acceptance, seconds)`` of SL with the TAP denoiser."""
    n = couplings.shape[0]
    J = jnp.asarray(couplings)

    def potential(x):
        return -0.5 * x @ J @ x

    values = np.tile([-1.0, 1.0], (n, 1))
    kernel = SL(potential_fn=potential, denoiser=TAP(potential, values, couplings=couplings, num_iters=num_iters),
                integrator=TwoPoint(values), grid=Karras(), num_steps=num_steps, final="product")
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method="vectorized", progress_bar=progress_bar)
    start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), init_params=jnp.ones((num_chains, n)),
             extra_fields=("accept_prob", "proposal_log_weight"))
    draws = np.asarray(jax.block_until_ready(mcmc.get_samples(group_by_chain=True)))
    wall = time.perf_counter() - start
    return draws, float(np.mean(mcmc.get_extra_fields()["accept_prob"])), wall


def glauber(couplings, num_sweeps, num_chains, seed=0, thin=1, start=None):
    """``(draws (chains, num_sweeps // thin, n), seconds)``: heat-bath sweeps in site order, the
    first tenth of the kept draws dropped as burn-in.

    Each site is redrawn from its conditional, ``P(x_i = 1 | rest) = σ(2·(Jx)_i)``; the chains start
    from uniform spins, or from ``start`` (``(chains, n)``).
    """
    n = couplings.shape[0]
    J = jnp.asarray(couplings)

    def sweep(x, key):
        u = jax.random.uniform(key, (n,), x.dtype)

        def site(i, x):
            return x.at[i].set(jnp.where(u[i] < jax.nn.sigmoid(2.0 * J[i] @ x), 1.0, -1.0))

        return jax.lax.fori_loop(0, n, site, x)

    def chain(x, key):
        def block(x, keys):
            x = jax.lax.fori_loop(0, thin, lambda j, x: sweep(x, keys[j]), x)
            return x, x

        keys = jax.random.split(key, (num_sweeps // thin, thin))
        return jax.lax.scan(block, x, keys)[1]

    key_start, key_run = jax.random.split(jax.random.PRNGKey(seed))
    if start is None:
        start = jnp.where(jax.random.uniform(key_start, (num_chains, n)) < 0.5, 1.0, -1.0)
    t0 = time.perf_counter()
    draws = jax.block_until_ready(jax.jit(jax.vmap(chain))(jnp.asarray(start, J.dtype),
                                                           jax.random.split(key_run, num_chains)))
    draws = np.asarray(draws)
    return draws[:, draws.shape[1] // 10:], time.perf_counter() - t0


def mean_and_mcse(series):
    """Mean over chains and draws of ``series`` ``(chains, draws)``, and its MCSE (ESS from NumPyro)."""
    from numpyro.diagnostics import effective_sample_size

    series = np.asarray(series, float)
    ess = float(effective_sample_size(series[..., None])[0])
    return series.mean(), series.std() / np.sqrt(ess), ess
