"""The channel's own move on two-valued coordinates: exact whenever the tilted law is a product."""

import jax
import jax.numpy as jnp
import numpy as np

from .._random import normal
from .base import Integrator


class TwoPoint(Integrator):
    """``y_{k+1} = y_k + h·x̃ + √h·ξ`` with ``x̃`` drawn coordinatewise from the two-point law of mean ``m``.

    Under the target, ``y_{t+h} − y_t = h·x + √h·ξ`` with ``x ~ μ_{t,y}``. On a finite set whose
    coordinates take two values ``a_i < b_i`` (spins, indicators), the denoiser's mean fixes each
    coordinate's marginal, ``P(x_i = b_i) = (m_i − a_i)/(b_i − a_i)``; drawing ``x̃`` from the product
    of those marginals is this move. Its density, a product of two-component Gaussian mixtures, is
    exact, so the path-space correction applies. Where the tilted law is a product (independent
    coordinates) the move is the target's own transition at any step size; elsewhere only the
    denoiser's neglect of the correlations remains. A Gaussian step (``SecondOrder``) on the same
    law errs at every step: on 200 independent spins its log weights spread by 4.1 at 50 Karras
    steps where this move's are exactly zero (``benchmarks/discrete_integrators.py``).

    Args:
        values: ``(a, b)`` for every coordinate, a ``(d, 2)`` array (as :class:`MeanField`'s).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> step = TwoPoint([[-1.0, 1.0], [0.0, 1.0]])
        >>> y, log_q = step.step(jax.random.PRNGKey(0), jnp.zeros(2), 0.0, 0.5, jnp.array([0.0, 0.9]), None)
        >>> y.shape, bool(jnp.isclose(log_q, step.log_prob(jnp.zeros(2), 0.0, 0.5, jnp.array([0.0, 0.9]), None, y)))
        ((2,), True)
    """

    def __init__(self, values):
        values = np.asarray(values, dtype=float)
        if values.ndim != 2 or values.shape[1] != 2 or not np.all(values[:, 1] > values[:, 0]):
            raise ValueError(f"values must be a (d, 2) array of pairs a < b, got shape {values.shape}")
        self.values = values

    def _marginals(self, m):
        a = jnp.asarray(self.values[:, 0], m.dtype)
        b = jnp.asarray(self.values[:, 1], m.dtype)
        return a, b, jnp.clip((m - a) / (b - a), 0.0, 1.0)

    def step(self, rng_key, y, t, t_next, m, cov):
        a, b, p = self._marginals(m)
        h = t_next - t
        key_x, key_noise = jax.random.split(rng_key)
        x = jnp.where(jax.random.uniform(key_x, y.shape, y.dtype) < p, b, a)
        y_next = y + h * x + jnp.sqrt(h) * normal(key_noise, y.shape, y.dtype)
        return y_next, self.log_prob(y, t, t_next, m, cov, y_next)

    first_step = step

    def log_prob(self, y, t, t_next, m, cov, y_next):
        a, b, p = self._marginals(m)
        h = t_next - t
        dy = y_next - y
        log_a = jnp.log1p(-p) - 0.5 * (dy - h * a) ** 2 / h
        log_b = jnp.log(p) - 0.5 * (dy - h * b) ** 2 / h
        return jnp.sum(jnp.logaddexp(log_a, log_b)) - 0.5 * y.shape[-1] * jnp.log(2 * jnp.pi * h)

    first_log_prob = log_prob

    def __repr__(self):
        return f"TwoPoint(values of {self.values.shape[0]} coordinates)"
