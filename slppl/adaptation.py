"""The adaptive SL kernel: it builds its own denoiser during warmup, then stays one fixed kernel.

flowMC-style, in three phases driven by the step counter ``i`` (NumPyro never signals warmup):

1. **explore** (``i < num_explore``): a population of local chains (walkers), started from
   dispersed points, runs NumPyro's own NUTS with its step-size and mass-matrix adaptation; the
   second half of their draws fills a buffer;
2. **fit** (``i == num_explore``): a Gaussian mixture (or a Gaussian) is fitted to the buffer
   (:mod:`slppl.denoisers.fit`), its component weights re-estimated by importance sampling
   against the target (walkers stuck in a mode say nothing about its mass), and SL's "mass
   matrix" is set: proposals run in coordinates whitened by the buffer's covariance, so the
   unit-scale default grid suits latents of any scale. The chain's local kernel takes the
   adapted step size and mass matrix of a walker;
3. **composite** (every later step, warmup and sampling alike): one global SL proposal, exact by
   independent Metropolis–Hastings on path space, then ``num_local`` local NUTS moves. After a
   local move the path is redrawn from its exact conditional given x
   (:func:`slppl.trajectory.conditional_path`), so the current state always has a finite weight.
   Both moves leave ``μ(x)·p(path | x)`` invariant, hence the composite is exact.

After ``num_warmup`` nothing adapts: the fit, the whitening and the local step size are frozen.

Phases are chosen by ``lax.switch`` on the (unbatched) step counter, so only one phase's work runs
per step, also with ``chain_method="vectorized"`` (the switch sits outside the ``vmap``).
"""

import math
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from numpyro.infer.hmc import hmc

from .denoisers.fit import DEFAULT_COMPONENTS, fit_gaussian, fit_mixture, reweight
from .denoisers.mixture import MixtureDenoiser, MixtureParams
from .kernel import imh_proposal
from .trajectory import conditional_path, path_log_aux

__all__ = ["AdaptiveState", "FAMILIES", "Schedule", "schedule", "init", "build_kernel", "make_local_kernels", "MIN_WARMUP"]

FAMILIES = {"mixture": DEFAULT_COMPONENTS, "gaussian": (1,)}
MIN_WARMUP = 100
MIN_EXPLORE = 50
# With num_local=None, local moves stop after warmup when the global SL proposals alone were
# accepted at least this often during warmup: they then cost more than they add.
LOCAL_THRESHOLD = 0.5
EXPLORE, FIT, COMPOSITE = 0, 1, 2


class AdaptiveState(NamedTuple):
    """State of the adaptive SL kernel (NumPyro's names where they mean the same).

    Fields:
        i: number of steps taken.
        z: current point (the model's unconstrained sample dict, or the potential's pytree).
        potential_energy: ``U(z)``.
        log_weight: log weight of the current (path, z) on the extended space (finite from the fit on).
        accept_prob: acceptance probability of the last global SL proposal.
        mean_accept_prob: running mean of ``accept_prob``, restarted when warmup ends.
        diverging: the last global proposal or local move produced a NaN/Inf.
        rng_key: PRNG key for the next step.
        proposal_log_weight: log weight of the last global proposal (accepted or not); its
            Pareto k̂ (:func:`slppl.diagnostics.pareto_khat`) measures how well the fitted
            denoiser covers the posterior.
        local_accept_prob: mean acceptance probability of the last step's local moves.
        num_grad_evals: model gradient evaluations spent in the last step (walkers included).
        num_potential_evals: model potential evaluations (without gradient) in the last step.
        mixture: the fitted mixture (:class:`~slppl.denoisers.mixture.MixtureParams`), in
            whitened coordinates, frozen after warmup.
        shift, chol: the whitening map ``x = shift + chol·u`` (SL's mass matrix).
        use_local: whether local moves run (decided at the end of warmup when ``num_local=None``).
        local: NumPyro ``HMCState`` of the chain's local NUTS kernel.
        walkers: NumPyro ``HMCState`` of the exploring walkers (batched; idle after the fit).
        buffer: ``(n, d)`` walker draws the denoiser is fitted to.
    """

    i: Any
    z: Any
    potential_energy: Any
    log_weight: Any
    accept_prob: Any
    mean_accept_prob: Any
    diverging: Any
    rng_key: Any
    proposal_log_weight: Any
    local_accept_prob: Any
    num_grad_evals: Any
    num_potential_evals: Any
    mixture: Any
    shift: Any
    chol: Any
    use_local: Any
    local: Any
    walkers: Any
    buffer: Any


class Schedule(NamedTuple):
    """Static phase lengths: explore for ``num_explore`` steps, buffer from ``collect_start`` every
    ``thin`` steps into ``num_slots`` slots per walker."""

    num_warmup: int
    num_explore: int
    collect_start: int
    thin: int
    num_slots: int


def schedule(num_warmup, num_walkers, max_buffer=4000):
    """The phase lengths for ``num_warmup`` warmup steps: a quarter (at least 50) explores.

    Example:
        >>> schedule(1000, 16)
        Schedule(num_warmup=1000, num_explore=250, collect_start=125, thin=1, num_slots=125)
    """
    if num_warmup < MIN_WARMUP:
        raise ValueError(
            f"SL without a denoiser builds one during warmup and needs num_warmup >= {MIN_WARMUP} "
            f"(got {num_warmup}): local chains explore first, then the fitted denoiser and the local "
            "moves are tuned. Pass MCMC(..., num_warmup=1000) or give SL a denoiser."
        )
    num_explore = max(MIN_EXPLORE, num_warmup // 4)
    collect_start = num_explore // 2
    thin = max(1, math.ceil((num_explore - collect_start) * num_walkers / max_buffer))
    num_slots = math.ceil((num_explore - collect_start) / thin)
    return Schedule(num_warmup, num_explore, collect_start, thin, num_slots)


def _nuts():
    # One NumPyro NUTS per role: `hmc` keeps the settings of its last `init_kernel` call in closures.
    return hmc(potential_fn_gen=lambda *a, **k: a[0], algo="NUTS")


class _Local(NamedTuple):
    init: Any
    sample: Any


def init(rng_key, z, walker_z, potential_fn, sched, family_components, local_kernels, target_accept_prob=0.8):
    """Initial :class:`AdaptiveState` for one chain.

    ``walker_z`` holds the walkers' starting points (leading axis = walkers); ``local_kernels`` is
    ``(walkers, local)``, two :class:`_Local` pairs made by :func:`make_local_kernels`.
    """
    walkers_nuts, local_nuts = local_kernels
    flat, _ = ravel_pytree(z)
    dtype = flat.dtype
    d = flat.shape[0]
    num_walkers = jax.tree_util.tree_leaves(walker_z)[0].shape[0]
    k_walkers, k_local, key = jax.random.split(rng_key, 3)

    def init_walker(z0, key):
        return walkers_nuts.init(
            z0, sched.num_explore, model_args=(potential_fn,), rng_key=key, target_accept_prob=target_accept_prob
        )

    walkers = jax.vmap(init_walker)(walker_z, jax.random.split(k_walkers, num_walkers))
    local = local_nuts.init(
        z, 0, adapt_step_size=False, adapt_mass_matrix=False, model_args=(potential_fn,), rng_key=k_local
    )
    k_max = max(family_components)
    mixture = MixtureParams(
        jnp.full((k_max,), -jnp.log(k_max), dtype),
        jnp.zeros((k_max, d), dtype),
        jnp.ones((k_max, d), dtype),
        jnp.broadcast_to(jnp.eye(d, dtype=dtype), (k_max, d, d)),
    )
    zero = jnp.zeros((), dtype)
    izero = jnp.zeros((), jnp.int32)
    pe = jnp.asarray(potential_fn(z), dtype)
    return AdaptiveState(
        i=izero,
        z=z,
        potential_energy=pe,
        log_weight=jnp.asarray(-jnp.inf, dtype),
        accept_prob=zero,
        mean_accept_prob=zero,
        diverging=jnp.zeros((), bool),
        rng_key=key,
        proposal_log_weight=jnp.asarray(-jnp.inf, dtype),
        local_accept_prob=zero,
        num_grad_evals=izero,
        num_potential_evals=izero,
        mixture=mixture,
        shift=jnp.zeros(d, dtype),
        chol=jnp.eye(d, dtype=dtype),
        use_local=jnp.ones((), bool),
        local=local,
        walkers=walkers,
        buffer=jnp.zeros((sched.num_slots * num_walkers, d), dtype),
    )


def make_local_kernels():
    """Two NumPyro NUTS kernels: one for the walkers, one for the chain's local moves."""
    return tuple(_Local(*_nuts()) for _ in range(2))


def build_kernel(sched, family_components, times, integrator, local_kernels, num_local=None, batched=False, num_reweight=128):
    """Return ``kernel(state, potential_fn) -> state``: one step of the adaptive SL kernel.

    ``num_local``: local NUTS moves after each global proposal; ``None`` (default) makes one
    during warmup and keeps it after warmup only if the warmup's global acceptance was below
    ``LOCAL_THRESHOLD``.

    ``batched=True`` when the state has a leading chain axis (``chain_method="vectorized"``): the
    phase is then read from the first chain's counter, outside the ``vmap``.
    """
    walkers_nuts, local_nuts = local_kernels
    moves = 1 if num_local is None else num_local

    def explore(state, potential_fn):
        def one(w):
            return walkers_nuts.sample(w, (potential_fn,), {})

        walkers = jax.vmap(one)(state.walkers)
        flat = jax.vmap(lambda z: ravel_pytree(z)[0])(walkers.z)
        num_walkers, d = flat.shape
        slot = (state.i - sched.collect_start) // sched.thin
        store = (state.i >= sched.collect_start) & ((state.i - sched.collect_start) % sched.thin == 0)
        start = jnp.clip(slot, 0, sched.num_slots - 1) * num_walkers
        updated = jax.lax.dynamic_update_slice(state.buffer, flat.astype(state.buffer.dtype), (start, jnp.zeros_like(start)))
        buffer = jnp.where(store, updated, state.buffer)
        first = jax.tree_util.tree_map(lambda a: a[0], walkers)
        return state._replace(
            i=state.i + 1,
            z=first.z,
            potential_energy=first.potential_energy.astype(state.potential_energy.dtype),
            diverging=jnp.any(walkers.diverging),
            walkers=walkers,
            buffer=buffer,
            local_accept_prob=jnp.mean(walkers.accept_prob).astype(state.local_accept_prob.dtype),
            num_grad_evals=jnp.sum(walkers.num_steps).astype(jnp.int32),
            num_potential_evals=jnp.zeros((), jnp.int32),
        )

    def fit(state, potential_fn):
        key, k_fit, k_weights = jax.random.split(state.rng_key, 3)
        flat, unravel = ravel_pytree(state.z)
        dtype = flat.dtype
        # Walkers that diverged or never moved leave non-finite rows; they must not enter the fit.
        good = jnp.all(jnp.isfinite(state.buffer), axis=1)
        fill = jnp.where(good[:, None], state.buffer, state.buffer[jnp.argmax(good)])
        shift, cov = fit_gaussian(fill)
        chol = jnp.linalg.cholesky(cov)
        u = jax.scipy.linalg.solve_triangular(chol, (fill - shift).T, lower=True).T
        mixture = fit_mixture(k_fit, u, family_components)

        def log_density_u(u_):
            return -potential_fn(unravel((shift + chol @ u_).astype(dtype)))

        mixture = reweight(k_weights, mixture, log_density_u, num_reweight)
        # The chain starts from the walker with the highest density, with that walker's adapted
        # step size and mass matrix for its local moves.
        best = jnp.argmin(jnp.where(jnp.isfinite(state.walkers.potential_energy), state.walkers.potential_energy, jnp.inf))
        walker = jax.tree_util.tree_map(lambda a: a[best], state.walkers)
        local = state.local._replace(
            z=walker.z, z_grad=walker.z_grad, potential_energy=walker.potential_energy,
            adapt_state=walker.adapt_state,
        )
        pe = walker.potential_energy.astype(dtype)
        # The start has no path yet (weight −inf): the first finite proposal, in warmup, replaces it.
        return state._replace(
            mixture=MixtureDenoiser.from_fit(mixture).params, shift=shift, chol=chol, local=local, z=walker.z,
            potential_energy=pe,
            i=state.i + 1, rng_key=key, log_weight=jnp.asarray(-jnp.inf, dtype),
            num_grad_evals=jnp.zeros((), jnp.int32),
            num_potential_evals=jnp.asarray(num_reweight * max(family_components), jnp.int32),
        )

    def composite(state, potential_fn):
        key, k_global, k_path = jax.random.split(state.rng_key, 3)
        flat, unravel = ravel_pytree(state.z)
        dtype = flat.dtype
        denoiser = MixtureDenoiser.from_params(state.mixture)

        def to_x(u):
            return unravel((state.shift + state.chol @ u).astype(dtype))

        def potential_u(u):
            return potential_fn(to_x(u))

        move = imh_proposal(
            k_global, state.log_weight, denoiser, (), potential_u, jnp.asarray(times, dtype), integrator, dim=flat.shape[0]
        )
        z = jax.tree_util.tree_map(lambda a, b: jnp.where(move.accept, a, b), to_x(move.x), state.z)
        pe = jnp.where(move.accept, move.potential_energy, state.potential_energy)
        log_weight = jnp.where(move.accept, move.log_weight, state.log_weight)
        state = state._replace(z=z, potential_energy=pe, log_weight=log_weight)
        if moves > 0:
            state, grads, local_accept, local_diverging = jax.lax.cond(
                state.use_local, partial(local_moves, potential_fn=potential_fn), skip_local, state, move.accept, k_path
            )
        else:
            state, grads, local_accept, local_diverging = skip_local(state, move.accept, k_path)
        itr = state.i + 1
        n = jnp.where(state.i < sched.num_warmup, itr - sched.num_explore - 1, itr - sched.num_warmup)
        mean_accept = jnp.where(n <= 1, 0.0, state.mean_accept_prob)
        mean_accept = mean_accept + (move.accept_prob - mean_accept) / jnp.maximum(n, 1)
        use_local = state.use_local
        if num_local is None:
            # Frozen from here on: the warmup's own acceptance decides whether local moves pay.
            use_local = jnp.where(itr == sched.num_warmup, mean_accept < LOCAL_THRESHOLD, use_local)
        return state._replace(
            i=itr, rng_key=key, accept_prob=move.accept_prob, mean_accept_prob=mean_accept.astype(dtype),
            diverging=move.diverging | local_diverging, proposal_log_weight=move.proposal_log_weight,
            local_accept_prob=local_accept, num_grad_evals=grads, use_local=use_local,
            num_potential_evals=jnp.ones((), jnp.int32),
        )

    def local_moves(state, accepted, rng_key, potential_fn):
        """``moves`` local NUTS moves, then a fresh path given the new point (its weight)."""
        dtype = state.potential_energy.dtype
        # The local kernel needs U and ∇U at the point, new if the global move was accepted.
        pe, grad = jax.value_and_grad(potential_fn)(state.z)
        local = state.local._replace(z=state.z, z_grad=grad, potential_energy=pe)
        grads = jnp.where(accepted, 1, 0).astype(jnp.int32)
        accept, diverging = jnp.zeros((), dtype), jnp.zeros((), bool)
        for _ in range(moves):
            local = local_nuts.sample(local, (potential_fn,), {})
            grads = grads + local.num_steps.astype(jnp.int32)
            accept = accept + local.accept_prob.astype(dtype) / moves
            diverging = diverging | local.diverging
        state = state._replace(local=local, z=local.z, potential_energy=local.potential_energy.astype(dtype))
        log_weight, _ = _refreshed_weight(rng_key, state, integrator, times)
        return state._replace(log_weight=log_weight), grads, accept, diverging

    def skip_local(state, accepted, rng_key):
        dtype = state.potential_energy.dtype
        return state, jnp.zeros((), jnp.int32), jnp.zeros((), dtype), jnp.zeros((), bool)

    branches = (explore, fit, composite)

    def phase(i):
        return jnp.where(i < sched.num_explore, EXPLORE, jnp.where(i == sched.num_explore, FIT, COMPOSITE))

    def kernel(state, potential_fn):
        if batched:
            fns = [jax.vmap(lambda s, b=b: b(s, potential_fn)) for b in branches]
            return jax.lax.switch(phase(state.i[0]), fns, state)
        return jax.lax.switch(phase(state.i), [lambda s, b=b: b(s, potential_fn) for b in branches], state)

    return kernel


def _refreshed_weight(rng_key, state, integrator, times):
    """Weight of the current point with a path drawn from its exact conditional (whitened coordinates)."""
    flat, _ = ravel_pytree(state.z)
    u = jax.scipy.linalg.solve_triangular(state.chol, flat - state.shift, lower=True)
    k_path, k_aux = jax.random.split(rng_key)
    times = jnp.asarray(times, flat.dtype)
    path = conditional_path(k_path, u, times)
    log_aux, _ = path_log_aux(k_aux, MixtureDenoiser.from_params(state.mixture), times, integrator, path, u)
    log_weight = log_aux - state.potential_energy
    return jnp.where(jnp.isfinite(log_weight), log_weight, -jnp.inf), path
