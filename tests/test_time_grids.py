import numpy as np
import pytest

from slppl.time_grids import Explicit, Geometric, Karras, LogSNR, UniformOU, validate_times


@pytest.mark.parametrize("grid", [Geometric(), UniformOU(), Karras(), Geometric(1e-2, 1e2)])
@pytest.mark.parametrize("num_steps", [1, 2, 25])
def test_grids_start_at_zero_increase_and_end_at_t_max(grid, num_steps):
    t = grid.times(num_steps)
    assert t.shape == (num_steps + 1,)
    assert t[0] == 0.0 and np.isclose(t[-1], grid.t_max)
    assert np.all(np.diff(t) > 0)
    if num_steps > 1:
        assert np.isclose(t[1], grid.t_min)


def test_geometric_is_uniform_in_log_snr():
    t = LogSNR(1e-3, 1e3).times(7)
    assert np.allclose(np.diff(np.log(t[1:])), np.log(10.0))


def test_uniform_ou_is_uniform_in_ou_time():
    t = UniformOU(1e-3, 1e3).times(9)[1:]
    s = 0.5 * np.log1p(1 / t)
    assert np.allclose(np.diff(s), np.diff(s)[0])


@pytest.mark.parametrize(
    "times, message",
    [
        ([0.0], "at least two"),
        ([0.1, 1.0], "start at t = 0"),
        ([0.0, 1.0, 1.0], "strictly increasing"),
        ([0.0, 2.0, 1.0], "strictly increasing"),
        ([0.0, 1.0, np.inf], "finite"),
        ([[0.0, 1.0]], "1-d"),
    ],
)
def test_invalid_grids_are_rejected_with_the_reason(times, message):
    with pytest.raises(ValueError, match=message):
        validate_times(times)


@pytest.mark.parametrize("grid", [Geometric(0.0, 1.0), Geometric(1.0, 0.5), UniformOU(1e-3, np.inf), Karras(-1.0, 1.0)])
def test_invalid_ranges_are_rejected(grid):
    with pytest.raises(ValueError, match="t_min"):
        grid.times(10)


def test_invalid_num_steps_and_explicit_mismatch():
    with pytest.raises(ValueError, match="num_steps"):
        Geometric().times(0)
    with pytest.raises(ValueError, match="num_steps"):
        Geometric().times(2.5)
    assert Explicit((0.0, 1.0, 3.0)).times().tolist() == [0.0, 1.0, 3.0]
    with pytest.raises(ValueError, match="explicit grid has 2 steps"):
        Explicit((0.0, 1.0, 3.0)).times(5)
