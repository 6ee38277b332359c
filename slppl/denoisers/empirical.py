"""The denoiser of an empirical measure, for turning earlier draws into a proposal."""

import jax
import jax.numpy as jnp

from .base import Denoiser, as_array
from .mixture import mixture_moments


def kde_posterior(y, t, samples, h2):
    """Logits, component means and shared covariance scale of the tilted ``(1/n)·Σ N(x_i, h²·I)``.

    The mixture formula of :mod:`slppl.denoisers.mixture` with every covariance ``h²·I``:
    ``C = h²/(1 + t·h²)·I``, ``m_i = x_i + C (y − t·x_i)``; O(n·d) instead of O(n·d³).
    """
    shrink = h2 / (1.0 + t * h2)
    c = y[None, :] - t * samples
    logits = samples @ y - 0.5 * t * jnp.sum(samples**2, -1) + 0.5 * shrink * jnp.sum(c**2, -1)
    return logits, samples + shrink * c, shrink


class Empirical(Denoiser):
    """Denoiser of the empirical measure of draws ``x_i``, smoothed by ``N(0, bandwidth²·I)``.

    ``bandwidth → 0`` is the exact denoiser of ``(1/n)·Σ δ_{x_i}`` (:class:`Discrete` computes
    that one). The smoothing is the covariance floor that makes the draws a usable proposal for a
    continuous target: without it every SL path would localise onto one draw, and no final
    Gaussian could be consistent with both the path and a density. Here the whole path targets the
    kernel density estimate, so the exact kernel's weights stay finite and its acceptance measures
    how well the draws cover the posterior. Default bandwidth: Silverman's rule on the average
    variance.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> den = Empirical(jax.random.normal(jax.random.PRNGKey(0), (500, 2)))
        >>> _, cov, _, _ = den.estimate_with_cov(jax.random.PRNGKey(1), jnp.zeros(2), 0.0, ())
        >>> bool(jnp.all(jnp.linalg.eigvalsh(cov) > den.bandwidth**2))  # KDE covariance at t = 0
        True
    """

    def __init__(self, samples, bandwidth=None):
        samples = as_array(samples, "samples", 2)
        n, d = samples.shape
        if n < 2:
            raise ValueError("Empirical needs at least two samples")
        if bandwidth is None:
            var = float(jnp.mean(jnp.var(samples, 0)))
            bandwidth = (var * (4.0 / ((d + 2.0) * n)) ** (2.0 / (d + 4.0))) ** 0.5
        if not bandwidth > 0:
            raise ValueError(
                f"bandwidth must be positive, got {bandwidth}; for the unsmoothed empirical measure "
                "use Discrete(samples, zeros) with correction=None"
            )
        self.samples = samples
        self.bandwidth = float(bandwidth)
        self.dim = int(d)

    def estimate(self, rng_key, y, t, state):
        logits, m_i, _ = kde_posterior(y, t, self.samples, self.bandwidth**2)
        return mixture_moments(logits, m_i, False)[1], state, ()

    def estimate_with_cov(self, rng_key, y, t, state):
        logits, m_i, shrink = kde_posterior(y, t, self.samples, self.bandwidth**2)
        _, mean, between = mixture_moments(logits, m_i)
        return mean, between + shrink * jnp.eye(self.dim, dtype=mean.dtype), state, ()

    def sample_posterior(self, rng_key, y, t, state):
        logits, m_i, shrink = kde_posterior(y, t, self.samples, self.bandwidth**2)
        k_comp, k_noise = jax.random.split(rng_key)
        i = jax.random.categorical(k_comp, logits)
        return m_i[i] + jnp.sqrt(shrink) * jax.random.normal(k_noise, (self.dim,), m_i.dtype)

    def log_prob(self, x):
        """Log density of the kernel density estimate itself."""
        h2 = self.bandwidth**2
        sq = jnp.sum((x[None, :] - self.samples) ** 2, -1)
        comp = -0.5 * sq / h2 - 0.5 * self.dim * jnp.log(2 * jnp.pi * h2)
        return jax.scipy.special.logsumexp(comp) - jnp.log(self.samples.shape[0])
