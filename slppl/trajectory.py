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

from .integrators.base import gaussian_move
from .observation import IsotropicGaussian

__all__ = ["Trajectory", "sample_trajectory", "sample", "FINALS"]

FINALS = ("gaussian", "mean", "sample")


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
        dim: dimension of x when the denoiser does not know it.

    Example:
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
    else:
        x = denoiser.sample_posterior(keys[-1, 0], y, t_end, state)
        log_r = zero
    log_aux = base_sum - log_q_sum + observation.tilt(y, x, t_end) - log_r
    diverging = ~(jnp.all(jnp.isfinite(x)) & jnp.isfinite(log_aux))
    return Trajectory(x, y, log_aux, diverging, state)


def sample(rng_key, denoiser, num_samples, times, integrator, final="gaussian", cov_floor=0.0, dim=None):
    """``num_samples`` independent raw SL draws (a ``vmap`` of :func:`sample_trajectory`).

    The denoiser state is shared (not carried between draws). Returns a batched
    :class:`Trajectory`; ``x`` has shape ``(num_samples, d)``.

    Example:
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
