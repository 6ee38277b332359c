"""Time grids ``0 = t_0 < t_1 < … < t_K`` for the SL SDE.

A grid knows only times. Every grid starts at ``t = 0`` (where ``y_0 = 0``) and ends at a finite
``t_max``. The signal-to-noise ratio of ``y_t/t`` as an observation of x is ``t`` itself, so a grid
geometric in t is uniform in log-SNR. A grid uniform in the OU time ``s = ½·log((t+1)/t)`` of DDPM
is geometric for t ≪ 1 and thins out for t ≫ 1, where the tilted measure of a unit-scale target
is close to Gaussian and the second-order step is nearly exact.

Grids are in the units of the unconstrained latent vector: they suit targets whose scale is of
order one. For a target with scale σ, multiply the times by 1/σ² (``t_min``, ``t_max``).
"""

from typing import NamedTuple

import numpy as np

__all__ = ["Geometric", "LogSNR", "UniformOU", "Karras", "Explicit", "validate_times"]


def validate_times(times):
    """Check a grid and return it as a float64 numpy array.

    Raises ``ValueError`` naming the problem: not one-dimensional, fewer than two points, not
    starting at 0, not finite, or not strictly increasing.

    Examples:
        >>> validate_times([0.0, 0.1, 1.0]).tolist()
        [0.0, 0.1, 1.0]
    """
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or times.size < 2:
        raise ValueError(f"a time grid needs at least two times in a 1-d array, got shape {times.shape}")
    if not np.all(np.isfinite(times)):
        raise ValueError("a time grid must be finite (the SL SDE is run up to a finite t_max)")
    if times[0] != 0.0:
        raise ValueError(f"a time grid must start at t = 0 (where y_0 = 0), got t_0 = {times[0]}")
    if not np.all(np.diff(times) > 0):
        bad = int(np.argmin(np.diff(times) > 0))
        raise ValueError(
            f"a time grid must be strictly increasing; t[{bad}] = {times[bad]} >= t[{bad + 1}] = {times[bad + 1]}"
        )
    return times


def _check_range(t_min, t_max):
    if not (np.isfinite(t_min) and np.isfinite(t_max) and 0 < t_min < t_max):
        raise ValueError(f"need 0 < t_min < t_max < inf, got t_min={t_min}, t_max={t_max}")


def _check_steps(num_steps):
    if num_steps is None or int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    return int(num_steps)


def _ranged(t_min, t_max, num_steps, spacing):
    """``[0, t_1 = t_min, …, t_K = t_max]`` with ``spacing(n)`` giving the n positive times."""
    _check_range(t_min, t_max)
    n = _check_steps(num_steps)
    if n == 1:
        return validate_times([0.0, t_max])
    t = np.asarray(spacing(n), dtype=np.float64)
    t[0], t[-1] = t_min, t_max  # exact endpoints whatever the round-off of the spacing
    return validate_times(np.concatenate([[0.0], t]))


class Geometric(NamedTuple):
    """``t_0 = 0`` then ``num_steps`` times geometric from ``t_min`` to ``t_max``.

    Geometric in t is uniform in log-SNR (the SNR of ``y_t/t`` is t), so :data:`LogSNR` is an alias.

    Examples:
        >>> Geometric(1e-2, 1e2).times(3).round(6).tolist()
        [0.0, 0.01, 1.0, 100.0]
    """

    t_min: float = 1e-3
    t_max: float = 1e4

    def times(self, num_steps):
        return _ranged(self.t_min, self.t_max, num_steps, lambda n: np.geomspace(self.t_min, self.t_max, n))


LogSNR = Geometric


class UniformOU(NamedTuple):
    """``t_0 = 0`` then ``num_steps`` times uniform in the OU time ``s = ½·log((t+1)/t)``.

    This is the uniform grid of DDPM / the score SDE, mapped to SL time (``t = 1/(e^{2s} − 1)``).
    Most steps fall at ``t ≲ 1``, where a unit-scale target's tilted measure is far from Gaussian
    (modes are decided there); few are spent at large t. The default grid of :class:`slppl.SL`.

    Examples:
        >>> UniformOU(1e-2, 1e2).times(3).round(4).tolist()
        [0.0, 0.01, 0.1099, 100.0]
    """

    t_min: float = 1e-3
    t_max: float = 1e4

    def times(self, num_steps):
        def spacing(n):
            s = np.linspace(0.5 * np.log1p(1 / self.t_min), 0.5 * np.log1p(1 / self.t_max), n)
            return 1.0 / np.expm1(2.0 * s)

        return _ranged(self.t_min, self.t_max, num_steps, spacing)


class Karras(NamedTuple):
    """The EDM schedule of Karras et al. (2022) in SL time.

    EDM spaces the noise level σ = 1/√t as ``σ_i^{1/ρ}`` uniform between ``σ_max^{1/ρ}`` and
    ``σ_min^{1/ρ}``; large ρ puts more steps at large t (small noise).

    Examples:
        >>> Karras(1e-2, 1e2, rho=7.0).times(3)[[0, 1, -1]].round(6).tolist()
        [0.0, 0.01, 100.0]
    """

    t_min: float = 1e-3
    t_max: float = 1e4
    rho: float = 7.0

    def times(self, num_steps):
        def spacing(n):
            lo, hi = self.t_max ** (-0.5 / self.rho), self.t_min ** (-0.5 / self.rho)  # σ^{1/ρ} range
            sigma = np.linspace(hi, lo, n) ** self.rho
            return sigma**-2.0

        return _ranged(self.t_min, self.t_max, num_steps, spacing)


class Explicit(NamedTuple):
    """A grid given as an array of times (validated).

    Examples:
        >>> Explicit([0.0, 0.5, 2.0]).times(2).tolist()
        [0.0, 0.5, 2.0]
    """

    grid: tuple

    def times(self, num_steps=None):
        times = validate_times(self.grid)
        if num_steps is not None and num_steps != times.size - 1:
            raise ValueError(f"explicit grid has {times.size - 1} steps but num_steps={num_steps}")
        return times
