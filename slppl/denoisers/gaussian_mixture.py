"""The exact denoiser of a Gaussian mixture with full covariances."""

import jax
import numpy as np

from ..layout import flat_potential, flatten_draws, model_arguments
from .fit import COVARIANCE_TYPES, DEFAULT_COMPONENTS, fit_mixture, reweight
from .mixture import MixtureDenoiser


class GaussianMixture(MixtureDenoiser):
    """Exact denoiser of ``Σ_k w_k N(a_k, Σ_k)``.

    Args:
        weights: ``(K,)`` non-negative, normalised internally.
        means: ``(K, d)``.
        covs: ``(K, d, d)`` symmetric positive semi-definite.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> den = GaussianMixture(jnp.array([0.3, 0.7]), jnp.array([[-2.0], [2.0]]),
        ...                       jnp.stack([0.5 * jnp.eye(1)] * 2))
        >>> x_hat, _, _ = den.estimate(jax.random.PRNGKey(0), jnp.zeros(1), 0.0, ())
        >>> round(float(x_hat[0]), 6)  # the mixture mean 0.3·(−2) + 0.7·2
        0.8
    """

    @classmethod
    def fit(
        cls,
        rng_key,
        draws,
        model=None,
        *model_args,
        potential_fn=None,
        components=DEFAULT_COMPONENTS,
        covariance_types=COVARIANCE_TYPES,
        num_restarts=3,
        num_iters=50,
        num_reweight=128,
        **model_kwargs,
    ):
        """A Gaussian mixture fitted to draws by EM, the number of components chosen by BIC.

        With a target density (``model`` and its arguments, or ``potential_fn`` on the flat
        vector), the component weights are then re-estimated by importance sampling against it
        (:func:`~slppl.denoisers.fit.reweight`): draws from local chains stuck in their modes say
        where the modes are, not how heavy. Without one, the weights are the draws' proportions.

        Args:
            rng_key: PRNG key.
            draws: flat ``(n, d)`` array, or NumPyro's sample dict with ``model`` (see
                :func:`slppl.flatten_draws`).
            model, *model_args, **model_kwargs: the target, as for ``MCMC.run`` (optional).
            potential_fn: ``U = −log π`` on the flat vector, if there is no model.
            components: candidate numbers of components for BIC.
            covariance_types: candidate covariance types for BIC (``"full"``, ``"diag"``,
                ``"spherical"``, ``"scaled"``; see :func:`~slppl.denoisers.fit.fit_mixture`).
            num_restarts, num_iters: EM restarts (k-means++) and iterations per candidate.
            num_reweight: importance draws per component for the weights.

        Examples:
            >>> import jax, jax.numpy as jnp
            >>> x = jnp.concatenate([jnp.full((50, 1), -3.0), jnp.full((50, 1), 3.0)])
            >>> x = x + jax.random.normal(jax.random.PRNGKey(0), (100, 1))
            >>> U = lambda z: -jnp.logaddexp(jnp.log(0.25) - 0.5 * (z[0] + 3) ** 2, jnp.log(0.75) - 0.5 * (z[0] - 3) ** 2)
            >>> den = GaussianMixture.fit(jax.random.PRNGKey(1), x, potential_fn=U)
            >>> sorted(round(float(w), 1) for w in jnp.exp(den.log_weights))
            [0.3, 0.7]
        """
        model_args, model_kwargs = model_arguments(model_args, model_kwargs, "GaussianMixture.fit")
        x = flatten_draws(draws, model, *model_args, **model_kwargs)
        key_fit, key_weights = jax.random.split(rng_key)
        fit = fit_mixture(key_fit, x, components, num_restarts, num_iters, tuple(covariance_types))
        if model is not None and potential_fn is None:
            potential_fn = flat_potential(model, *model_args, **model_kwargs)[0]
        if potential_fn is not None:
            fit = reweight(key_weights, fit, lambda z: -potential_fn(z), num_reweight)
        used = np.isfinite(np.asarray(fit.log_weights))  # drop BIC's padding
        return cls(np.exp(np.asarray(fit.log_weights)[used]), fit.means[used], fit.covs[used])
