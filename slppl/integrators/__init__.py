"""Integrators of the SL SDE (and its probability-flow ODE), each declaring its properties.

=====================  =====  ==========  =========  ====================================
integrator             order  stochastic  needs cov  exact correction
=====================  =====  ==========  =========  ====================================
EulerMaruyama          1      yes         no         yes
SecondOrder (default)  2      yes         yes        yes
OUExponential          1      yes         no         yes
ProbabilityFlowODE     1      no          yes        yes, with a deterministic denoiser
Exact                  ∞      yes         no         yes, for a denoiser that samples ν
TwoPoint               1      yes         no         yes, exact on product laws
=====================  =====  ==========  =========  ====================================

The correction also needs a final draw with a density (``final="gaussian"``). ``Exact`` needs a
denoiser with ``sample`` and ``log_prob`` (the Gaussian and mixture families). ``TwoPoint`` is for
targets on two-valued coordinates (discrete latents; the default there), with ``final="product"``.
"""

from .base import Integrator
from .euler import EulerMaruyama
from .exact import Exact
from .exponential import OUExponential
from .ode import ProbabilityFlowODE
from .second_order import SecondOrder
from .two_point import TwoPoint

__all__ = ["Integrator", "EulerMaruyama", "SecondOrder", "OUExponential", "ProbabilityFlowODE", "Exact", "TwoPoint"]
