"""The adaptive SL kernel: it builds its own denoiser during warmup, then stays one fixed kernel.

flowMC-style, in phases driven by the step counter ``i`` (NumPyro never signals warmup):

1. **explore** (``i < num_explore``): a population of local chains (walkers), started from
   dispersed points, runs NumPyro's own NUTS with its step-size and mass-matrix adaptation; the
   second half of their draws fills a buffer. With a model, the walkers first run on the tempered
   posterior ``prior·likelihood^β``, ``β`` rising geometrically from ``β₀`` to 1 over NumPyro's
   initial fast adaptation window (the first 30 % of exploration); ``β₀ = 1/(sd·√d)``, sd the
   spread of the log likelihood over the walkers' prior draws (adaptive tempered SMC's first
   step, times 1/√d: see ``initial_log_beta``). In high dimension a mode's basin of attraction
   from prior draws can be vanishingly small, while at small ``β`` the walkers move between modes;
   draws are buffered only at ``β = 1``, and the fit's weights come from the target anyway;
2. **fit** (``i == num_explore``): a Gaussian mixture (or a Gaussian) is fitted to the buffer
   (:mod:`slppl.denoisers.fit`), its component weights re-estimated by importance sampling
   against the target (walkers stuck in a mode say nothing about its mass), and SL's "mass
   matrix" is set: proposals run in coordinates whitened by the buffer's covariance, so the
   unit-scale default grid suits latents of any scale. The chain's local kernel takes the
   adapted step size and mass matrix of a walker;
3. **composite** (every later step, warmup and sampling alike): one global SL step, exact by
   independent Metropolis–Hastings on path space (i-SIR over ``num_proposals`` paths, see
   :func:`slppl.kernel.imh_proposal`), then ``num_local`` local NUTS moves. After a
   local move the path is redrawn from its exact conditional given x
   (:func:`slppl.trajectory.conditional_path`), so the current state always has a finite weight.
   Both moves leave ``μ(x)·p(path | x)`` invariant, hence the composite is exact.

4. **refit** (``i == refit``, halfway through the composite part of warmup): the same fit again,
   on a buffer whose first half now holds proposals resampled by their exact weights (a few per
   step, sampling importance resampling), so the proposal learns from the exact kernel's weights
   where the first fit, made from walkers, was thin; the chain stays where it is and its weight
   is recomputed under the new proposal.

After ``num_warmup`` nothing adapts: the fit, the whitening and the local step size are frozen.

Phases are chosen by ``lax.switch`` on the (unbatched) step counter, so only one phase's work runs
per step, also with ``chain_method="vectorized"`` (the switch sits outside the ``vmap``). NumPyro's
NUTS appears once in the step (walkers and chain share it), because compilation, not sampling,
dominated the cost of small models: a first version with separate walker and chain NUTS programs
spent 18 s compiling its step and 0.5 s running 3000 steps of eight schools.
"""

import math
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from numpyro.infer.hmc_util import build_adaptation_schedule

from ._random import categorical
from .adaptive_learned import proposal_denoiser, train_residual, zero_network
from .adaptive_warnings import in_loop_warnings, warn_if_failed, warn_if_useless
from .denoisers.fit import (DEFAULT_COMPONENTS, fit_diagonal, fit_gaussian, fit_laplace, fit_mixture, max_components,
                            num_parameters, reweight)
from .denoisers.mixture import MixtureDenoiser, MixtureParams
from .kernel import PROPOSAL_CHUNK, _chunk_size, imh_proposal, refreshed_log_weight
from .partial_path import partial_path_move
from .walkers import LocalStats, at_temperature, get_walker, initial_log_beta, make_local_kernel, set_walker

__all__ = ["AdaptiveState", "FAMILIES", "Schedule", "schedule", "init", "build_kernel", "make_local_kernel", "MIN_WARMUP"]

# Each family and the numbers of mixture components it may fit. "laplace" is a Gaussian at the
# potential's minimum nearest the best walker, with the inverse Hessian as covariance, and falls back
# to the walkers' Gaussian where that search ends at no minimum (fit.fit_laplace).
# "learned": the mixture plus a residual network trained at the refit (slppl.adaptive_learned).
FAMILIES = {"mixture": DEFAULT_COMPONENTS, "gaussian": (1,), "laplace": (1,), "learned": DEFAULT_COMPONENTS}
MIN_WARMUP = 100
MIN_EXPLORE = 50
# The share of warmup the walkers explore (benchmarks/explore_budget.py measures others).
EXPLORE_SHARE = 0.25
# With num_local=None, local moves stop after warmup when the global steps alone left the current
# point at least this often during warmup. With 32 i-SIR proposals a well-fitted proposal leaves
# it at 95–97 % of steps; a correlated 100-d Gaussian left it at 55 % and, without local moves,
# gave a wrong answer (max z 0.26, R-hat 1.12) with k̂ 0.63, so no warning (benchmarks/README.md).
LOCAL_THRESHOLD = 0.9
# Global moves that left the current point in fewer than this share of the warmup's composite steps
# are useless: a warning says so at the end of warmup, and they stop for sampling (the chain runs
# on its exact local moves, at their cost). Measured: logistic regression d = 300 left it at 0.000
# of steps, the seeds' family d = 128 with a full-covariance fit at 0.088 (wrong weights, no warning).
GLOBAL_THRESHOLD = 0.05
# Partial-path moves (slppl.partial_path) join the composite step from the refit on when the global
# moves left the current point in fewer than this share of the steps before it, and stay after
# warmup if they still did in the steps after it. Their restart time is adapted (Robbins–Monro on
# log t_r) during the second half of warmup toward PARTIAL_TARGET, then frozen.
PARTIAL_THRESHOLD = 0.5
PARTIAL_TARGET = 0.5
EXPLORE, FIT, COMPOSITE = 0, 1, 2
# PROPOSALS_BY_COST: after warmup a global move makes only as many of its ``num_proposals``
# proposals as pay, counting model evaluations. With i-SIR over K proposals whose weights spread by
# ρ = E[w²]/E[w]² (measured over the second half of warmup), the chain stays put with probability
# about ρ/(ρ + K), so an effective draw costs (K + c)·(K + 2ρ)/K evaluations, c the step's other
# evaluations (its local NUTS gradients if local moves stay, at least 1); K is the multiple of
# ``proposal_chunk`` that minimises it. Exact for any K (unmade proposals get no weight).
# Off: it lost everywhere it was measured (benchmarks/proposals_by_cost.py, 2026-12-02, 4 chains x
# (1000 + 1000)). It chose K = 4 on eight schools, German credit, two modes (d = 10) and label
# switching, and ESS fell by 30-45 % (eight schools 3192 -> 1976, German credit 3322 -> 1836),
# ESS/s with it, and even ESS per 1k model evaluations (6.55 -> 5.26, 6.92 -> 4.99). The model
# is right per sampling step, but the warmup's evaluations (the walkers' exploration) are ~3/4
# of such a run's, so the sampling steps' savings cannot pay for the lost ESS. Worth measuring
# again once warmup is cheap, or for long runs (the kernel never learns num_samples).
PROPOSALS_BY_COST = False
# Defensive mixture importance sampling (Hesterberg 1995): a share of every proposal comes from a
# wide Gaussian, N(0, DEFENSIVE_SCALE²·I) in whitened coordinates, which bounds the weights
# wherever it covers the target. Alone it did not unstick the eight-schools chain that 8 proposals
# left in a thin tail (τ's ESS 291 → 504; the refit and 32 proposals did, benchmarks/README.md).
DEFENSIVE_WEIGHT = 0.1
DEFENSIVE_SCALE = 2.0


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
        use_global: whether global SL moves run (off from the end of warmup when they left the
            current point in fewer than ``GLOBAL_THRESHOLD`` of the warmup's steps).
        walkers: NumPyro ``HMCState`` of the exploring walkers (batched). From the fit on, slot 0
            is the chain's own NUTS state for its local moves; the others are idle.
        buffer: ``(n, d)`` draws the denoiser is fitted to: the walkers', then (first half) proposals
            resampled by their exact weights for the refit.
        network: the residual network's arrays with ``denoiser="learned"`` (zero until the refit
            trains it), else ``()``.
        log_beta0: ``log β₀``, the walkers' first inverse temperature (0: no tempering).
        use_partial: whether partial-path moves run (see ``PARTIAL_THRESHOLD``).
        log_restart: ``log t_r``, the partial-path moves' restart time (whitened units).
        partial_accept_prob: acceptance probability of the last partial-path move.
        jump_stats: ``[Σ|Δu|² of partial-path moves, their potential evaluations, Σ|Δu|² of local
            moves, their gradient evaluations]`` over the second half of warmup (``u`` whitened):
            partial-path moves stay after warmup only if they move the chain at least as far per
            model evaluation as the local moves.
        num_global_proposals: proposals a global move makes: ``num_proposals`` during warmup,
            then as many as pay (see ``PROPOSALS_BY_COST``), frozen.
        proposal_stats: ``[Σ ρ, steps]`` over the second half of warmup, ``ρ = K·Σw²/(Σw)²``
            of each global move's ``K`` proposal weights (1 for a perfect proposal).
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
    walkers: Any
    buffer: Any
    network: Any = ()
    log_beta0: Any = 0.0
    use_global: Any = True
    use_partial: Any = False
    log_restart: Any = 0.0
    partial_accept_prob: Any = 0.0
    jump_stats: Any = ()
    num_global_proposals: Any = 0
    proposal_stats: Any = ()


class Schedule(NamedTuple):
    """Static phase lengths: explore for ``num_explore`` steps, buffer from ``collect_start`` every
    ``thin`` steps into ``num_slots`` slots per walker; fit at ``num_explore``, refit at ``refit``."""

    num_warmup: int
    num_explore: int
    collect_start: int
    thin: int
    num_slots: int
    refit: int


def schedule(num_warmup, num_walkers, max_buffer=4000):
    """The phase lengths for ``num_warmup`` warmup steps: a quarter (at least 50) explores.

    Examples:
        >>> schedule(1000, 16)
        Schedule(num_warmup=1000, num_explore=250, collect_start=125, thin=1, num_slots=125, refit=625)
    """
    if num_warmup < MIN_WARMUP:
        raise ValueError(
            f"SL without a denoiser builds one during warmup and needs num_warmup >= {MIN_WARMUP} "
            f"(got {num_warmup}): local chains explore first, then the fitted denoiser and the local "
            "moves are tuned. Pass MCMC(..., num_warmup=1000) or give SL a denoiser."
        )
    num_explore = max(MIN_EXPLORE, int(num_warmup * EXPLORE_SHARE))
    collect_start = num_explore // 2
    thin = max(1, math.ceil((num_explore - collect_start) * num_walkers / max_buffer))
    num_slots = math.ceil((num_explore - collect_start) / thin)
    refit = num_explore + 1 + (num_warmup - num_explore - 1) // 2
    return Schedule(num_warmup, num_explore, collect_start, thin, num_slots, refit)


def init(rng_key, z, walker_z, potential_fn, sched, family_components, local_kernel, target_accept_prob=0.8,
         num_proposals=1, learned=False, tempered=None):
    """Initial :class:`AdaptiveState` for one chain.

    ``walker_z`` holds the walkers' starting points (leading axis = walkers); a walker whose
    potential is not finite there starts from ``z`` instead. ``local_kernel`` comes from
    :func:`make_local_kernel`. ``tempered(β)``, if given, is the potential of
    ``prior·likelihood^β`` (the walkers explore it first, see the module docstring).
    """
    flat, _ = ravel_pytree(z)
    dtype = flat.dtype
    d = flat.shape[0]
    num_walkers = jax.tree_util.tree_leaves(walker_z)[0].shape[0]
    k_walkers, key = jax.random.split(rng_key)
    finite = jnp.isfinite(jax.vmap(potential_fn)(walker_z))
    walker_z = jax.tree_util.tree_map(
        lambda w, a: jnp.where(finite.reshape((-1,) + (1,) * (w.ndim - 1)), w, a), walker_z, z
    )

    def init_walker(z0, key):
        return local_kernel.init(
            z0, sched.num_explore, model_args=(potential_fn,), rng_key=key, target_accept_prob=target_accept_prob
        )

    # Mapped, not vmapped: batched random draws are slow for XLA to compile (see slppl._random).
    walkers = jax.lax.map(lambda a: init_walker(*a), (walker_z, jax.random.split(k_walkers, num_walkers)))
    log_beta0 = jnp.zeros((), dtype)
    if tempered is not None:
        log_beta0 = initial_log_beta(walker_z, tempered, dtype)
        walkers = jax.vmap(partial(at_temperature, potential_fn=tempered(jnp.exp(log_beta0))))(walkers)
    # The fitted components (as many as the buffer can support) and the defensive one.
    n = sched.num_slots * num_walkers
    k_max = max_components(family_components, n, d) + 1
    mixture = MixtureParams(
        jnp.full((k_max,), -jnp.log(k_max), dtype),
        jnp.zeros((k_max, d), dtype),
        jnp.ones((k_max, d), dtype),
        None if _diagonal(family_components, learned, n, d) else jnp.broadcast_to(jnp.eye(d, dtype=dtype), (k_max, d, d)),
    )
    zero = jnp.zeros((), dtype)
    izero = jnp.zeros((), jnp.int32)
    no_weights = jnp.full(() if num_proposals == 1 else (num_proposals,), -jnp.inf, dtype)
    return AdaptiveState(
        i=izero,
        z=z,
        potential_energy=jnp.asarray(potential_fn(z), dtype),
        log_weight=jnp.asarray(-jnp.inf, dtype),
        accept_prob=zero,
        mean_accept_prob=zero,
        diverging=jnp.zeros((), bool),
        rng_key=key,
        proposal_log_weight=no_weights,
        local_accept_prob=zero,
        num_grad_evals=izero,
        num_potential_evals=izero,
        mixture=mixture,
        shift=jnp.zeros(d, dtype),
        chol=jnp.eye(d, dtype=dtype),
        use_local=jnp.ones((), bool),
        walkers=walkers,
        buffer=jnp.zeros((sched.num_slots * num_walkers, d), dtype),
        network=zero_network(d, dtype)[0] if learned else (),
        log_beta0=log_beta0,
        use_global=jnp.ones((), bool),
        use_partial=jnp.zeros((), bool),
        log_restart=zero,
        partial_accept_prob=zero,
        jump_stats=jnp.zeros(4, dtype),
        num_global_proposals=jnp.asarray(num_proposals, jnp.int32),
        proposal_stats=jnp.zeros(2, dtype),
    )


def _diagonal(family_components, learned, n, d):
    """Whether the fit is kept diagonal (:func:`slppl.denoisers.fit.fit_diagonal`): when not even a
    one-component full covariance fits in the ``n`` buffered draws, the fit's components are
    diagonal in their type's own coordinates anyway; there they cost O(K·d) per proposal instead of
    O(K·d²), and O(K·d) memory (``d = 1000``: 72 MB of eigenvectors a chain otherwise). Static."""
    return not learned and family_components != (1,) and num_parameters("full", min(family_components), d) > n


def build_kernel(sched, family, times, integrator, local_kernel, num_local=None, batched=False,
                 num_reweight=128, num_proposals=1, proposal_chunk=PROPOSAL_CHUNK, vectorized_walkers=False):
    """Return ``kernel(state, potential_fn, tempered=None) -> state``: one step of the adaptive SL kernel.

    ``tempered(β)``, when the model splits into prior and likelihood, is the potential of
    ``prior·likelihood^β`` that the walkers explore first (see :func:`init`).

    ``family``: a key of ``FAMILIES``. ``num_local``: local NUTS moves after each global step; ``None`` (default) makes one
    during warmup and keeps it after warmup only if the warmup's global acceptance was below
    ``LOCAL_THRESHOLD``. ``num_proposals``: SL paths per global step (i-SIR when > 1, see
    :func:`slppl.kernel.imh_proposal`), evaluated ``proposal_chunk`` at a time.

    A step is: the phase's own work (nothing / the fit / the global SL move), then NUTS moves of
    the walker slots the phase activates (every walker while exploring, slot 0 — the chain — in
    the composite phase), then the phase's bookkeeping. NUTS thus sits at one place in the
    program.

    ``vectorized_walkers=True`` moves the exploring walkers together (a ``vmap`` of NUTS, which
    compiles a second NUTS program), so that a potential behind a host callback (Pyro's) sees
    one batch per leapfrog step instead of one call per walker.

    ``batched=True`` when the state has a leading chain axis (``chain_method="vectorized"``): the
    phase is then read from the first chain's counter, outside the ``vmap``.
    """
    family_components = FAMILIES[family]
    moves = 1 if num_local is None else num_local
    # Partial-path moves need the proposal's own tilted measure, i.e. exactly drawn paths.
    partial_moves = bool(integrator.exact) and family != "learned"
    # Annealing ends with NumPyro's initial fast window (step size only): its mass-matrix windows
    # then see draws at β = 1 only. With an annealing over the first third of exploration instead,
    # the windows mixed tempered draws in and the chain's NUTS needed 1,023 leapfrog steps per
    # move on a logistic regression in d = 300 (15 without tempering).
    anneal_steps = build_adaptation_schedule(sched.num_explore)[0].end + 1
    window = max(1, sched.refit - sched.num_explore - 1)

    def num_buffer_rows(state):
        # Half the buffer: the walkers' later draws stay, since they explored the tails by NUTS
        # where resampled proposals are few (a refit to resampled proposals alone lost tail
        # coverage on one eight-schools seed).
        return max(1, state.buffer.shape[0] // 2)

    def local_on(state):
        return state.use_local & (moves > 0)

    def per_step(rows):
        # Enough resampled proposals per step to refill the buffer before the refit, at most K.
        return max(1, min(num_proposals, math.ceil(rows / window), rows))

    def explore(state, potential_fn):
        return state

    def fit(state, potential_fn):
        key, k_fit, k_weights, k_path = jax.random.split(state.rng_key, 4)
        flat, unravel = ravel_pytree(state.z)
        dtype, d = flat.dtype, flat.shape[0]
        # Walkers that diverged or never moved leave non-finite rows; they must not enter the fit.
        good = jnp.all(jnp.isfinite(state.buffer), axis=1)
        fill = jnp.where(good[:, None], state.buffer, state.buffer[jnp.argmax(good)])
        k_max = max_components(family_components, *fill.shape)
        components = tuple(k for k in family_components if k <= k_max)
        diagonal = _diagonal(family_components, family == "learned", *fill.shape)
        if diagonal:
            # The whitening is the chosen type's own map, so the components stay diagonal.
            mixture, shift, chol = fit_diagonal(k_fit, fill, components)
        else:
            shift, cov = fit_gaussian(fill)
            chol = jnp.linalg.cholesky(cov)
        # Walkers that never moved (every NUTS move diverged) leave a buffer of one point: the
        # fit is then meaningless, and the user must hear it now, not from a frozen chain.
        failed = ~jnp.all(jnp.isfinite(chol)) | ~jnp.any(good)
        if in_loop_warnings():
            jax.debug.callback(warn_if_failed, failed & (state.i == sched.num_explore), jnp.sum(good))
        if not diagonal:
            # An explicit L⁻¹ (see fit._component_log_prob for why not a wide triangular solve).
            linv = jax.scipy.linalg.solve_triangular(chol, jnp.eye(d, dtype=dtype), lower=True)
            u = (fill - shift) @ linv.T
            # Fitted in the model's coordinates, where a component's covariance has its structure
            # (the seeds' isotropic modes are not isotropic after whitening by the overall
            # covariance), then mapped to the whitened ones: a Gaussian mixture maps exactly.
            mixture = fit_mixture(k_fit, fill, components)
            mixture = mixture._replace(means=(mixture.means - shift) @ linv.T, covs=linv @ mixture.covs @ linv.T)

        def log_density_u(u_):
            return -potential_fn(unravel((shift + chol @ u_).astype(dtype)))

        pes = state.walkers.potential_energy
        best = jnp.argmin(jnp.where(jnp.isfinite(pes), pes, jnp.inf))
        walker = get_walker(state.walkers, best)
        if family == "laplace":
            u_best = jax.scipy.linalg.solve_triangular(chol, ravel_pytree(walker.z)[0] - shift, lower=True)
            mixture = fit_laplace(lambda u_: -log_density_u(u_), u_best, mixture)
        mixture = _with_defensive(reweight(k_weights, mixture, log_density_u, num_reweight))
        # At the first fit the chain starts from the walker with the highest density; it takes that
        # walker's slot 0 (and its adapted step size and mass matrix) for its local moves. At the
        # refit it stays where it is, with a weight recomputed under the new proposal.
        first = state.i == sched.num_explore
        walkers = jax.tree_util.tree_map(lambda a, b: jnp.where(first, a, b), set_walker(state.walkers, 0, walker), state.walkers)
        if family == "learned":
            base = MixtureDenoiser.from_fit(mixture).params
            network = jax.lax.cond(state.i == sched.refit,
                                   lambda: train_residual(k_fit, base, u, lambda u_: -log_density_u(u_), integrator, times),
                                   lambda: zero_network(d, dtype)[0])
            state = state._replace(network=network)
        state = state._replace(
            mixture=MixtureDenoiser.from_fit(mixture).params, shift=shift, chol=chol, walkers=walkers,
            z=jax.tree_util.tree_map(lambda a, b: jnp.where(first, a, b), walker.z, state.z),
            potential_energy=jnp.where(first, walker.potential_energy.astype(dtype), state.potential_energy),
            rng_key=key,
        )
        return state._replace(log_weight=_refreshed_weight(k_path, state, integrator, times),
                              diverging=failed)

    def global_move(state, potential_fn):
        def skip(state):
            return state._replace(
                accept_prob=jnp.zeros_like(state.accept_prob), diverging=jnp.zeros((), bool),
                proposal_log_weight=jnp.full_like(state.proposal_log_weight, -jnp.inf),
                num_grad_evals=jnp.zeros((), jnp.int32), num_potential_evals=jnp.zeros((), jnp.int32),
            )

        z_before = state.z
        if partial_moves:
            # The global move is the partial-path move restarted at t_r = 0, so both run through
            # one compiled proposal (a loop of two: global, then partial-path), not two programs.
            def body(j, state):
                first = j == 0
                active = jnp.where(first, state.use_global, state.use_partial)

                def go(state):
                    restart = jnp.where(first, 0.0, jnp.exp(state.log_restart)).astype(state.log_restart.dtype)
                    made = jnp.where(first, state.num_global_proposals, num_proposals) if PROPOSALS_BY_COST else None
                    state, move, u = propose(state, potential_fn, restart, made)
                    return jax.lax.cond(first, global_bookkeeping, partial_bookkeeping, state, move, u)

                def idle(state):
                    return jax.lax.cond(first, skip, lambda s: s._replace(partial_accept_prob=jnp.zeros_like(s.partial_accept_prob)),
                                        state)

                return jax.lax.cond(active, go, idle, state)

            state = jax.lax.fori_loop(0, 2, body, state)
        else:
            state = jax.lax.cond(state.use_global, lambda s: global_bookkeeping(*propose(s, potential_fn, 0.0)), skip,
                                 state)
        moved = jnp.any(jnp.asarray([jnp.any(a != b) for a, b in zip(jax.tree_util.tree_leaves(state.z),
                                                                     jax.tree_util.tree_leaves(z_before))]))

        def sync(walkers):
            # The chain's NUTS state needs ∇U at the point the global moves accepted.
            pe_, grad = jax.value_and_grad(potential_fn)(state.z)
            return set_walker(walkers, 0, get_walker(walkers, 0)._replace(z=state.z, z_grad=grad, potential_energy=pe_))

        synced = local_on(state) & moved
        walkers = jax.lax.cond(synced, sync, lambda w: w, state.walkers)
        return state._replace(walkers=walkers, num_grad_evals=state.num_grad_evals + synced.astype(jnp.int32))

    def propose(state, potential_fn, restart_time, num_made=None):
        """One exact move from the current point: ``num_proposals`` points from the proposal's SL path
        restarted at ``restart_time`` (0: a global move), ``num_made`` of them evaluated (exact
        paths; ``None``: all), i-SIR among them. Returns the state at the
        chosen point, the :class:`~slppl.kernel.Move` and the whitened point it started from."""
        key, k_move = jax.random.split(state.rng_key)
        flat, _ = ravel_pytree(state.z)
        u, to_x = _whitened(state)

        def potential_u(u_):
            return potential_fn(to_x(u_))

        if partial_moves:
            move = partial_path_move(k_move, u, state.log_weight, state.mixture, restart_time, potential_u, num_proposals,
                                     proposal_chunk, num_made)
        else:
            move = imh_proposal(k_move, state.log_weight, proposal_denoiser(state), (), potential_u,
                                jnp.asarray(times, flat.dtype), integrator, dim=flat.shape[0], num_proposals=num_proposals,
                                chunk=proposal_chunk)
        state = state._replace(
            z=jax.tree_util.tree_map(lambda a, b: jnp.where(move.accept, a, b), to_x(move.x), state.z),
            potential_energy=jnp.where(move.accept, move.potential_energy, state.potential_energy),
            log_weight=jnp.where(move.accept, move.log_weight, state.log_weight), rng_key=key,
        )
        return state, move, u

    def partial_bookkeeping(state, move, u):
        dtype = state.potential_energy.dtype
        # Robbins–Monro on log t_r during the second half of warmup: a higher restart time when
        # the move is refused too often (more local), a lower one when it is accepted easily.
        n = state.i - sched.refit
        adapting = (state.i > sched.refit) & (state.i < sched.num_warmup)
        step = jnp.where(adapting, jnp.maximum(n, 1).astype(dtype) ** -0.6, 0.0)
        log_restart = jnp.clip(state.log_restart - step * (move.accept_prob - PARTIAL_TARGET), -10.0, 12.0)
        jump = jnp.where(move.accept, jnp.sum((move.x - u) ** 2), 0.0)
        stats = state.jump_stats + jnp.where(adapting, jnp.stack([jump, num_proposals, 0.0, 0.0]), 0.0).astype(dtype)
        return state._replace(
            jump_stats=stats, partial_accept_prob=move.accept_prob.astype(dtype), log_restart=log_restart.astype(dtype),
            diverging=state.diverging | move.diverging,
            num_potential_evals=state.num_potential_evals + num_proposals,
        )

    def global_bookkeeping(state, move, u):
        key, k_keep = jax.random.split(state.rng_key)
        dtype = state.potential_energy.dtype

        # Before the refit, the buffer takes a few proposals per step resampled by their exact
        # weights (sampling importance resampling): draws of the target, the tails the first fit
        # covered thinly included, where the walkers' draws said nothing about mass.
        def collect(buffer):
            rows = num_buffer_rows(state)
            m = per_step(rows)
            logits = jnp.reshape(move.proposal_log_weight, (-1,))
            keep = categorical(k_keep, jnp.where(jnp.isnan(logits), -jnp.inf, logits), (m,))
            kept = state.shift + move.proposals[keep] @ state.chol.T
            start = jnp.clip((state.i - sched.num_explore - 1) * m, 0, rows - m)
            start = start.astype(jnp.int32)
            return jax.lax.dynamic_update_slice(buffer, kept.astype(buffer.dtype), (start, jnp.zeros_like(start)))

        # A cond, so that the steps after the refit (sampling included) do not touch the buffer.
        collecting = (state.i > sched.num_explore) & (state.i < sched.refit)
        buffer = jax.lax.cond(collecting, collect, lambda b: b, state.buffer)

        # Global moves so far in this phase (warmup: after the fit, the refit step not counted).
        start_of_phase = jnp.where(state.i < sched.num_warmup, sched.num_explore + 1 + (state.i > sched.refit), sched.num_warmup)
        n = state.i + 1 - start_of_phase
        mean_accept = jnp.where(n <= 1, 0.0, state.mean_accept_prob)
        mean_accept = mean_accept + (move.accept_prob - mean_accept) / jnp.maximum(n, 1)
        lw = jnp.reshape(move.proposal_log_weight, (-1,))
        made = ~jnp.isnan(lw)
        proposal_stats = state.proposal_stats
        if PROPOSALS_BY_COST:
            # How far the proposal weights spread (second half of warmup, the proposal then fixed).
            finite = jnp.isfinite(lw)
            w = jnp.where(finite, jnp.exp(lw - jnp.max(jnp.where(finite, lw, -jnp.inf))), 0.0)
            rho = jnp.sum(made) * jnp.sum(w**2) / jnp.where(jnp.any(finite), jnp.sum(w), 1.0) ** 2
            measuring = (state.i > sched.refit) & (state.i < sched.num_warmup) & jnp.any(finite)
            proposal_stats = proposal_stats + jnp.where(measuring, jnp.stack([rho, 1.0]), 0.0).astype(dtype)
        return state._replace(
            rng_key=key, buffer=buffer, accept_prob=move.accept_prob.astype(dtype),
            mean_accept_prob=mean_accept.astype(dtype),
            diverging=move.diverging, proposal_log_weight=move.proposal_log_weight,
            num_grad_evals=jnp.zeros((), jnp.int32),
            num_potential_evals=jnp.sum(made).astype(jnp.int32), proposal_stats=proposal_stats,
        )

    def local(state, num_active, potential_fn, tempered):
        """NUTS on walker slots ``0 … num_active − 1`` (slot 0 ``num_active`` times in the composite phase)."""
        dtype = state.potential_energy.dtype
        exploring = state.i < sched.num_explore
        annealing = state.i < anneal_steps
        reheat = state.i <= anneal_steps
        if tempered is not None:
            # One NUTS program for walkers and chain: at β = 1 the tempered potential is the target's.
            beta = jnp.where(annealing, jnp.exp(state.log_beta0 * (1.0 - state.i / anneal_steps)), 1.0)
            potential_fn = tempered(beta.astype(dtype))

        def move(w):
            """One NUTS move of one walker: its new state and ``(gradients, accept_prob, diverging)``."""
            if tempered is not None:
                # β changed since the walker's last move (also at the first step at β = 1): its
                # energy and gradient are re-evaluated, or NUTS compares against a stale energy and
                # rejects every move.
                w = jax.lax.cond(reheat, lambda w: at_temperature(w, potential_fn), lambda w: w, w)
            w = local_kernel.sample(w, (potential_fn,), {})
            grads = w.num_steps.astype(jnp.int32) + (reheat & (tempered is not None)).astype(jnp.int32)
            return w, LocalStats(grads, w.accept_prob.astype(dtype), w.diverging)

        def body(j, carry):
            walkers, stats = carry
            slot = jnp.where(exploring, j, 0)
            w, moved = move(get_walker(walkers, slot))
            return set_walker(walkers, slot, w), jax.tree_util.tree_map(jnp.add, stats, moved)

        def one_at_a_time(walkers):
            stats = LocalStats(jnp.zeros((), jnp.int32), jnp.zeros((), dtype), jnp.zeros((), bool))
            return jax.lax.fori_loop(0, num_active, body, (walkers, stats))

        def together(walkers):
            walkers, stats = jax.vmap(move)(walkers)
            return walkers, LocalStats(jnp.sum(stats.grads, dtype=jnp.int32), jnp.sum(stats.accept), jnp.any(stats.diverging))

        if vectorized_walkers:
            walkers, stats = jax.lax.cond(exploring, together, one_at_a_time, state.walkers)
        else:
            walkers, stats = one_at_a_time(state.walkers)
        return state._replace(walkers=walkers), stats._replace(accept=stats.accept / jnp.maximum(num_active, 1))

    def after_explore(state, stats, potential_fn):
        walkers = state.walkers
        flat = jax.vmap(lambda z: ravel_pytree(z)[0])(walkers.z)
        num_walkers, d = flat.shape
        slot = (state.i - sched.collect_start) // sched.thin
        store = (state.i >= sched.collect_start) & ((state.i - sched.collect_start) % sched.thin == 0)
        start = jnp.clip(slot, 0, sched.num_slots - 1) * num_walkers
        updated = jax.lax.dynamic_update_slice(state.buffer, flat.astype(state.buffer.dtype), (start, jnp.zeros_like(start)))
        first = get_walker(walkers, 0)
        return state._replace(
            i=state.i + 1,
            z=first.z,
            potential_energy=first.potential_energy.astype(state.potential_energy.dtype),
            diverging=stats.diverging,
            buffer=jnp.where(store, updated, state.buffer),
            local_accept_prob=stats.accept,
            num_grad_evals=stats.grads,
            num_potential_evals=jnp.zeros((), jnp.int32),
        )

    def after_fit(state, stats, potential_fn):
        return state._replace(
            i=state.i + 1, num_grad_evals=jnp.zeros((), jnp.int32),
            # Importance draws of the reweighting, per fitted component slot (the defensive one has none).
            num_potential_evals=jnp.asarray(num_reweight * (state.mixture.log_weights.shape[0] - 1), jnp.int32),
        )

    def after_composite(state, stats, potential_fn):
        def refresh(state):
            # The local moves left x without a path: draw one from its exact conditional (only
            # needed by a global move to come).
            chain = get_walker(state.walkers, 0)
            key, k_path = jax.random.split(state.rng_key)
            delta = ravel_pytree(chain.z)[0] - ravel_pytree(state.z)[0]
            jump = jnp.sum(jax.scipy.linalg.solve_triangular(state.chol, delta, lower=True) ** 2)
            measuring = (state.i > sched.refit) & (state.i < sched.num_warmup)
            stats = state.jump_stats + jnp.where(measuring, jnp.stack([0.0, 0.0, jump, stats_grads]), 0.0).astype(dtype)
            state = state._replace(jump_stats=stats)
            state = state._replace(z=chain.z, potential_energy=chain.potential_energy.astype(state.potential_energy.dtype),
                                   rng_key=key)
            log_weight = jax.lax.cond(state.use_global | state.use_partial,
                                      lambda: _refreshed_weight(k_path, state, integrator, times),
                                      lambda: state.log_weight)
            return state._replace(log_weight=log_weight)

        dtype = state.potential_energy.dtype
        stats_grads = stats.grads.astype(dtype)
        state = jax.lax.cond(local_on(state), refresh, lambda s: s, state)
        itr = state.i + 1
        end_of_warmup = itr == sched.num_warmup
        new_use_local = state.use_local
        if num_local is None:
            # Frozen from here on: the warmup's own acceptance decides whether local moves pay.
            new_use_local = jnp.where(end_of_warmup, state.mean_accept_prob < LOCAL_THRESHOLD, new_use_local)
        if partial_moves:
            # The global moves' acceptance before the refit (then after it) decides whether
            # partial-path moves join (then stay).
            poor = state.mean_accept_prob < PARTIAL_THRESHOLD
            use_partial = jnp.where(itr == sched.refit, poor, state.use_partial)
            jumps = state.jump_stats
            per_eval = jumps[0] / jnp.maximum(jumps[1], 1.0) >= jumps[2] / jnp.maximum(jumps[3], 1.0)
            pays = per_eval | ~local_on(state)
            state = state._replace(use_partial=jnp.where(end_of_warmup, use_partial & poor & pays, use_partial))
        useless = end_of_warmup & (state.mean_accept_prob < GLOBAL_THRESHOLD)
        # A host callback only when it warns, not on every sampling step.
        if in_loop_warnings():
            jax.lax.cond(useless, lambda: jax.debug.callback(warn_if_useless, useless, state.mean_accept_prob, moves,
                                                             state.use_partial, state.log_restart), lambda: None)
        # Without local moves the chain has nothing else: global moves then stay, however rare.
        new_use_global = state.use_global & ~(useless & (moves > 0))
        use_local = new_use_local | ~new_use_global
        if partial_moves and PROPOSALS_BY_COST:
            state = state._replace(num_global_proposals=jnp.where(
                end_of_warmup, _proposals_by_cost(state, use_local & (moves > 0)), state.num_global_proposals))
        return state._replace(
            i=itr, diverging=state.diverging | stats.diverging, local_accept_prob=stats.accept,
            num_grad_evals=state.num_grad_evals + stats.grads, use_local=use_local,
            use_global=new_use_global,
        )

    def _proposals_by_cost(state, local_stays):
        """Proposals per global move for sampling: the multiple of ``proposal_chunk`` (at most
        ``num_proposals``) with the fewest model evaluations per effective draw, see
        ``PROPOSALS_BY_COST``."""
        dtype = state.potential_energy.dtype
        stats = state.proposal_stats
        rho = stats[0] / jnp.maximum(stats[1], 1.0)
        window = max(1, sched.num_warmup - sched.refit - 1)
        overhead = jnp.maximum(jnp.where(local_stays, state.jump_stats[3] / window, 0.0), 1.0)
        chunk = _chunk_size(num_proposals, proposal_chunk)
        k = jnp.arange(chunk, num_proposals + 1, chunk).astype(dtype)
        cost = (k + overhead) * (k + 2.0 * rho) / k
        best = k[jnp.argmin(jnp.where(jnp.isfinite(cost), cost, jnp.inf))].astype(jnp.int32)
        return jnp.where((stats[1] > 0) & jnp.isfinite(rho), best, num_proposals).astype(jnp.int32)

    def phase(i):
        fit = (i == sched.num_explore) | (i == sched.refit)
        return jnp.where(i < sched.num_explore, EXPLORE, jnp.where(fit, FIT, COMPOSITE))

    def num_active(state, p):
        walkers = jax.tree_util.tree_leaves(state.walkers.z)[0].shape[0]
        return jnp.where(p == EXPLORE, walkers, jnp.where((p == COMPOSITE) & state.use_local, moves, 0))

    before = (explore, fit, global_move)
    after = (after_explore, after_fit, after_composite)

    def kernel(state, potential_fn, tempered=None):
        if batched:
            p = phase(state.i[0])
            state = jax.lax.switch(p, [jax.vmap(partial(b, potential_fn=potential_fn)) for b in before], state)
            state, stats = jax.vmap(lambda s: local(s, num_active(s, p), potential_fn, tempered))(state)
            return jax.lax.switch(p, [jax.vmap(partial(a, potential_fn=potential_fn)) for a in after], state, stats)
        p = phase(state.i)
        state = jax.lax.switch(p, [partial(b, potential_fn=potential_fn) for b in before], state)
        state, stats = local(state, num_active(state, p), potential_fn, tempered)
        return jax.lax.switch(p, [partial(a, potential_fn=potential_fn) for a in after], state, stats)

    # The phases' own pieces, for measuring what each costs to compile (benchmarks/compile_costs.py).
    kernel.parts = dict(fit=fit, global_move=global_move, local=local, after_explore=after_explore,
                        after_fit=after_fit, after_composite=after_composite)
    return kernel


def _with_defensive(fit):
    """The fitted mixture (whitened coordinates) with the wide defensive component appended."""
    d = fit.means.shape[1]
    wide = DEFENSIVE_SCALE**2 * (jnp.ones(d, fit.means.dtype) if fit.covs.ndim == 2 else jnp.eye(d, dtype=fit.means.dtype))
    return fit._replace(
        log_weights=jnp.append(fit.log_weights + jnp.log1p(-DEFENSIVE_WEIGHT), jnp.log(DEFENSIVE_WEIGHT)),
        means=jnp.concatenate([fit.means, jnp.zeros((1, d), fit.means.dtype)]),
        covs=jnp.concatenate([fit.covs, wide[None]]),
    )


def _whitened(state):
    """``(u, to_x)``: the current point in whitened coordinates and the map back to the model's
    (``x = shift + chol·u``, unravelled)."""
    flat, unravel = ravel_pytree(state.z)
    u = jax.scipy.linalg.solve_triangular(state.chol, flat - state.shift, lower=True)

    def to_x(u_):
        return unravel((state.shift + state.chol @ u_).astype(flat.dtype))

    return u, to_x


def _refreshed_weight(rng_key, state, integrator, times):
    """Weight of the current point with a path drawn from its exact conditional (whitened coordinates)."""
    u, _ = _whitened(state)
    return refreshed_log_weight(rng_key, u, state.potential_energy, proposal_denoiser(state), times, integrator)[0]
