"""Denoisers: estimates of ``m(y, t) = E[x | y_t = y]`` behind one signature.

Example:
    >>> from slppl.denoisers import Gaussian, GaussianMixture, Discrete, Empirical
"""

from .amortized import Amortized
from .base import Denoiser, FunctionDenoiser
from .discrete import Discrete
from .empirical import Empirical
from .gaussian import Gaussian
from .gaussian_mixture import GaussianMixture
from .laplace import laplace
from .inner_gibbs import InnerGibbs
from .mean_field import MeanField
from .tap import TAP
from .learned import Learned  # needs the extra slppl[learn] (equinox, optax) only when used

__all__ = ["Denoiser", "FunctionDenoiser", "Gaussian", "GaussianMixture", "Discrete", "Empirical", "Learned", "Amortized", "laplace", "MeanField", "TAP", "InnerGibbs"]
