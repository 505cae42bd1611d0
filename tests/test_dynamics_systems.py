"""Systems and data for reconstruction (`numerics.dynamics.systems`)."""
import json
import sys
import types
from typing import ClassVar

import numpy as np
import pytest

from numerics.dynamics.systems import (
    Series,
    SystemSpec,
    get_system,
    hindmarsh_rose,
    load_series,
    lorenz63,
    make_series,
    parse_system,
    simulate,
)
from numerics.errors import NumericsError


def test_lorenz_series_is_zscored_seeded_and_recorded():
    a = simulate("lorenz63", length=500, noise=0.1, seed=3)
    assert a.observed.shape == a.clean.shape == (500, 3) and a.variables == ("x", "y", "z")
    np.testing.assert_allclose(a.observed.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(a.observed.std(0), 1, atol=1e-12)
    np.testing.assert_allclose(a.clean * a.sd + a.mean, simulate("lorenz63", length=500, seed=3, zscore=False).clean)
    assert np.array_equal(a.observed, simulate("lorenz63", length=500, noise=0.1, seed=3).observed)
    assert not np.allclose(a.clean, simulate("lorenz63", length=500, noise=0.1, seed=4).clean)
    record = json.loads(json.dumps(a.record()))
    assert record["parameters"] == {"sigma": 10.0, "rho": 28.0, "beta": 8.0 / 3.0}
    assert record["dt"] == 0.01 and record["noise"] == 0.1 and record["zscore"] and record["length"] == 500
    assert record["reference"]["lyapunov_max"] == pytest.approx(0.9056)


def test_trajectory_solves_the_ode():
    # central differences of the samples against f: error O(dt²) of the difference quotient only
    series = simulate("lorenz63", dt=1e-3, length=200, zscore=False)
    system = lorenz63()
    x = series.clean
    derivative = (x[2:] - x[:-2]) / (2 * series.dt)
    f = np.array([system.rhs(0.0, row) for row in x[1:-1]])
    assert np.max(np.abs(derivative - f)) < 1e-3 * np.max(np.abs(f))


@pytest.mark.parametrize("system", [lorenz63(), hindmarsh_rose()], ids=["lorenz63", "bursting"])
def test_jacobian_matches_finite_differences(system):
    rng = np.random.default_rng(0)
    for x in rng.standard_normal((5, 3)) * 3:
        eps = 1e-6
        numeric = np.stack([(system.rhs(0, x + eps * e) - system.rhs(0, x - eps * e)) / (2 * eps) for e in np.eye(3)], 1)
        np.testing.assert_allclose(system.jacobian(x), numeric, atol=1e-6)


def test_observation_noise_is_a_fraction_of_each_sd():
    series = simulate("lorenz63", length=4000, noise=0.2, seed=1, zscore=False)
    ratio = (series.observed - series.clean).std(0) / series.clean.std(0)
    # the sd of a sample sd from 4000 Gaussian draws is 1/√8000 ≈ 1.1 % of it
    np.testing.assert_allclose(ratio, 0.2, rtol=0.05)


def test_bursting_neuron_bursts():
    series = simulate("bursting", length=4000, zscore=False)  # 2000 time units, ≈ 13 bursts
    x, t = series.clean[:, 0], series.dt * np.arange(4000)
    spikes = t[np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))]
    intervals = np.diff(spikes)
    quiet = intervals > 3 * intervals.min()
    per_burst = np.diff(np.r_[0, np.flatnonzero(quiet) + 1, spikes.size])[1:-1]  # whole bursts only
    assert per_burst.size >= 10 and np.all(per_burst == 5)
    assert intervals[quiet].min() > 3 * intervals[~quiet].max()  # quiet periods, not slow spiking
    assert series.parameters["r"] == 0.005 and series.parameters["current"] == 2.95


def test_parameters_override_and_chaotic_setting():
    assert get_system("bursting", {"current": 3.25}).parameters["current"] == 3.25
    with pytest.raises(NumericsError, match="parameters can be set only"):
        get_system("Lorenz", {"rho": 1})


@pytest.mark.parametrize("kwargs, message", [
    ({"dt": 0.0}, "dt must be positive"), ({"dt": -1}, "dt must be positive"),
    ({"noise": -0.1}, "noise must be"), ({"length": 1}, "too short"), ({"transient": -1}, "transient"),
])
def test_parse_rejects_bad_sampling(kwargs, message):
    with pytest.raises(NumericsError, match=message):
        parse_system("lorenz63", **kwargs)


def test_parse_builtin_and_data(tmp_path):
    assert parse_system("bursting", dt=0.25, length=10) == SystemSpec("builtin", "bursting", 0.25, 10, 0.0, None)
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((5, 2)))
    assert parse_system(f"data:{path}").kind == "data"
    for text, message in [(f"data:{tmp_path / 'no.npy'}", "does not exist"), ("data:", "needs a file")]:
        with pytest.raises(NumericsError, match=message):
            parse_system(text)
    with pytest.raises(NumericsError, match="noise is added to simulated"):
        parse_system(f"data:{path}", noise=0.1)


def test_unknown_system_without_dysts(monkeypatch):
    monkeypatch.setitem(sys.modules, "dysts", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "dysts.flows", None)
    with pytest.raises(NumericsError, match="pip install dysts") as error:
        parse_system("Rossler")
    assert "\n" not in str(error.value)


class _FakeFlow:
    """A dysts-like flow: Rössler with dysts' attribute names."""
    ic = np.array([1.0, 1.0, 0.0])
    dt, period, maximum_lyapunov_estimated = 0.05, 6.0, 0.07
    params: ClassVar[dict] = {"a": 0.2, "b": 0.2, "c": 5.7}

    def rhs(self, X, t):
        x, y, z = X
        return (-y - z, x + 0.2 * y, 0.2 + z * (x - 5.7))

    def has_jacobian(self):
        return False


def test_dysts_names_work_where_dysts_is_installed(monkeypatch):
    flows = types.ModuleType("dysts.flows")
    flows.Rossler = _FakeFlow
    package = types.ModuleType("dysts")
    package.flows = flows
    monkeypatch.setitem(sys.modules, "dysts", package)
    monkeypatch.setitem(sys.modules, "dysts.flows", flows)
    assert parse_system("Rossler").kind == "dysts"
    series = simulate("Rossler", length=300, noise=0.05)
    assert series.observed.shape == (300, 3) and series.dt == 0.05 and series.transient == 120.0
    assert series.reference == {"lyapunov_max": 0.07, "source": "dysts metadata"}
    assert make_series(parse_system("Rossler", length=50)).observed.shape == (50, 3)
    with pytest.raises(NumericsError, match="unknown system 'Nope'"):
        parse_system("Nope")


def test_real_dysts_flow():
    pytest.importorskip("dysts.flows", reason="dysts is an optional extra")
    series = simulate("Lorenz", length=200)
    assert series.observed.shape == (200, 3) and np.all(np.isfinite(series.observed))


def test_load_npy_and_csv(tmp_path):
    data = np.random.default_rng(0).standard_normal((50, 3)) * [1, 2, 3] + [0, 1, 2]
    np.save(tmp_path / "a.npy", data)
    series = load_series(str(tmp_path / "a.npy"), dt=0.1)
    assert isinstance(series, Series) and series.observed.shape == (50, 3) and series.dt == 0.1
    np.testing.assert_allclose(series.observed * series.sd + series.mean, data)
    np.savetxt(tmp_path / "b.csv", data, delimiter=",", header="V,n,h", comments="")
    named = load_series(str(tmp_path / "b.csv"), zscore=False)
    assert named.variables == ("V", "n", "h")
    np.testing.assert_allclose(named.observed, data)
    np.savetxt(tmp_path / "c.csv", data, delimiter=",")
    assert load_series(str(tmp_path / "c.csv")).variables == ("x0", "x1", "x2")
    cut = make_series(parse_system(f"data:{tmp_path / 'a.npy'}", length=20))
    assert cut.observed.shape == (20, 3) and abs(cut.observed.mean(0)).max() < 1e-12


@pytest.mark.parametrize("make, message", [
    (lambda p: np.save(p / "x.npy", np.zeros(10)), "1-D array"),
    (lambda p: np.save(p / "x.npy", np.zeros((10, 2, 2))), "3-D array"),
    (lambda p: np.save(p / "x.npy", np.array([[1.0, np.nan]] * 10)), "10 non-finite"),
    (lambda p: np.save(p / "x.npy", np.zeros((3, 40))), "3 steps; at least 5 needed .is it transposed"),
    (lambda p: (p / "x.npy").write_bytes(b"not an array"), "cannot read"),
    (lambda p: np.save(p / "x.npy", np.array(["a", "b"])), "cannot read"),
])
def test_load_rejects_bad_npy(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(NumericsError, match=message) as error:
        load_series(str(tmp_path / "x.npy"), min_length=5)
    assert "\n" not in str(error.value)


def test_load_rejects_bad_files(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\nthree,4\n")
    (tmp_path / "x.txt").write_text("1,2\n")
    for name, message in [("x.csv", "cannot read"), ("x.txt", "must be .npy or .csv"), ("no.npy", "does not exist")]:
        with pytest.raises(NumericsError, match=message):
            load_series(str(tmp_path / name))
