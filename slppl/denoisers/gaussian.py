"""The exact denoiser of a Gaussian ``N(mean, cov)``."""

import numpy as np

from .base import as_array
from .mixture import MixtureDenoiser


class Gaussian(MixtureDenoiser):
    """Exact denoiser of ``N(mean, cov)``: ``m(y, t) = (Σ⁻¹ + tI)⁻¹(Σ⁻¹a + y)``.

    With a Laplace approximation (MAP and inverse Hessian) this is the cheapest sensible SL
    proposal and the baseline every other denoiser must beat.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> den = Gaussian(jnp.zeros(2), jnp.eye(2))
        >>> x_hat, _, _ = den.estimate(jax.random.PRNGKey(0), jnp.ones(2), 1.0, ())
        >>> x_hat.tolist()
        [0.5, 0.5]
    """

    def __init__(self, mean, cov):
        mean = as_array(mean, "mean", 1)
        cov = np.asarray(as_array(cov, "cov", 2))
        super().__init__(np.ones(1), mean[None, :], cov[None, :, :])
