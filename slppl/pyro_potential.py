"""A Pyro model's potential on a batch of points in one torch call.

Pyro's ``initialize_model`` gives the potential of one point; SL asks for many at once (the
proposals of a step, the walkers of a NUTS move). Calling it row by row costs a Python-level
trace of the model per row, which is what made ``slppl.pyro.SL`` slow. ``torch.func.vmap`` cannot
batch it (Pyro's enumeration handler reads ``value.data``, which vmap forbids), so the batch is a
plate instead, as Pyro's own vectorised ELBOs do: the model runs once inside a plate of the batch's
size to the left of its own plates, conditioned on the batch of constrained values; each site's
log density is summed over everything but that plate, and the transforms' log Jacobians are
added back, exactly as Pyro's potential does for one point.

It is an optimisation that must not change a number: :func:`batched_potential` checks itself
against Pyro's potential on a few points and returns ``None`` (row by row, as before) wherever
it disagrees or fails, e.g. for models with enumerated discrete sites or Python control flow on
latent values.
"""

import warnings

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer.mcmc.util import _guess_max_plate_nesting
from pyro.poutine.util import prune_subsample_sites

__all__ = ["batched_potential"]

PLATE = "_slppl_batch"


def batched_potential(model, model_args, model_kwargs, transforms, params, potential_fn, max_plate_nesting=None,
                      jit_compile=False, ignore_jit_warnings=False):
    """``U`` on a batch: ``fn({name: (B, *shape)}) -> (B,)`` tensors, or ``None`` where it cannot be
    built or does not reproduce ``potential_fn`` (Pyro's, on one point) at ``params`` and near it.

    ``jit_compile=True`` traces it with the PyTorch JIT, once per batch size, as Pyro's NUTS
    traces its potential (``ignore_jit_warnings`` as there); a size whose trace fails runs
    untraced.

    Examples:
        >>> import torch, pyro, pyro.distributions as dist
        >>> from pyro.infer.mcmc.util import initialize_model
        >>> def model():
        ...     pyro.sample("s", dist.HalfNormal(1.0))
        >>> init, pe, transforms, _ = initialize_model(model)
        >>> fn = batched_potential(model, (), {}, transforms, init, pe)
        >>> fn({"s": torch.zeros(3)}).shape
        torch.Size([3])
    """
    try:
        prototype = prune_subsample_sites(
            poutine.trace(poutine.block(model, hide_types=["param"])).get_trace(*model_args, **model_kwargs))
        sites = {name: prototype.nodes[name] for name in params}
        if any(site["infer"].get("enumerate") for site in prototype.nodes.values() if site["type"] == "sample"):
            return None
        nesting = _guess_max_plate_nesting(model, model_args, model_kwargs) if max_plate_nesting is None else max_plate_nesting
        # Each site's value, batched, lines up with its plates: (B, 1, …, 1, batch shape, event shape).
        padding = {name: nesting - len(site["fn"].batch_shape) for name, site in sites.items()}
        if any(p < 0 for p in padding.values()):
            return None
    except Exception:
        return None

    def fn(batch):
        size = next(iter(batch.values())).shape[0]
        constrained = {name: transforms[name].inv(z) if name in transforms else z for name, z in batch.items()}
        log_joint = torch.zeros(size, dtype=next(iter(batch.values())).dtype)
        for name, t in transforms.items():
            log_det = t.log_abs_det_jacobian(constrained[name], batch[name])
            log_joint = log_joint - log_det.reshape(size, -1).sum(-1)
        values = {name: value.reshape((size,) + (1,) * padding[name] + tuple(sites[name]["value"].shape))
                  for name, value in constrained.items()}
        with pyro.plate(PLATE, size, dim=-(nesting + 1)):
            trace = poutine.trace(poutine.condition(model, values)).get_trace(*model_args, **model_kwargs)
        trace = prune_subsample_sites(trace)
        trace.compute_log_prob()
        for site in trace.nodes.values():
            if site["type"] != "sample":
                continue
            log_prob = site["log_prob"]
            axis = log_prob.dim() - (nesting + 1)
            if axis < 0:  # a site outside the batch's reach: the same for every row
                log_joint = log_joint + log_prob.sum()
            else:
                log_joint = log_joint + log_prob.movedim(axis, 0).reshape(size, -1).sum(-1)
        return -log_joint

    try:
        with torch.no_grad():
            rng = np.random.default_rng(0)
            batch = {name: torch.stack([v.detach() + torch.as_tensor(s * rng.standard_normal(tuple(v.shape)), dtype=v.dtype)
                                        for s in (0.0, 0.3, 1.0)]) for name, v in params.items()}
            got = fn(batch)
            want = torch.stack([potential_fn({name: v[i] for name, v in batch.items()}) for i in range(3)])
        if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True):
            return None
    except Exception:
        return None
    return _traced(fn, ignore_jit_warnings) if jit_compile else fn


def _traced(fn, ignore_jit_warnings):
    traces = {}

    def traced(batch):
        names = sorted(batch)
        values = tuple(batch[name] for name in names)
        size = values[0].shape[0]
        if size not in traces:
            try:
                with pyro.validation_enabled(False), warnings.catch_warnings():
                    if ignore_jit_warnings:
                        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
                    traces[size] = torch.jit.trace(lambda *v: fn(dict(zip(names, v))), values, check_trace=False)
            except Exception:
                traces[size] = None
        if traces[size] is None:
            return fn(batch)
        return traces[size](*values)

    return traced
