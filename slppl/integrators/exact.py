"""Exact integration of the SL SDE, for denoisers whose measure can be sampled."""

from .base import Integrator


class Exact(Integrator):
    """The SL path drawn exactly: ``x ~ ν``, then ``y_t = t·x + B_t`` on the grid.

    Driven by the exact denoiser of ν, the SL SDE ``dy = m(y, t) dt + dW`` has the law of the
    observation process under ν. For a denoiser that can draw from ν and evaluate its density
    (:class:`~slppl.denoisers.Gaussian`, :class:`~slppl.denoisers.GaussianMixture`, fitted ones
    included) the path therefore needs no time stepping: any discretisation only adds error. The
    path's proposal density is ``ν(x)·p(path | x)`` and the target's ``μ(x)·p(path | x)``, so
    the exact weight is ``μ(x)/ν(x)`` whatever the grid, and the exact kernel is independent
    Metropolis–Hastings with proposal ν, at the cost of one draw from ν per proposal.

    This is the default of the adaptive :class:`slppl.SL` (no denoiser given). Learned and
    estimated denoisers, whose measure cannot be sampled, need a time-stepping integrator.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from slppl import sample_trajectory
        >>> from slppl.denoisers import Gaussian
        >>> from slppl.time_grids import UniformOU
        >>> traj = sample_trajectory(jax.random.PRNGKey(0), Gaussian(jnp.zeros(2), jnp.eye(2)),
        ...                          UniformOU().times(1), Exact())
        >>> traj.x.shape, bool(traj.diverging)
        ((2,), False)
    """

    order = float("inf")
    exact = True

    def transition(self, y, t, t_next, m, cov):
        raise NotImplementedError("Exact draws whole paths (slppl.trajectory); it has no single step")
