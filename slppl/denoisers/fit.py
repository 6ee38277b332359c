"""Fitting closed-form denoisers to draws: a shrunk Gaussian, a Gaussian mixture by EM, and the
mixture's weights re-estimated by importance sampling against the target.

Everything here is pure JAX with static shapes, so the adaptive kernel (:mod:`slppl.adaptation`)
can fit inside NumPyro's compiled sampling loop, under ``vmap`` and ``pmap``; the ``fit``
class methods of the denoisers call the same functions eagerly.

Why each choice:

- A full covariance from ``n`` draws has ``d(d+1)/2`` free entries whose estimation error puts
  about ``d²/(4n)`` into the variance of every importance log weight (d = 128, n = 2,000: ~2): in
  high dimension the fit must find the covariance's *structure*. Each component's covariance is
  therefore one of ``COVARIANCE_TYPES`` (as scikit-learn's ``GaussianMixture(covariance_type=...)``):
  ``"full"``, ``"diag"``, ``"spherical"``, or ``"scaled"`` (a multiple of the draws' overall
  covariance, Ledoit–Wolf shrunk: one shared correlation structure, scaled per component), and
  BIC chooses the type with the number of components, parameters counted honestly.
- Full component covariances are shrunk toward their own diagonal, ``(n·S + κ·diag S)/(n + κ)``
  with ``κ = d + 2`` pseudo-draws: it keeps every component positive definite when ``n`` is near
  ``d`` and leaves the scale of each coordinate alone (shrinking toward ``I`` would inflate narrow
  modes). The overall covariance (:func:`fit_gaussian`) is shrunk by Ledoit and Wolf's (2004)
  estimated intensity toward the same target.
- EM runs on draws standardised per coordinate, so one tolerance serves latents of any scale.
- The number of components is chosen by BIC among ``components`` (default 1, 2, 4, 8), each with
  k-means++ restarts, tried in increasing order until one does not improve BIC; a candidate with
  more parameters than draws is not fitted.
- Draws from stuck local chains say where the modes are, not how heavy they are; the weights are
  therefore re-estimated from the target's density (:func:`reweight`), one stratum per component.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.optimize import minimize
from jax.scipy.special import logsumexp

from .._random import normal

__all__ = ["MixtureFit", "COVARIANCE_TYPES", "DIAGONAL_TYPES", "fit_diagonal", "fit_gaussian", "fit_laplace",
           "fit_mixture", "reweight",
           "mixture_log_prob", "num_parameters", "usable_components"]

DEFAULT_COMPONENTS = (1, 2, 4, 8)
COVARIANCE_TYPES = ("full", "diag", "spherical", "scaled")
# Stationarity of a Laplace fit: the Newton decrement gᵀH⁻¹g (the squared distance to the optimum
# in posterior standard deviations, whatever the scale) must be below this.
NEWTON_DECREMENT_TOL = 1e-6


class MixtureFit(NamedTuple):
    """A fitted Gaussian mixture. Padding components (unused when fewer were chosen) have weight 0.

    Fields:
        log_weights: ``(K,)``, ``−inf`` for padding.
        means: ``(K, d)``.
        covs: ``(K, d, d)``, or ``(K, d)`` diagonal variances (:func:`fit_diagonal`).
        num_components: how many components are in use (BIC's choice).
        log_likelihood: mean log likelihood of the draws under the fit.
        covariance_type: index of BIC's covariance type in the ``covariance_types`` fitted
            (:data:`COVARIANCE_TYPES` by default).
    """

    log_weights: jnp.ndarray
    means: jnp.ndarray
    covs: jnp.ndarray
    num_components: jnp.ndarray
    log_likelihood: jnp.ndarray
    covariance_type: jnp.ndarray = 0


def num_parameters(covariance_type, k, d):
    """Free parameters of a ``k``-component mixture in ``d`` dimensions (BIC's count).

    Examples:
        >>> [num_parameters(c, 2, 10) for c in COVARIANCE_TYPES]
        [131, 41, 23, 78]
    """
    per_cov = {"full": d * (d + 1) / 2, "diag": d, "spherical": 1, "scaled": 1}[covariance_type]
    shared = d * (d + 1) / 2 if covariance_type == "scaled" else 0
    return int(k * (d + per_cov) + k - 1 + shared)


def usable_components(components, n, d, covariance_type="full"):
    """The candidate numbers of components worth fitting to ``n`` draws in ``d`` dimensions.

    A candidate with more parameters than draws is dropped (BIC would reject it after EM had paid
    for it); the smallest candidate always stays. Static, so the padding of every array that
    holds a fit (and the denoiser's cost per call) follows the largest usable candidate.

    Examples:
        >>> usable_components((1, 2, 4, 8), 4000, 100), usable_components((1, 2, 4, 8), 4000, 10)
        ((1,), (1, 2, 4, 8))
        >>> usable_components((1, 2, 4, 8), 2000, 128, "spherical")
        (1, 2, 4, 8)
    """
    return tuple(k for k in components if k == min(components) or num_parameters(covariance_type, k, d) <= n)


def _candidates(components, n, d, covariance_types):
    """``{type: usable numbers of components}`` over the types that fit at all (see
    :func:`usable_components`); the simplest type stays when none does."""
    # The scaled type's shared covariance is Ledoit–Wolf shrunk, estimable from fewer draws than its
    # d(d+1)/2 entries (BIC still counts them): only its per-component parameters must fit in n.
    shared = {c: d * (d + 1) / 2 if c == "scaled" else 0 for c in covariance_types}
    usable = {c: tuple(k for k in components if num_parameters(c, k, d) - shared[c] <= n) for c in covariance_types}
    usable = {c: ks for c, ks in usable.items() if ks}
    if not usable:
        simplest = min(covariance_types, key=lambda c: num_parameters(c, min(components), d))
        usable = {simplest: (min(components),)}
    return usable


def max_components(components, n, d, covariance_types=COVARIANCE_TYPES):
    """The most components any usable candidate has (static: it sizes the arrays of a fit)."""
    return max(max(ks) for ks in _candidates(components, n, d, covariance_types).values())


def _shrink(cov, n, d):
    kappa = d + 2.0
    diag = jnp.diagonal(cov, axis1=-2, axis2=-1)
    target = diag[..., :, None] * jnp.eye(d, dtype=cov.dtype)
    shrunk = (n[..., None, None] * cov + kappa * target) / (n[..., None, None] + kappa)
    # A floor relative to the scale keeps a component drawn from identical draws invertible.
    return shrunk + 1e-9 * jnp.mean(diag, -1)[..., None, None] * jnp.eye(d, dtype=cov.dtype)


def fit_gaussian(draws):
    """Mean and Ledoit–Wolf shrunk covariance of ``draws`` (``(n, d)``). Returns ``(mean, cov)``.

    The sample correlation matrix ``R`` is shrunk toward ``I`` (the covariance toward its own
    diagonal: each coordinate keeps its scale) with Ledoit and Wolf's (2004) estimate of the
    intensity that minimises the expected squared error, as ``sklearn.covariance.ledoit_wolf``
    does for its target ``tr(S)/d·I``: near 0 when ``n ≫ d``, more when the draws are few.

    Examples:
        >>> import jax
        >>> mean, cov = fit_gaussian(jax.random.normal(jax.random.PRNGKey(0), (4000, 2)) * 3.0)
        >>> bool(abs(cov[0, 0] - 9.0) < 0.5)
        True
    """
    draws = jnp.asarray(draws)
    n, d = draws.shape
    mean = draws.mean(0)
    sd = draws.std(0)
    z = (draws - mean) / jnp.where(sd > 0, sd, 1.0)
    corr = z.T @ z / n
    eye = jnp.eye(d, dtype=draws.dtype)
    delta = jnp.sum((corr - eye) ** 2)
    beta = jnp.clip((jnp.sum(jnp.sum(z**2, 1) ** 2) - n * jnp.sum(corr**2)) / n**2, 0.0, delta)
    shrink = jnp.where(delta > 0, beta / jnp.where(delta > 0, delta, 1.0), 1.0)
    corr = shrink * eye + (1.0 - shrink) * corr
    cov = corr * sd[:, None] * sd[None, :]
    # A floor relative to the scale keeps a fit with a constant coordinate invertible (all of them
    # constant: singular, which the adaptive kernel reports as walkers that never moved).
    return mean, 0.5 * (cov + cov.T) + 1e-9 * jnp.mean(sd**2) * eye


def _component_log_prob(x, means, covs):
    """``log N(x_i; a_k, Σ_k)`` for every draw and component: ``(n, K)``."""
    d = x.shape[1]
    chol = jnp.linalg.cholesky(covs)
    # L⁻¹ then products, not a triangular solve against the (d, n) draws: with several host
    # devices (NumPyro's parallel chains on CPU) XLA's batched solve with a wide right-hand side
    # ran 35x slower than on one device, and made EM under pmap take 20 s instead of 2 s.
    linv = jax.scipy.linalg.solve_triangular(chol, jnp.broadcast_to(jnp.eye(d, dtype=x.dtype), chol.shape), lower=True)
    z = jnp.einsum("kij,nj->nki", linv, x) - jnp.einsum("kij,kj->ki", linv, means)[None]
    half_logdet = jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), -1)
    return -0.5 * jnp.sum(z**2, -1) - half_logdet - 0.5 * d * jnp.log(2 * jnp.pi)


def _diag_log_prob(x, means, var):
    """``log N(x_i; a_k, diag v_k)`` for every draw and component: ``(n, K)``, by matrix products."""
    d = x.shape[1]
    prec = 1.0 / var
    quad = (x**2) @ prec.T - 2.0 * x @ (means * prec).T + jnp.sum(means**2 * prec, -1)
    return -0.5 * quad - 0.5 * jnp.sum(jnp.log(var), -1) - 0.5 * d * jnp.log(2 * jnp.pi)


def mixture_log_prob(x, log_weights, means, covs):
    """Log density of a Gaussian mixture at each row of ``x`` (``(n, d)`` → ``(n,)``); ``covs`` of
    shape ``(K, d)`` are diagonal variances."""
    comp = _diag_log_prob(x, means, covs) if covs.ndim == 2 else _component_log_prob(x, means, covs)
    return logsumexp(comp + log_weights, axis=1)


def _kmeans_pp(rng_key, x, k):
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each next centre drawn with probability ∝ the
    squared distance to the nearest centre so far, by the Gumbel-max trick."""
    n = x.shape[0]
    # All the Gumbel noise in one flat draw before the loop: a random draw per iteration cost XLA
    # 0.65 s to compile against 0.29 s (every EM program compiles its own copy).
    gumbel = jax.random.gumbel(rng_key, (k * n,), x.dtype).reshape(k, n)
    first = x[jnp.argmax(gumbel[0])]
    means = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first)

    def body(j, carry):
        means, d2 = carry
        nxt = x[jnp.argmax(jnp.log(d2 + 1e-30) + gumbel[j])]
        return means.at[j].set(nxt), jnp.minimum(d2, jnp.sum((x - nxt) ** 2, 1))

    # A loop, not k unrolled copies: it is compiled inside NumPyro's sampling loop.
    return jax.lax.fori_loop(1, k, body, (means, jnp.sum((x - first) ** 2, 1)))[0]


# Variance floor of diagonal components, in standardised units (scikit-learn's reg_covar).
DIAG_FLOOR = 1e-6


FULL, DIAG, SPHERICAL = 0, 1, 2


def _em(rng_key, x, mask, num_iters, kind, matrices=True, tol=1e-6):
    """EM for a mixture of ``mask.sum()`` components, padded to ``mask.size`` (static shapes).

    ``kind`` (traced, so every covariance type shares one compiled program): ``FULL`` covariances,
    or diagonal ones (``DIAG``), averaged over the coordinates (``SPHERICAL``). ``matrices``
    (static): covariances stored as ``(K, d, d)`` matrices, so that the full type can be among the
    kinds; otherwise as ``(K, d)`` variances (diagonal kinds only, O(K·d) per draw in high
    dimension). Stops after ``num_iters`` iterations or when the mean log likelihood gains less
    than ``tol``.
    """
    n, d = x.shape
    k_max = mask.shape[0]
    eye = jnp.eye(d, dtype=x.dtype)
    means = _kmeans_pp(rng_key, x, k_max)
    covs = jnp.broadcast_to(eye, (k_max, d, d)) if matrices else jnp.ones((k_max, d), x.dtype)
    log_w = jnp.where(mask, -jnp.log(mask.sum()), -jnp.inf).astype(x.dtype)

    def log_prob(means, covs):
        if not matrices:
            return _diag_log_prob(x, means, covs)
        return jax.lax.cond(kind == FULL, lambda: _component_log_prob(x, means, covs),
                            lambda: _diag_log_prob(x, means, jnp.diagonal(covs, axis1=-2, axis2=-1)))

    def e_step(log_w, means, covs):
        joint = log_prob(means, covs) + log_w
        ll = logsumexp(joint, axis=1)
        return jnp.exp(joint - ll[:, None]), jnp.mean(ll)

    def m_covs(resp, nk, means):
        def variances():
            var = jnp.maximum((resp.T @ x**2) / nk[:, None] - means**2, 0.0)
            var = jnp.where(kind == SPHERICAL, jnp.mean(var, -1, keepdims=True), var) + DIAG_FLOOR
            return jnp.where(mask[:, None], var, 1.0)

        def full():
            dev = x[:, None, :] - means[None]
            covs = _shrink(jnp.einsum("nk,nki,nkj->kij", resp, dev, dev) / nk[:, None, None], nk, d)
            # Padding components stay at weight 0 with a harmless covariance.
            return jnp.where(mask[:, None, None], covs, eye)

        if not matrices:
            return variances()
        return jax.lax.cond(kind == FULL, full, lambda: variances()[:, :, None] * eye)

    def body(carry):
        i, params, _, ll_old = carry
        resp, ll = e_step(*params)
        nk = resp.sum(0) + 1e-10
        means = (resp.T @ x) / nk[:, None]
        params = (jnp.where(mask, jnp.log(nk / n), -jnp.inf), jnp.where(mask[:, None], means, 0.0), m_covs(resp, nk, means))
        return i + 1, params, ll_old, ll

    def cond(carry):
        i, _, ll_old, ll = carry
        return (i < num_iters) & ~(jnp.abs(ll - ll_old) < tol)

    inf = jnp.asarray(jnp.inf, x.dtype)
    _, params, _, _ = jax.lax.while_loop(cond, body, (0, (log_w, means, covs), -inf, inf))
    _, ll = e_step(*params)
    # A collapsed component gives NaN; such a restart must lose the comparison.
    return params, jnp.where(jnp.isfinite(ll), ll, -jnp.inf)


def _select(rng_key, x, ks, allowed, num_params, k_max, num_restarts, num_iters, kind, matrices=True):
    """BIC's choice among ``ks`` components for one covariance type: ``(params, ll, bic, count)``.

    Candidates run in increasing order, stopping at the first that does not lower BIC or is not
    ``allowed`` (a traced ``(len(ks),)`` bool): most posteriors are unimodal, and EM over padded
    components costs the same for every candidate (2.4 s per fit in d = 25 for twelve runs).
    """
    n, d = x.shape
    masks = jnp.arange(k_max)[None, :] < jnp.asarray(ks)[:, None]
    keys = jax.random.split(rng_key, len(ks) * num_restarts).reshape(len(ks), num_restarts, -1)

    def candidate(c):
        # lax.map, not vmap: restarts one after another keep XLA's programs small; the vmapped EM
        # was also where a pmap deadlock on CPU was bisected to (docs §7).
        params, ll = jax.lax.map(lambda key: _em(key, x, masks[c], num_iters, kind, matrices), keys[c])
        r = jnp.argmax(ll)
        bic = -2.0 * n * ll[r] + num_params[c] * jnp.log(n)
        return jax.tree_util.tree_map(lambda a: a[r], params), ll[r], jnp.where(jnp.isfinite(bic), bic, jnp.inf)

    def body(carry):
        c, best, _ = carry
        params, ll, bic = candidate(c)
        better = bic < best[2]
        best = jax.tree_util.tree_map(lambda a, b: jnp.where(better, a, b), (params, ll, bic, c), best)
        return c + 1, best, better

    def go_on(carry):
        c, _, improved = carry
        return (c < len(ks)) & improved & allowed[jnp.minimum(c, len(ks) - 1)]

    inf = jnp.asarray(jnp.inf, x.dtype)
    cov_shape = (k_max, d, d) if matrices else (k_max, d)
    none = ((jnp.zeros(k_max, x.dtype), jnp.zeros((k_max, d), x.dtype), jnp.ones(cov_shape, x.dtype)), -inf, inf, 0)
    _, (params, ll, bic, best), _ = jax.lax.while_loop(go_on, body, (0, none, jnp.ones((), bool)))
    return params, ll, bic, jnp.asarray(ks)[best]


def fit_mixture(rng_key, draws, components=DEFAULT_COMPONENTS, num_restarts=3, num_iters=50,
                covariance_types=COVARIANCE_TYPES):
    """Gaussian mixture fitted to ``draws`` by EM; covariance type and number of components chosen by BIC.

    For each covariance type, candidates are tried in increasing order until one does not lower
    BIC (so a unimodal sample costs two candidates per type, not all of them); the type with the
    lowest BIC wins. A candidate with more parameters than draws is skipped (a full covariance in
    ``d = 64`` needs 2,144 parameters a component), which is what keeps the fit accurate in high
    dimension: there a spherical, diagonal or scaled type is chosen from the same draws.

    Args:
        rng_key: PRNG key (k-means++ initialisation of each restart).
        draws: ``(n, d)`` array.
        components: candidate numbers of components (static).
        num_restarts: EM restarts per candidate; the best log likelihood wins.
        num_iters: EM iterations per restart.
        covariance_types: candidate covariance types, a subset of :data:`COVARIANCE_TYPES`
            (static).

    Every type runs through one compiled EM (``lax.map`` over the types, the covariance kind a
    traced switch); candidates are masks over the largest candidate's components. Returns
    a :class:`MixtureFit` padded to ``max(components)`` components, with full covariance matrices.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> k1, k2 = jax.random.split(jax.random.PRNGKey(0))
        >>> x = jnp.concatenate([jax.random.normal(k1, (300, 2)) - 4, jax.random.normal(k2, (700, 2)) + 4])
        >>> fit = fit_mixture(jax.random.PRNGKey(1), x)
        >>> int(fit.num_components), sorted(round(float(w), 2) for w in jnp.exp(fit.log_weights))[-2:]
        (2, [0.3, 0.7])
        >>> COVARIANCE_TYPES[int(fit.covariance_type)]   # isotropic components: BIC's choice
        'spherical'
    """
    draws = jnp.asarray(draws)
    d, dtype = draws.shape[1], draws.dtype
    chosen, a, loc, summary = _fit_types(rng_key, draws, components, num_restarts, num_iters, covariance_types)
    log_w, means, covs = chosen
    if covs.ndim == 2:
        covs = covs[:, :, None] * jnp.eye(d, dtype=dtype)
    covs = a @ covs @ a.T
    covs = 0.5 * (covs + jnp.swapaxes(covs, -1, -2))
    return _padded(summary, (log_w, loc + means @ a.T, covs), max(components),
                   jnp.broadcast_to(jnp.eye(d, dtype=dtype), (1, d, d)))


DIAGONAL_TYPES = ("diag", "spherical", "scaled")


def fit_diagonal(rng_key, draws, components=DEFAULT_COMPONENTS, num_restarts=3, num_iters=50):
    """:func:`fit_mixture` over the types whose components are diagonal in some coordinates, kept there.

    Returns ``(fit, loc, chol)``: the draws are ``loc + chol·u`` and ``fit`` is the mixture of
    ``u``, its ``covs`` the ``(K, d)`` variances of diagonal components. ``chol`` is BIC's type's own
    map (lower triangular): per-coordinate scales (diag), one common scale (spherical), or the
    Cholesky factor of the draws' Ledoit–Wolf covariance (scaled). Storing and applying such a fit
    costs O(K·d) instead of O(K·d²), which is what the adaptive kernel needs in high dimension.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> x = jax.random.normal(jax.random.PRNGKey(0), (2000, 300)) * jnp.linspace(0.5, 2.0, 300)
        >>> fit, loc, chol = fit_diagonal(jax.random.PRNGKey(1), x)
        >>> fit.covs.shape, int(fit.num_components), COVARIANCE_TYPES[int(fit.covariance_type)]
        ((8, 300), 1, 'diag')
    """
    draws = jnp.asarray(draws)
    d = draws.shape[1]
    chosen, chol, loc, summary = _fit_types(rng_key, draws, components, num_restarts, num_iters, DIAGONAL_TYPES)
    return _padded(summary, chosen, max(components), jnp.ones((1, d), draws.dtype)), loc, chol


def _padded(summary, params, k_pad, pad_cov):
    """The chosen fit as a :class:`MixtureFit` padded to ``k_pad`` components."""
    log_w, means, covs = params
    pad = k_pad - log_w.shape[0]
    return MixtureFit(
        jnp.concatenate([log_w, jnp.full((pad,), -jnp.inf, log_w.dtype)]),
        jnp.concatenate([means, jnp.zeros((pad, means.shape[1]), means.dtype)]),
        jnp.concatenate([covs, jnp.broadcast_to(pad_cov, (pad,) + pad_cov.shape[1:])]),
        *summary,
    )


def _fit_types(rng_key, draws, components, num_restarts, num_iters, covariance_types):
    """EM and BIC per covariance type, each in its working coordinates ``draws = loc + A·work``.

    Returns ``(params, A, loc, summary)`` of the type with the lowest BIC in the draws' units:
    its best candidate's ``(log_weights, means, covs)`` in working coordinates, its map, the
    draws' mean, and ``(num_components, log_likelihood, covariance_type)`` (the log likelihood in
    the draws' units, the type as an index into :data:`COVARIANCE_TYPES`).
    """
    n, d = draws.shape
    unknown = set(covariance_types) - set(COVARIANCE_TYPES)
    if unknown or not covariance_types:
        raise ValueError(f"covariance_types must be a non-empty subset of {COVARIANCE_TYPES}, got {covariance_types}")
    dtype = draws.dtype
    cands = _candidates(components, n, d, covariance_types)
    k_max = max(max(ks) for ks in cands.values())
    keys = dict(zip(COVARIANCE_TYPES, jax.random.split(rng_key, len(COVARIANCE_TYPES))))
    # Each type runs EM in its own working coordinates, draws = loc + A·work: standardised per
    # coordinate (full, diag: the fit does not depend on it, k-means++ does), by one common scale
    # (spherical: spherical in the model's coordinates), whitened by the draws' overall covariance
    # (scaled: a spherical fit there).
    loc, scale = draws.mean(0), draws.std(0) + 1e-12
    x = (draws - loc) / scale
    _, cov_all = fit_gaussian(x)
    chol_all = jnp.linalg.cholesky(cov_all)
    common = jnp.sqrt(jnp.mean(scale**2))
    maps = {
        "full": jnp.diag(scale), "diag": jnp.diag(scale), "spherical": common * jnp.eye(d, dtype=dtype),
        "scaled": scale[:, None] * chol_all,
    }
    inverse = {c: jax.scipy.linalg.solve_triangular(a, jnp.eye(d, dtype=dtype), lower=True) for c, a in maps.items()}
    log_det = {c: jnp.sum(jnp.log(jnp.abs(jnp.diagonal(a)))) for c, a in maps.items()}

    # Every type through one compiled EM (a lax.map over the types, each in its working
    # coordinates): the full type and the diagonal ones as two programs cost the eight-schools
    # SL(model) step 2.3 s more to compile than the full type alone.
    names = [c for c in COVARIANCE_TYPES if c in cands]
    matrices = "full" in cands
    ks = tuple(sorted(set().union(*(cands[c] for c in names))))
    data = jnp.stack([(draws - loc) @ inverse[c].T for c in names])
    kinds = jnp.asarray([{"full": FULL, "diag": DIAG}.get(c, SPHERICAL) for c in names])
    allowed = jnp.asarray([[k in cands[c] for k in ks] for c in names])
    num_params = jnp.asarray([[num_parameters(c, k, d) for k in ks] for c in names], dtype)
    type_keys = jnp.stack([keys[c] for c in names])
    out = jax.lax.map(lambda a: _select(a[0], a[1], ks, a[2], a[3], k_max, num_restarts, num_iters, a[4], matrices),
                      (type_keys, data, allowed, num_params, kinds))
    params, lls, bics, counts = out
    # Log likelihoods and BIC in the draws' units (each working map's Jacobian).
    log_dets = jnp.stack([log_det[c] for c in names])
    bics = bics + 2.0 * n * log_dets
    best = jnp.argmin(jnp.where(jnp.isfinite(bics), bics, jnp.inf))
    # Gathers, not a switch over the types: fewer programs for XLA to compile.
    chosen = jax.tree_util.tree_map(lambda a: a[best], params)
    type_index = jnp.asarray([COVARIANCE_TYPES.index(c) for c in names])
    summary = (counts[best], (lls - log_dets)[best], type_index[best])
    return chosen, jnp.stack([maps[c] for c in names])[best], loc, summary


def fit_laplace(potential_fn, init_position, fallback, max_iter=500, num_newton=5):
    """``N(x*, H⁻¹)`` at a minimum of ``potential_fn`` as a one-component :class:`MixtureFit`, or
    ``fallback`` where the search does not end at one.

    The traceable counterpart of :func:`slppl.denoisers.laplace` (which raises instead of falling
    back, and escapes saddles), for the adaptive kernel, whose fit runs inside a compiled loop:
    BFGS from ``init_position``, ``num_newton`` Newton steps (each kept only if it lowers ``U``),
    then the Hessian. The point counts as a minimum when the Hessian is positive definite and the
    Newton decrement ``gᵀH⁻¹g`` is below ``NEWTON_DECREMENT_TOL``; otherwise (a saddle, a flat
    direction, a funnel's unbounded neck) ``fallback`` is returned: e.g. a Gaussian fitted to draws.

    Examples:
        >>> import jax.numpy as jnp
        >>> U = lambda x: 0.5 * jnp.sum((x - 1.0) ** 2 / 4.0)
        >>> fallback = MixtureFit(jnp.zeros(1), jnp.zeros((1, 2)), jnp.eye(2)[None], 1, 0.0)
        >>> fit = fit_laplace(U, jnp.zeros(2), fallback)
        >>> fit.means[0].round(4).tolist(), jnp.diag(fit.covs[0]).round(4).tolist()
        ([1.0, 1.0], [4.0, 4.0])
        >>> fit_laplace(lambda x: -jnp.sum(x ** 2), jnp.ones(2), fallback).means[0].tolist()  # no minimum
        [0.0, 0.0]
    """
    grad_fn, hess_fn = jax.grad(potential_fn), jax.hessian(potential_fn)
    x = minimize(potential_fn, jnp.asarray(init_position), method="BFGS", options={"maxiter": max_iter}).x

    def curvature(x):
        h = hess_fn(x)
        return grad_fn(x), jnp.linalg.cholesky(0.5 * (h + h.T))

    def newton(_, x):
        g, chol = curvature(x)
        step = jax.scipy.linalg.cho_solve((chol, True), g)
        x_new = x - step
        better = jnp.all(jnp.isfinite(x_new)) & (potential_fn(x_new) <= potential_fn(x))
        return jnp.where(better, x_new, x)

    x = jax.lax.fori_loop(0, num_newton, newton, x)
    g, chol = curvature(x)
    eye = jnp.eye(x.shape[0], dtype=x.dtype)
    cov = jax.scipy.linalg.cho_solve((chol, True), eye)
    ok = jnp.all(jnp.isfinite(cov)) & jnp.all(jnp.isfinite(x)) & (g @ cov @ g < NEWTON_DECREMENT_TOL)
    k = fallback.means.shape[0]
    fit = MixtureFit(
        jnp.concatenate([jnp.zeros(1, x.dtype), jnp.full((k - 1,), -jnp.inf, x.dtype)]),
        jnp.zeros_like(fallback.means).at[0].set(x),
        jnp.broadcast_to(eye, fallback.covs.shape).at[0].set(0.5 * (cov + cov.T)),
        jnp.ones_like(fallback.num_components), -potential_fn(x),
    )
    return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), fit, fallback)


def reweight(rng_key, fit, log_density_fn, num_per_component=128, defensive=0.05):
    """Re-estimate a fitted mixture's weights from the target's unnormalised density.

    The mass of the target that component k accounts for is
    ``Z_k = ∫ π(x)·γ_k(x) dx`` with the fit's responsibilities ``γ_k = w_k q_k/q``; it is
    estimated by importance sampling from ``q_k`` itself, one stratum per component, so a poor
    component cannot swamp the estimate of another. The new weights are ``Z_k/ΣZ``, mixed with
    the old ones by ``defensive`` so that no component found by the draws is dropped on the
    strength of a few importance weights. Components whose estimate is not finite keep their
    old weight.

    Args:
        rng_key: PRNG key.
        fit: a :class:`MixtureFit`.
        log_density_fn: ``log π(x)`` up to a constant, on a flat vector (``−U``).
        num_per_component: importance draws per component (``K·num_per_component`` evaluations).
        defensive: weight of the old weights in the result.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> fit = MixtureFit(jnp.log(jnp.array([0.5, 0.5])), jnp.array([[-3.0], [3.0]]),
        ...                  jnp.ones((2, 1, 1)), 2, 0.0)
        >>> log_pi = lambda x: jnp.logaddexp(jnp.log(0.2) - 0.5 * (x[0] + 3) ** 2, jnp.log(0.8) - 0.5 * (x[0] - 3) ** 2)
        >>> [round(float(w), 2) for w in jnp.exp(reweight(jax.random.PRNGKey(0), fit, log_pi, defensive=0.0).log_weights)]
        [0.2, 0.8]
    """
    k, d = fit.means.shape
    noise = normal(rng_key, (k, num_per_component, d), fit.means.dtype)
    if fit.covs.ndim == 2:
        x = fit.means[:, None, :] + jnp.sqrt(fit.covs)[:, None, :] * noise
    else:
        x = fit.means[:, None, :] + jnp.einsum("kij,knj->kni", jnp.linalg.cholesky(fit.covs), noise)
    flat = x.reshape(-1, d)
    log_pi = jax.vmap(log_density_fn)(flat)
    log_q = mixture_log_prob(flat, fit.log_weights, fit.means, fit.covs)
    log_ratio = (log_pi - log_q).reshape(k, num_per_component)
    log_ratio = jnp.where(jnp.isfinite(log_ratio), log_ratio, -jnp.inf)
    log_z = fit.log_weights + logsumexp(log_ratio, axis=1) - jnp.log(num_per_component)
    ok = jnp.isfinite(log_z)
    log_new = jnp.where(ok, log_z - logsumexp(jnp.where(ok, log_z, -jnp.inf)), -jnp.inf)
    # Components without a finite estimate keep their old share of the mass.
    old_ok = jnp.sum(jnp.where(ok, jnp.exp(fit.log_weights), 0.0))
    new = jnp.where(ok, jnp.exp(log_new) * old_ok, jnp.exp(fit.log_weights))
    mixed = (1.0 - defensive) * new + defensive * jnp.exp(fit.log_weights)
    any_ok = jnp.any(ok)
    log_w = jnp.where(any_ok, jnp.log(mixed / mixed.sum()), fit.log_weights)
    return fit._replace(log_weights=log_w)
