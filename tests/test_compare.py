"""`slppl.compare`: one call, every sampler's table row, accuracy against a reference, plots, CLI."""

import json
import os
import subprocess
import sys

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import NUTS

from slppl import SL, compare
from slppl.accuracy import against_reference, mode_weights
from slppl.denoisers import GaussianMixture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
Z = 4.0  # error bound in Monte Carlo standard errors

W = jnp.array([0.3, 0.7])
MEANS = jnp.array([[-2.0, -2.0], [2.0, 2.0]])
COVS = jnp.stack([0.25 * jnp.eye(2)] * 2)


def two_modes(y=None):
    x = numpyro.sample("x", dist.MixtureSameFamily(dist.Categorical(probs=W), dist.MultivariateNormal(MEANS, COVS)))
    # An observed site, so the run has a log-likelihood group for LOO. It depends on x only through
    # 1e-3·x[0]: with these y it tilts the mode weights by < 1e-3, far below their MCSE (~0.02).
    numpyro.sample("y", dist.Normal(1e-3 * x[0], 1.0), obs=y)


def heavy(samples):
    return (np.asarray(samples["x"]).mean(-1) > 0).astype(int)


@pytest.mark.slow  # ~30 s of compilation (make test budget); conventions below, log_evidence in test_evidence.py
def test_compare_table_accuracy_modes_arviz_and_plots(tmp_path):
    ref_sd = float(np.sqrt(0.25 + 4 * 0.3 * 0.7 * 4))  # mixture sd per coordinate: 0.25 + Var of ±2 means
    ref_mean = float(0.7 * 2 - 0.3 * 2)
    reference = {"x[0]": (ref_mean, ref_sd), "x[1]": (ref_mean, ref_sd)}
    y = jnp.array([0.1, -0.3, 0.5])
    result = compare(
        jax.random.PRNGKey(0), two_modes, y=y, num_warmup=100, num_samples=1000, num_chains=2,
        chain_method="sequential",
        samplers={"SL": SL(two_modes, denoiser=GaussianMixture(W, MEANS, COVS), num_steps=10), "NUTS": NUTS(two_modes)},
        reference=reference, modes=(heavy, [0.3, 0.7]),
    )
    table = result.table
    assert table.index.tolist() == ["SL", "NUTS"]
    for column in ("wall s", "compile s", "warmup s", "sampling s", "min ESS bulk", "max R-hat", "ESS/s",
                   "grad evals", "potential evals", "denoiser calls", "ESS per 1k model evals", "max z", "max mode error"):
        assert column in table, column
    # One MCMC.run per sampler (the default): its phases are not timed apart.
    assert (table["compile s"] > 0).all() and table["sampling s"].isna().all()
    # Counts: NUTS's leapfrog steps; SL with a given denoiser: 1 potential and 10 denoiser calls per draw.
    assert table.loc["NUTS", "grad evals"] >= 2 * 1100 and table.loc["SL", "grad evals"] == 0
    assert table.loc["SL", "potential evals"] == 2 * 1100
    assert table.loc["SL", "denoiser calls"] == 10 * 2 * 1100
    # SL is exact: its heavy-mode weight is within Z MCSEs of 0.7; NUTS's chains stay where they start.
    sl_modes = result.modes["SL"]
    assert abs(sl_modes.loc[1, "error"]) < Z * sl_modes.loc[1, "mcse"]
    assert table.loc["SL", "max z / MCSE"] < Z
    assert table.loc["SL", "max R-hat"] < 1.05
    # NUTS's chains never change mode: its headline ESS is the mode indicators', it is flagged, and it
    # cannot lead the table on ESS per second.
    nuts = table.loc["NUTS"]
    assert nuts["min ESS"] <= nuts["min mode ESS"] <= 100 and "rarely change mode" in nuts["flags"]
    assert table.loc["SL", "flags"] == "" and table.loc["SL", "ESS/s"] > nuts["ESS/s"]
    # SL's estimate of log p(y), against the integral over x[0]'s mixture marginal; none for NUTS.
    x0 = np.linspace(-6.0, 6.0, 20001)
    prior = 0.3 * np.exp(-2.0 * (x0 + 2.0) ** 2) + 0.7 * np.exp(-2.0 * (x0 - 2.0) ** 2)
    like = np.exp(-0.5 * ((np.asarray(y)[:, None] - 1e-3 * x0) ** 2).sum(0)) / (2 * np.pi) ** 1.5
    exact = np.log(np.sum(prior * like) / np.sum(prior))
    assert abs(table.loc["SL", "log evidence"] - exact) < 3.0 * table.loc["SL", "log evidence se"]
    assert np.isnan(nuts["log evidence"]) and 0.0 < table.loc["SL", "evidence k̂"] < 0.7
    # ArviZ data of every run, with a log likelihood: LOO and az.compare work on SL as on NUTS.
    loo = az.loo(result.idata["SL"])
    assert np.isfinite(loo.elpd_loo if hasattr(loo, "elpd_loo") else loo.elpd)  # ArviZ 0.x / 1.x names
    assert set(az.compare(result.idata).index) == {"SL", "NUTS"}
    paths = result.plot(str(tmp_path))
    assert {os.path.basename(p) for p in paths} == {"marginals.png", "ranks.png", "localisation_sl.png"}
    assert all(os.path.getsize(p) > 5_000 for p in paths)
    report = result.to_markdown(images=paths)
    assert "| SL |" in report and "ranks.png" in report
    # save() writes the report with image links that resolve from the report's folder.
    import re

    saved = result.save(str(tmp_path / "out"))
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", open(saved).read())
    assert len(links) == 3 and all(os.path.exists(os.path.join(os.path.dirname(saved), p)) for p in links)
    # check_sl reads a compare run and its ArviZ data alike (proposal weights recorded by default),
    # and says plainly that NUTS's run is not SL's.
    from slppl.diagnostics import check_sl

    by_run, by_idata = check_sl(result.runs["SL"], warn=False), check_sl(result.idata["SL"], warn=False)
    assert np.isfinite(by_run.pareto_k).all()
    np.testing.assert_allclose(by_run.pareto_k, by_idata.pareto_k)
    np.testing.assert_allclose(by_run.accept_prob, by_idata.accept_prob)
    with pytest.raises(TypeError, match="check_sl checks SL runs; this run used NUTS"):
        check_sl(result.runs["NUTS"])


def test_compare_rejects_bad_input_before_sampling():
    def model():
        numpyro.sample("x", dist.Normal(0.0, 1.0))

    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="samplers is empty"):
        compare(key, model, samplers={})
    with pytest.raises(ValueError, match="modes must be"):
        compare(key, model, samplers={"NUTS": NUTS(model)}, modes=[0.5, 0.5])
    with pytest.raises(ValueError, match="backend"):
        compare(key, model, samplers={"NUTS": NUTS(model)}, backend="stan")
    with pytest.raises(TypeError, match=r"compare\(jax.random.PRNGKey\(0\), model"):
        compare(key, samplers={"NUTS": NUTS(model)})
    with pytest.raises(TypeError, match="given twice"):
        compare(key, model, rng_key=key)
    with pytest.raises(ValueError, match="reference names none"):
        against_reference({"x": np.zeros((2, 10))}, {"mu": (0.0, 1.0)})
    with pytest.raises(ValueError, match=r"\(chains, draws\)"):
        mode_weights(np.zeros(10, int))


def test_compare_follows_numpyro_conventions_and_keeps_the_old_call_working():
    """The key first and MCMC's defaults, as a plain run; 0-based names, as print_summary; the
    older call (model first, rng_key=..., 1-based reference) still runs, with FutureWarnings."""
    import inspect

    from numpyro.infer import MCMC

    import slppl.compare

    params = inspect.signature(slppl.compare.compare).parameters
    assert params["chain_method"].default == inspect.signature(MCMC).parameters["chain_method"].default
    assert params["split_warmup"].default is False  # one compiled program, as MCMC.run

    def model():
        numpyro.sample("x", dist.Normal(jnp.zeros(3), 1.0))

    settings = dict(samplers={"NUTS": NUTS(model)}, num_warmup=50, num_samples=100, num_chains=1)
    new = compare(jax.random.PRNGKey(3), model, reference={"x[0]": (0.0, 1.0), "x[2]": (0.0, 1.0)}, **settings)
    assert sorted(new.accuracy["NUTS"].index) == ["x[0]", "x[2]"]
    with pytest.warns(FutureWarning) as caught:
        old = compare(model, rng_key=jax.random.PRNGKey(3), reference={"x[1]": (0.0, 1.0), "x[3]": (0.0, 1.0)},
                      split_warmup=True, **settings)
    # split_warmup=True times the phases apart (MCMC.warmup, then MCMC.run), from the same key.
    assert old.table.loc["NUTS", "warmup s"] > 0 and old.table.loc["NUTS", "sampling s"] > 0
    said = [str(w.message) for w in caught]
    assert any("pass the PRNG key first" in m for m in said) and any("read as 1-based" in m for m in said)
    np.testing.assert_array_equal(old.runs["NUTS"].samples["x"], new.runs["NUTS"].samples["x"])
    assert sorted(old.accuracy["NUTS"].index) == ["x[0]", "x[2]"]
    np.testing.assert_allclose(old.accuracy["NUTS"]["z"], new.accuracy["NUTS"]["z"])
    # A 1-based reference is renamed once, not again for each sampler's table.
    with pytest.warns(FutureWarning, match="read as 1-based") as caught:
        once = compare(jax.random.PRNGKey(3), model, reference={"x[2]": (0.0, 1.0), "x[3]": (0.0, 1.0)}, **settings)
    assert len(caught) == 1 and sorted(once.accuracy["NUTS"].index) == ["x[1]", "x[2]"]


def test_reference_names_are_zero_based_and_one_based_ones_are_never_misread():
    from slppl.accuracy import scalar_draws, zero_based

    draws = scalar_draws({"theta": np.random.default_rng(0).normal(size=(2, 500, 3))})
    assert sorted(draws) == ["theta[0]", "theta[1]", "theta[2]"]  # as NumPyro's print_summary
    stan = {"theta[1]": (0.0, 1.0), "theta[3]": (0.0, 1.0)}
    assert zero_based(stan) == {"theta[0]": (0.0, 1.0), "theta[2]": (0.0, 1.0)}
    with pytest.warns(FutureWarning, match="zero_based"):
        legacy = against_reference(draws, stan)
    np.testing.assert_allclose(legacy["z"], against_reference(draws, zero_based(stan))["z"])
    with pytest.raises(ValueError, match="already 0-based"):
        zero_based({"theta[0]": (0.0, 1.0)})


def test_accuracy_with_reference_draws_detects_a_shifted_sampler():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=4000)
    good = against_reference({"x": rng.normal(size=(2, 2000))}, {"x": ref})
    bad = against_reference({"x": rng.normal(0.5, 1.0, size=(2, 2000))}, {"x": ref})
    assert good.loc["x", "w1"] < 0.1 < bad.loc["x", "w1"]
    assert bad.loc["x", "z"] > Z * bad.loc["x", "mcse_z"]


@pytest.mark.slow  # NUTS and SL(model) compiled in a subprocess (44 s); make test-all runs it (make test's budget)
def test_command_line_writes_a_report(tmp_path):
    (tmp_path / "mymodel.py").write_text(
        "import numpyro, numpyro.distributions as dist\n"
        "def model(y=None):\n"
        "    mu = numpyro.sample('mu', dist.Normal(0.0, 10.0))\n"
        "    numpyro.sample('y', dist.Normal(mu, 1.0), obs=y)\n"
    )
    (tmp_path / "data.json").write_text(json.dumps({"y": [0.5, 1.5, 1.0, 1.0]}))
    # Conjugate: mu | y ~ N(4/(4 + 1/100), 1/(4 + 1/100)).
    prec = 4 + 1 / 100
    (tmp_path / "ref.json").write_text(json.dumps({"mu": [4.0 / prec, float(np.sqrt(1 / prec))]}))
    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "slppl.compare", f"{tmp_path / 'mymodel.py'}:model", "--data", str(tmp_path / "data.json"),
           "--reference", str(tmp_path / "ref.json"), "--samplers", "NUTS,SL", "--num-warmup", "100",
           "--num-samples", "300", "--num-chains", "1", "--no-progress", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert "| NUTS |" in report and "| SL |" in report and "max z" in report
    assert (out / "localisation_sl.png").exists()


def test_command_line_names_a_bad_model_spec():
    bad = subprocess.run([sys.executable, "-m", "slppl.compare", "nomodule"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "module:function" in bad.stderr


def test_the_public_modules_are_attributes_of_the_package():
    import slppl

    # A new user's first try: `import slppl` then `slppl.diagnostics....` (it once failed).
    assert callable(slppl.diagnostics.check_sl) and callable(slppl.compare) and callable(slppl.sbc)
    assert callable(slppl.accuracy.against_reference) and callable(slppl.plots.ranks)
    # slppl.compare is the module the API page names and, called, the function; `python -m
    # slppl.compare` runs without runpy's "found in sys.modules" warning; `from slppl import *`
    # does not shadow numpyro.sample (slppl.sample stays an attribute).
    assert slppl.compare.compare is not None and slppl.compare.Comparison is not None
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "slppl.compare", "--help"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "RuntimeWarning" not in out.stderr, out.stderr
    namespace = {}
    exec("from slppl import *", namespace)
    assert "sample" not in namespace and "compare" in namespace and callable(slppl.sample)
