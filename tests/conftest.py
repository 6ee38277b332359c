import os

# Parallel chains on CPU need several host devices, set before JAX starts.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)

# z-value for every statistical test: |estimate − truth| ≤ Z · (Monte Carlo standard error).
Z = 4.0


def assert_within_mcse(estimate, truth, se, z=Z, what="estimate"):
    estimate, truth, se = map(np.asarray, (estimate, truth, se))
    err = np.abs(estimate - truth)
    assert np.all(err <= z * se), f"{what}: |{estimate} − {truth}| = {err} > {z}·SE = {z * se}"


@pytest.fixture
def bimodal():
    """The two-mode mixture of the demo in a given dimension (weights 0.3/0.7, means ±2·1, cov 0.5·I)."""
    import jax.numpy as jnp

    from slppl.denoisers import GaussianMixture

    def make(d):
        w = jnp.array([0.3, 0.7])
        means = jnp.stack([-2.0 * jnp.ones(d), 2.0 * jnp.ones(d)])
        covs = jnp.stack([0.5 * jnp.eye(d)] * 2)
        return GaussianMixture(w, means, covs)

    return make
