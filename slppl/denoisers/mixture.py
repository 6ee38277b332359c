"""Tilted Gaussian mixtures: the closed-form posterior shared by the analytic denoisers.

For ``μ = Σ_k w_k N(a_k, Σ_k)`` the tilted measure ``μ_{t,y}`` is again a Gaussian mixture.
With ``Σ_k = U diag(λ) Uᵀ`` and ``c = y − t·a_k``, component k has

    covariance  C_k = U diag(λ/(1 + tλ)) Uᵀ           (= (Σ_k⁻¹ + tI)⁻¹)
    mean        m_k = a_k + C_k c
    log weight  log w_k + <y, a_k> − t|a_k|²/2 + ½ cᵀC_k c − ½ Σ log(1 + tλ)

Written with Σ rather than Σ⁻¹ this is finite at t = 0 (weights w_k, means a_k) and allows
λ = 0, which makes point masses (the discrete and empirical denoisers) the same formula.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._random import categorical, normal
from .base import Denoiser, as_array


def _eigh(covs):
    covs = np.asarray(covs)
    # Asymmetry and negative eigenvalues at the level of rounding (a fit computed in float32, say)
    # are rounding, not the user's error: symmetrised and clipped, not refused.
    eps = np.finfo(covs.dtype).eps if np.issubdtype(covs.dtype, np.floating) else np.finfo(np.float64).eps
    covs = np.asarray(covs, dtype=np.float64)
    scale = max(np.abs(covs).max(initial=0.0), np.finfo(np.float64).tiny)
    tol = 1e3 * eps * scale
    asym = np.abs(covs - np.swapaxes(covs, -1, -2)).max(initial=0.0)
    if asym > tol:
        raise ValueError(f"covariances must be symmetric (largest |C - Cᵀ| entry {asym:.3g}, scale {scale:.3g})")
    lam, vec = np.linalg.eigh(0.5 * (covs + np.swapaxes(covs, -1, -2)))
    if np.any(lam < -tol * covs.shape[-1]):
        raise ValueError("covariances must be positive semi-definite (found a negative eigenvalue "
                         f"{lam.min():.3g}); symmetrise and clip the spectrum, or add a small multiple of I")
    return np.clip(lam, 0.0, None), vec


def _rotate(vec, u, transpose=False):
    """``U·u`` (``Uᵀ·u`` with ``transpose``) per component; ``vec=None`` means ``U = I``."""
    if vec is None:
        return u
    return jnp.einsum("kji,kj->ki" if transpose else "kij,kj->ki", vec, u)


def tilted_components(y, t, log_w, means, lam, vec):
    """Per-component logits, means and covariance eigenvalues of the tilted mixture.

    ``vec=None``: diagonal components (``lam`` their variances), O(K·d) per call instead of O(K·d²).
    """
    c = y[None, :] - t * means  # (K, d)
    u = _rotate(vec, c, transpose=True)  # Uᵀc
    shrink = lam / (1.0 + t * lam)  # (K, d)
    m_k = means + _rotate(vec, shrink * u)
    logits = (
        log_w
        + means @ y
        - 0.5 * t * jnp.sum(means**2, -1)
        + 0.5 * jnp.sum(shrink * u**2, -1)
        - 0.5 * jnp.sum(jnp.log1p(t * lam), -1)
    )
    return logits, m_k, shrink


def mixture_moments(logits, means, with_cov=True):
    """Weights ``softmax(logits)``, the mixture mean and the between-component covariance.

    The total covariance of a mixture is this plus the weighted within-component covariances.
    """
    r = jax.nn.softmax(logits)
    mean = r @ means
    if not with_cov:
        return r, mean, None
    dev = means - mean
    return r, mean, (dev * r[:, None]).T @ dev


def tilted_mixture(y, t, log_w, means, lam, vec, with_cov=True):
    """Mean (and covariance) of a tilted Gaussian mixture at ``(y, t)``; see the module docstring."""
    logits, m_k, shrink = tilted_components(y, t, log_w, means, lam, vec)
    r, mean, between = mixture_moments(logits, m_k, with_cov)
    if not with_cov:
        return mean, None
    if vec is None:
        cov = jnp.diag(r @ shrink) + between
    else:
        cov = jnp.einsum("k,kij,kj,klj->il", r, vec, shrink, vec) + between
    return mean, 0.5 * (cov + cov.T)


class MixtureParams(NamedTuple):
    """A Gaussian mixture as arrays: ``log_weights (K,)``, ``means (K, d)`` and each covariance's
    eigendecomposition ``eigvals (K, d)``, ``eigvecs (K, d, d)`` (``−inf`` weight: unused).

    ``eigvecs=None``: diagonal covariances ``diag(eigvals_k)``, stored and applied in O(K·d) (the
    adaptive kernel's fits in high dimension, :func:`slppl.denoisers.fit.fit_diagonal`)."""

    log_weights: Any
    means: Any
    eigvals: Any
    eigvecs: Any


class MixtureDenoiser(Denoiser):
    """Exact denoiser of a Gaussian mixture (components may be degenerate)."""

    def __init__(self, weights, means, covs):
        weights = np.asarray(as_array(weights, "weights", 1), dtype=np.float64)
        means = as_array(means, "means", 2)
        if np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("mixture weights must be non-negative with a positive sum")
        if weights.shape[0] != means.shape[0]:
            raise ValueError(f"{weights.shape[0]} weights for {means.shape[0]} means")
        covs = np.asarray(covs, dtype=np.float64)
        if covs.shape != means.shape + (means.shape[1],):
            raise ValueError(f"covs must have shape {means.shape + (means.shape[1],)}, got {covs.shape}")
        lam, vec = _eigh(covs)
        dtype = jnp.result_type(float)
        with np.errstate(divide="ignore"):
            self.log_weights = jnp.asarray(np.log(weights / weights.sum()), dtype)
        self.means = jnp.asarray(means, dtype)
        self.eigvals = jnp.asarray(lam, dtype)
        self.eigvecs = jnp.asarray(vec, dtype)
        self.dim = int(means.shape[1])

    @classmethod
    def from_fit(cls, fit):
        """The denoiser of a :class:`~slppl.denoisers.fit.MixtureFit` (covariances eigendecomposed
        here; a fit with ``(K, d)`` diagonal variances stays diagonal)."""
        if fit.covs.ndim == 2:
            return cls.from_params(MixtureParams(fit.log_weights, fit.means, jnp.clip(fit.covs, 0.0, None), None))
        lam, vec = jnp.linalg.eigh(0.5 * (fit.covs + jnp.swapaxes(fit.covs, -1, -2)))
        return cls.from_params(MixtureParams(fit.log_weights, fit.means, jnp.clip(lam, 0.0, None), vec))

    @classmethod
    def from_params(cls, params):
        """The denoiser of :class:`MixtureParams`, without validation.

        Works on traced arrays: the adaptive kernel keeps its fitted mixture as these arrays in
        its state and rebuilds the denoiser inside the compiled loop at no cost.
        """
        self = object.__new__(cls)
        self.log_weights, self.means, self.eigvals, self.eigvecs = params
        self.dim = int(params.means.shape[1])
        return self

    @property
    def params(self):
        """The mixture as :class:`MixtureParams` (arrays only)."""
        return MixtureParams(self.log_weights, self.means, self.eigvals, self.eigvecs)

    def estimate(self, rng_key, y, t, state):
        mean, _ = tilted_mixture(y, t, self.log_weights, self.means, self.eigvals, self.eigvecs, False)
        return mean, state, ()

    def estimate_with_cov(self, rng_key, y, t, state):
        mean, cov = tilted_mixture(y, t, self.log_weights, self.means, self.eigvals, self.eigvecs)
        return mean, cov, state, ()

    def sample_posterior(self, rng_key, y, t, state):
        logits, m_k, shrink = tilted_components(y, t, self.log_weights, self.means, self.eigvals, self.eigvecs)
        k_comp, k_noise = jax.random.split(rng_key)
        k = jax.random.categorical(k_comp, logits)
        z = jnp.sqrt(shrink[k]) * jax.random.normal(k_noise, (self.dim,), m_k.dtype)
        return m_k[k] + (z if self.eigvecs is None else self.eigvecs[k] @ z)

    def marginal_variance(self):
        w = jnp.exp(self.log_weights)
        mean = w @ self.means
        if self.eigvecs is None:
            within = w @ self.eigvals
        else:
            within = jnp.einsum("k,kij,kj->i", w, self.eigvecs**2, self.eigvals)
        return within + w @ (self.means - mean) ** 2

    def log_prob(self, x):
        """Log density of the mixture itself (needs non-degenerate components)."""
        u = _rotate(self.eigvecs, x[None, :] - self.means, transpose=True)
        comp = -0.5 * jnp.sum(u**2 / self.eigvals + jnp.log(2 * jnp.pi * self.eigvals), -1)
        return jax.scipy.special.logsumexp(self.log_weights + comp)

    def sample(self, rng_key, num_samples):
        """``num_samples`` exact draws from the mixture itself."""
        k_comp, k_noise = jax.random.split(rng_key)
        k = categorical(k_comp, self.log_weights, (num_samples,))
        z = normal(k_noise, (num_samples, self.dim))
        scaled = jnp.sqrt(self.eigvals[k]) * z
        if self.eigvecs is None:
            return self.means[k] + scaled
        return self.means[k] + jnp.einsum("nij,nj->ni", self.eigvecs[k], scaled)
