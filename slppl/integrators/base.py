"""What every integrator declares, and the Gaussian moves they share.

An integrator advances ``y`` from ``t`` to ``t_next`` given the drift ``m`` (and, if it asks for it,
``C = Cov(x | y_t)``) and returns ``(y_next, log_q)``:

- stochastic integrators: ``log_q`` is the log density of the move, so a path's proposal density
  is the sum of the ``log_q``;
- deterministic ones (the probability-flow ODE): ``log_q = −log|det ∂y_next/∂y|``, so the density
  of ``y_K`` follows by change of variables from the one stochastic first step.

``first_step`` is the move out of ``t = 0`` (where ``y = 0``); most integrators use ``step``.
"""

import jax
import jax.numpy as jnp

from .._random import normal


class Integrator:
    """Base class. Attributes: ``order`` (weak order in the step size), ``stochastic``,
    ``needs_cov`` (whether ``step`` uses ``Cov(x | y_t)``), ``supports_correction`` (whether the
    proposal density is tractable, so the exact MH correction can be applied).

    A stochastic integrator defines :meth:`transition`, the Gaussian law of ``y_next``; drawing
    (:meth:`step`) and scoring a given move (:meth:`log_prob`, which the composite kernel needs to
    weigh a path it did not propose) both follow from it.
    """

    order = 1
    stochastic = True
    needs_cov = False
    supports_correction = True
    exact = False

    def transition(self, y, t, t_next, m, cov):
        """``(loc, var)`` of ``y_next``: ``var`` a scalar (``var·I``) or a ``(d, d)`` covariance."""
        raise NotImplementedError

    def first_transition(self, y, t, t_next, m, cov):
        return self.transition(y, t, t_next, m, cov)

    def first_step(self, rng_key, y, t, t_next, m, cov):
        return move(rng_key, *self.first_transition(y, t, t_next, m, cov))

    def step(self, rng_key, y, t, t_next, m, cov):
        return move(rng_key, *self.transition(y, t, t_next, m, cov))

    def first_log_prob(self, y, t, t_next, m, cov, y_next):
        return move_log_prob(y_next, *self.first_transition(y, t, t_next, m, cov))

    def log_prob(self, y, t, t_next, m, cov, y_next):
        """Log density of the move ``y → y_next`` (stochastic integrators)."""
        return move_log_prob(y_next, *self.transition(y, t, t_next, m, cov))

    def __repr__(self):
        return f"{type(self).__name__}()"


def move(rng_key, loc, var):
    """Draw from ``N(loc, var)`` (scalar ``var·I`` or full covariance) and return ``(y, log density)``."""
    if jnp.ndim(var) == 2:
        return gaussian_move(rng_key, loc, var)
    return isotropic_move(rng_key, loc, var)


def move_log_prob(y, loc, var):
    """``log N(y; loc, var)`` for a scalar ``var·I`` or a full covariance."""
    d = loc.shape[-1]
    if jnp.ndim(var) == 2:
        chol = jnp.linalg.cholesky(var)
        z = jax.scipy.linalg.solve_triangular(chol, y - loc, lower=True)
        return -0.5 * jnp.sum(z**2) - jnp.sum(jnp.log(jnp.diag(chol))) - 0.5 * d * jnp.log(2 * jnp.pi)
    return -0.5 * jnp.sum((y - loc) ** 2) / var - 0.5 * d * jnp.log(2 * jnp.pi * var)


def isotropic_move(rng_key, loc, var):
    """Draw ``y ~ N(loc, var·I)`` and return ``(y, log density)``."""
    xi = normal(rng_key, loc.shape, loc.dtype)
    d = loc.shape[-1]
    log_q = -0.5 * jnp.sum(xi**2) - 0.5 * d * jnp.log(2 * jnp.pi * var)
    return loc + jnp.sqrt(var) * xi, log_q


def gaussian_move(rng_key, loc, cov):
    """Draw ``y ~ N(loc, cov)`` (full covariance) and return ``(y, log density)``.

    A covariance that is not positive definite gives NaN, which the kernel flags as divergent.
    """
    chol = jnp.linalg.cholesky(cov)
    xi = normal(rng_key, loc.shape, loc.dtype)
    d = loc.shape[-1]
    log_q = -0.5 * jnp.sum(xi**2) - jnp.sum(jnp.log(jnp.diag(chol))) - 0.5 * d * jnp.log(2 * jnp.pi)
    return loc + chol @ xi, log_q


def second_order_moments(y, h, m, cov):
    """``(y + h·m, h·I + h²·C)``: the second-order step, exact for Gaussian targets at any h."""
    return y + h * m, h * jnp.eye(y.shape[-1], dtype=y.dtype) + h**2 * cov
