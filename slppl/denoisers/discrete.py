"""The exact denoiser of a distribution on a finite set of points."""

import jax
import jax.numpy as jnp

from .._random import categorical
from .base import Denoiser, as_array
from .mixture import mixture_moments


def _logits(y, t, log_probs, support):
    return log_probs + support @ y - 0.5 * t * jnp.sum(support**2, -1)


def point_mass_posterior(y, t, log_probs, support, with_cov=True):
    """Mean and covariance of ``μ_{t,y}`` for ``μ = Σ_j p_j δ_{x_j}``.

    Responsibilities are ``∝ p_j exp(<y, x_j> − t|x_j|²/2)``.
    """
    _, mean, cov = mixture_moments(_logits(y, t, log_probs, support), support, with_cov)
    return mean, cov


class Discrete(Denoiser):
    """Exact denoiser of ``Σ_j p_j δ_{x_j}``, a law on the finite support ``{x_j}``.

    Raw SL draws (``final="sample"``) from it land on the support; it also serves discrete latent
    sites later.

    Args:
        support: ``(n, d)`` support points.
        log_probs: ``(n,)`` unnormalised log probabilities (``-inf`` allowed for zero mass).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> den = Discrete(jnp.array([[-1.0], [1.0]]), jnp.log(jnp.array([0.25, 0.75])))
        >>> x_hat, _, _ = den.estimate(jax.random.PRNGKey(0), jnp.zeros(1), 0.0, ())
        >>> round(float(x_hat[0]), 6)
        0.5
    """

    has_density = False

    def __init__(self, support, log_probs):
        support = as_array(support, "support", 2)
        log_probs = jnp.asarray(log_probs, dtype=support.dtype)
        if log_probs.shape != support.shape[:1]:
            raise ValueError(f"log_probs must have shape {support.shape[:1]}, got {log_probs.shape}")
        if bool(jnp.any(jnp.isnan(log_probs))) or not bool(jnp.any(jnp.isfinite(log_probs))):
            raise ValueError("log_probs must be free of NaN with at least one finite entry")
        self.support = support
        self.log_probs = log_probs - jax.scipy.special.logsumexp(log_probs)
        self.dim = int(support.shape[1])

    def estimate(self, rng_key, y, t, state):
        return point_mass_posterior(y, t, self.log_probs, self.support, False)[0], state, ()

    def estimate_with_cov(self, rng_key, y, t, state):
        mean, cov = point_mass_posterior(y, t, self.log_probs, self.support)
        return mean, cov, state, ()

    def sample_posterior(self, rng_key, y, t, state):
        return self.support[jax.random.categorical(rng_key, _logits(y, t, self.log_probs, self.support))]

    def sample(self, rng_key, num_samples):
        """``num_samples`` exact draws from the discrete law itself."""
        return self.support[categorical(rng_key, self.log_probs, (num_samples,))]
