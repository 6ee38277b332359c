"""The mean-field denoiser of a law on binary coordinates, from its potential's gradient."""

import jax
import jax.numpy as jnp

from .finite import TwoValued

__all__ = ["MeanField"]


class MeanField(TwoValued):
    """Mean-field estimate of ``E[x | y_t = y]`` for ``μ ∝ exp(−U)`` on ``x ∈ Π_i {a_i, b_i}``.

    The tilted measure ``μ_{t,y}(x) ∝ exp(−U(x) + ⟨y, x⟩ − t|x|²/2)`` is approximated by a product
    law with means ``m``, the fixed point of

        m_i = a_i + (b_i − a_i)·σ((b_i − a_i)·(y_i − ∂_i U(m)) − t·(b_i² − a_i²)/2),

    found by ``num_iters`` damped iterations from the midpoint. The local field ``(b_i − a_i)·∂_i U(m)``
    is the change of ``U`` between ``x_i = b_i`` and ``a_i`` with the other coordinates at their
    means, exactly so where ``U`` is linear in each coordinate (a pairwise Ising model, Bernoulli
    indicators in a linear predictor), approximately elsewhere: one gradient gives every field, as
    in Gibbs-with-Gradients (Grathwohl et al. 2021). ``U`` must accept points between the values
    (NumPyro's Bernoulli ``log_prob`` does; a ``Categorical`` indexing by its value does not).

    Mean field ignores the correlations between coordinates (no Onsager reaction term), so it is
    a proposal, not the answer: with ``final="product"`` and ``correction="mh"`` the kernel stays
    exact and the approximation only moves its acceptance. The covariance is mean field's own,
    ``diag((b − a)²·p(1 − p))``.

    Args:
        potential_fn: ``U`` on flat vectors of length ``d``.
        values: ``(a, b)`` for every coordinate, or a ``(d, 2)`` array of them.
        dim: ``d`` (needed when ``values`` is one pair).
        num_iters, damping: the fixed-point iteration.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> J = 0.3 * (jnp.ones((3, 3)) - jnp.eye(3))  # a ferromagnet on 3 spins
        >>> den = MeanField(lambda x: -0.5 * x @ J @ x, values=(-1.0, 1.0), dim=3)
        >>> m, _, _ = den.estimate(jax.random.PRNGKey(0), jnp.array([2.0, 0.0, 0.0]), 1.0, ())
        >>> bool(m[0] > m[1] > 0.0)   # the field on spin 0 pulls its neighbours
        True
    """

    def __init__(self, potential_fn, values=(0.0, 1.0), dim=None, num_iters=50, damping=0.5):
        super().__init__(values, dim)
        if not 0.0 < damping <= 1.0 or int(num_iters) < 1:
            raise ValueError("damping must be in (0, 1] and num_iters >= 1")
        self.potential_fn = potential_fn
        self.num_iters = int(num_iters)
        self.damping = float(damping)

    def _probs(self, rng_key, y, t, state):
        """``P(x_i = b_i)`` under the mean-field product law."""
        a, b = self._pair(y.dtype)
        grad = jax.grad(self.potential_fn)
        bias = (b - a) * y - 0.5 * t * (b**2 - a**2)

        def update(_, p):
            m = a + (b - a) * p
            new = jax.nn.sigmoid(bias - (b - a) * grad(m))
            return (1.0 - self.damping) * p + self.damping * new

        return jax.lax.fori_loop(0, self.num_iters, update, jnp.full_like(y, 0.5)), state
