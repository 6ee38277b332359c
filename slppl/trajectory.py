"""One SL trajectory (a ``lax.scan``) and its exact importance weight; batches by ``vmap``.

A trajectory runs ``y`` from ``y_0 = 0`` over the grid, then draws ``x`` from the final
``r(x | y_K) = N(m(y_K), Cov(x | y_K) + floor·I)``. Its log weight against the target
``μ ∝ exp(−U)`` on the extended space (path, x) is ``−U(x) + log_aux`` with

    log_aux = Σ_k log_base(Δy_k) − log q(path) + tilt(y_K, x, t_K) − log r(x | y_K)

(for a deterministic integrator the target term is ``log N(y_K; t_K·x, t_K·I)``, whose x-free
part is ``log_base(y_K, t_K)``). The weight needs only the unnormalised target, which is what makes
path-space independent Metropolis–Hastings exact whatever the denoiser, grid or integrator.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._random import normal
from .integrators.base import gaussian_move, move_log_prob
from .observation import IsotropicGaussian

__all__ = ["Trajectory", "sample_trajectory", "sample", "conditional_path", "path_log_aux", "FINALS"]

FINALS = ("gaussian", "mean", "sample", "product")


class Trajectory(NamedTuple):
    """Output of :func:`sample_trajectory`.

    Fields:
        x: the proposed point (flat, length d).
        y: ``y_K``, the end of the observation path.
        log_aux: the log weight without the target term (add ``−U(x)``).
        diverging: a NaN/Inf appeared anywhere (the proposal must not be accepted).
        denoiser_state: the denoiser's state after the trajectory.
    """

    x: Any
    y: Any
    log_aux: Any
    diverging: Any
    denoiser_state: Any


def _evaluate(denoiser, needs_cov, rng_key, y, t, state):
    if needs_cov:
        m, cov, state, _ = denoiser.estimate_with_cov(rng_key, y, t, state)
        return m, cov, state
    m, state, _ = denoiser.estimate(rng_key, y, t, state)
    return m, None, state


def sample_trajectory(
    rng_key,
    denoiser,
    times,
    integrator,
    denoiser_state=(),
    final="gaussian",
    cov_floor=0.0,
    observation=IsotropicGaussian(),
    dim=None,
):
    """Run one SL trajectory on the grid ``times`` and return a :class:`Trajectory`.

    Args:
        rng_key: PRNG key.
        denoiser: a :class:`~slppl.denoisers.Denoiser`.
        times: grid ``0 = t_0 < … < t_K`` (see :mod:`slppl.time_grids`).
        integrator: an :class:`~slppl.integrators.Integrator`.
        final: ``"gaussian"`` draws ``x ~ N(m, Cov + cov_floor·I)`` at ``t_K`` (a density, needed
            by the exact correction); ``"mean"`` returns ``x = m(y_K, t_K)``; ``"sample"`` draws
            ``x`` from the denoiser's own tilted measure ``μ_{t_K, y_K}`` (analytic denoisers; on a
            discrete target it lands on the support). The last two are for raw draws only.
            ``"product"``: for a target on a finite set (discrete latents), draws each coordinate
            from its own marginal under the denoiser's tilted measure at ``t_K`` (the denoiser's
            ``sample_product``); a law on the finite set with a probability mass, so the exact
            correction carries over (the weights are then against counting measure).
        dim: dimension of x when the denoiser does not know it.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from slppl.denoisers import Gaussian
        >>> from slppl.integrators import SecondOrder
        >>> from slppl.time_grids import Geometric
        >>> traj = sample_trajectory(jax.random.PRNGKey(0), Gaussian(jnp.zeros(3), jnp.eye(3)),
        ...                          Geometric().times(10), SecondOrder())
        >>> traj.x.shape, bool(traj.diverging)
        ((3,), False)
    """
    if final not in FINALS:
        raise ValueError(f"final must be one of {FINALS}, got {final!r}")
    dim = denoiser.dim if dim is None else dim
    times = jnp.asarray(times, dtype=jnp.result_type(float))
    if integrator.exact:
        return _exact_trajectory(rng_key, denoiser, times, denoiser_state)
    num_steps = times.shape[0] - 1
    keys = jax.random.split(rng_key, (num_steps + 1, 2))
    needs_cov = integrator.needs_cov

    def advance(step_fn, carry, t, t_next, key_pair):
        y, state, log_q_sum, base_sum = carry
        m, cov, state = _evaluate(denoiser, needs_cov, key_pair[0], y, t, state)
        y_next, log_q = step_fn(key_pair[1], y, t, t_next, observation.drift(m), cov)
        if integrator.stochastic:
            base_sum = base_sum + observation.log_base(y_next - y, t_next - t)
        return y_next, state, log_q_sum + log_q, base_sum

    zero = jnp.zeros((), times.dtype)
    carry = (jnp.zeros(dim, times.dtype), denoiser_state, zero, zero)
    carry = advance(integrator.first_step, carry, times[0], times[1], keys[0])

    def body(carry, xs):
        return advance(integrator.step, carry, *xs), None

    carry, _ = jax.lax.scan(body, carry, (times[1:-1], times[2:], keys[1:-1]))
    y, state, log_q_sum, base_sum = carry
    t_end = times[-1]
    if not integrator.stochastic:
        base_sum = observation.log_base(y, t_end)

    if final == "gaussian":
        m, cov, state, _ = denoiser.estimate_with_cov(keys[-1, 0], y, t_end, state)
        cov = cov + cov_floor * jnp.eye(dim, dtype=cov.dtype)
        x, log_r = gaussian_move(keys[-1, 1], m, cov)
    elif final == "mean":
        x, state, _ = denoiser.estimate(keys[-1, 0], y, t_end, state)
        log_r = zero
    elif final == "product":
        x, log_r, state = denoiser.sample_product(keys[-1, 0], y, t_end, state)
    else:
        x = denoiser.sample_posterior(keys[-1, 0], y, t_end, state)
        log_r = zero
    log_aux = base_sum - log_q_sum + observation.tilt(y, x, t_end) - log_r
    diverging = ~(jnp.all(jnp.isfinite(x)) & jnp.isfinite(log_aux))
    return Trajectory(x, y, log_aux, diverging, state)


def _exact_trajectory(rng_key, denoiser, times, denoiser_state):
    """x ~ ν and the path's end ``y_K = t_K·x + B_{t_K}``; the path's terms cancel in the weight."""
    k_x, k_y = jax.random.split(rng_key)
    x = denoiser.sample(k_x, 1)[0].astype(times.dtype)
    t_end = times[-1]
    y = t_end * x + jnp.sqrt(t_end) * jax.random.normal(k_y, x.shape, x.dtype)
    log_aux = -denoiser.log_prob(x)
    diverging = ~(jnp.all(jnp.isfinite(x)) & jnp.isfinite(log_aux))
    return Trajectory(x, y, log_aux, diverging, denoiser_state)


def sample(rng_key, denoiser, num_samples, times, integrator, final="gaussian", cov_floor=0.0, dim=None):
    """``num_samples`` independent raw SL draws (a ``vmap`` of :func:`sample_trajectory`).

    The denoiser state is shared (not carried between draws). Returns a batched
    :class:`Trajectory`; ``x`` has shape ``(num_samples, d)``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from slppl.denoisers import Gaussian
        >>> from slppl.integrators import SecondOrder
        >>> from slppl.time_grids import Geometric
        >>> out = sample(jax.random.PRNGKey(0), Gaussian(jnp.zeros(2), jnp.eye(2)), 1000,
        ...              Geometric().times(20), SecondOrder())
        >>> out.x.shape
        (1000, 2)
    """
    state = denoiser.init(jnp.zeros(denoiser.dim if dim is None else dim))

    def one(key):
        return sample_trajectory(key, denoiser, times, integrator, state, final, cov_floor, dim=dim)

    return jax.vmap(one)(jax.random.split(rng_key, num_samples))


def conditional_path(rng_key, x, times):
    """A path drawn from its law given x: ``y_{t_k} = t_k·x + B_{t_k}`` at ``t_1, …, t_K``.

    This is the exact conditional of the path under the extended target ``μ(x)·p(path | x)``, so
    after a local move of x a fresh path from it leaves the extended target invariant.
    Returns a ``(K, d)`` array (``y_0 = 0`` is left out).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> path = conditional_path(jax.random.PRNGKey(0), jnp.ones(2), jnp.array([0.0, 1e3, 1e6]))
        >>> (path[-1] / 1e6).round(2).tolist()   # y_t / t → x
        [1.0, 1.0]
    """
    times = jnp.asarray(times, x.dtype)
    h = jnp.diff(times)
    noise = normal(rng_key, (h.shape[0], x.shape[-1]), x.dtype)
    return jnp.cumsum(h[:, None] * x + jnp.sqrt(h)[:, None] * noise, axis=0)


def path_log_aux(
    rng_key, denoiser, times, integrator, path, x, denoiser_state=(), cov_floor=0.0, observation=IsotropicGaussian(),
    final="gaussian",
):
    """``log_aux`` of a given ``(path, x)``: what :func:`sample_trajectory` returns for its own draw.

    The proposal density of a path it did not propose, evaluated move by move with the
    integrator's :meth:`~slppl.integrators.Integrator.log_prob`; the weight of ``(path, x)`` on
    the extended space is ``log_aux − U(x)``. Needs a stochastic integrator and a final draw
    with a density or mass (``final="gaussian"`` or ``"product"``). Returns ``(log_aux,
    denoiser_state)``; ``log_aux`` is ``−inf`` where anything is not finite.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from slppl.denoisers import Gaussian
        >>> from slppl.integrators import SecondOrder
        >>> from slppl.time_grids import Geometric
        >>> times, x = Geometric().times(10), jnp.array([0.3, -0.2])
        >>> path = conditional_path(jax.random.PRNGKey(0), x, times)
        >>> log_aux, _ = path_log_aux(jax.random.PRNGKey(1), Gaussian(jnp.zeros(2), jnp.eye(2)), times,
        ...                           SecondOrder(), path, x)
        >>> U = lambda z: 0.5 * z @ z + jnp.log(2 * jnp.pi)
        >>> bool(abs(log_aux - U(x)) < 1e-3)   # the exact denoiser's weight is 1 (log weight 0)
        True
    """
    times = jnp.asarray(times, x.dtype)
    if integrator.exact:
        log_aux = -denoiser.log_prob(x)
        return jnp.where(jnp.isfinite(log_aux), log_aux, -jnp.inf), denoiser_state
    ys = jnp.concatenate([jnp.zeros((1,) + x.shape, x.dtype), path])
    keys = jax.random.split(rng_key, times.shape[0])
    needs_cov = integrator.needs_cov

    def score(log_prob, carry, y, y_next, t, t_next, key):
        state, total = carry
        m, cov, state = _evaluate(denoiser, needs_cov, key, y, t, state)
        log_q = log_prob(y, t, t_next, observation.drift(m), cov, y_next)
        return state, total + observation.log_base(y_next - y, t_next - t) - log_q

    zero = jnp.zeros((), x.dtype)
    carry = score(integrator.first_log_prob, (denoiser_state, zero), ys[0], ys[1], times[0], times[1], keys[0])

    def body(carry, xs):
        return score(integrator.log_prob, carry, *xs), None

    (state, total), _ = jax.lax.scan(body, carry, (ys[1:-1], ys[2:], times[1:-1], times[2:], keys[1:-1]))
    y, t_end = ys[-1], times[-1]
    if final == "product":
        log_r, state = denoiser.product_log_prob(keys[-1], y, t_end, state, x)
    else:
        m, cov, state, _ = denoiser.estimate_with_cov(keys[-1], y, t_end, state)
        log_r = move_log_prob(x, m, cov + cov_floor * jnp.eye(x.shape[-1], dtype=cov.dtype))
    log_aux = total + observation.tilt(y, x, t_end) - log_r
    return jnp.where(jnp.isfinite(log_aux), log_aux, -jnp.inf), state
