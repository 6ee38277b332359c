"""The probability-flow ODE, with the change-of-variables log-determinant."""

import jax.numpy as jnp

from .base import Integrator, move, second_order_moments


class ProbabilityFlowODE(Integrator):
    """Deterministic flow ``dy/dt = ½·m(y, t) + y/(2t)`` with the marginals of the SL SDE.

    A flow from the single point ``y_0 = 0`` cannot spread mass, so the step out of ``t = 0`` is
    the stochastic second-order Gaussian step; afterwards each step is the exponential
    integrator of the linear part with ``m`` frozen,
    ``y' = √(t'/t)·y + (t' − √(t·t'))·m``, exact when ``m`` is constant. Its Jacobian
    ``√(t'/t)·I + (t' − √(t·t'))·Cov(x | y)`` gives the log-determinant, so the density of
    ``y_K`` (and with it the exact correction) is tractable; this needs a deterministic denoiser.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> y, log_q = ProbabilityFlowODE().step(None, jnp.ones(2), 1.0, 4.0, jnp.ones(2), jnp.zeros((2, 2)))
        >>> y.tolist(), round(float(log_q), 4)   # √4·y + (4 − 2)·m ; −log det(2·I)
        ([4.0, 4.0], -1.3863)
    """

    order = 1
    stochastic = False
    needs_cov = True

    def first_step(self, rng_key, y, t, t_next, m, cov):
        return move(rng_key, *second_order_moments(y, t_next - t, m, cov))

    def log_prob(self, y, t, t_next, m, cov, y_next):
        raise NotImplementedError(
            "a deterministic flow gives a path it did not propose no density; local moves (num_local > 0) "
            "need a stochastic integrator such as SecondOrder()"
        )

    def step(self, rng_key, y, t, t_next, m, cov):
        ratio = jnp.sqrt(t_next / t)
        gain = t_next - jnp.sqrt(t * t_next)
        jac = ratio * jnp.eye(y.shape[-1], dtype=y.dtype) + gain * cov
        sign, logdet = jnp.linalg.slogdet(jac)
        log_q = jnp.where(sign > 0, -logdet, jnp.nan)
        return ratio * y + gain * m, log_q
