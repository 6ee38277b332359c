"""Partial-path SL moves: keep the observation path up to a restart time ``t_r``, redraw the rest.

Under the extended target the path is ``y_t = t·x + B_t``; its value at ``t_r`` summarises what the
path up to ``t_r`` says about ``x``. A partial-path move

1. draws ``y = t_r·x + √t_r·ξ`` from its exact conditional given the current ``x`` (a Gibbs step);
2. proposes ``K`` points from the proposal's own tilted measure ``ν_{t_r, y}(x') ∝ ν(x')·N(y; t_r·x', t_r·I)``
   (for a Gaussian mixture ν, again a Gaussian mixture: :func:`slppl.denoisers.mixture.tilted_components`),
   i.e. the SL path of ν continued from ``(t_r, y)``, drawn exactly;
3. picks the next point by i-SIR among the current one and the proposals
   (:func:`slppl.kernel.isir_select`) with the *same* weights ``μ(x')/ν(x')`` as the global move:
   the tilt ``N(y; t_r·x', t_r·I)`` is common to the target's and the proposal's conditionals and
   cancels.

So the move is exact for any ``t_r`` and any ν. ``t_r = 0`` is the global move; as ``t_r`` grows the
proposals concentrate around ``y/t_r ≈ x`` (within about ``1/√t_r`` in whitened units) and the
weights of nearby points differ less, so acceptance rises toward 1 while the move becomes local:
``t_r`` trades the size of a jump for its acceptance, which is what a move needs when the
proposal's log weights vary by more than a few units over the posterior (high dimension). It is
the auxiliary-variable construction of Titsias and Papaspiliopoulos (2018) with the fitted
mixture's tilted measure as its proposal.
"""

import jax
import jax.numpy as jnp

from ._random import categorical, normal
from .denoisers.mixture import MixtureDenoiser, tilted_components
from .kernel import PROPOSAL_CHUNK, _evaluate, isir_select, made_proposals

__all__ = ["partial_path_move"]


def partial_path_move(rng_key, x, log_weight, mixture, restart_time, potential_fn, num_proposals, chunk=PROPOSAL_CHUNK,
                      num_active=None):
    """One exact partial-path move from ``x`` against a Gaussian-mixture proposal.

    Args:
        rng_key: PRNG key.
        x: the current point (flat, the coordinates the mixture lives in).
        log_weight: its log weight ``−U(x) − log ν(x)`` (as the exact global move defines it).
        mixture: the proposal ν as :class:`~slppl.denoisers.mixture.MixtureParams`.
        restart_time: ``t_r ≥ 0``; 0 is a global move.
        potential_fn: ``U`` on the same coordinates.
        num_proposals: ``K``, the number of points proposed.
        chunk: proposals evaluated per batch (see :func:`slppl.kernel.imh_proposal`).
        num_active: how many of the ``num_proposals`` to make (traced, rounded up to whole
            chunks; ``None``: all). The others are drawn but never evaluated: their log weight is
            NaN and they cannot be chosen, so the move stays exact for any number made.

    Returns a :class:`slppl.kernel.Move`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from slppl.denoisers import Gaussian
        >>> nu = Gaussian(jnp.zeros(2), jnp.eye(2))
        >>> U = lambda x: 0.5 * x @ x
        >>> x = jnp.array([0.5, -0.5])
        >>> move = partial_path_move(jax.random.PRNGKey(0), x, -U(x) - nu.log_prob(x), nu.params, 4.0, U, 8)
        >>> bool(jnp.isclose(move.accept_prob, 8 / 9))   # ν = μ: every weight equal
        True
    """
    key_y, key_comp, key_noise, key_pick = jax.random.split(rng_key, 4)
    dtype = x.dtype
    d = x.shape[0]
    t = jnp.asarray(restart_time, dtype)
    y = t * x + jnp.sqrt(t) * jax.random.normal(key_y, (d,), dtype)
    log_w, means, lam, vec = mixture
    logits, m_k, shrink = tilted_components(y, t, log_w, means, lam, vec)
    comp = categorical(key_comp, logits, (num_proposals,))
    z = jnp.sqrt(shrink[comp]) * normal(key_noise, (num_proposals, d), dtype)
    xs = m_k[comp] + (z if vec is None else jnp.einsum("kij,kj->ki", vec[comp], z))

    pes, log_weights = _evaluate(xs, potential_fn, MixtureDenoiser.from_params(mixture).log_prob, dtype, chunk,
                                 num_active)
    divergings = ~(jnp.all(jnp.isfinite(xs), -1) & jnp.isfinite(log_weights))
    if num_active is not None:
        divergings = divergings & made_proposals(num_proposals, chunk, num_active)
    return isir_select(key_pick, log_weight, xs, pes, log_weights, divergings)
