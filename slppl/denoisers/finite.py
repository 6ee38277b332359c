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

__all__ = ["coordinate_values", "product_draw", "product_log_prob"]


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
