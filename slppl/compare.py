"""Compare samplers on one model in one call: SL against NUTS (or anything else), side by side.

:func:`compare` runs each sampler through ``numpyro.infer.MCMC`` (or ``pyro.infer.MCMC`` for Pyro
kernels) on the same model and data, and returns a :class:`Comparison`: every run's ArviZ data and
one table of what a reader of a sampler paper wants — wall time split into compilation, warmup and
sampling; ESS bulk/tail; R-hat; divergences; ESS per second and per model evaluation; and, given a
reference, the error of every marginal and the mode weights. ``python -m slppl.compare`` does the
same from the command line and writes a markdown report with its plots.
"""

import argparse
import importlib
import json
import os
import sys
import time
import types
import warnings
from typing import Any, NamedTuple

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.flatten_util import ravel_pytree
from numpyro.diagnostics import split_gelman_rubin

from . import accuracy, plots
from .diagnostics import RHAT_THRESHOLD
from .layout import flatten_draws
from .trajectory import conditional_path

# A sampler whose mode indicators have at most this ESS is flagged (its chains rarely change mode).
MIN_MODE_ESS = 100

__all__ = ["compare", "Comparison", "Run", "main"]

# JAX's own timers: tracing, lowering and XLA compilation (https://docs.jax.dev/en/latest/profiling.html).
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


class Run(NamedTuple):
    """One sampler's run inside a :class:`Comparison`.

    Fields:
        mcmc: the ``MCMC`` object (NumPyro's or Pyro's), for anything not summarised here.
        samples: ``{site: (chains, draws, ...)}`` of the latent sites and deterministics.
        idata: its ArviZ data (``InferenceData`` on ArviZ 0.x, ``DataTree`` on 1.x), with the
            log likelihood when the model has observed sites (for ``az.loo`` / ``az.compare``).
        wall_s: seconds of the whole run, as the user waits for it.
        compile_s: seconds JAX spent tracing and compiling (NaN when no JAX code ran).
        warmup_s, sampling_s: the rest of each phase's wall time (NaN where the phases ran as one
            loop: ``split_warmup=False``, and Pyro).
        counts: ``{"grad": …, "potential": …, "denoiser": …}`` model gradient evaluations, model
            evaluations without gradient, and denoiser calls, over warmup and sampling (NaN where
            the sampler does not report them).
        fields: the sampling phase's extra fields (``accept_prob``, ``diverging``, …).
    """

    mcmc: Any
    samples: dict
    idata: Any
    wall_s: float
    compile_s: float
    warmup_s: float
    sampling_s: float
    counts: dict
    fields: dict


class Comparison(NamedTuple):
    """What :func:`compare` returns.

    Fields:
        table: ``pandas.DataFrame``, one row per sampler (columns described in :func:`compare`).
        runs: ``{name: Run}``.
        accuracy: ``{name: DataFrame}`` per-parameter error against the reference
            (:func:`slppl.accuracy.against_reference`); empty without a reference.
        modes: ``{name: DataFrame}`` mode weights (:func:`slppl.accuracy.mode_weights`); empty
            without a labelling function.
        reference: the reference as given (moments or draws), or ``None``.
    """

    table: Any
    runs: dict
    accuracy: dict
    modes: dict
    reference: Any

    @property
    def idata(self):
        """``{name: ArviZ data}``, e.g. for ``az.compare(comparison.idata)``."""
        return {name: run.idata for name, run in self.runs.items()}

    def to_markdown(self, title="Comparison", images=()):
        """The table (and per-mode weights) as markdown, with ``images`` (paths) linked below."""
        lines = [f"# {title}", "", _environment(), "", _markdown_table(self.table.reset_index()), ""]
        for name, table in self.modes.items():
            lines += [f"Mode weights, {name}:", "", _markdown_table(table.reset_index()), ""]
        lines += [f"![{os.path.basename(p)}]({p})" for p in images]
        return "\n".join(lines) + "\n"

    def save(self, folder, title="Comparison", **plot_kwargs):
        """Writes the plots (:meth:`plot`) and ``report.md`` to ``folder``, the report's image links
        relative to it; returns the report's path."""
        images = self.plot(folder, **plot_kwargs)
        path = os.path.join(folder, "report.md")
        with open(path, "w") as f:
            f.write(self.to_markdown(title=title, images=[os.path.relpath(p, folder) for p in images]))
        return path

    def plot(self, folder, var_names=None, max_params=4, seed=0):
        """Writes the comparison's PNGs to ``folder`` and returns their paths: marginals of each
        sampler over the reference, rank plots per sampler, and, for SL runs, how the denoiser's
        estimate ``m(y_t, t)`` localises onto a few draws as ``t`` grows."""
        os.makedirs(folder, exist_ok=True)
        draws = {name: accuracy.scalar_draws(run.samples, var_names) for name, run in self.runs.items()}
        names = _parameters(draws, self.reference, max_params)
        paths = [plots.marginals(draws, names, os.path.join(folder, "marginals.png"), self.reference)]
        paths.append(plots.ranks(draws, names, os.path.join(folder, "ranks.png")))
        key = jax.random.PRNGKey(seed)
        for name, run in self.runs.items():
            paths_m = _localisation(key, run)
            if paths_m is not None:
                file = os.path.join(folder, f"localisation_{_slug(name)}.png")
                paths.append(plots.localisation(*paths_m, file, title=f"{name}: m(y_t, t) along paths to 5 draws"))
        return paths


def _slug(name):
    return "".join(c if c.isalnum() else "_" for c in name.lower())


def _parameters(draws, reference, max_params):
    common = [k for k in next(iter(draws.values())) if all(k in d for d in draws.values())]
    if reference is not None:
        common = [k for k in common if k in reference] or common
    return common[:max_params]


def _environment():
    import platform

    import numpyro

    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
            f"jax {jax.__version__}, numpyro {numpyro.__version__}, arviz {az.__version__}.")


def _markdown_table(frame):
    def cell(v):
        if isinstance(v, (float, np.floating)):
            if v != v:
                return ""
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"
        return str(v)

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, "|" + "---|" * len(frame.columns)] + rows)


class _CompileTimer:
    """Seconds of wall time JAX spends tracing, lowering and compiling while the ``with`` block
    runs: the union of those events' time spans, since a nested ``jit`` is traced inside its
    caller's trace and parallel chains compile on several threads at once."""

    def __enter__(self):
        self._spans = []

        def listen(event, start, end, **_):
            if event in COMPILE_EVENTS:
                self._spans.append((start, end))

        self._listen = listen
        jax.monitoring.register_event_time_span_listener(listen)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_time_span_listener(self._listen)

    @property
    def seconds(self):
        total, reach = 0.0, -np.inf
        for start, end in sorted(self._spans):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total


def _is_pyro_kernel(kernel):
    if "pyro" not in sys.modules:
        return False
    from pyro.infer.mcmc.mcmc_kernel import MCMCKernel

    return isinstance(kernel, MCMCKernel)


def _count_fields(kernel):
    from numpyro.infer import HMC

    from .numpyro_adapter import SL

    if isinstance(kernel, HMC):
        return ("num_steps",)
    if isinstance(kernel, SL) and kernel.family is not None:
        return ("num_grad_evals", "num_potential_evals")
    return ()


def _counts(kernel, fields, num_steps_run):
    """Model gradient evaluations, evaluations without gradient, and denoiser calls of a run."""
    from numpyro.infer import HMC

    from .numpyro_adapter import SL

    nan = float("nan")
    if isinstance(kernel, HMC):  # a leapfrog step is one gradient
        return {"grad": float(np.sum(fields["num_steps"])), "potential": 0.0, "denoiser": 0.0}
    if isinstance(kernel, SL) and kernel.family is not None:
        # Paths of a built denoiser are drawn exactly (no denoiser calls) unless an integrator is given.
        per_path = 0 if kernel.integrator.exact else kernel.num_steps
        potentials = float(np.sum(fields["num_potential_evals"]))
        return {"grad": float(np.sum(fields["num_grad_evals"])), "potential": potentials,
                "denoiser": per_path * potentials}
    if isinstance(kernel, SL):  # one potential per path, num_steps denoiser calls along it
        paths = kernel.num_proposals * num_steps_run
        return {"grad": 0.0, "potential": float(paths),
                "denoiser": 0.0 if kernel.integrator.exact else float(paths * kernel.num_steps)}
    return {"grad": nan, "potential": nan, "denoiser": nan}


def _to_arviz(mcmc):
    if hasattr(mcmc, "get_extra_fields"):  # NumPyro
        # ArviZ 1.x leaves the log likelihood out unless asked; 0.x computes it by default.
        return az.from_numpyro(mcmc) if az.__version__.startswith("0.") else az.from_numpyro(mcmc, log_likelihood=True)
    from .pyro import to_arviz

    return to_arviz(mcmc)


def _run_numpyro(rng_key, kernel, num_warmup, num_samples, num_chains, chain_method, progress_bar, split_warmup,
                 args, kwargs):
    from numpyro.infer import MCMC

    count = _count_fields(kernel)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method=chain_method, progress_bar=progress_bar)
    nan = float("nan")
    if split_warmup:
        with _CompileTimer() as warm_compile:
            start = time.perf_counter()
            mcmc.warmup(rng_key, *args, extra_fields=count, collect_warmup=bool(count), **kwargs)
            warmup_fields = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()} \
                if count else {}
            warmup_s = time.perf_counter() - start
        rng_key = mcmc.post_warmup_state.rng_key
    else:
        # NumPyro's own switch behind `warmup(collect_warmup=True)`: one compiled loop for both
        # phases, as a user's `run`, collecting from step 0 so warmup's evaluations are counted.
        mcmc._set_collection_params(0, None, num_warmup + num_samples)
    with _CompileTimer() as run_compile:
        start = time.perf_counter()
        mcmc.run(rng_key, *args, extra_fields=count, **kwargs)
        jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
        run_s = time.perf_counter() - start
    if not split_warmup:
        # Count warmup's evaluations, then keep only the draws after warmup, so that
        # get_samples, get_extra_fields and ArviZ see what a plain `run` gives (NumPyro 0.22
        # keeps the collected states in `_states`, and rebuilds `_states_flat` from them).
        warmup_fields = {k: np.asarray(v)[:, :num_warmup] for k, v in mcmc.get_extra_fields(group_by_chain=True).items()
                         if k in count}
        mcmc._states = jax.tree_util.tree_map(lambda v: v[:, num_warmup:], mcmc._states)
        mcmc._states_flat = None
    samples = mcmc.get_samples(group_by_chain=True)
    fields = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
    both = {k: np.sum(warmup_fields.get(k, 0)) + np.sum(fields[k]) for k in count}
    counts = _counts(kernel, both, num_chains * (num_warmup + num_samples))
    samples = {k: np.asarray(v) for k, v in samples.items()}
    if split_warmup:
        compile_s = warm_compile.seconds + run_compile.seconds
        return Run(mcmc, samples, None, warmup_s + run_s, compile_s, warmup_s - warm_compile.seconds,
                   run_s - run_compile.seconds, counts, fields)
    return Run(mcmc, samples, None, run_s, run_compile.seconds, nan, nan, counts, fields)


def _run_pyro(kernel, num_warmup, num_samples, num_chains, progress_bar, seed, args, kwargs):
    import pyro
    from pyro.infer import MCMC

    pyro.set_rng_seed(seed)
    mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=num_warmup, num_chains=num_chains,
                disable_progbar=not progress_bar)
    with _CompileTimer() as compiled:
        start = time.perf_counter()
        mcmc.run(*args, **kwargs)
        seconds = time.perf_counter() - start
    samples = {k: np.asarray(v.detach().numpy()) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    # Pyro lists the post-warmup draws that diverged, per chain.
    diverging = np.zeros((num_chains, num_samples), bool)
    for c, idx in enumerate(mcmc.diagnostics().get("divergences", {}).values()):
        diverging[c, np.asarray(idx, int)] = True
    nan = float("nan")
    # Pyro's warmup and sampling run in one loop; JAX compile time is what slppl.pyro.SL compiles.
    return Run(mcmc, samples, None, seconds, compiled.seconds if compiled.seconds else nan, nan, nan,
               {"grad": nan, "potential": nan, "denoiser": nan},
               {"diverging": diverging})


def _row(name, run, draws):
    stacked = np.stack(list(draws.values()), -1)
    if stacked.shape[1] > 3:
        dataset = _as_dataset(stacked)
        bulk = np.asarray(az.ess(dataset, method="bulk")["x"])
        tail = np.asarray(az.ess(dataset, method="tail")["x"])
    else:
        bulk = tail = np.full(stacked.shape[-1], np.nan)
    rhat = np.asarray(split_gelman_rubin(stacked)) if stacked.shape[0] > 1 else np.full(stacked.shape[-1], np.nan)
    wall = run.wall_s
    row = {
        "sampler": name,
        "wall s": wall, "compile s": run.compile_s, "warmup s": run.warmup_s, "sampling s": run.sampling_s,
        "min ESS bulk": bulk.min(), "median ESS bulk": np.median(bulk), "min ESS tail": tail.min(),
        "median ESS tail": np.median(tail), "max R-hat": np.nanmax(rhat) if np.isfinite(rhat).any() else np.nan,
        "divergences": int(np.sum(run.fields.get("diverging", 0))),
        "grad evals": run.counts["grad"], "potential evals": run.counts["potential"],
        "denoiser calls": run.counts["denoiser"],
    }
    if "accept_prob" in run.fields and "num_steps" not in run.fields:
        # How often SL's global move left the current point after warmup (0 where warmup found
        # it useless and switched it off), and its partial-path moves' where they ran.
        row["global accept"] = float(np.mean(run.fields["accept_prob"]))
        if "partial_accept_prob" in run.fields:
            row["partial accept"] = float(np.mean(run.fields["partial_accept_prob"]))
        row["log evidence"], row["log evidence se"], row["evidence k̂"] = _log_evidence(run)
    return row


def _log_evidence(run):
    """``(log p(data), its SE, the weights' largest k̂)`` from an SL run's proposal weights; NaN
    where they cannot give it (Pyro's SL, global moves switched off)."""
    from .evidence import log_evidence

    try:
        ev = log_evidence(run, warn=False)
    except (TypeError, ValueError):
        return np.nan, np.nan, np.nan
    return ev.estimate, ev.se, float(np.max(ev.pareto_k))


def _headline(row, run):
    """The headline ESS (``min ESS``: the coordinates' and, with modes, the mode indicators') and
    what is computed from it, plus ``flags``: why a row's numbers cannot be trusted."""
    ess = row["min ESS bulk"]
    mode_ess = row.get("min mode ESS")
    if mode_ess is not None:
        mode_ess = float(mode_ess) if np.isfinite(mode_ess) else 0.0
        # A chain that never changes mode has a fine ESS per coordinate; it must not lead the table.
        ess = min(ess, mode_ess)
    evals = run.counts["grad"] + run.counts["potential"]
    row.update({"min ESS": ess, "ESS/s": ess / run.wall_s,
                "ESS/s sampling": ess / run.sampling_s if run.sampling_s > 0 else np.nan,
                "ESS per 1k model evals": 1000 * ess / evals if evals > 0 else np.nan})
    flags = []
    if row["max R-hat"] > RHAT_THRESHOLD:
        flags.append(f"chains disagree (R-hat {row['max R-hat']:.3f})")
    if mode_ess is not None and mode_ess <= MIN_MODE_ESS:
        flags.append(f"mode ESS {mode_ess:.0f}: chains rarely change mode")
    row["flags"] = "; ".join(flags)
    return row


def _as_dataset(stacked):
    """``(chains, draws, p)`` as the one-variable dataset ``az.ess`` takes on both ArviZ lines."""
    import xarray as xr

    return xr.Dataset({"x": (("chain", "draw", "p"), stacked)},
                      coords={"chain": np.arange(stacked.shape[0]), "draw": np.arange(stacked.shape[1])})


def _localisation(rng_key, run, num_paths=5):
    """``(times, means (paths, K), targets (paths,))``: the SL denoiser's estimate of the first
    coordinate along exact observation paths ``y_t = t·x + B_t`` to a few of the run's draws."""
    from .numpyro_adapter import SL

    kernel = getattr(run.mcmc, "sampler", None)
    if not isinstance(kernel, SL) or run.mcmc.last_state is None:
        return None
    state = run.mcmc.last_state
    if jnp.ndim(state.i) > 0:  # vectorised / parallel chains: chain 0's denoiser
        state = jax.tree_util.tree_map(lambda a: a[0], state)
    t_max = float(kernel.times[-1])
    if kernel.family is None:
        denoiser, denoiser_state = kernel.denoiser, state.denoiser_state
        to_u = from_u = lambda v: v  # noqa: E731
    else:
        from .adaptive_learned import proposal_denoiser

        denoiser, denoiser_state = proposal_denoiser(state), ()
        shift, chol = state.shift, state.chol

        def to_u(x):
            return jax.scipy.linalg.solve_triangular(chol, x - shift, lower=True)

        def from_u(u):
            return shift + chol @ u

        t_max = 1e4  # whitened coordinates: unit scale
    # A fine display grid over the kernel's range (the kernel's own may be a few exact steps).
    times = jnp.concatenate([jnp.zeros(1), jnp.geomspace(t_max * 1e-7, t_max, 60)])

    flat = _flat_draws(run, num_paths)

    def path_means(key, x):
        path = conditional_path(key, to_u(x), times)

        def one(y, t):
            m, _, _ = denoiser.estimate(key, y, t, denoiser_state)
            return from_u(m)[0]

        return jax.vmap(one)(path, times[1:])

    keys = jax.random.split(rng_key, flat.shape[0])
    means = jax.vmap(path_means)(keys, jnp.asarray(flat, times.dtype))
    return np.asarray(times[1:]), np.asarray(means), flat[:, 0]


def _flat_draws(run, num):
    """A few of chain 0's draws as ``(num, d)`` flat unconstrained vectors (the denoiser's coordinates)."""
    samples = run.mcmc.get_samples(group_by_chain=True)
    picks = np.linspace(0, next(iter(samples.values())).shape[1] - 1, num).astype(int)
    chain0 = {k: np.asarray(v)[0, picks] for k, v in samples.items()}
    kernel = run.mcmc.sampler
    if kernel.model is None:
        return np.stack([np.asarray(ravel_pytree({k: v[i] for k, v in chain0.items()})[0]) for i in range(num)])
    return np.asarray(flatten_draws(chain0, kernel.model, *run.mcmc._args, **run.mcmc._kwargs))


def _key_model_args(args, model_kwargs):
    """``(rng_key, model, model_args)`` from ``compare``'s positional arguments, NumPyro's order
    (the key first); the older ``(model, *model_args, rng_key=...)`` is read with a warning."""
    if args and callable(args[0]):
        key = model_kwargs.pop("rng_key", None)
        warnings.warn("compare(model, ...) is deprecated: pass the PRNG key first, as to MCMC.run: "
                      "compare(jax.random.PRNGKey(0), model, *model_args, ...)"
                      + ("" if key is not None else "; this call used PRNGKey(0)"), FutureWarning, stacklevel=3)
        return (jax.random.PRNGKey(0) if key is None else key), args[0], args[1:]
    if len(args) < 2 or not callable(args[1]):
        raise TypeError("compare needs a PRNG key and the model: compare(jax.random.PRNGKey(0), model, "
                        "*model_args, samplers=..., **model_kwargs)")
    if "rng_key" in model_kwargs:
        raise TypeError("the PRNG key was given twice: first argument and rng_key=; give it once, first")
    return args[0], args[1], args[2:]


def _default_samplers(model, backend):
    if backend == "pyro":
        from pyro.infer import NUTS

        from .pyro import SL
    else:
        from numpyro.infer import NUTS

        from .numpyro_adapter import SL
    return {"SL": SL(model), "NUTS": NUTS(model)}


def compare(*args, samplers=None, reference=None, modes=None, num_warmup=1000, num_samples=1000, num_chains=4,
            chain_method="parallel", var_names=None, progress_bar=False, split_warmup=False, backend=None,
            **model_kwargs):
    """``compare(rng_key, model, *model_args, **model_kwargs)``: run several samplers on one model and
    compare them side by side (and with a reference).

    Each sampler runs as a plain ``numpyro.infer.MCMC(kernel, num_warmup=..., num_samples=...,
    num_chains=..., chain_method=...).run(rng_key, *model_args, **model_kwargs)`` would, from the
    same key, with the same defaults (``chain_method="parallel"``, which NumPyro runs sequentially,
    with its warning, when there are fewer devices than chains: call
    ``numpyro.set_host_device_count`` with more devices than chains before JAX starts), so its
    times are what a user's run costs. A Pyro kernel runs through ``pyro.infer.MCMC`` in one call, seeded from the key.

    Args:
        rng_key: PRNG key, as for ``MCMC.run``; every sampler gets the same one. (The older
            ``compare(model, ..., rng_key=key)`` still works, with a ``FutureWarning``.)
        model: the NumPyro (or Pyro) model; its arguments follow as ``*model_args`` / ``**model_kwargs``.
        samplers: ``{name: kernel}``; default ``{"SL": SL(model), "NUTS": NUTS(model)}``.
        reference: optional ``{"site[i]": (mean, sd)}`` (posteriordb's reference moments) or
            ``{"site[i]": draws}``, indices 0-based as NumPyro's ``print_summary`` names them
            (:func:`slppl.accuracy.scalar_draws`; Stan's 1-based names: :func:`slppl.accuracy.zero_based`).
        modes: optional ``label_fn`` or ``(label_fn, true_weights)``; ``label_fn(samples)`` maps
            ``{site: (chains, draws, ...)}`` to integer mode labels ``(chains, draws)``.
        num_warmup, num_samples, num_chains, chain_method: as in ``numpyro.infer.MCMC``.
        var_names: sites to summarise (default: every sampled site and deterministic).
        progress_bar: NumPyro's / Pyro's progress bar for each run.
        split_warmup: ``False`` (default) runs one ``MCMC.run``: one compiled program, as a
            user's single call, so wall and compile times are what a plain run costs, but warmup
            and sampling are not timed apart. ``True`` times them apart (``MCMC.warmup`` then
            ``MCMC.run``: two compiled programs, so more compilation than a plain run).
        backend: ``"numpyro"`` or ``"pyro"``; default: Pyro when the samplers are Pyro kernels.

    Returns:
        a :class:`Comparison`. Its ``table`` has one row per sampler: ``wall s`` (everything),
        ``compile s`` (JAX tracing and compilation of both phases), ``warmup s`` and ``sampling s``
        (the rest of each phase); ``min/median ESS bulk``, ``min/median ESS tail`` and ``max
        R-hat`` over every scalar parameter; ``divergences`` (sampling phase; for SL, proposals
        with a NaN/Inf); ``min ESS``, the headline: the smallest bulk ESS over the coordinates and,
        with modes, over the mode indicators, so a sampler whose chains never change mode cannot
        lead the table; ``ESS/s`` (``min ESS`` over the whole wall time) and ``ESS/s sampling``;
        ``grad evals`` (NUTS's leapfrog steps; SL's walkers' and local moves' gradients),
        ``potential evals`` (SL's path weights), ``denoiser calls`` and ``ESS per 1k model evals``
        (gradient plus potential evaluations); ``global accept`` and ``partial accept`` (SL's moves);
        ``log evidence``, ``log evidence se`` and ``evidence k̂`` (SL's estimate of ``log p(data)``
        from its proposal weights, see :func:`slppl.log_evidence`: its SE means something only for
        k̂ ≤ 0.5); with a reference, ``max z``
        (``|mean − ref|/ref_sd``), ``max z / MCSE``, ``sd ratio`` range, ``max W1`` (with
        reference draws); with modes, ``min mode ESS`` (of the mode indicators: a chain that never
        changes mode has a fine ESS per coordinate) and, with true weights, ``max mode error``
        (and ``in MCSE``); ``flags``: chains that disagree (max R-hat above 1.01) or, with modes,
        rarely change mode (mode ESS at most 100), empty when none.

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> from numpyro.infer import NUTS
        >>> from slppl import SL, compare
        >>> from slppl.denoisers import Gaussian
        >>> def model():
        ...     numpyro.sample("x", dist.Normal(jnp.zeros(2), 1.0))
        >>> result = compare(jax.random.PRNGKey(0), model,
        ...                  samplers={"SL": SL(model, denoiser=Gaussian(jnp.zeros(2), jnp.eye(2))),
        ...                            "NUTS": NUTS(model)},
        ...                  reference={"x[0]": (0.0, 1.0), "x[1]": (0.0, 1.0)},
        ...                  num_warmup=100, num_samples=200, num_chains=2, chain_method="sequential")
        >>> result.table.index.tolist(), bool((result.table["max z"] < 0.5).all())
        (['SL', 'NUTS'], True)
        >>> result.runs["NUTS"].samples["x"].shape   # the draws after warmup
        (2, 200, 2)
    """
    rng_key, model, model_args = _key_model_args(args, model_kwargs)
    if backend is None:
        backend = "pyro" if samplers and any(_is_pyro_kernel(k) for k in samplers.values()) else "numpyro"
    if backend not in ("numpyro", "pyro"):
        raise ValueError(f"backend must be 'numpyro' or 'pyro', got {backend!r}")
    samplers = _default_samplers(model, backend) if samplers is None else dict(samplers)
    if not samplers:
        raise ValueError("samplers is empty: give {name: kernel}, e.g. {'SL': SL(model), 'NUTS': NUTS(model)}")
    for name, kernel in samplers.items():
        if _is_pyro_kernel(kernel) != (backend == "pyro"):
            raise ValueError(f"sampler {name!r} is a {'Pyro' if _is_pyro_kernel(kernel) else 'NumPyro'} kernel but "
                             f"the comparison runs {backend}; compare kernels of one library at a time")
    if modes is not None and not callable(modes) and not (isinstance(modes, tuple) and callable(modes[0])):
        raise ValueError("modes must be label_fn or (label_fn, true_weights), with label_fn(samples) -> (chains, draws) ints")
    if num_samples < 4:
        raise ValueError(f"num_samples={num_samples} is too few for ESS and R-hat; use at least 4 (hundreds in practice)")
    if reference is not None:
        # Once: a reference read 1-based and renamed must not be read 1-based again per sampler.
        reference = accuracy._resolve_names(reference)
        moments = accuracy._reference_moments(reference)
    runs, rows, errors, weights = {}, [], {}, {}
    for name, kernel in samplers.items():
        if backend == "pyro":
            seed = int(jax.random.randint(rng_key, (), 0, 2**31 - 1))
            run = _run_pyro(kernel, num_warmup, num_samples, num_chains, progress_bar, seed, model_args, model_kwargs)
        else:
            run = _run_numpyro(rng_key, kernel, num_warmup, num_samples, num_chains, chain_method, progress_bar,
                               split_warmup, model_args, model_kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # ArviZ's notes on missing coords / a single chain
            run = run._replace(idata=_to_arviz(run.mcmc))
        runs[name] = run
        draws = accuracy.scalar_draws(run.samples, var_names)
        row = _row(name, run, draws)
        if reference is not None:
            errors[name] = accuracy._errors(draws, moments)
            table = errors[name]
            row.update({"max z": table["z"].max(), "max z / MCSE": (table["z"] / table["mcse_z"]).max(),
                        "sd ratio min": table["sd_ratio"].min(), "sd ratio max": table["sd_ratio"].max()})
            if "w1" in table:
                row["max W1"] = table["w1"].max()
        if modes is not None:
            label_fn, truth = (modes, None) if callable(modes) else modes
            weights[name] = accuracy.mode_weights(np.asarray(label_fn(run.samples)), truth)
            # A chain that never changes mode has a fine ESS per coordinate; the indicators show it.
            row["min mode ESS"] = weights[name]["ess"].min()
            if truth is not None:
                err = weights[name]["error"].abs()
                row.update({"max mode error": err.max(), "max mode error in MCSE": (err / weights[name]["mcse"]).max()})
        rows.append(_headline(row, run))
    table = pd.DataFrame(rows).set_index("sampler")
    return Comparison(table, runs, errors, weights, reference)


def _load_model(spec):
    """``module:attr`` or ``path/to/file.py:attr`` → the callable."""
    if ":" not in spec:
        raise ValueError(f"model must be given as module:function or file.py:function, got {spec!r}")
    where, attr = spec.rsplit(":", 1)
    if where.endswith(".py"):
        spec_ = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(where))[0], where)
        module = importlib.util.module_from_spec(spec_)
        spec_.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    if not hasattr(module, attr):
        raise ValueError(f"{where} has no attribute {attr!r}")
    return getattr(module, attr)


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def main(argv=None):
    """``python -m slppl.compare module:model [--data file.json] ...``: run SL and NUTS, write a report.

    The data file holds the model's keyword arguments (lists become arrays). The reference file
    holds ``{"site[i]": [mean, sd]}`` or posteriordb's ``reference_moments.json``; names without
    any index 0 are read 1-based, as posteriordb writes them. Writes ``report.md`` and its PNGs to
    ``--out``.
    """
    parser = argparse.ArgumentParser(prog="python -m slppl.compare", description=main.__doc__.split("\n")[0])
    parser.add_argument("model", help="module:function or path/to/file.py:function (a NumPyro model)")
    parser.add_argument("--data", help="JSON file with the model's keyword arguments")
    parser.add_argument("--reference", help="JSON file of reference moments {name: [mean, sd]} "
                                            "(posteriordb's 1-based names are read as such)")
    parser.add_argument("--samplers", default="SL,NUTS",
                        help="comma-separated: NUTS, SL (= SL(model)), SL-gaussian, SL-laplace, SL-learned (default SL,NUTS)")
    parser.add_argument("--num-warmup", type=int, default=1000)
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--num-chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chain-method", default="parallel", choices=("parallel", "sequential", "vectorized"),
                        help="as in numpyro.infer.MCMC (default parallel: twice as many CPU devices as chains are set up)")
    parser.add_argument("--x64", action="store_true", help="run in float64")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--out", default="compare_report", help="folder for report.md and the plots")
    args = parser.parse_args(argv)
    if args.chain_method == "parallel":
        # More CPU devices than chains (SL(model) on exactly as many devices as chains can deadlock
        # in XLA's CPU runtime: docs, Troubleshooting); takes effect because JAX has not started its
        # backend yet in a fresh `python -m slppl.compare`.
        import numpyro

        numpyro.set_host_device_count(2 * max(args.num_chains, 1))
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    from numpyro.infer import NUTS

    from .numpyro_adapter import SL

    try:
        model = _load_model(args.model)
    except (ValueError, ImportError, OSError) as err:
        parser.error(str(err))
    kwargs = {k: (jnp.asarray(v) if isinstance(v, list) else v) for k, v in _read_json(args.data).items()} \
        if args.data else {}
    reference = None
    if args.reference:
        raw = _read_json(args.reference)
        raw = raw.get("moments", raw)
        reference = {k: (float(v["mean"]), float(v["sd"])) if isinstance(v, dict) else (float(v[0]), float(v[1]))
                     for k, v in raw.items()}
    makers = {"NUTS": lambda: NUTS(model), "SL": lambda: SL(model)}
    makers.update({f"SL-{f}": (lambda f=f: SL(model, denoiser=f)) for f in ("mixture", "gaussian", "laplace", "learned")})
    names = [s.strip() for s in args.samplers.split(",") if s.strip()]
    unknown = [s for s in names if s not in makers]
    if unknown:
        parser.error(f"unknown sampler(s) {unknown}; choose from {sorted(makers)}")
    with warnings.catch_warnings():
        # posteriordb's files are 1-based by design; compare reads them so, once.
        warnings.filterwarnings("ignore", message="the reference's names have no index 0", category=FutureWarning)
        result = compare(jax.random.PRNGKey(args.seed), model, samplers={s: makers[s]() for s in names},
                         reference=reference, num_warmup=args.num_warmup, num_samples=args.num_samples,
                         num_chains=args.num_chains, chain_method=args.chain_method,
                         progress_bar=not args.no_progress, **kwargs)
    path = result.save(args.out, title=f"{args.model}: {', '.join(names)}")
    with open(path) as f:
        print(f.read())
    print(f"wrote {path}")


class _CallableModule(types.ModuleType):
    """``slppl.compare`` is this module (``slppl.compare.compare``, ``slppl.compare.Comparison``)
    and, called, :func:`compare` itself, so neither name hides the other."""

    # A staticmethod, so that warnings raised for the caller point at the caller, not here.
    __call__ = staticmethod(compare)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    main()
