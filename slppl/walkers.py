"""The adaptive kernel's walkers: NumPyro's NUTS on a batch of slots, and their tempering.

During exploration a population of local chains (walkers) runs NumPyro's own NUTS, with its
step-size and mass-matrix adaptation, on the tempered posterior ``prior·likelihood^β``; after the
fit, slot 0 is the chain's own NUTS state for its local moves (:mod:`slppl.adaptation`).
"""

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from numpyro.infer.hmc import hmc

__all__ = ["make_local_kernel", "initial_log_beta", "at_temperature", "get_walker", "set_walker", "LocalStats",
           "MIN_BETA"]

# Tempered exploration: β₀ is kept in [MIN_BETA, 1].
MIN_BETA = 1e-3


def make_local_kernel():
    """The NumPyro NUTS kernel that moves the walkers and, after the fit, the chain.

    One instance, called at one place in the step, so its program is compiled once: the walkers
    adapt during exploration (``num_warmup = num_explore`` at init), and the chain continues from
    the best walker's state, whose counter is past that window, so its local moves never adapt.
    """
    return _Local(*hmc(potential_fn_gen=lambda *a, **k: a[0], algo="NUTS"))


class _Local(NamedTuple):
    init: Any
    sample: Any


def initial_log_beta(walker_z, tempered, dtype):
    """``log β₀ = −log(sd·√d)``, sd the spread of the log likelihood across the walkers' (prior) starts.

    The spread over starts grows like √d while the barrier between modes that differ in every
    coordinate grows like d, so ``1/sd`` alone left the walkers stuck in their first basin in high
    dimension: in the seeds' family at d = 512 (β₀ ≈ 0.07) 0–2 of 16 walkers per chain reached the
    light mode (none in 6 of 16 chains); with the extra 1/√d (β₀ ≈ 0.003), 3–12 of 16 in every one.
    """
    prior = jax.vmap(tempered(jnp.zeros((), dtype)))(walker_z)
    lik = jax.vmap(tempered(jnp.ones((), dtype)))(walker_z) - prior
    finite = jnp.isfinite(lik)
    n = jnp.maximum(jnp.sum(finite), 1)
    mean = jnp.sum(jnp.where(finite, lik, 0.0)) / n
    sd = jnp.sqrt(jnp.sum(jnp.where(finite, (lik - mean) ** 2, 0.0)) / n)
    d = ravel_pytree(jax.tree_util.tree_map(lambda a: a[0], walker_z))[0].shape[0]
    beta = jnp.clip(1.0 / (jnp.where(sd > 0, sd, 1.0) * math.sqrt(d)), MIN_BETA, 1.0)
    return jnp.where(jnp.sum(finite) > 1, jnp.log(beta), 0.0).astype(dtype)


def at_temperature(walker, potential_fn):
    """A walker's NUTS state with potential and gradient evaluated under ``potential_fn``."""
    pe, grad = jax.value_and_grad(potential_fn)(walker.z)
    return walker._replace(potential_energy=pe.astype(walker.potential_energy.dtype), z_grad=grad)


def get_walker(walkers, k):
    """Walker ``k`` of the batched NUTS state."""
    return jax.tree_util.tree_map(lambda a: a[k], walkers)


def set_walker(walkers, k, walker):
    """The batched NUTS state with walker ``k`` replaced by ``walker``."""
    return jax.tree_util.tree_map(lambda a, b: a.at[k].set(b), walkers, walker)


class LocalStats(NamedTuple):
    """What a step's NUTS moves cost and did: gradient evaluations, summed acceptance
    probabilities, whether any diverged."""

    grads: Any
    accept: Any
    diverging: Any
