"""How close a sampler's draws are to a reference posterior, and how it weighs the modes.

Everything here works on *scalar draws*: ``{"site[i]": array (chains, draws)}`` with 1-based
indices, the names posteriordb and Stan use (:func:`scalar_draws` makes them from NumPyro's
``get_samples(group_by_chain=True)``). Errors are in units of the reference's standard deviation,
so they read the same on every scale; mode weights come with their Monte Carlo standard error
from the indicator's ESS.
"""

import numpy as np
import pandas as pd
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from scipy.stats import wasserstein_distance

__all__ = ["scalar_draws", "against_reference", "mode_weights"]


def scalar_draws(samples, var_names=None):
    """``{"site[i]": (chains, draws)}`` from ``{site: (chains, draws, ...)}`` (indices 1-based, row-major).

    Examples:
        >>> import numpy as np
        >>> sorted(scalar_draws({"mu": np.zeros((2, 5)), "theta": np.zeros((2, 5, 3))}))
        ['mu', 'theta[1]', 'theta[2]', 'theta[3]']
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
                out[f"{name}[{i + 1}]"] = flat[..., i]
    return out


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
        reference: ``{"site[i]": (mean, sd)}`` (posteriordb's reference moments) or
            ``{"site[i]": reference draws}``; sites named without an index work for scalars.

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
    moments = _reference_moments(reference)
    names = [k for k in draws if k in moments]
    if not names:
        raise ValueError(f"the reference names none of the sampled parameters: reference has "
                         f"{sorted(moments)[:5]}..., the draws have {sorted(draws)[:5]}...; name them "
                         "'site' or 'site[i]' with 1-based indices (slppl.accuracy.scalar_draws)")
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
