"""Side-by-side diagnostics for comparing samplers (ArviZ summaries, ESS per second, plots)."""

import arviz as az
import numpy as np
import pandas as pd

__all__ = ["side_by_side", "ess_per_second", "plot_comparison"]

COLUMNS = ("mean", "sd", "ess_bulk", "ess_tail", "r_hat")


def side_by_side(idatas, var_names=None, columns=COLUMNS):
    """One table with the ArviZ summary of each sampler next to the others.

    Args:
        idatas: ``{"NUTS": idata, "SL": idata, ...}`` (anything ``az.summary`` accepts).
        var_names: variables to summarise (all by default).
        columns: summary columns to keep.

    Example:
        >>> import numpy as np, arviz as az
        >>> draws = {"x": np.random.default_rng(0).normal(size=(2, 100))}
        >>> a = az.from_dict(draws) if az.__version__.startswith("0.") else az.from_dict({"posterior": draws})
        >>> side_by_side({"A": a, "B": a}).columns.get_level_values(0).unique().tolist()
        ['A', 'B']
    """
    tables = {name: az.summary(idata, var_names=var_names)[list(columns)] for name, idata in idatas.items()}
    return pd.concat(tables, axis=1)


def ess_per_second(idata, seconds, var_names=None):
    """Smallest bulk ESS over all scalar parameters, divided by the wall time.

    Example:
        >>> import numpy as np, arviz as az
        >>> draws = {"x": np.random.default_rng(0).normal(size=(4, 500))}
        >>> a = az.from_dict(draws) if az.__version__.startswith("0.") else az.from_dict({"posterior": draws})
        >>> ess_per_second(a, 2.0) > 500
        True
    """
    ess = az.ess(idata, var_names=var_names, method="bulk")
    return float(min(np.min(ess[v].values) for v in ess.data_vars)) / seconds


def plot_comparison(draws, path, reference=None, title=None):
    """Trace (per chain) and pooled histogram of a scalar summary for each sampler; saves a PNG.

    Args:
        draws: ``{"NUTS": array (chains, draws), "SL": ...}``.
        path: where to write the PNG.
        reference: optional ``(grid, density)`` drawn over the histograms.

    Example:
        >>> import numpy as np, tempfile, os
        >>> d = {"A": np.random.default_rng(0).normal(size=(2, 50))}
        >>> path = os.path.join(tempfile.mkdtemp(), "c.png")
        >>> plot_comparison(d, path); os.path.exists(path)
        True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(draws), figsize=(5 * len(draws), 6), squeeze=False)
    for col, (name, value) in enumerate(draws.items()):
        value = np.asarray(value)
        for chain in value:
            axes[0, col].plot(chain, lw=0.4, alpha=0.8)
        axes[0, col].set_title(f"{name}: trace per chain")
        axes[0, col].set_xlabel("draw")
        axes[1, col].hist(value.ravel(), bins=80, density=True, alpha=0.6, label=f"{name} (pooled)")
        if reference is not None:
            axes[1, col].plot(*reference, "k", lw=1.2, label="target")
        axes[1, col].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
