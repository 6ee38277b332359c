"""The denoiser of an empirical measure, for turning earlier draws into a proposal."""

import jax
import jax.numpy as jnp
import numpy as np

from ..layout import flatten_draws, model_arguments
from .base import Denoiser, as_array
from .mixture import mixture_moments


def kde_posterior(y, t, samples, lam, vec):
    """Logits, component means and covariance eigenvalues of the tilted ``(1/n)·Σ N(x_i, H)``.

    The mixture formula of :mod:`slppl.denoisers.mixture` with one covariance ``H = V·diag(λ)·Vᵀ``
    shared by every component: ``C = V·diag(λ/(1 + tλ))·Vᵀ``, ``m_i = x_i + C (y − t·x_i)``;
    O(n·d²) instead of O(n·d³).
    """
    shrink = lam / (1.0 + t * lam)
    c = (y[None, :] - t * samples) @ vec  # rotated: Vᵀ(y − t·x_i)
    logits = samples @ y - 0.5 * t * jnp.sum(samples**2, -1) + 0.5 * jnp.sum(shrink * c**2, -1)
    return logits, samples + (shrink * c) @ vec.T, shrink


class Empirical(Denoiser):
    """Denoiser of the empirical measure of draws ``x_i``, smoothed by a Gaussian kernel.

    The kernel is ``N(0, h²·Σ̂)`` with ``Σ̂`` the draws' covariance (``whiten=True``, default) or
    ``N(0, h²·I)`` (``whiten=False``). Whitening matters when coordinates have different scales:
    one bandwidth for all of them is too wide for some and too narrow for others (h = 2.5 on eight
    schools gave acceptance 0.035). ``h → 0`` is the exact denoiser of ``(1/n)·Σ δ_{x_i}``
    (:class:`Discrete` computes that one). The smoothing is the covariance floor that makes the
    draws a usable proposal for a continuous target: without it every SL path would localise onto
    one draw, and no final Gaussian could be consistent with both the path and a density. Here the
    whole path targets the kernel density estimate, so the exact kernel's weights stay finite and
    its acceptance measures how well the draws cover the posterior. Default bandwidth: Silverman's
    rule, in whitened units (or on the average variance without whitening).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> den = Empirical(jax.random.normal(jax.random.PRNGKey(0), (500, 2)) * jnp.array([1.0, 100.0]))
        >>> _, cov, _, _ = den.estimate_with_cov(jax.random.PRNGKey(1), jnp.zeros(2), 0.0, ())
        >>> bool(cov[1, 1] > 1e3 * cov[0, 0])  # the kernel follows each coordinate's scale
        True
    """

    def __init__(self, samples, bandwidth=None, whiten=True):
        samples = as_array(samples, "samples", 2)
        n, d = samples.shape
        if n < 2:
            raise ValueError("Empirical needs at least two samples")
        if bandwidth is not None and not bandwidth > 0:
            raise ValueError(
                f"bandwidth must be positive, got {bandwidth}; for the unsmoothed empirical measure "
                "use Discrete(samples, zeros) with correction=None"
            )
        if whiten:
            cov = np.atleast_2d(np.cov(np.asarray(samples, dtype=np.float64), rowvar=False))
            lam, vec = np.linalg.eigh(cov)
            if lam.min() <= 1e-12 * max(lam.max(), 1e-300):
                raise ValueError(
                    "the draws' covariance is singular (constant or collinear coordinates); "
                    "use Empirical(samples, whiten=False) or more varied draws"
                )
            scale = 1.0
        else:
            lam, vec = np.ones(d), np.eye(d)
            scale = float(jnp.mean(jnp.var(samples, 0)))
        if bandwidth is None:
            bandwidth = (scale * (4.0 / ((d + 2.0) * n)) ** (2.0 / (d + 4.0))) ** 0.5
        dtype = samples.dtype
        self.samples = samples
        self.bandwidth = float(bandwidth)
        self.kernel_eigvals = jnp.asarray(bandwidth**2 * lam, dtype)
        self.kernel_eigvecs = jnp.asarray(vec, dtype)
        self.dim = int(d)

    def marginal_variance(self):
        return jnp.var(self.samples, 0) + jnp.einsum("ij,j->i", self.kernel_eigvecs**2, self.kernel_eigvals)

    @classmethod
    def fit(cls, draws, model=None, *model_args, bandwidth=None, whiten=True, **model_kwargs):
        """The (whitened) KDE of draws: a flat ``(n, d)`` array or NumPyro's sample dict with the model.

        Examples:
            >>> import jax
            >>> Empirical.fit(jax.random.normal(jax.random.PRNGKey(0), (100, 2))).dim
            2
        """
        model_args, model_kwargs = model_arguments(model_args, model_kwargs, "Empirical.fit")
        return cls(flatten_draws(draws, model, *model_args, **model_kwargs), bandwidth, whiten)

    def _posterior(self, y, t):
        return kde_posterior(y, t, self.samples, self.kernel_eigvals, self.kernel_eigvecs)

    def estimate(self, rng_key, y, t, state):
        logits, m_i, _ = self._posterior(y, t)
        return mixture_moments(logits, m_i, False)[1], state, ()

    def estimate_with_cov(self, rng_key, y, t, state):
        logits, m_i, shrink = self._posterior(y, t)
        _, mean, between = mixture_moments(logits, m_i)
        within = (self.kernel_eigvecs * shrink) @ self.kernel_eigvecs.T
        return mean, between + 0.5 * (within + within.T), state, ()

    def sample_posterior(self, rng_key, y, t, state):
        logits, m_i, shrink = self._posterior(y, t)
        k_comp, k_noise = jax.random.split(rng_key)
        i = jax.random.categorical(k_comp, logits)
        z = jnp.sqrt(shrink) * jax.random.normal(k_noise, (self.dim,), m_i.dtype)
        return m_i[i] + self.kernel_eigvecs @ z

    def log_prob(self, x):
        """Log density of the kernel density estimate itself."""
        u = (x[None, :] - self.samples) @ self.kernel_eigvecs
        comp = -0.5 * jnp.sum(u**2 / self.kernel_eigvals, -1) - 0.5 * jnp.sum(jnp.log(2 * jnp.pi * self.kernel_eigvals))
        return jax.scipy.special.logsumexp(comp) - jnp.log(self.samples.shape[0])
