"""The options both adapters (NumPyro, Pyro) share: validated once, before any sampling.

``resolve`` turns ``SL(...)``'s keyword arguments into an :class:`Options`: the denoiser family
the kernel fits (or ``None`` for a given denoiser), the integrator, the grid's times and the
number of proposals, with a clear ``ValueError`` for a combination that cannot work.
"""

from typing import Any, NamedTuple

import numpy as np

from . import adaptation
from . import kernel as core
from .denoisers.base import Denoiser
from .discrete_model import DISCRETE_DENOISERS
from .integrators import Exact, Integrator, SecondOrder
from .time_grids import Explicit, UniformOU

__all__ = ["Options", "resolve"]

DEFAULT_NUM_STEPS = 50
# A fitted denoiser's paths are drawn exactly (integrators.Exact) unless another integrator is
# asked for; with SecondOrder, a Gaussian is exact in one step, a mixture needs steps at small t.
FITTED_NUM_STEPS = {"gaussian": 1, "laplace": 1, "mixture": 25, "learned": 25}
DEFAULT_PROPOSALS = 32


class Options(NamedTuple):
    """``SL``'s validated options (the adapters keep them as attributes of the same names).

    Fields:
        family: the family the kernel fits during warmup, or ``None`` for a given denoiser.
        denoiser: the given denoiser (or the family name / ``None`` as passed).
        grid, times, num_steps: the time grid, its times (scaled for a given denoiser's scale) and steps.
        integrator, correction, final, cov_floor: how a path is drawn and corrected.
        num_walkers, num_local, num_proposals, target_accept_prob: the adaptive kernel's settings
            and the number of paths per step.
    """

    family: Any
    denoiser: Any
    grid: Any
    times: Any
    num_steps: int
    integrator: Any
    correction: Any
    final: str
    cov_floor: float
    num_walkers: int
    num_local: Any
    num_proposals: int
    target_accept_prob: float


def resolve(denoiser=None, num_steps=None, grid=None, integrator=None, correction="mh", final="gaussian", cov_floor=0.0,
            num_walkers=16, num_local=None, num_proposals=None, target_accept_prob=0.8):
    """Validate ``SL``'s options and fill in the defaults (see :class:`slppl.SL`).

    Examples:
        >>> opts = resolve()          # no denoiser: a mixture fitted during warmup, exact paths
        >>> opts.family, type(opts.integrator).__name__, opts.num_steps, opts.num_proposals
        ('mixture', 'Exact', 1, 32)
    """
    family = _family(denoiser)
    if integrator is None:
        # A network's paths cannot be drawn exactly: "learned" integrates them.
        integrator = SecondOrder() if family in (None, "learned") or family in DISCRETE_DENOISERS else Exact()
    if not isinstance(integrator, Integrator):
        raise TypeError(f"integrator must be an slppl Integrator, got {type(integrator).__name__}")
    if not cov_floor >= 0:
        raise ValueError(f"cov_floor must be >= 0, got {cov_floor}")
    grid_ = UniformOU() if grid is None else grid
    if num_steps is None and not isinstance(grid_, Explicit):
        if family is None:
            num_steps = DEFAULT_NUM_STEPS
        else:
            num_steps = 1 if integrator.exact else FITTED_NUM_STEPS.get(family, DEFAULT_NUM_STEPS)
    times = grid_.times(num_steps)
    if grid is None and family is None:
        times = times * _grid_scale(denoiser)
    if family is None:
        core.check_combination(denoiser, integrator, correction, final)
    elif family not in DISCRETE_DENOISERS:  # those are checked once the model is known to be discrete
        _check_adaptive(integrator, correction, final, num_walkers, num_local, family)
    if num_proposals is None:
        num_proposals = 1 if family is None else DEFAULT_PROPOSALS
    if int(num_proposals) != num_proposals or num_proposals < 1:
        raise ValueError(f"num_proposals must be a positive integer, got {num_proposals!r}")
    return Options(family, denoiser, grid_, times, int(times.size - 1), integrator, correction, final,
                   float(cov_floor), int(num_walkers), None if num_local is None else int(num_local),
                   int(num_proposals), float(target_accept_prob))


def _family(denoiser):
    """``None`` for a given denoiser, else the family the kernel fits during warmup."""
    if denoiser is None:
        return "mixture"
    if isinstance(denoiser, str):
        if denoiser not in adaptation.FAMILIES and denoiser not in DISCRETE_DENOISERS:
            raise ValueError(
                f"denoiser={denoiser!r} is not a family SL can build; use one of {sorted(adaptation.FAMILIES)} "
                f"(continuous latents), {sorted(DISCRETE_DENOISERS)} (discrete latents), None or a Denoiser object"
            )
        return denoiser
    if not isinstance(denoiser, Denoiser):
        raise TypeError(f"denoiser must be an slppl Denoiser, a family name or None, got {type(denoiser).__name__}")
    return None


def _grid_scale(denoiser):
    """Factor on the default grid's times for a given denoiser: ``1/σ²_min`` when its measure's
    smallest coordinate variance is below 1, else 1.

    The default grid suits unit scale. At scale σ the SNR ``t·σ²`` reached at ``t_max`` falls
    with σ² and the path ends far from localised (banana × 0.1 with a fitted mixture: acceptance
    0.31 on the default grid, 0.74 with this factor); larger scales did fine unscaled (× 10: 0.86).
    """
    var = denoiser.marginal_variance()
    if var is None:
        return 1.0
    smallest = float(np.min(np.asarray(var)))
    return 1.0 / smallest if 0.0 < smallest < 1.0 else 1.0


def _check_adaptive(integrator, correction, final, num_walkers, num_local, family):
    if family == "learned" and integrator.exact:
        raise ValueError(f"denoiser='learned' needs an integrator that follows the network, such as SecondOrder(); "
                         f"{integrator!r} draws exact paths of a mixture only")
    if correction != "mh" or final != "gaussian":
        raise ValueError(
            "a denoiser built during warmup is an approximation; SL runs it with the exact correction only "
            "(correction='mh', final='gaussian'). For raw draws, fit one first (e.g. GaussianMixture.fit) and pass it."
        )
    if not integrator.stochastic:
        raise ValueError(f"{integrator!r} is deterministic; the composite kernel needs a stochastic integrator "
                         "such as SecondOrder()")
    if int(num_walkers) != num_walkers or num_walkers < 2:
        raise ValueError(f"num_walkers must be an integer >= 2, got {num_walkers!r}")
    if num_local is not None and (int(num_local) != num_local or num_local < 0):
        raise ValueError(f"num_local must be a non-negative integer, got {num_local!r}")
