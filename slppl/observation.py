"""The observation process: the channel through which SL looks at x.

Only the isotropic Gaussian channel ``y_t = t·x + B_t`` exists so far. It is the one place that
knows the channel's likelihood, so the kernel core can build exact importance weights without
knowing which channel it runs.
"""

from typing import NamedTuple

import jax.numpy as jnp

__all__ = ["IsotropicGaussian"]


class IsotropicGaussian(NamedTuple):
    """Isotropic Gaussian channel ``y_t = t·x + B_t`` (``B`` a standard Brownian motion).

    The posterior of x given ``y_t = y`` is the tilted measure
    ``μ_{t,y}(dx) ∝ exp(<y, x> − t|x|²/2) μ(dx)`` and the SL drift is its mean.

    The log density of an increment ``Δy = y_{t+h} − y_t`` given x splits into a part free of x
    (:meth:`log_base`) and the tilt (:meth:`tilt`); summed over a path the tilts telescope into
    ``tilt(y_K, x, t_K)``, which is why a whole path costs one evaluation of the tilt.

    Examples:
        >>> import jax.numpy as jnp
        >>> obs = IsotropicGaussian()
        >>> float(obs.tilt(jnp.ones(2), jnp.ones(2), 2.0))
        0.0
    """

    def drift(self, x_hat):
        """SL drift ``dy = m(y, t) dt + dW``: the denoiser output itself."""
        return x_hat

    def log_base(self, dy, h):
        """``log N(dy; h·x, h·I)`` minus the tilt: the part that does not depend on x."""
        d = dy.shape[-1]
        return -0.5 * jnp.sum(dy**2, -1) / h - 0.5 * d * jnp.log(2 * jnp.pi * h)

    def tilt(self, y, x, t):
        """``<y, x> − t|x|²/2``: the x-dependent part of ``log N(y; t·x, t·I)``."""
        return jnp.sum(y * x, -1) - 0.5 * t * jnp.sum(x**2, -1)

    def log_likelihood(self, y, x, t):
        """``log N(y; t·x, t·I)``, the law of ``y_t`` given x."""
        return self.log_base(y, t) + self.tilt(y, x, t)
