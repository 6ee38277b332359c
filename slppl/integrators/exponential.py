"""The OU / DDPM exponential integrator, run in SL coordinates."""

import jax.numpy as jnp

from .base import Integrator
from .euler import EulerMaruyama


class OUExponential(Integrator):
    """The DDPM exponential integrator of the reverse OU process, mapped to SL time.

    With ``s = ½·log((t+1)/t)`` and ``X = y/√(t(t+1))``, the reverse OU SDE
    ``dX = (X + 2∇log q_s(X)) dτ + √2 dB`` with the score frozen over a step of length
    ``δ = s − s_next`` is solved exactly:
    ``X' = e^δ X + 2(e^δ − 1)·score + N(0, (e^{2δ} − 1) I)``, with the score from the denoiser by
    Tweedie. In y this is ``y' ~ N(a·y + b·m, v·I)`` with scalars a, b, v. The step out of
    ``t = 0`` (``s = ∞``, where ``X`` is undefined) is an Euler–Maruyama step.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> y, _ = OUExponential().step(jax.random.PRNGKey(0), jnp.ones(2), 1.0, 1.5, jnp.ones(2), None)
        >>> y.shape
        (2,)
    """

    order = 1
    needs_cov = False

    first_transition = EulerMaruyama.transition

    def transition(self, y, t, t_next, m, cov):
        c = jnp.sqrt(t * (t + 1.0))
        c_next = jnp.sqrt(t_next * (t_next + 1.0))
        # e^{2δ} − 1 = h / (t (t_next + 1)), written this way to avoid cancellation for small h.
        e2m1 = (t_next - t) / (t * (t_next + 1.0))
        e = jnp.sqrt(1.0 + e2m1)
        em1 = e2m1 / (e + 1.0)
        a = c_next / c * (e - 2.0 * em1 * (t + 1.0))
        b = 2.0 * c_next * c * em1
        v = c_next**2 * e2m1
        return a * y + b * m, v
