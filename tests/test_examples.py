"""The examples run (tiny sizes, in a subprocess so their JAX settings stay their own)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(name, *args):
    cmd = [sys.executable, os.path.join(ROOT, "examples", name), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.mark.slow  # ~45 s of compilation on 2 cores; `make demo` and `make test-all` run it
def test_bimodal_demo_runs_and_writes_its_report(tmp_path):
    out = run_example("bimodal_gmm.py", "--num-warmup", "100", "--num-samples", "200", "--num-steps", "10",
                      "--num-chains", "2", "--out", str(tmp_path), "--no-progress-bar", "--single-run")
    assert "heavy-mode weight" in out.stdout and "SL(model), no denoiser / NUTS" in out.stdout
    assert (tmp_path / "bimodal_gmm.png").stat().st_size > 10_000
    assert "NUTS" in (tmp_path / "bimodal_gmm.md").read_text()


@pytest.mark.slow  # 34 s of compilation; `make test-all` runs it
def test_german_credit_example_runs(tmp_path):
    out = run_example("german_credit.py", "--num-warmup", "50", "--num-samples", "100", "--num-chains", "2",
                      "--out", str(tmp_path))
    assert "SL-Laplace, 5 steps" in out.stdout
    assert (tmp_path / "german_credit.md").exists()


def test_readme_usage_example_runs(tmp_path):
    text = open(os.path.join(ROOT, "README.md")).read()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "readme_example.py"
    script.write_text(code + "\nassert draws['x'].shape == (8000, 10)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "r_hat" in out.stdout


@pytest.mark.slow
def test_two_component_study_runs(tmp_path):
    out = run_example("two_component_study.py", "--quick", "--out", str(tmp_path))
    assert "ReLU, 1 hidden layer" in out.stdout
    assert (tmp_path / "two_component_study.png").stat().st_size > 10_000


@pytest.mark.slow  # two processes of 2 x (1000 + 1000) SL(model) steps
def test_float32_vs_float64_example_runs():
    out = run_example("float32_vs_float64.py")
    assert "| float32 |" in out.stdout and "| float64 |" in out.stdout


@pytest.mark.slow  # trains a network; `make test-all` runs it
def test_learned_double_wells_example_runs():
    pytest.importorskip("equinox")
    out = run_example("learned_double_wells.py", "--quick")
    assert "learned, coordinatewise" in out.stdout and "network kept" in out.stdout


@pytest.mark.slow  # three SL(model) compilations
def test_bayes_factor_example_runs_and_matches_the_closed_forms(tmp_path):
    out = run_example("bayes_factor.py", "--num-warmup", "200", "--num-samples", "200", "--out", str(tmp_path))
    rows = [line.split("|") for line in out.stdout.splitlines() if line.startswith("| 1 ") or line.startswith("| 3 ")]
    for row in rows:  # the log Bayes factors against degree 2, SL and exact
        assert abs(float(row[5]) - float(row[6])) < 0.05, row
    assert (tmp_path / "bayes_factor.png").stat().st_size > 5_000


@pytest.mark.slow  # 4 chains of SL(model) on 16 spins
def test_ising_example_agrees_with_enumeration():
    out = run_example("ising.py", "--num-samples", "1000")
    rows = [line.split("|") for line in out.stdout.splitlines() if line.startswith("| magnetisation")
            or line.startswith("| neighbour")]
    assert len(rows) == 2 and all(float(row[2]) < 4.0 for row in rows), out.stdout


@pytest.mark.slow  # four samplers, each compiled
def test_spike_and_slab_example_runs_and_every_sampler_agrees_with_enumeration():
    out = run_example("spike_and_slab.py", "--num-warmup", "200", "--num-samples", "1000", "--seeds", "1")
    rows = [line.split("|") for line in out.stdout.splitlines() if line.startswith(("| SL", "| Disc", "| Gibbs", "| NUTS"))]
    assert len(rows) == 4 and all(float(row[4]) < 4.0 for row in rows), out.stdout


@pytest.mark.slow  # SL with TAP on 100 spins, and Glauber chains
def test_sherrington_kirkpatrick_example_agrees_with_glauber():
    out = run_example("sherrington_kirkpatrick.py", "--n", "100", "--num-samples", "300", "--glauber-sweeps", "4000")
    rows = [line.split("|") for line in out.stdout.splitlines() if line.startswith(("| energy", "| n·q²"))]
    assert len(rows) == 2 and all(abs(float(row[5])) < 4.0 for row in rows), out.stdout


@pytest.mark.slow  # SL with TAP on 200 spins, and Glauber chains
def test_z2_synchronisation_example_agrees_with_glauber():
    out = run_example("z2_synchronisation.py", "--n", "200", "--num-samples", "100", "--glauber-sweeps", "2000")
    z = float(out.stdout.split("(SL − Glauber) / SE = ")[1].split(";")[0])
    assert abs(z) < 4.0, out.stdout
