"""The exact denoiser of a distribution on a finite set of points."""

import jax
import jax.numpy as jnp
import numpy as np

from .._random import categorical
from .base import Denoiser, as_array
from .finite import coordinate_values, product_draw, product_log_prob
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

    Raw SL draws (``final="sample"``) from it land on the support. As the proposal of the exact
    kernel on a discrete target (``final="product"``), its support must be a product of each
    coordinate's values (every configuration of the discrete latents), so
    that every product draw is a point it weighs; its probabilities need not be the target's.

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
        values, index = coordinate_values(support)
        self.values = jnp.asarray(np.nan_to_num(values), support.dtype)
        self._padding = jnp.asarray(np.isnan(values))
        self._index = jnp.asarray(index)
        self._is_product = bool(np.prod((~np.isnan(values)).sum(1), dtype=float) == support.shape[0])

    def check_product(self):
        """Raise ``ValueError`` unless the support is every combination of the coordinates' values."""
        if not self._is_product:
            raise ValueError(
                f"final='product' draws each coordinate on its own, so the support must hold every combination "
                f"of the coordinates' values; these {self.support.shape[0]} points do not (give every "
                "configuration, with -inf log_probs where the target has no mass)"
            )

    def _log_marginals(self, y, t):
        w = jax.nn.softmax(_logits(y, t, self.log_probs, self.support))
        d, k = self.values.shape
        marginals = jnp.zeros((d, k), w.dtype).at[jnp.arange(d)[None, :], self._index].add(w[:, None])
        return jnp.where(self._padding, -jnp.inf, jnp.log(marginals))

    def sample_product(self, rng_key, y, t, state):
        """``(x, log r(x), state)``: each coordinate from its marginal under ``μ_{t,y}``."""
        x, log_r = product_draw(rng_key, self._log_marginals(y, t), self.values)
        return x, log_r, state

    def product_log_prob(self, rng_key, y, t, state, x):
        """``(log r(x), state)``: the law :meth:`sample_product` draws from, at ``x``."""
        return product_log_prob(self._log_marginals(y, t), self.values, x), state

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
