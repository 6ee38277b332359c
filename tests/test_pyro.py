"""The Pyro kernel: statistics, Pyro's MCMC interface, ArviZ, parity with the NumPyro kernel, bad input."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_within_mcse

torch = pytest.importorskip("torch")
pyro = pytest.importorskip("pyro")

import numpyro  # noqa: E402
import numpyro.distributions as ndist  # noqa: E402
import pyro.distributions as dist  # noqa: E402
from numpyro.diagnostics import effective_sample_size  # noqa: E402
from pyro.infer import MCMC, Predictive  # noqa: E402

import slppl  # noqa: E402
import slppl.pyro  # noqa: E402
from slppl.denoisers import FunctionDenoiser, Gaussian  # noqa: E402

Y = torch.tensor([0.5, -0.3, 1.2, 0.8])


def constrained_model(y=Y):
    """sigma ~ HalfNormal(2) (a constrained site), mu ~ N(0, 1)², y ~ N(mu[0], sigma)."""
    sigma = pyro.sample("sigma", dist.HalfNormal(2.0))
    mu = pyro.sample("mu", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(mu[0], sigma), obs=y)


def constrained_numpyro(y=np.asarray(Y)):
    sigma = numpyro.sample("sigma", ndist.HalfNormal(2.0))
    mu = numpyro.sample("mu", ndist.Normal(jnp.zeros(2), 1.0).to_event(1))
    with numpyro.plate("data", len(y)):
        numpyro.sample("y", ndist.Normal(mu[0], sigma), obs=y)


# A Gaussian near the posterior in (mu[0], mu[1], log sigma): the exact correction does the rest.
PROPOSAL = Gaussian(np.array([0.4, 0.0, -0.1]), np.diag([0.3, 1.0, 0.3]))


def run_pyro(kernel, num_samples=1500, warmup_steps=20, num_chains=1, seed=0, **kwargs):
    pyro.set_rng_seed(seed)
    mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=warmup_steps, num_chains=num_chains,
                disable_progbar=True, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "num_chains=2 is more than available_cpu=1"
        mcmc.run()
    return mcmc


def test_given_denoiser_on_a_constrained_model_matches_numpyro_and_works_with_pyros_interface():
    mcmc = run_pyro(slppl.pyro.SL(constrained_model, denoiser=PROPOSAL, num_steps=10), num_chains=2)
    by_chain = mcmc.get_samples(group_by_chain=True)
    assert by_chain["sigma"].shape == (2, 1500) and by_chain["mu"].shape == (2, 1500, 2)
    assert bool((by_chain["sigma"] > 0).all())
    # Pyro runs the two chains one after the other through one kernel object (2 cores: 1 "available
    # CPU"): each chain's state is reset in setup, so they differ.
    assert not torch.equal(by_chain["mu"][0], by_chain["mu"][1])
    diagnostics = mcmc.diagnostics()
    assert "divergences" in diagnostics and set(diagnostics["divergences"]) == {"chain 0", "chain 1"}
    mcmc.summary()
    pred = Predictive(constrained_model, posterior_samples=mcmc.get_samples())()
    assert pred["y"].shape == (3000, 4)

    # Parity: the NumPyro kernel with the same denoiser, on the same posterior.
    nmcmc = numpyro.infer.MCMC(slppl.SL(constrained_numpyro, denoiser=PROPOSAL, num_steps=10), num_warmup=20,
                               num_samples=3000, progress_bar=False)
    nmcmc.run(jax.random.PRNGKey(0))
    for site in ("sigma", "mu"):
        a = np.asarray(by_chain[site]).reshape(3000, -1)
        b = np.asarray(nmcmc.get_samples()[site]).reshape(3000, -1)
        ess_a = effective_sample_size(np.asarray(by_chain[site]).reshape(2, 1500, -1))
        ess_b = effective_sample_size(b[None])
        se = np.sqrt(a.var(0) / ess_a + b.var(0) / ess_b)
        assert_within_mcse(a.mean(0), b.mean(0), se, what=f"{site}: Pyro vs NumPyro")

    idata = slppl.pyro.to_arviz(mcmc)
    assert idata.posterior["mu"].shape == (2, 1500, 2)
    groups = slppl.pyro.pyro_groups(mcmc)  # what ArviZ 1.x's from_dict receives
    assert groups["posterior"]["sigma"].shape == (2, 1500) and groups["sample_stats"]["diverging"].shape == (2, 1500)


def test_gaussian_target_moments_and_initial_params_are_honoured():
    def model():
        pyro.sample("x", dist.Normal(torch.tensor([1.0, -2.0]), torch.tensor([1.0, 0.5])).to_event(1))

    den = Gaussian(np.array([0.8, -2.0]), np.diag([1.5, 0.4]))
    kernel = slppl.pyro.SL(model, denoiser=den, num_steps=10)
    kernel.initial_params = {"x": torch.tensor([5.0, 5.0])}
    kernel.setup(0)
    assert np.allclose(np.asarray(kernel._state.z), [5.0, 5.0])  # the chain starts where it was told
    mcmc = run_pyro(slppl.pyro.SL(model, denoiser=den, num_steps=10), num_samples=2000, warmup_steps=0,
                    initial_params={"x": torch.tensor([5.0, 5.0])})
    x = np.asarray(mcmc.get_samples()["x"])
    ess = effective_sample_size(x[None])
    assert_within_mcse(x.mean(0), [1.0, -2.0], np.array([1.0, 0.5]) / np.sqrt(ess), what="mean")


def test_bad_input_is_rejected_before_sampling_and_nan_is_flagged():
    def discrete():
        pyro.sample("k", dist.Bernoulli(0.3))

    with pytest.raises(ValueError, match="discrete"):
        run_pyro(slppl.pyro.SL(discrete, denoiser=Gaussian(np.zeros(1), np.eye(1))), num_samples=1, warmup_steps=0)
    with pytest.raises(ValueError, match="length 2 but the target's flattened"):
        run_pyro(slppl.pyro.SL(constrained_model, denoiser=Gaussian(np.zeros(2), np.eye(2))), num_samples=1,
                 warmup_steps=0)
    with pytest.raises(ValueError, match="exactly one"):
        slppl.pyro.SL(denoiser=PROPOSAL)
    broken = FunctionDenoiser(lambda y, t: jnp.full_like(y, jnp.nan), dim=1, cov_fn=lambda y, t: jnp.eye(1))

    def one():
        pyro.sample("x", dist.Normal(0.0, 1.0))

    mcmc = run_pyro(slppl.pyro.SL(one, denoiser=broken, num_steps=5), num_samples=20, warmup_steps=0,
                    initial_params={"x": torch.tensor(0.25)})
    assert len(mcmc.diagnostics()["divergences"]["chain 0"]) == 20
    assert bool((mcmc.get_samples()["x"] == 0.25).all())


def two_modes():
    """0.3·N(−2, 0.5²) + 0.7·N(2, 0.5²), written with a factor: torch cannot unconstrain a
    MixtureSameFamily site (no transform for its support, torch 2.13), so Pyro's NUTS could not run it either."""
    wide = dist.Normal(0.0, 10.0)
    x = pyro.sample("x", wide)
    modes = dist.Normal(torch.tensor([-2.0, 2.0]), 0.5).log_prob(x) + torch.log(torch.tensor([0.3, 0.7]))
    pyro.factor("modes", torch.logsumexp(modes, -1) - wide.log_prob(x))


@pytest.mark.slow  # CI runs the adaptive Pyro kernel through the quickstart example
def test_adaptive_kernel_builds_its_denoiser_in_pyro():

    mcmc = run_pyro(slppl.pyro.SL(two_modes, num_walkers=4), num_samples=300, warmup_steps=100)
    x = np.asarray(mcmc.get_samples()["x"])
    heavy = (x > 0).astype(float)
    ess = float(effective_sample_size(heavy[None, :, None])[0])
    assert 0.1 < heavy.mean() < 0.95 and ess > 50  # both modes visited, the chain mixes
    assert mcmc.diagnostics()["acceptance rate"]["chain 0"] > 0.5


@pytest.mark.slow
def test_adaptive_pyro_mode_weights_and_eight_schools_against_the_reference():

    mcmc = run_pyro(slppl.pyro.SL(two_modes), num_samples=3000, warmup_steps=500)
    heavy = (np.asarray(mcmc.get_samples()["x"]) > 0).astype(float)
    ess = float(effective_sample_size(heavy[None, :, None])[0])
    assert_within_mcse(heavy.mean(), 0.7, np.sqrt(0.21 / ess), what="heavy mode weight")

    import json
    import os

    folder = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "benchmarks", "posteriordb",
                          "eight_schools-eight_schools_noncentered")
    if not os.path.isdir(folder):
        pytest.skip("the shared posteriordb references are not on this machine")
    with open(os.path.join(folder, "data.json")) as f:
        data = json.load(f)
    with open(os.path.join(folder, "reference_moments.json")) as f:
        ref = {k: (v["mean"], v["sd"]) for k, v in json.load(f)["moments"].items()}
    y, sigma = torch.tensor(data["y"], dtype=torch.float64), torch.tensor(data["sigma"], dtype=torch.float64)

    def schools():
        mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
        tau = pyro.sample("tau", dist.HalfCauchy(5.0))
        with pyro.plate("J", 8):
            theta_trans = pyro.sample("theta_trans", dist.Normal(0.0, 1.0))
            pyro.sample("y", dist.Normal(mu + tau * theta_trans, sigma), obs=y)

    mcmc = run_pyro(slppl.pyro.SL(schools, jit_compile=True, ignore_jit_warnings=True), num_samples=2000,
                    warmup_steps=1000)
    for name in ("mu", "tau"):
        x = np.asarray(mcmc.get_samples()[name])
        mean, sd = ref[name]
        assert_within_mcse(x.mean(), mean, sd / np.sqrt(float(effective_sample_size(x[None]))), what=name)


@pytest.mark.slow  # a subprocess compiling SL(model) and NUTS again (~40 s); the kernel is tested above
def test_pyro_quickstart_example_runs():
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, os.path.join(root, "examples", "pyro_quickstart.py"), "--warmup", "100", "--samples", "100",
           "--walkers", "4"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "SL(model): heavy-mode weight" in out.stdout and "NUTS: heavy-mode weight" in out.stdout


def test_compare_runs_pyro_kernels_through_pyros_mcmc(tmp_path):
    from pyro.infer import NUTS

    def model():
        pyro.sample("x", dist.Normal(torch.zeros(2), 1.0).to_event(1))

    samplers = {"SL": slppl.pyro.SL(model, denoiser=Gaussian(jnp.zeros(2), jnp.eye(2)), num_steps=5), "NUTS": NUTS(model)}
    result = slppl.compare(jax.random.PRNGKey(0), model, samplers=samplers, reference={"x[0]": (0.0, 1.0), "x[1]": (0.0, 1.0)},
                           num_warmup=50, num_samples=300, num_chains=1)
    assert result.table.index.tolist() == ["SL", "NUTS"]
    assert (result.table["max z / MCSE"] < 4.0).all(), result.table["max z / MCSE"]
    assert result.table.loc["SL", "compile s"] > 0 and result.table.loc["SL", "divergences"] == 0
    assert set(result.runs["SL"].samples) == {"x"} and result.runs["SL"].samples["x"].shape == (1, 300, 2)
    with pytest.raises(ValueError, match="one library at a time"):
        slppl.compare(jax.random.PRNGKey(0), model, samplers={"SL": samplers["SL"], "NUTS-numpyro": slppl.SL(model, denoiser=Gaussian(jnp.zeros(2), jnp.eye(2)))})


def plated_model(y=Y):
    """Batch-safe: plates, a constrained scale, a simplex (StickBreaking) and an event dimension."""
    sigma = pyro.sample("sigma", dist.HalfNormal(2.0))
    w = pyro.sample("w", dist.Dirichlet(torch.ones(3)))
    mu = pyro.sample("mu", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(mu[..., 0] + w[..., 0], sigma), obs=y)


def test_batched_potential_matches_pyros_row_by_row_and_refuses_models_it_cannot_batch():
    from pyro.infer.mcmc.util import initialize_model

    from slppl.pyro_potential import batched_potential

    pyro.set_rng_seed(0)
    kernel = slppl.pyro.SL(plated_model)
    kernel.setup(100)
    host = kernel._host
    assert host.batched is not None
    flat = np.random.default_rng(0).normal(size=(6, host.dim))
    value, grad = host.value_and_grad(flat)
    assert np.allclose(host.value(flat), value)
    batched, host.batched = host.batched, None  # Pyro's own potential, one row at a time
    row_value, row_grad = host.value_and_grad(flat)
    host.batched = batched
    assert np.allclose(value, row_value, rtol=1e-6) and np.allclose(grad, row_grad, rtol=1e-6, atol=1e-8)
    traced = slppl.pyro.SL(plated_model, jit_compile=True, ignore_jit_warnings=True)
    traced.setup(100)
    for _ in range(2):  # traced at the first call of this batch size, reused at the second
        assert np.allclose(traced._host.value_and_grad(flat)[1], row_grad, rtol=1e-6, atol=1e-8)
    # `mu[0]` indexes the batch, and the two-mode model broadcasts a scalar latent against a fixed
    # shape: their batches would be wrong, so the check against Pyro's potential refuses them.
    for model in (constrained_model, two_modes):
        init, potential, transforms, _ = initialize_model(model)
        assert batched_potential(model, (), {}, transforms, init, potential) is None
