"""Benchmark cases written as ordinary NumPyro models, with their truth.

Reference posteriors come from ``../shared/benchmarks`` when that folder exists (posteriordb and
inference-gym; the German credit data and truth are also shipped in ``examples/data``), and the
multimodal targets have known mode weights. Each case is a :class:`Case`: the model, its
arguments, and either reference moments or a mode-labelling function with the true weights.
"""

import json
import os
from typing import Any, Callable, NamedTuple, Optional

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from slppl.accuracy import zero_based

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "benchmarks")
EXAMPLES = os.path.join(HERE, "..", "examples")


class Case(NamedTuple):
    """A model, its arguments, and what the right answer is.

    ``reference``: ``{name: (mean, sd)}`` with names as ``site`` or ``site[i]`` (0-based, as
    NumPyro's ``print_summary``; posteriordb's 1-based names are converted on loading); ``modes``: ``(label_fn, weights)`` where ``label_fn(samples) -> int array``.
    """

    name: str
    model: Callable
    args: tuple
    reference: Optional[dict] = None
    modes: Optional[Any] = None


def _moments(folder):
    with open(os.path.join(SHARED, "posteriordb", folder, "reference_moments.json")) as f:
        moments = json.load(f)["moments"]
    return zero_based({k: (v["mean"], v["sd"]) for k, v in moments.items()})


def _data(folder):
    with open(os.path.join(SHARED, "posteriordb", folder, "data.json")) as f:
        return json.load(f)


def eight_schools_noncentered(sigma, y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    theta_trans = numpyro.sample("theta_trans", dist.Normal(0.0, 1.0).expand([sigma.shape[0]]).to_event(1))
    theta = numpyro.deterministic("theta", mu + tau * theta_trans)
    numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


def eight_schools_centered(sigma, y=None):
    """The funnel: no reference here, used to check that SL warns rather than errs silently."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    theta = numpyro.sample("theta", dist.Normal(mu, tau).expand([sigma.shape[0]]).to_event(1))
    numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


def ark(y, K):
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 10.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 10.0).expand([K]).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    T = y.shape[0]
    lags = jnp.stack([y[K - k - 1 : T - k - 1] for k in range(K)], axis=-1)  # y[t - k - 1], t = K..T-1
    numpyro.sample("y", dist.Normal(alpha + lags @ beta, sigma), obs=y[K:])


def german_credit(X, y=None):
    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Bernoulli(logits=X @ w), obs=y)


def two_modes(weights, means, scales):
    """``Σ w_k N(means_k, scales_k²·I)`` as a one-site model."""
    comp = dist.Normal(means, scales[:, None]).to_event(1)
    numpyro.sample("x", dist.MixtureSameFamily(dist.Categorical(probs=weights), comp))


def label_switching(y):
    """Two-component normal mixture with unordered means: two symmetric modes of equal mass."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0).expand([2]).to_event(1))
    mix = dist.MixtureSameFamily(dist.Categorical(probs=jnp.array([0.5, 0.5])), dist.Normal(mu, 1.0))
    numpyro.sample("y", mix, obs=y)


def reference_cases():
    cases = []
    if os.path.isdir(SHARED):
        data = _data("eight_schools-eight_schools_noncentered")
        cases.append(Case("eight schools (non-centred)", eight_schools_noncentered,
                          (jnp.asarray(data["sigma"], float), jnp.asarray(data["y"], float)),
                          _moments("eight_schools-eight_schools_noncentered")))
        # Same posterior over (mu, tau, theta) as the non-centred model, written as the funnel.
        cases.append(Case("eight schools (centred: a funnel)", eight_schools_centered,
                          (jnp.asarray(data["sigma"], float), jnp.asarray(data["y"], float)),
                          _moments("eight_schools-eight_schools_noncentered")))
        data = _data("arK-arK")
        cases.append(Case("arK (AR(5))", ark, (jnp.asarray(data["y"], float), int(data["K"])), _moments("arK-arK")))
    raw = np.loadtxt(os.path.join(EXAMPLES, "data", "german.data-numeric"))
    features, labels = raw[:, :-1], raw[:, -1] - 1
    features = (features - features.mean(0)) / features.std(0)
    X = np.concatenate([features, np.ones((features.shape[0], 1))], axis=1)
    with open(os.path.join(EXAMPLES, "data", "ground_truth.json")) as f:
        truth = json.load(f)
    ref = {f"w[{i}]": (m, s) for i, (m, s) in
           enumerate(zip(truth["IDENTITY_MEAN"], truth["IDENTITY_STANDARD_DEVIATION"]))}
    cases.append(Case("German credit", german_credit, (jnp.asarray(X), jnp.asarray(labels)), ref))
    cases.append(correlated_gaussian())
    return cases


def gaussian(mean, cov):
    numpyro.sample("x", dist.MultivariateNormal(mean, cov))


def correlated_gaussian(d=100, seed=0):
    """A dense-covariance Gaussian in d = 100 with coordinate scales from e⁻² to e²; exact truth."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    scales = np.exp(rng.uniform(-2.0, 2.0, d))
    cov = (a @ a.T + 0.1 * np.eye(d)) * scales[:, None] * scales[None, :]
    mean = rng.normal(size=d) * scales
    ref = {f"x[{i}]": (float(m), float(np.sqrt(v))) for i, (m, v) in enumerate(zip(mean, np.diag(cov)))}
    return Case(f"correlated Gaussian, d = {d}", gaussian, (jnp.asarray(mean), jnp.asarray(cov)), ref)


# The FAB benchmark's 40 means (drawn once with numpy's default_rng(0) over [−40, 40]², rounded and
# written out so no random-number library's version changes the target).
FAB40_MEANS = np.array([
    [10.96, -18.42],
    [-36.72, -38.68],
    [25.06, 33.02],
    [8.53, 18.36],
    [3.49, 34.81],
    [25.27, -39.78],
    [28.59, -37.31],
    [18.37, -25.95],
    [29.05, 3.32],
    [-16.02, -6.19],
    [-37.73, -30.06],
    [13.65, 11.78],
    [9.23, -9.31],
    [39.78, 38.47],
    [14.84, 12.04],
    [15.08, -8.89],
    [-29.19, 17.72],
    [2.03, -15.18],
    [-1.13, 31.16],
    [34.72, -11.38],
    [5.72, -14.25],
    [7.54, -12.97],
    [-8.67, 31.22],
    [-21.83, 9.85],
    [-33.28, 26.61],
    [22.97, -20.85],
    [30.12, -35.31],
    [-13.11, -27.98],
    [-3.97, 23.71],
    [-21.55, -35.84],
    [-7.64, -24.12],
    [-32.74, 6.43],
    [-16.10, 13.76],
    [-24.04, 35.37],
    [-10.79, -31.56],
    [10.33, 34.17],
    [-4.77, 36.37],
    [-0.01, -5.98],
    [9.62, 39.61],
    [35.92, -3.20]
])


def forty_modes(means):
    """``(1/40) Σ N(a_k, I)`` in 2-d (the FAB benchmark) as a one-site model."""
    comp = dist.Normal(means, 1.0).to_event(1)
    numpyro.sample("x", dist.MixtureSameFamily(dist.Categorical(probs=jnp.full(means.shape[0], 1 / means.shape[0])), comp))


def _nearest_mean(samples):
    return np.argmin(((np.asarray(samples["x"])[..., None, :] - FAB40_MEANS) ** 2).sum(-1), -1)


def _heavy_mode(samples):
    return (samples["x"].mean(-1) > 0).astype(int)


def multimodal_cases():
    d10 = (jnp.array([0.3, 0.7]), jnp.stack([-2.0 * jnp.ones(10), 2.0 * jnp.ones(10)]), jnp.sqrt(jnp.array([0.5, 0.5])))
    d32 = (jnp.array([1 / 3, 2 / 3]), jnp.stack([-1.0 * jnp.ones(32), 1.0 * jnp.ones(32)]), jnp.array([0.5, 1.0]))
    y = np.concatenate([np.linspace(-3.5, -0.5, 30), np.linspace(0.5, 3.5, 30)])  # fixed data, no RNG
    return [
        Case("two modes, d = 10", two_modes, d10, modes=(_heavy_mode, np.array([0.3, 0.7]))),
        Case("two modes, d = 32, unequal covariances", two_modes, d32, modes=(_heavy_mode, np.array([1 / 3, 2 / 3]))),
        Case("label switching (2-component mixture)", label_switching, (jnp.asarray(y),),
             modes=(lambda s: (s["mu"][..., 0] < s["mu"][..., 1]).astype(int), np.array([0.5, 0.5]))),
        Case("40 modes in 2-d (FAB)", forty_modes, (jnp.asarray(FAB40_MEANS),),
             modes=(_nearest_mean, np.full(40, 1 / 40))),
    ]
