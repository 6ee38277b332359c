"""The exact denoiser of a Gaussian mixture with full covariances."""

from .mixture import MixtureDenoiser


class GaussianMixture(MixtureDenoiser):
    """Exact denoiser of ``Σ_k w_k N(a_k, Σ_k)``.

    Args:
        weights: ``(K,)`` non-negative, normalised internally.
        means: ``(K, d)``.
        covs: ``(K, d, d)`` symmetric positive semi-definite.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> den = GaussianMixture(jnp.array([0.3, 0.7]), jnp.array([[-2.0], [2.0]]),
        ...                       jnp.stack([0.5 * jnp.eye(1)] * 2))
        >>> x_hat, _, _ = den.estimate(jax.random.PRNGKey(0), jnp.zeros(1), 0.0, ())
        >>> round(float(x_hat[0]), 6)  # the mixture mean 0.3·(−2) + 0.7·2
        0.8
    """
