"""How close a sampler's draws are to a reference posterior, and how it weighs the modes.

Everything here works on *scalar draws*: ``{"site[i]": array (chains, draws)}`` with 0-based
row-major indices, as NumPyro's ``print_summary`` and ArviZ count (:func:`scalar_draws` makes them
from NumPyro's ``get_samples(group_by_chain=True)``). References written with Stan's and
posteriordb's 1-based names convert with :func:`zero_based`. Errors are in units of the reference's standard deviation,
so they read the same on every scale; mode weights come with their Monte Carlo standard error
from the indicator's ESS.
"""

import re
import warnings

import numpy as np
import pandas as pd
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from scipy.stats import wasserstein_distance

__all__ = ["scalar_draws", "zero_based", "against_reference", "mode_weights"]

_INDEXED = re.compile(r"^(.*)\[(\d+)\]$")


def scalar_draws(samples, var_names=None):
    """``{"site[i]": (chains, draws)}`` from ``{site: (chains, draws, ...)}`` (indices 0-based, row-major).

    Examples:
        >>> import numpy as np
        >>> sorted(scalar_draws({"mu": np.zeros((2, 5)), "theta": np.zeros((2, 5, 3))}))
        ['mu', 'theta[0]', 'theta[1]', 'theta[2]']
    """
    out = {}
    for name, value in samples.items():
        if var_names is not None and name not in var_names:
            continue
        value = np.asarray(value)
        if value.ndim < 2:
            raise ValueError(f"site {name!r}: expected draws grouped by chain, (chains, draws, ...), got shape "
                             f"{value.shape}; use get_samples(group_by_chain=True)")
        if value.ndim == 2:
            out[name] = value
        else:
            flat = value.reshape(value.shape[:2] + (-1,))
            for i in range(flat.shape[-1]):
                out[f"{name}[{i}]"] = flat[..., i]
    return out


def zero_based(reference):
    """A reference with Stan's / posteriordb's 1-based names (``"theta[1]"``) renamed 0-based (``"theta[0]"``).

    Examples:
        >>> zero_based({"mu": (0.0, 1.0), "theta[1]": (0.5, 2.0)})
        {'mu': (0.0, 1.0), 'theta[0]': (0.5, 2.0)}
    """
    out = {}
    for name, value in reference.items():
        match = _INDEXED.match(name)
        if match and int(match.group(2)) == 0:
            raise ValueError(f"{name!r} is already 0-based (a 1-based name has no index 0); pass the reference as it is")
        out[f"{match.group(1)}[{int(match.group(2)) - 1}]" if match else name] = value
    return out


def _resolve_names(reference):
    """The reference with 0-based names.

    A reference none of whose indexed names has index 0 is what every reference written for
    earlier versions (1-based) looks like: it is read 1-based, with a warning that says so, rather
    than silently shifted by one. One that names any index 0 is 0-based.
    """
    indexed = [m for m in map(_INDEXED.match, reference) if m]
    if not indexed or any(int(m.group(2)) == 0 for m in indexed):
        return reference
    warnings.warn("the reference's names have no index 0, so they are read as 1-based (Stan's and posteriordb's "
                  f"convention, e.g. {indexed[0].group(0)!r}); slppl names parameters 0-based, as NumPyro's "
                  "print_summary does. Convert them with slppl.accuracy.zero_based(reference) to silence "
                  "this; 1-based names will stop being accepted in a future release.", FutureWarning,
                  stacklevel=3)
    return zero_based(reference)


def _reference_moments(reference):
    """``{name: (mean, sd, draws or None)}`` from moments or from draws."""
    out = {}
    for name, value in reference.items():
        if isinstance(value, tuple) and len(value) == 2 and np.ndim(value[0]) == 0:
            out[name] = (float(value[0]), float(value[1]), None)
        else:
            draws = np.asarray(value, dtype=float).ravel()
            out[name] = (float(draws.mean()), float(draws.std()), draws)
    return out


def against_reference(draws, reference):
    """Per-parameter error of ``draws`` against a reference: one row per parameter both have.

    Args:
        draws: scalar draws ``{"site[i]": (chains, draws)}`` (:func:`scalar_draws`).
        reference: ``{"site[i]": (mean, sd)}`` or ``{"site[i]": reference draws}``, indices
            0-based as in :func:`scalar_draws`; sites named without an index work for scalars.
            Stan's / posteriordb's 1-based names are converted with a ``FutureWarning`` (convert
            them yourself with :func:`zero_based`).

    Returns:
        ``pandas.DataFrame`` indexed by parameter, with ``mean``, ``sd``, ``ref_mean``,
        ``ref_sd``, ``z = |mean − ref_mean| / ref_sd``, ``sd_ratio = sd / ref_sd``, ``mcse_z``
        (the Monte Carlo standard error of the mean in the same units, from the bulk ESS), and,
        with reference draws, ``w1`` (the Wasserstein-1 distance between the two marginals,
        divided by ``ref_sd``).

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> table = against_reference({"x": rng.normal(size=(2, 1000))}, {"x": (0.0, 1.0)})
        >>> bool(table.loc["x", "z"] < 4 * table.loc["x", "mcse_z"])
        True
    """
    return _errors(draws, _reference_moments(_resolve_names(reference)))


def _errors(draws, moments):
    """:func:`against_reference`'s table from the reference's moments, its names already 0-based."""
    names = [k for k in draws if k in moments]
    if not names:
        raise ValueError(f"the reference names none of the sampled parameters: reference has "
                         f"{sorted(moments)[:5]}..., the draws have {sorted(draws)[:5]}...; name them "
                         "'site' or 'site[i]' with 0-based indices (slppl.accuracy.scalar_draws)")
    rows = {}
    for name in names:
        value = np.asarray(draws[name], dtype=float)
        ref_mean, ref_sd, ref_draws = moments[name]
        ess = float(effective_sample_size(value[..., None])[0]) if value.std() > 0 else 1.0
        row = {
            "mean": value.mean(), "sd": value.std(), "ref_mean": ref_mean, "ref_sd": ref_sd,
            "z": abs(value.mean() - ref_mean) / ref_sd, "sd_ratio": value.std() / ref_sd,
            "mcse_z": value.std() / np.sqrt(max(ess, 1.0)) / ref_sd,
        }
        if ref_draws is not None:
            row["w1"] = wasserstein_distance(value.ravel(), ref_draws) / ref_sd
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def mode_weights(labels, truth=None):
    """Share of draws in each mode, with MCSE, indicator ESS and R-hat, against ``truth`` if given.

    Args:
        labels: ``(chains, draws)`` integer mode labels (from a user's labelling function).
        truth: optional true weights, one per mode label ``0..K-1``.

    Returns:
        ``pandas.DataFrame`` with one row per mode: ``weight``, ``mcse``, ``ess``, ``r_hat`` and,
        with ``truth``, ``truth`` and ``error``. A mode never visited has ESS 0; its MCSE is
        taken at the true weight, so missing a mode counts as an error of many MCSEs.

    Examples:
        >>> import numpy as np
        >>> labels = (np.random.default_rng(0).uniform(size=(2, 2000)) < 0.7).astype(int)
        >>> table = mode_weights(labels, truth=[0.3, 0.7])
        >>> bool(abs(table.loc[1, "error"]) < 4 * table.loc[1, "mcse"])
        True
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (chains, draws), got shape {labels.shape}")
    num_modes = int(labels.max()) + 1 if truth is None else len(truth)
    rows = {}
    for k in range(num_modes):
        ind = (labels == k).astype(float)
        weight = ind.mean()
        moves = ind.std() > 0
        ess = float(effective_sample_size(ind[..., None])[0]) if moves else 0.0
        at = weight if truth is None else float(truth[k])
        row = {"weight": weight, "mcse": np.sqrt(at * (1 - at) / max(ess, 1.0)), "ess": ess,
               "r_hat": float(split_gelman_rubin(ind[..., None])[0]) if moves and labels.shape[0] > 1 else np.nan}
        if truth is not None:
            row.update(truth=float(truth[k]), error=weight - float(truth[k]))
        rows[k] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "mode"
    return table
