"""The SL kernel core: pure ``init`` / ``build_kernel`` over any potential ``U = −log μ``.

Every step proposes one full SL trajectory. With ``correction="mh"`` the step is independent
Metropolis–Hastings on the extended space (path, x) with the weight of
:mod:`slppl.trajectory`, which leaves μ exactly invariant whatever the denoiser, grid or
integrator; their quality only moves the acceptance rate. With ``correction=None`` the raw SL draw
is returned (fast, approximate: exact only with an exact denoiser and an exact integrator).

The current point starts with weight ``−inf`` (its path is unknown), so the first finite proposal
is always accepted: one step of burn-in.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .trajectory import FINALS, conditional_path, path_log_aux, sample_trajectory

__all__ = ["SLState", "Move", "init", "build_kernel", "reweigh", "refreshed_log_weight", "imh_proposal", "isir_select", "made_proposals", "CORRECTIONS"]

# Proposals evaluated together (vmapped) in a loop over chunks: with several host devices XLA's CPU
# batched triangular solve (a MultivariateNormal's log density) was several times slower over 32
# rows at once than over 4.
PROPOSAL_CHUNK = 4
CORRECTIONS = ("mh", None)


class SLState(NamedTuple):
    """State of the SL kernel (field names follow NumPyro's HMC where they mean the same).

    Fields:
        i: number of steps taken.
        z: current point, in the target's (unconstrained) parametrisation; any pytree.
        potential_energy: ``U(z) = −log μ(z)`` up to a constant.
        log_weight: log importance weight of the current (path, z) on the extended space
            (``−inf`` until the first accepted proposal).
        accept_prob: acceptance probability of the last proposal (0 when it diverged).
        mean_accept_prob: running mean of ``accept_prob``, restarted when warmup ends.
        diverging: whether the last proposal produced a NaN/Inf (it was then rejected).
        rng_key: PRNG key for the next step.
        denoiser_state: the denoiser's state (empty for analytic denoisers).
        proposal_log_weight: log weight of the last proposal, accepted or not (``−inf`` if it
            diverged); collect it with ``extra_fields=("proposal_log_weight",)`` for
            :func:`slppl.diagnostics.pareto_khat`.
    """

    i: Any
    z: Any
    potential_energy: Any
    log_weight: Any
    accept_prob: Any
    mean_accept_prob: Any
    diverging: Any
    rng_key: Any
    denoiser_state: Any
    proposal_log_weight: Any


def init(position, potential_fn, rng_key, denoiser, num_proposals=1):
    """Initial :class:`SLState` at ``position`` (a pytree of the target's parameters).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from slppl.denoisers import Gaussian
        >>> state = init(jnp.zeros(2), lambda z: 0.5 * z @ z, jax.random.PRNGKey(0),
        ...              Gaussian(jnp.zeros(2), jnp.eye(2)))
        >>> int(state.i), float(state.log_weight)
        (0, -inf)
    """
    flat, _ = ravel_pytree(position)
    pe = jnp.asarray(potential_fn(position), flat.dtype)
    zero = jnp.zeros((), flat.dtype)
    return SLState(
        i=jnp.zeros((), jnp.int32),
        z=position,
        potential_energy=pe,
        log_weight=jnp.asarray(-jnp.inf, flat.dtype),
        accept_prob=zero,
        mean_accept_prob=zero,
        diverging=jnp.zeros((), bool),
        rng_key=rng_key,
        denoiser_state=denoiser.init(flat),
        proposal_log_weight=jnp.full(() if num_proposals == 1 else (num_proposals,), -jnp.inf, flat.dtype),
    )


def build_kernel(
    denoiser, times, integrator, correction="mh", final="gaussian", cov_floor=0.0, num_warmup=0, num_proposals=1,
    proposal_chunk=PROPOSAL_CHUNK,
):
    """Return ``kernel(state, potential_fn) -> state``, one SL step per call.

    Args:
        denoiser: a :class:`~slppl.denoisers.Denoiser` acting on the flattened position.
        times: validated grid (see :mod:`slppl.time_grids`).
        integrator: an :class:`~slppl.integrators.Integrator`.
        correction: ``"mh"`` (exact) or ``None`` (raw SL draws).
        final, cov_floor: the final draw (see :func:`~slppl.trajectory.sample_trajectory`).
        num_warmup: steps after which ``mean_accept_prob`` restarts.
        num_proposals: paths per step (i-SIR when > 1, see :func:`imh_proposal`); match it in
            :func:`init`.
        proposal_chunk: proposals evaluated per batch (:func:`imh_proposal`'s ``chunk``).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from slppl.denoisers import Gaussian
        >>> from slppl.integrators import SecondOrder
        >>> from slppl.time_grids import Geometric
        >>> den = Gaussian(jnp.zeros(2), jnp.eye(2))
        >>> U = lambda z: 0.5 * z @ z + jnp.log(2 * jnp.pi)
        >>> step = build_kernel(den, Geometric().times(10), SecondOrder())
        >>> state = step(step(init(jnp.zeros(2), U, jax.random.PRNGKey(0), den), U), U)
        >>> round(float(state.accept_prob), 3)  # exact denoiser + exact step: always accepted
        1.0
    """
    check_combination(denoiser, integrator, correction, final)
    # numpy, not jnp: this may run while NumPyro traces `sample`, and a jnp constant made under
    # one trace would leak into the next.
    times = np.asarray(times)

    def kernel(state, potential_fn):
        flat, unravel = ravel_pytree(state.z)
        key, key_move = jax.random.split(state.rng_key)
        move = imh_proposal(
            key_move, state.log_weight, denoiser, state.denoiser_state, lambda x: potential_fn(unravel(x)),
            jnp.asarray(times, flat.dtype), integrator, correction, final, cov_floor, flat.shape[0], num_proposals,
            proposal_chunk,
        )
        itr = state.i + 1
        n = jnp.where(state.i < num_warmup, itr, itr - num_warmup)
        mean_accept_prob = jnp.where(n == 1, 0.0, state.mean_accept_prob)
        mean_accept_prob = mean_accept_prob + (move.accept_prob - mean_accept_prob) / n

        def pick(new, old):
            return jax.tree_util.tree_map(lambda a, b: jnp.where(move.accept, a, b), new, old)

        return SLState(
            i=itr,
            z=pick(unravel(move.x), state.z),
            potential_energy=pick(move.potential_energy, state.potential_energy),
            log_weight=pick(move.log_weight, state.log_weight),
            accept_prob=move.accept_prob,
            mean_accept_prob=mean_accept_prob,
            diverging=move.diverging,
            rng_key=key,
            denoiser_state=move.denoiser_state,
            proposal_log_weight=move.proposal_log_weight,
        )

    return kernel


class Move(NamedTuple):
    """Outcome of one global SL proposal (:func:`imh_proposal`).

    Fields:
        accept: whether the proposal replaces the current point.
        x: the proposed point (flat).
        potential_energy: ``U(x)``.
        log_weight: its log weight on the extended space (``log_aux − U(x)``).
        accept_prob: Metropolis–Hastings acceptance probability (0 when it diverged); with
            several proposals, the probability of leaving the current point.
        diverging: a NaN/Inf appeared in a path, the denoiser or the model.
        proposal_log_weight: ``log_weight`` of every proposal (``(K,)`` for ``K > 1``), ``−inf``
            where it diverged (for Pareto k̂).
        denoiser_state: the denoiser's state after the path.
        proposals: every proposed point, ``(K, d)`` (the adaptive kernel refits to them).
    """

    accept: Any
    x: Any
    potential_energy: Any
    log_weight: Any
    accept_prob: Any
    diverging: Any
    proposal_log_weight: Any
    denoiser_state: Any
    proposals: Any


def refreshed_log_weight(rng_key, x, potential_energy, denoiser, times, integrator, denoiser_state=(), final="gaussian",
                         cov_floor=0.0):
    """``(log weight, denoiser_state)`` of the flat point ``x`` with a path drawn from its exact
    conditional given ``x`` (the channel ``y_t = t·x + B_t``, the same under any target), weighed
    by the proposal it would have come from (:func:`~slppl.trajectory.path_log_aux`); ``−inf``
    where anything is not finite.

    Redrawing the path is a Gibbs step on the extended space ``μ(x)·p(path | x)``, so independent
    MH from the refreshed weight stays exact: after a local move of ``x``, or under a new proposal.
    """
    key_path, key_aux = jax.random.split(rng_key)
    times = jnp.asarray(times, x.dtype)
    path = conditional_path(key_path, x, times)
    log_aux, denoiser_state = path_log_aux(key_aux, denoiser, times, integrator, path, x, denoiser_state, cov_floor,
                                           final=final)
    log_weight = log_aux - potential_energy
    return jnp.where(jnp.isfinite(log_weight), log_weight, -jnp.inf), denoiser_state


def reweigh(state, potential_fn, denoiser, times, integrator, final="gaussian", cov_floor=0.0):
    """The state under a new target ``potential_fn`` at the same point: a Gibbs composite has moved
    the sites this target is conditioned on, and the denoiser built on it moves with them.

    The current point's weight is refreshed (:func:`refreshed_log_weight`) under the new target
    and the proposal built on it, so the next independent MH step is exact for the new target.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from slppl.denoisers import Gaussian
        >>> from slppl.integrators import SecondOrder
        >>> from slppl.time_grids import Geometric
        >>> den = Gaussian(jnp.zeros(2), jnp.eye(2))
        >>> state = init(jnp.zeros(2), lambda z: 0.5 * z @ z, jax.random.PRNGKey(0), den)
        >>> state = reweigh(state, lambda z: z @ z, den, Geometric().times(10), SecondOrder())
        >>> float(state.potential_energy), bool(jnp.isfinite(state.log_weight))
        (0.0, True)
    """
    flat, _ = ravel_pytree(state.z)
    key, key_weight = jax.random.split(state.rng_key)
    pe = jnp.asarray(potential_fn(state.z), flat.dtype)
    log_weight, denoiser_state = refreshed_log_weight(key_weight, flat, pe, denoiser, times, integrator,
                                                      state.denoiser_state, final, cov_floor)
    return state._replace(potential_energy=pe, log_weight=log_weight, rng_key=key, denoiser_state=denoiser_state)


def imh_proposal(
    rng_key, log_weight, denoiser, denoiser_state, potential_fn, times, integrator, correction="mh",
    final="gaussian", cov_floor=0.0, dim=None, num_proposals=1, chunk=PROPOSAL_CHUNK,
):
    """SL trajectories proposed against a current point of log weight ``log_weight``.

    ``potential_fn`` acts on the flat vector the denoiser sees; ``times`` fixes the dtype of the
    result. With ``correction="mh"`` and one proposal, it is accepted by independent
    Metropolis–Hastings on path space. With ``num_proposals = K > 1`` the step is iterated
    sampling importance resampling (i-SIR; Andrieu, Lee & Vihola 2018; Tjelmeland 2004): ``K``
    independent paths are drawn and the next point is picked among them and the current one with
    probability proportional to the weights. It is exact for the same reason (a Gibbs step on the
    index of an ensemble of one target draw and ``K`` proposal draws), the ``K`` paths are
    evaluated in one batch, and it moves far more often when the weights vary: ``accept_prob``
    is then the probability of leaving the current point, and ``proposal_log_weight`` has shape
    ``(K,)``. With ``correction=None`` the first finite proposal is taken. Returns a :class:`Move`.
    With exact paths the ``K`` points are evaluated ``chunk`` at a time (a ``vmap`` per chunk);
    ``chunk = K`` evaluates them together, which suits a potential behind a host callback.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from slppl.denoisers import Gaussian
        >>> from slppl.integrators import SecondOrder
        >>> from slppl.time_grids import Geometric
        >>> move = imh_proposal(jax.random.PRNGKey(0), -jnp.inf, Gaussian(jnp.zeros(2), jnp.eye(2)), (),
        ...                     lambda x: 0.5 * x @ x, Geometric().times(5), SecondOrder())
        >>> bool(move.accept), move.x.shape
        (True, (2,))
    """
    key_traj, key_accept = jax.random.split(rng_key)
    times = jnp.asarray(times)
    dtype = times.dtype

    def propose(key):
        traj = sample_trajectory(key, denoiser, times, integrator, denoiser_state, final, cov_floor, dim=dim)
        x = traj.x.astype(dtype)
        pe = jnp.asarray(potential_fn(x), dtype)
        log_weight_new = traj.log_aux - pe
        return x, pe, log_weight_new, traj.diverging | ~jnp.isfinite(log_weight_new), traj.denoiser_state

    if num_proposals == 1:
        x, pe, log_weight_new, diverging, state = propose(key_traj)
        if correction == "mh":
            log_ratio = log_weight_new - log_weight
            accept_prob = jnp.where(diverging, 0.0, jnp.exp(jnp.minimum(log_ratio, 0.0)))
            accept = jax.random.uniform(key_accept, dtype=dtype) < accept_prob
        else:
            accept_prob = jnp.where(diverging, 0.0, 1.0)
            accept = ~diverging
        return Move(
            accept, x, pe, log_weight_new, accept_prob.astype(dtype), diverging,
            jnp.where(diverging, -jnp.inf, log_weight_new), state, x[None],
        )
    if integrator.exact:
        # Drawn in one batch from ν rather than vmapped over keys: batched random bits took XLA
        # a second longer to compile. The path's terms cancel in the weight (trajectory._exact_trajectory).
        xs = denoiser.sample(key_traj, num_proposals).astype(dtype)
        pes, log_weights = _evaluate(xs, potential_fn, denoiser.log_prob, dtype, chunk)
        divergings = ~(jnp.all(jnp.isfinite(xs), -1) & jnp.isfinite(log_weights))
        states = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (num_proposals,) + jnp.shape(a)), denoiser_state)
    else:
        xs, pes, log_weights, divergings, states = jax.vmap(propose)(jax.random.split(key_traj, num_proposals))
    if correction == "mh":
        return isir_select(key_accept, log_weight, xs, pes, log_weights, divergings, states)
    proposal_log_weight = jnp.where(divergings, -jnp.inf, log_weights)
    chosen = jnp.argmax(~divergings)
    accept = ~divergings[chosen]

    def take(a):
        return a[chosen]

    return Move(
        accept, xs[chosen], pes[chosen], log_weights[chosen], accept.astype(dtype), jnp.any(divergings),
        proposal_log_weight, jax.tree_util.tree_map(take, states), xs,
    )


def isir_select(rng_key, log_weight, xs, pes, log_weights, divergings, states=()):
    """The i-SIR step: the next point among the current one (log weight ``log_weight``) and the
    ``K`` proposals ``xs``, with probability proportional to the weights. Returns a :class:`Move`.

    Exact for any proposal whose weights are the target's density over the proposal's (up to one
    constant): a Gibbs step on the index of an ensemble of one target draw and ``K`` proposal
    draws (Andrieu, Lee & Vihola 2018). A NaN log weight marks a proposal not made (see
    :func:`made_proposals`): it gets no weight.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> move = isir_select(jax.random.PRNGKey(0), -jnp.inf, jnp.ones((2, 3)), jnp.zeros(2),
        ...                    jnp.zeros(2), jnp.zeros(2, bool))
        >>> bool(move.accept), float(move.accept_prob)   # a current point without weight is always left
        (True, 1.0)
    """
    dtype = log_weights.dtype
    proposal_log_weight = jnp.where(divergings, -jnp.inf, log_weights)
    logits = jnp.concatenate([jnp.reshape(jnp.asarray(log_weight, dtype), (1,)), proposal_log_weight])
    # A current point of weight −inf (no path yet) is left for any finite proposal.
    logits = jnp.where(jnp.isnan(logits), -jnp.inf, logits)
    probs = jax.nn.softmax(logits)
    stay = jnp.where(jnp.all(jnp.isinf(logits) & (logits < 0)), 1.0, probs[0])
    pick = jax.random.categorical(rng_key, logits)
    accept = (pick > 0) & jnp.isfinite(logits[pick])
    chosen = jnp.maximum(pick - 1, 0)

    def take(a):
        return a[chosen]

    return Move(
        accept, xs[chosen], pes[chosen], log_weights[chosen], (1.0 - stay).astype(dtype), jnp.any(divergings),
        proposal_log_weight, jax.tree_util.tree_map(take, states), xs,
    )


def _evaluate(xs, potential_fn, log_prob, dtype, chunk=PROPOSAL_CHUNK, num_active=None):
    """Potentials and exact log weights of the proposals ``xs``, ``chunk`` rows at a time.

    With ``num_active`` (traced), only the chunks that start below it are evaluated; the rest
    come back NaN (proposals not made: :func:`isir_select` gives them no weight)."""
    k, d = xs.shape
    chunk = _chunk_size(k, chunk)

    def one(args):
        j, x = args

        def evaluate():
            pe = jax.vmap(potential_fn)(x).astype(dtype)
            return pe, -jax.vmap(log_prob)(x).astype(dtype) - pe

        if num_active is None:
            return evaluate()
        skipped = jnp.full((chunk,), jnp.nan, dtype)
        return jax.lax.cond(j * chunk < num_active, evaluate, lambda: (skipped, skipped))

    pes, log_weights = jax.lax.map(one, (jnp.arange(k // chunk), xs.reshape(k // chunk, chunk, d)))
    return pes.reshape(k), log_weights.reshape(k)


def _chunk_size(num_proposals, chunk):
    """The proposals are evaluated ``chunk`` at a time where it divides their number, else all at once."""
    return chunk if num_proposals % chunk == 0 else num_proposals


def made_proposals(num_proposals, chunk, num_active):
    """Which of ``num_proposals`` proposals :func:`_evaluate` makes when ``num_active`` are asked
    for: whole chunks.

    Examples:
        >>> made_proposals(8, 4, 3).tolist()
        [True, True, True, True, False, False, False, False]
    """
    chunk = _chunk_size(num_proposals, chunk)
    return (jnp.arange(num_proposals) // chunk) * chunk < num_active


def check_combination(denoiser, integrator, correction, final):
    """Raise ``ValueError`` for a combination whose exact correction is not defined."""
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be 'mh' or None, got {correction!r}")
    if final not in FINALS:
        raise ValueError(f"final must be one of {FINALS}, got {final!r}")
    if correction is None:
        return
    if final == "product":
        if not hasattr(denoiser, "sample_product"):
            raise ValueError(
                f"final='product' draws each coordinate from the tilted measure's marginal on a finite set, "
                f"which {type(denoiser).__name__} does not give; use a discrete denoiser (Discrete, IsingMeanField)"
            )
        denoiser.check_product()
    elif final != "gaussian":
        raise ValueError(
            f"correction='mh' needs a final draw with a density; final={final!r} is deterministic. "
            "Use final='gaussian' (or 'product' on a finite set) or correction=None."
        )
    elif not denoiser.has_density:
        raise ValueError(
            f"{type(denoiser).__name__} describes a measure on finitely many points, which has no density "
            "and cannot propose for the exact kernel with a Gaussian final draw; on a discrete target use "
            "final='product', otherwise Empirical(samples) (smoothed) or correction=None"
        )
    if integrator.exact and not (hasattr(denoiser, "sample") and hasattr(denoiser, "log_prob")):
        raise ValueError(
            f"{integrator!r} draws paths from the denoiser's own measure, which {type(denoiser).__name__} "
            "cannot sample; use a time-stepping integrator such as SecondOrder()"
        )
    if not integrator.supports_correction:
        raise ValueError(f"{integrator!r} has no tractable proposal density; use correction=None")
    if not integrator.stochastic and not denoiser.deterministic:
        raise ValueError(
            f"{integrator!r} is a deterministic flow whose change of variables needs a deterministic "
            f"denoiser, but {type(denoiser).__name__} is randomised; use a stochastic integrator "
            "such as SecondOrder() or correction=None."
        )
