"""The exact denoiser of a Gaussian ``N(mean, cov)``."""

import numpy as np

from ..layout import flatten_draws, model_arguments
from .base import as_array
from .fit import fit_gaussian
from .mixture import MixtureDenoiser


class Gaussian(MixtureDenoiser):
    """Exact denoiser of ``N(mean, cov)``: ``m(y, t) = (Σ⁻¹ + tI)⁻¹(Σ⁻¹a + y)``.

    With a Laplace approximation (MAP and inverse Hessian) this is the cheapest sensible SL
    proposal and the baseline every other denoiser must beat.

    Examples:
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

    @classmethod
    def fit(cls, draws, model=None, *model_args, **model_kwargs):
        """The Gaussian of the draws' mean and covariance (shrunk toward its diagonal).

        ``draws``: a flat ``(n, d)`` array of unconstrained vectors, or NumPyro's sample dict
        (``mcmc.get_samples()``) with ``model`` and its arguments (see :func:`slppl.flatten_draws`).
        With the default second-order step its SL proposal is exactly this Gaussian, so one
        step is enough (``SL(..., num_steps=1)``).

        Examples:
            >>> import jax
            >>> den = Gaussian.fit(2.0 + jax.random.normal(jax.random.PRNGKey(0), (2000, 3)))
            >>> den.dim, bool(abs(den.means[0, 0] - 2.0) < 0.1)
            (3, True)
        """
        model_args, model_kwargs = model_arguments(model_args, model_kwargs, "Gaussian.fit")
        x = flatten_draws(draws, model, *model_args, **model_kwargs)
        return cls(*fit_gaussian(x))
