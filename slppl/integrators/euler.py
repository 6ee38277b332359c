"""Euler–Maruyama in y."""

from .base import Integrator


class EulerMaruyama(Integrator):
    """``y_{k+1} = y_k + h·m(y_k, t_k) + √h·ξ``: first order, no covariance needed.

    Cheap per step but biased where ``m`` changes fast (mode selection at small t); the exact
    kernel stays correct, with lower acceptance.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> y, log_q = EulerMaruyama().step(jax.random.PRNGKey(0), jnp.zeros(2), 0.0, 0.1, jnp.ones(2), None)
        >>> y.shape
        (2,)
    """

    order = 1
    needs_cov = False

    def transition(self, y, t, t_next, m, cov):
        h = t_next - t
        return y + h * m, h
