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


class Integrator:
    """Base class. Attributes: ``order`` (weak order in the step size), ``stochastic``,
    ``needs_cov`` (whether ``step`` uses ``Cov(x | y_t)``), ``supports_correction`` (whether the
    proposal density is tractable, so the exact MH correction can be applied)."""

    order = 1
    stochastic = True
    needs_cov = False
    supports_correction = True

    def first_step(self, rng_key, y, t, t_next, m, cov):
        return self.step(rng_key, y, t, t_next, m, cov)

    def step(self, rng_key, y, t, t_next, m, cov):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


def isotropic_move(rng_key, loc, var):
    """Draw ``y ~ N(loc, var·I)`` and return ``(y, log density)``."""
    xi = jax.random.normal(rng_key, loc.shape, loc.dtype)
    d = loc.shape[-1]
    log_q = -0.5 * jnp.sum(xi**2) - 0.5 * d * jnp.log(2 * jnp.pi * var)
    return loc + jnp.sqrt(var) * xi, log_q


def gaussian_move(rng_key, loc, cov):
    """Draw ``y ~ N(loc, cov)`` (full covariance) and return ``(y, log density)``.

    A covariance that is not positive definite gives NaN, which the kernel flags as divergent.
    """
    chol = jnp.linalg.cholesky(cov)
    xi = jax.random.normal(rng_key, loc.shape, loc.dtype)
    d = loc.shape[-1]
    log_q = -0.5 * jnp.sum(xi**2) - jnp.sum(jnp.log(jnp.diag(chol))) - 0.5 * d * jnp.log(2 * jnp.pi)
    return loc + chol @ xi, log_q


def second_order_move(rng_key, y, h, m, cov):
    """``y_next ~ N(y + h·m, h·I + h²·C)``: exact for Gaussian targets at any step size."""
    eye = jnp.eye(y.shape[-1], dtype=y.dtype)
    return gaussian_move(rng_key, y + h * m, h * eye + h**2 * cov)
