"""The covariance-aware (second-order) Gaussian step."""

from .base import Integrator, second_order_moments


class SecondOrder(Integrator):
    """``y_{k+1} ~ N(y_k + h·m, h·I + h²·Cov(x | y_k))``.

    Under the target, ``y_{t+h} − y_t = h·x + √h·ξ`` with ``x ~ μ_{t,y}``; matching the first two
    moments of x makes the step exact for Gaussian targets at any step size. The default integrator.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> y, log_q = SecondOrder().step(jax.random.PRNGKey(0), jnp.zeros(2), 0.0, 0.1,
        ...                               jnp.ones(2), 0.5 * jnp.eye(2))
        >>> y.shape
        (2,)
    """

    order = 2
    needs_cov = True

    def transition(self, y, t, t_next, m, cov):
        return second_order_moments(y, t_next - t, m, cov)
