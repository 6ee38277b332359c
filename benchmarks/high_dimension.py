"""`SL(model)` in high dimension against NUTS, in one run per case.

Cases, all written as a NumPyro user would and run with every sampler's defaults:

- the seeds' two-component family ``μ = p·N((1−p)·a, I) + (1−p)·N(−p·a, I)``, ``a = 1``,
  ``p = 0.7``, in d = 64, 128 and 512, written as a flat prior plus a ``numpyro.factor`` (so no
  prior draw lands near a mode, and in d = 512 almost no start falls in the light mode's basin);
- structured mixtures built for this benchmark: two components with diagonal scales that differ
  per coordinate and per component (d = 100); three spherical components of unequal scales and
  weights (d = 150); a Bayesian Gaussian mixture with vector-valued means whose posterior has two
  label-switched modes (d = 50);
- Bayesian logistic regression, n = 2,000, ``X ~ N(0, 4/d)``, d = 300 and 1,000 (no reference:
  SL is compared with NUTS, ``max z`` = largest ``|mean_SL − mean_NUTS| / sd_NUTS``).

Samplers: NUTS and ``SL(model)`` through ``slppl.compare`` (4 chains x (1000 + 1000), parallel on
8 host devices, float64). BlackJAX's adaptive tempered SMC on the seeds' family is measured
apart, by ``smc_baseline.py`` (it needs blackjax).

Writes ``benchmarks/results/high_dimension.md``. Run:
``python benchmarks/high_dimension.py [--only NAME] [--quick]``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpyro

numpyro.set_host_device_count(8)  # more host devices than chains (docs: No denoiser)

import arviz as az  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from numpyro.infer import NUTS  # noqa: E402

jax.config.update("jax_enable_x64", True)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cases import Case  # noqa: E402
from report import environment, write_result  # noqa: E402

from slppl import SL, compare  # noqa: E402
from slppl.diagnostics import pareto_khat  # noqa: E402

FULL = dict(num_chains=4, num_warmup=1000, num_samples=1000)
QUICK = dict(num_chains=2, num_warmup=300, num_samples=300)


def flat(name, d):
    return numpyro.sample(name, dist.ImproperUniform(dist.constraints.real_vector, (), (d,)))


def seeds_family(d, p=0.7):
    x = flat("x", d)
    a = jnp.ones(d)
    numpyro.factor("mixture", jnp.logaddexp(jnp.log(p) - 0.5 * jnp.sum((x - (1 - p) * a) ** 2),
                                            jnp.log1p(-p) - 0.5 * jnp.sum((x + p * a) ** 2)))


def mixture_factor(log_weights, means, scales):
    """A flat prior and ``Σ w_k N(means_k, diag(scales_k²))`` as a factor: the target itself."""
    x = flat("x", means.shape[1])
    comp = dist.Normal(means, scales).to_event(1).log_prob(x)
    numpyro.factor("mixture", jax.scipy.special.logsumexp(log_weights + comp))


def gmm_vector_means(y):
    """Two clusters with unknown mean vectors, equal weights: the posterior's modes swap the labels."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 3.0).expand([2, y.shape[1]]).to_event(2))
    mix = dist.MixtureSameFamily(dist.Categorical(probs=jnp.array([0.5, 0.5])), dist.Normal(mu, 1.0).to_event(1))
    numpyro.sample("y", mix, obs=y)


def logistic(X, y=None):
    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Bernoulli(logits=X @ w), obs=y)


def _logistic_data(d, n=2000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, np.sqrt(4.0 / d), (n, d))
    w = rng.normal(size=d)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-X @ w))).astype(np.float64)
    return jnp.asarray(X), jnp.asarray(y)


def cases():
    out = []
    for d in (64, 128, 512):
        out.append(Case(f"seeds' family, d = {d}", seeds_family, (d,),
                        modes=(lambda s: (np.asarray(s["x"]).mean(-1) > -0.2).astype(int), np.array([0.3, 0.7]))))
    rng = np.random.default_rng(1)
    d = 100
    a = np.ones(d)
    scales = np.stack([rng.permutation(np.linspace(0.5, 1.5, d)), rng.permutation(np.linspace(0.5, 1.5, d))])
    args = (jnp.log(jnp.array([0.35, 0.65])), jnp.asarray(np.stack([-0.8 * a, 0.8 * a])), jnp.asarray(scales))
    out.append(Case("two components, unequal diagonal scales, d = 100", mixture_factor, args,
                    modes=(lambda s: (np.asarray(s["x"]).mean(-1) > 0).astype(int), np.array([0.35, 0.65]))))
    d = 150
    q, _ = np.linalg.qr(rng.normal(size=(d, 3)))
    means3 = 6.0 * q.T
    scales3 = np.array([1.0, 0.7, 1.4])[:, None] * np.ones(d)
    args = (jnp.log(jnp.array([0.5, 0.3, 0.2])), jnp.asarray(means3), jnp.asarray(scales3))
    out.append(Case("three spherical components, unequal scales, d = 150", mixture_factor, args,
                    modes=(lambda s: np.argmax(np.asarray(s["x"]) @ means3.T - 0.5 * np.sum(means3**2, 1), -1),
                           np.array([0.5, 0.3, 0.2]))))
    centres = np.stack([0.5 * np.ones(25), -0.5 * np.ones(25)])
    y = centres[rng.integers(0, 2, 200)] + rng.normal(size=(200, 25))
    out.append(Case("label switching, vector means, d = 50", gmm_vector_means, (jnp.asarray(y),),
                    modes=(lambda s: (np.asarray(s["mu"])[..., 0, :].sum(-1) > np.asarray(s["mu"])[..., 1, :].sum(-1)).astype(int),
                           np.array([0.5, 0.5]))))
    for d in (300, 1000):
        out.append(Case(f"logistic regression, d = {d}", logistic, _logistic_data(d)))
    return out


def _fmt(v, spec=".3g"):
    return "" if v is None or v != v else format(v, spec)


HEADER = ["case", "sampler", "accuracy", "min ESS (coords / modes)", "max R-hat", "wall s", "ESS/s",
          "ESS/s vs NUTS", "ESS / 1k evals", "global accept", "max k̂", "warned"]


def run_case(case, sizes, seed):
    samplers = {"NUTS": NUTS(case.model), "SL(model)": SL(case.model)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = compare(jax.random.PRNGKey(seed), case.model, *case.args, samplers=samplers, modes=case.modes,
                         **sizes)
    warned = any("global moves left" in str(w.message) for w in caught)
    table = result.table
    rows = []
    nuts_draws = result.runs["NUTS"].samples
    for name, row in table.iterrows():
        ess = row["min ESS bulk"]
        if case.modes is not None:
            ess_modes = row["min mode ESS"]
            ess = min(ess, ess_modes)
            w = result.modes[name]["weight"].to_numpy()
            accuracy = "weights " + "/".join(f"{v:.3f}" for v in w) + f" (error {row['max mode error']:.3f}, " \
                       f"{row['max mode error in MCSE']:.1f} MCSE)"
            ess_cell = f"{row['min ESS bulk']:.0f} / {ess_modes:.0f}"
        else:
            accuracy = "" if name == "NUTS" else f"max z vs NUTS {_z_against(result.runs[name].samples, nuts_draws):.3f}"
            ess_cell = f"{ess:.0f}"
        fields = result.runs[name].fields
        khat = _fmt(float(np.max(pareto_khat(fields["proposal_log_weight"]))), ".2f") \
            if "proposal_log_weight" in fields and np.isfinite(fields["proposal_log_weight"]).any() else ""
        evals = row["grad evals"] + row["potential evals"]
        rows.append(dict(case=case.name, sampler=name, accuracy=accuracy, ess=ess_cell, rhat=row["max R-hat"],
                         wall=row["wall s"], ess_s=ess / row["wall s"], per_k=1000 * ess / evals,
                         accept=row.get("global accept"), khat=khat, warned=("yes" if warned else "no") if name != "NUTS" else ""))
    nuts = next(r["ess_s"] for r in rows if r["sampler"] == "NUTS")
    for r in rows:
        r["ratio"] = r["ess_s"] / nuts if r["sampler"] != "NUTS" and nuts > 0 else float("nan")
    return rows


def _z_against(samples, reference):
    """Largest ``|mean − mean_ref| / sd_ref`` over every scalar of the shared sites."""
    z = []
    for k, ref in reference.items():
        if k not in samples:
            continue
        # Draws grouped by chain: (chains, draws, *event) → (chains·draws, event size).
        r = np.asarray(ref).reshape(np.shape(ref)[0] * np.shape(ref)[1], -1)
        a = np.asarray(samples[k]).reshape(r.shape[0] if np.size(samples[k]) == r.size else -1, r.shape[1])
        z.append(np.max(np.abs(a.mean(0) - r.mean(0)) / r.std(0)))
    return float(max(z))


def _line(r):
    ratio = f"**{r['ratio']:.2f}**" if r["ratio"] == r["ratio"] else ("NUTS stuck" if r["sampler"] != "NUTS" and r.get("stuck") else "")
    return [r["case"], r["sampler"], r["accuracy"], r["ess"], _fmt(r["rhat"], ".3f"), _fmt(r["wall"], ".1f"),
            _fmt(r["ess_s"], ".1f"), ratio, _fmt(r["per_k"], ".2f"), _fmt(r["accept"], ".3f"), r["khat"], r["warned"]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="run the cases whose name contains this")
    parser.add_argument("--quick", action="store_true", help="2 chains x (300 + 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    all_cases = cases()
    if args.case_json:
        case = next(c for c in all_cases if c.name == args.only)
        with open(args.case_json, "w") as f:
            json.dump(run_case(case, sizes, args.seed), f)
        return
    chosen = [c for c in all_cases if not args.only or args.only in c.name]
    rows, start = [], time.perf_counter()
    for case in chosen:
        # One process per case (a long process exhausts vm.max_map_count, see suite.py).
        t = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "case.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--only", case.name, "--case-json", out,
                   "--seed", str(args.seed)] + (["--quick"] if args.quick else [])
            subprocess.run(cmd, check=True)
            with open(out) as f:
                done = json.load(f)
        rows += done
        print(f"{case.name}: {time.perf_counter() - t:.0f} s", flush=True)
        for r in done:
            print(" | ".join(_line(r)), flush=True)
        _write(rows, sizes, args, start)


def _write(rows, sizes, args, start):
    env = (environment(numpyro=numpyro.__version__, arviz=az.__version__) + "; "
           f"{sizes['num_chains']} chains x ({sizes['num_warmup']} warmup + {sizes['num_samples']} draws), parallel, "
           f"seed {args.seed}; {(time.perf_counter() - start) / 60:.1f} min in all.")
    lines = ["# SL(model) in high dimension", "", env, "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_line(r)) + " |" for r in rows]
    lines += ["", "- **accuracy**: mode weights (truth in the case's definition) with the largest error, also in MCSE; "
              "without modes, the largest `|mean − mean_NUTS| / sd_NUTS`.",
              "- **min ESS**: bulk ESS over coordinates / of the mode indicators; ESS/s uses the smaller. wall s: one "
              "`MCMC.run`, compilation included. ESS / 1k evals: per model evaluation (gradients and potentials).",
              "- **global accept**: how often SL's global move left the current point after warmup (0 when it was "
              "switched off); **warned**: the end-of-warmup warning that global moves were useless.",
              ""]
    name = "high_dimension" + ("_quick" if args.quick else "") + (f"_{args.only.split(',')[0][:12]}" if args.only else "")
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name) + ".md"
    print(f"wrote {write_result(name, lines)}")


if __name__ == "__main__":
    main()
