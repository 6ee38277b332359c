"""slppl: stochastic-localization samplers as MCMC kernels for probabilistic programs.

Example:
    >>> from slppl import SL, site_layout
    >>> from slppl.denoisers import Gaussian, GaussianMixture, Discrete, Empirical
"""

from . import accuracy, adaptation, denoisers, diagnostics, integrators, plots, time_grids
from .calibration import sbc
from .compilation_cache import enable_compilation_cache
from .evidence import LogEvidence, log_evidence
from .kernel import SLState
from .layout import flat_potential, flatten_draws, site_layout
from .numpyro_adapter import SL
from .simulate import simulate
from .trajectory import sample, sample_trajectory
from .tweedie import denoiser_from_score, score_from_denoiser

from ._version import __version__

__all__ = [
    "SL",
    "SLState",
    "site_layout",
    "flat_potential",
    "flatten_draws",
    "simulate",
    "sbc",
    "log_evidence",
    "LogEvidence",
    "enable_compilation_cache",
    "compare",
    "accuracy",
    "plots",
    "sample_trajectory",
    "adaptation",
    "denoisers",
    "diagnostics",
    "integrators",
    "time_grids",
    "score_from_denoiser",
    "denoiser_from_score",
]


def __getattr__(name):
    # slppl.compare is imported on first use, so that `python -m slppl.compare` runs a module not
    # yet imported (runpy warned on every run); the module is callable as the function.
    if name == "compare":
        import importlib

        return importlib.import_module(".compare", __name__)
    raise AttributeError(f"module 'slppl' has no attribute {name!r}")
