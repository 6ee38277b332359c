"""The exact denoiser of an empirical measure, for turning earlier draws into a proposal."""

import jax.numpy as jnp

from .base import as_array
from .discrete import Discrete, point_mass_posterior


class Empirical(Discrete):
    """Exact denoiser of ``(1/n)·Σ_i δ_{x_i}`` for draws ``x_i`` (for instance from warmup).

    The empirical measure has no density, so a final Gaussian draw ``N(m, Cov(x | y))`` at large
    t would collapse onto the draws. ``estimate_with_cov`` therefore adds ``cov_floor·I`` to the
    covariance (a kernel-density bandwidth, by default Silverman's rule on the average variance),
    which keeps the exact kernel's proposal a density with full support.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> draws = jax.random.normal(jax.random.PRNGKey(0), (500, 2))
        >>> den = Empirical(draws)
        >>> _, cov, _, _ = den.estimate_with_cov(jax.random.PRNGKey(1), jnp.zeros(2), 1e6, ())
        >>> bool(jnp.all(jnp.linalg.eigvalsh(cov) >= den.cov_floor * 0.999))
        True
    """

    def __init__(self, samples, cov_floor=None):
        samples = as_array(samples, "samples", 2)
        n, d = samples.shape
        if n < 2:
            raise ValueError("Empirical needs at least two samples")
        super().__init__(samples, jnp.zeros(n, samples.dtype))
        if cov_floor is None:
            var = float(jnp.mean(jnp.var(samples, 0)))
            cov_floor = var * (4.0 / ((d + 2.0) * n)) ** (2.0 / (d + 4.0))
        if not cov_floor > 0:
            raise ValueError(f"cov_floor must be positive, got {cov_floor}")
        self.cov_floor = float(cov_floor)

    def estimate_with_cov(self, rng_key, y, t, state):
        mean, cov = point_mass_posterior(y, t, self.log_probs, self.support)
        return mean, cov + self.cov_floor * jnp.eye(self.dim, dtype=cov.dtype), state, ()
