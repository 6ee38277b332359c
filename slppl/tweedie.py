"""Tweedie conversions between scores and denoisers.

For ``y_t = t·x + B_t`` the marginal score is ``∇_y log p_t(y) = m(y, t) − y/t``. In the OU
coordinates of DDPM (``X = y/√(t(t+1))``, ``s = ½·log((t+1)/t)``) the same identity reads
``∇ log q_s(X) = (e^{−s}·m − X)/(1 − e^{−2s})``.
"""

import jax.numpy as jnp

from .denoisers.base import FunctionDenoiser

__all__ = [
    "score_from_denoiser",
    "denoiser_from_score",
    "ou_score_from_denoiser",
    "denoiser_from_ou_score",
    "sl_to_ou",
    "ou_to_sl",
    "DenoiserFromScore",
]


def score_from_denoiser(x_hat, y, t):
    """``∇_y log p_t(y) = m − y/t`` (t > 0).

    Examples:
        >>> float(score_from_denoiser(1.0, 2.0, 2.0))
        0.0
    """
    return x_hat - y / t


def denoiser_from_score(score, y, t):
    """``m = score + y/t``, the inverse of :func:`score_from_denoiser`.

    Examples:
        >>> float(denoiser_from_score(0.0, 2.0, 2.0))
        1.0
    """
    return score + y / t


def sl_to_ou(y, t):
    """SL ``(y, t)`` → OU ``(X, s)`` with ``X = y/√(t(t+1))`` and ``s = ½·log((t+1)/t)``.

    Examples:
        >>> X, s = sl_to_ou(jnp.asarray(2.0), 1.0)
        >>> round(float(X), 4), round(float(s), 4)
        (1.4142, 0.3466)
    """
    return y / jnp.sqrt(t * (t + 1.0)), 0.5 * jnp.log1p(1.0 / t)


def ou_to_sl(X, s):
    """OU ``(X, s)`` → SL ``(y, t)``; ``t = 1/(e^{2s} − 1)``.

    Examples:
        >>> y, t = ou_to_sl(*sl_to_ou(jnp.asarray(2.0), 1.0))
        >>> round(float(y), 4), round(float(t), 4)
        (2.0, 1.0)
    """
    t = 1.0 / jnp.expm1(2.0 * s)
    return X * jnp.sqrt(t * (t + 1.0)), t


def ou_score_from_denoiser(x_hat, X, s):
    """``∇ log q_s(X) = (e^{−s}·m − X)/(1 − e^{−2s})``.

    Examples:
        >>> float(ou_score_from_denoiser(0.0, 1.0, 1.0)) < 0
        True
    """
    return (jnp.exp(-s) * x_hat - X) / (-jnp.expm1(-2.0 * s))


def denoiser_from_ou_score(score, X, s):
    """Inverse of :func:`ou_score_from_denoiser`.

    Examples:
        >>> x = denoiser_from_ou_score(ou_score_from_denoiser(0.3, 1.0, 1.0), 1.0, 1.0)
        >>> round(float(x), 6)
        0.3
    """
    return (score * (-jnp.expm1(-2.0 * s)) + X) * jnp.exp(s)


def DenoiserFromScore(score_fn, dim):
    """A denoiser from a score ``score_fn(y, t) ≈ ∇_y log p_t(y)`` in SL coordinates.

    Examples:
        >>> import jax
        >>> den = DenoiserFromScore(lambda y, t: -y / (t * (1.0 + t)), dim=1)  # N(0, 1) target
        >>> x_hat, _, _ = den.estimate(jax.random.PRNGKey(0), jnp.ones(1), 1.0, ())
        >>> x_hat.tolist()
        [0.5]
    """
    return FunctionDenoiser(lambda y, t: denoiser_from_score(score_fn(y, t), y, t), dim)
