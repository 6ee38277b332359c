"""What denoisers of laws on a finite set share: each coordinate's values and the final product draw.

On a finite set (spins, indicators, category labels) the SL path runs as on R^d, but its last
step cannot be a Gaussian draw: there is no density to weigh it by. ``final="product"`` draws
each coordinate ``i`` from its own marginal under the tilted measure at the last time,
``P(x_i = v | y_K)``: a law on the finite set with a probability mass ``r(x | y_K) = Π_i P(x_i |
y_K)``, so the exact path-space weight (against counting measure) carries over unchanged. At the
large final time the tilted measure is nearly a point mass and so is the draw.
"""

import jax
import jax.numpy as jnp
import numpy as np

from .._random import categorical
from .base import Denoiser

__all__ = ["coordinate_values", "product_draw", "product_log_prob", "FiniteValued", "TwoValued", "finite_values",
           "two_values"]


def coordinate_values(support):
    """``(values, index)``: each coordinate's distinct values, padded with NaN to a ``(d, K)``
    table, and each support point's index into its coordinate's row, ``(n, d)`` ints.

    Examples:
        >>> values, index = coordinate_values(np.array([[-1.0, 0.0], [1.0, 2.0], [1.0, 0.0]]))
        >>> values.tolist(), index.tolist()
        ([[-1.0, 1.0], [0.0, 2.0]], [[0, 0], [1, 1], [1, 0]])
    """
    support = np.asarray(support, dtype=float)
    columns = [np.unique(col, return_inverse=True) for col in support.T]
    k = max(len(v) for v, _ in columns)
    values = np.full((support.shape[1], k), np.nan)
    for i, (v, _) in enumerate(columns):
        values[i, : len(v)] = v
    return values, np.stack([inv.reshape(-1) for _, inv in columns], 1)


def product_draw(rng_key, log_marginals, values):
    """``(x, log r(x))``: coordinate ``i`` drawn from ``exp(log_marginals[i])`` over ``values[i]``.

    ``log_marginals``: ``(d, K)`` log probabilities (``-inf`` for the padding); ``values``: ``(d, K)``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> x, log_r = product_draw(jax.random.PRNGKey(0), jnp.log(jnp.array([[0.0, 1.0], [1.0, 0.0]])),
        ...                         jnp.array([[-1.0, 1.0], [-1.0, 1.0]]))
        >>> x.tolist(), float(log_r)
        ([1.0, -1.0], 0.0)
    """
    log_marginals = log_marginals - jax.scipy.special.logsumexp(log_marginals, -1, keepdims=True)
    keys = jax.random.split(rng_key, log_marginals.shape[0])
    pick = jax.vmap(lambda k, lm: categorical(k, lm, ()))(keys, log_marginals)
    rows = jnp.arange(log_marginals.shape[0])
    return values[rows, pick], jnp.sum(log_marginals[rows, pick])


def product_log_prob(log_marginals, values, x):
    """``log r(x)``: the product law of :func:`product_draw` at a point ``x`` of its support.

    Examples:
        >>> import jax.numpy as jnp
        >>> log_r = product_log_prob(jnp.log(jnp.array([[0.5, 0.5], [0.9, 0.1]])), jnp.array([[-1.0, 1.0], [0.0, 1.0]]),
        ...                          jnp.array([1.0, 0.0]))
        >>> round(float(log_r), 4)   # log(0.5 · 0.9)
        -0.7985
    """
    log_marginals = log_marginals - jax.scipy.special.logsumexp(log_marginals, -1, keepdims=True)
    return jnp.sum(jnp.where(values == x[:, None], log_marginals, 0.0))


def finite_values(values, dim=None):
    """``values`` as a ``(d, K)`` numpy table of each coordinate's values, NaN-padded where a
    coordinate has fewer than ``K`` (as :func:`coordinate_values` makes): one row for ``dim``
    coordinates, or one row per coordinate. Raises ``ValueError`` naming what is wrong."""
    values = np.asarray(values, dtype=float)  # concrete: checked here, a constant of the kernel
    if values.ndim == 1:
        if dim is None:
            raise ValueError("values must be one row of values with dim=d, or a (d, K) table")
        values = np.broadcast_to(values, (int(dim), values.shape[0]))
    if values.ndim != 2 or values.shape[1] < 2:
        raise ValueError(f"values must be a (d, K) table with K >= 2, got shape {values.shape}")
    valid = ~np.isnan(values)
    if not np.all(valid.sum(1) >= 2) or not np.all(np.isfinite(values[valid])):
        raise ValueError("every coordinate needs at least two finite values (NaN pads the shorter rows)")
    if dim is not None and int(dim) != values.shape[0]:
        raise ValueError(f"dim={dim} but values has {values.shape[0]} rows")
    return values


def two_values(values, dim=None):
    """``values`` as a ``(d, 2)`` numpy array of pairs ``a < b``: one pair for ``dim`` coordinates,
    or one row per coordinate. Raises ``ValueError`` naming what is wrong."""
    values = finite_values(values, dim)
    if values.shape[1] != 2 or not np.all(values[:, 1] > values[:, 0]):
        raise ValueError(f"values must be (d, 2) pairs a < b, got shape {values.shape}")
    return values


class FiniteValued(Denoiser):
    """A denoiser of a law on ``Π_i V_i`` (finite sets of values) that estimates the tilted measure
    by a product law.

    Subclasses set ``values`` (a ``(d, K)`` table, NaN-padded) and give
    ``_log_marginals(rng_key, y, t, state) -> (log_marginals (d, K), state)``; the mean, the product
    law's diagonal covariance and the final product draw (``final="product"``) follow from it.
    """

    def _log_marginals(self, rng_key, y, t, state):
        raise NotImplementedError

    def _moments(self, rng_key, y, t, state):
        log_marginals, state = self._log_marginals(rng_key, y, t, state)
        p = jnp.exp(log_marginals)
        v = jnp.nan_to_num(jnp.asarray(self.values, y.dtype))
        mean = jnp.sum(p * v, -1)
        return mean, jnp.maximum(jnp.sum(p * v**2, -1) - mean**2, 0.0), state

    def estimate(self, rng_key, y, t, state):
        mean, _, state = self._moments(rng_key, y, t, state)
        return mean, state, ()

    def estimate_with_cov(self, rng_key, y, t, state):
        mean, var, state = self._moments(rng_key, y, t, state)
        return mean, jnp.diag(var), state, ()

    def check_product(self):
        """Every combination of the coordinates' values is in the support: nothing to check."""

    def sample_product(self, rng_key, y, t, state):
        """``(x, log r(x), state)``: each coordinate from its estimated marginal."""
        key_probs, key_draw = jax.random.split(rng_key)
        log_marginals, state = self._log_marginals(key_probs, y, t, state)
        x, log_r = product_draw(key_draw, log_marginals, jnp.nan_to_num(jnp.asarray(self.values, y.dtype)))
        return x, log_r, state

    def product_log_prob(self, rng_key, y, t, state, x):
        """``(log r(x), state)``: the law :meth:`sample_product` draws from, at ``x``."""
        key_probs, _ = jax.random.split(rng_key)
        log_marginals, state = self._log_marginals(key_probs, y, t, state)
        return product_log_prob(log_marginals, jnp.asarray(self.values, y.dtype), x), state


class TwoValued(FiniteValued):
    """A :class:`FiniteValued` denoiser on ``Π_i {a_i, b_i}``.

    Subclasses give ``_probs(rng_key, y, t, state) -> (p, state)``, ``p_i = P(x_i = b_i)``.
    """

    def __init__(self, values, dim=None):
        self.values = two_values(values, dim)
        self.dim = int(self.values.shape[0])

    def _pair(self, dtype):
        """``(a, b)``: each coordinate's two values."""
        return jnp.asarray(self.values[:, 0], dtype), jnp.asarray(self.values[:, 1], dtype)

    def _probs(self, rng_key, y, t, state):
        raise NotImplementedError

    def _log_marginals(self, rng_key, y, t, state):
        p, state = self._probs(rng_key, y, t, state)
        return jnp.stack([jnp.log1p(-p), jnp.log(p)], -1), state
