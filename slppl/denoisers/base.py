"""The denoiser protocol shared by every kind of denoiser.

A denoiser is a pair of pure functions in the optax/BlackJAX style::

    init(position) -> state
    estimate(rng_key, y, t, state) -> (x_hat, state, info)

with ``x_hat ≈ m(y, t) = E[x | y_t = y]`` for the observation process ``y_t = t·x + B_t``.
``estimate_with_cov`` also returns ``Cov(x | y_t = y) = ∂m/∂y``, which the second-order step, the
probability-flow ODE and the final Gaussian draw use. Analytic denoisers give it in closed form; the
default here differentiates ``estimate`` (one Jacobian–vector product per dimension).

Analytic and learned denoisers ignore the key and carry an empty state; an MCMC-estimated denoiser
keeps its inner chains in the state. One signature, all kinds interchangeable.
"""

import jax
import jax.numpy as jnp

__all__ = ["Denoiser", "FunctionDenoiser"]


class Denoiser:
    """Base class: subclasses define :meth:`estimate` (and, if they can, :meth:`estimate_with_cov`).

    Attributes:
        dim: dimension of x (``None`` when unknown until ``init``).
        deterministic: ``True`` when ``estimate`` ignores its key; the probability-flow ODE's
            change of variables needs a deterministic drift.
        has_density: ``False`` for a measure without a density on R^d (finite support), which
            cannot be a proposal for the exact kernel on a continuous target.
    """

    dim = None
    deterministic = True
    has_density = True

    def init(self, position):
        """Initial denoiser state for a flat position of length ``dim`` (analytic: ``()``)."""
        return ()

    def estimate(self, rng_key, y, t, state):
        raise NotImplementedError

    def marginal_variance(self):
        """Per-coordinate variance of the denoiser's measure, or ``None`` when it is not known.

        :class:`slppl.SL` reads it to fit its default time grid to the target's scale.
        """
        return None

    def sample_posterior(self, rng_key, y, t, state):
        """One exact draw from the tilted measure ``μ_{t,y}`` (analytic denoisers only)."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot draw from its tilted measure; use final='gaussian' or 'mean'"
        )

    def estimate_with_cov(self, rng_key, y, t, state):
        """``(x_hat, cov, state, info)``; the default takes ``cov = ∂x_hat/∂y`` by forward-mode AD."""

        def mean(y_):
            x_hat, new_state, info = self.estimate(rng_key, y_, t, state)
            return x_hat, (x_hat, new_state, info)

        jac, (x_hat, new_state, info) = jax.jacfwd(mean, has_aux=True)(y)
        return x_hat, 0.5 * (jac + jac.T), new_state, info


class FunctionDenoiser(Denoiser):
    """Wrap a deterministic function ``fn(y, t) -> x_hat`` (for instance a trained network).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> den = FunctionDenoiser(lambda y, t: y / (1.0 + t), dim=2)  # the N(0, I) denoiser
        >>> x_hat, cov, _, _ = den.estimate_with_cov(jax.random.PRNGKey(0), jnp.ones(2), 1.0, ())
        >>> x_hat.tolist(), cov[0, 0].item()
        ([0.5, 0.5], 0.5)
    """

    def __init__(self, fn, dim, cov_fn=None):
        self.fn = fn
        self.dim = int(dim)
        self.cov_fn = cov_fn

    def estimate(self, rng_key, y, t, state):
        return self.fn(y, t), state, ()

    def estimate_with_cov(self, rng_key, y, t, state):
        if self.cov_fn is None:
            return super().estimate_with_cov(rng_key, y, t, state)
        return self.fn(y, t), self.cov_fn(y, t), state, ()


def check_dim(denoiser, dim):
    """Raise ``ValueError`` when a denoiser's dimension does not match the target's."""
    if denoiser.dim is not None and int(denoiser.dim) != int(dim):
        raise ValueError(
            f"the denoiser acts on vectors of length {denoiser.dim} but the target's flattened "
            f"unconstrained latent vector has length {dim}; see slppl.site_layout(model, ...) for the layout"
        )


def as_array(x, name, ndim):
    x = jnp.asarray(x)
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {x.shape}")
    if not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError(f"{name} contains NaN or Inf")
    return x
