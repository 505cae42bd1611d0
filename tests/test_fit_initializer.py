"""The eigen initializer's procedure (numerics.eigen.fit_initializer): train, keep the well-trained runs,
fit and write a spectrum file the spectral family reads; the committed default spectrum; and E2
(spectra before and after training, regression vs classification) end to end at the tiny scale."""
import json
import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from derivations.families import load_spectrum
from derivations.spec import Spec
from numerics.eigen.fit_initializer import DEFAULT_ARGS, FIT_CELLS, fit_from_training, spectrum_file
from numerics.errors import NumericsError
from numerics.experiments.eigen import spectra
from numerics.pipeline.experiment import Claim, config_dict

TINY = {"cell": "rnn", "hidden": 8, "steps": 20, "threshold": 0.0, "n": 64}


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    path = tmp_path_factory.mktemp("fit") / "spectrum.npy"
    with threadpool_limits(1):
        summary = fit_from_training(["tomita:4", "recall:3"], seeds=[0, 1], out_path=path,
                                    provenance={"command": "test"}, **TINY)
    return path, summary


def test_fit_writes_a_spectrum_the_spectral_family_reads(fitted):
    path, summary = fitted
    assert summary["path"] == str(path) and summary["total"] == 4 and summary["well_trained"] == 4  # threshold 0
    values = load_spectrum(str(path))
    assert values.size == TINY["n"]
    assert np.max(np.abs(values)) <= summary["law"]["r_max"] * (1 + 1e-12)
    spec = Spec(init=f"spectral:file={path}")
    assert spec.to_dict()["init"].startswith("spectral:")


def test_sidecar_holds_the_provenance_and_says_it_is_a_reconstruction(fitted):
    path, _ = fitted
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    provenance = sidecar["provenance"]
    assert "reconstruction" in provenance["procedure"]
    assert provenance["call"].startswith("numerics.eigen.fit_initializer.fit_from_training(tasks=['tomita:4', 'recall:3']")
    assert provenance["command"] == "test" and provenance["well_trained"] == 4 and len(provenance["runs"]) == 4
    assert provenance["blocks"] == ["0/h"]
    assert provenance["environment"]["versions"]["torch"] and provenance["environment"]["created"]
    assert sidecar["goodness"]["pair_modulus"]["statistic"] is not None


@pytest.mark.parametrize(("cell", "blocks", "pooled"), [("gru", "all", ["0/n", "0/r", "0/z"]),
                                                       ("lstm", "candidate", ["0/g"])])
def test_gated_cells_pool_the_chosen_gate_blocks(tmp_path, cell, blocks, pooled):
    path = tmp_path / "gated.npy"
    summary = fit_from_training(["recall:3"], seeds=[0, 1], out_path=path, blocks=blocks,
                                **{**TINY, "cell": cell, "hidden": 16, "steps": 5, "threshold": -1e9})
    assert summary["blocks"] == pooled and summary["law"]["counts"]["eigenvalues"] == 2 * 16 * len(pooled)
    assert json.loads(path.with_name("gated.npy.json").read_text())["provenance"]["blocks"] == pooled


def test_runs_below_threshold_are_not_pooled_and_none_is_refused(tmp_path):
    path = tmp_path / "none.npy"
    with pytest.raises(NumericsError, match="no run reached its threshold"):
        fit_from_training(["recall:3"], seeds=[0], out_path=path, **{**TINY, "threshold": 2.0})
    assert not path.exists() and not path.with_name("none.npy.json").exists()
    with pytest.raises(NumericsError, match="unknown blocks"):
        fit_from_training(["recall:3"], seeds=[0], out_path=path, blocks="forget", **TINY)


@pytest.mark.parametrize("cell", FIT_CELLS)
def test_the_committed_laws_were_fitted_away_from_the_benchmark(cell):
    """Each cell's law: fitted on that cell, on data the benchmark never reads (data seed 1 — E1 uses 0 —
    and Tomita grammars its quick scale does not use), within the trained radius, with the spectral
    radius an initialized block starts with recorded; its ablations keep one half of it."""
    from numerics.experiments.eigen import bench

    path = spectrum_file(cell)
    values = load_spectrum(str(path))
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    r_max = sidecar["law"]["r_max"]
    assert np.max(np.abs(values)) <= r_max * (1 + 1e-12)
    provenance = sidecar["provenance"]
    assert provenance["command"] == "python -m numerics.eigen.fit_initializer"
    assert provenance["arguments"] == {k: v for k, v in DEFAULT_ARGS[cell].items()} and provenance["arguments"]["cell"] == cell
    assert provenance["arguments"]["data_seed"] != 0 and 0 < provenance["well_trained"] <= provenance["total"]
    assert not set(provenance["arguments"]["tasks"]) & set(bench.SCALES["quick"].tasks)
    radius = sidecar["initialized_radius"]
    assert radius["hidden"] == DEFAULT_ARGS[cell]["hidden"] and 0 < radius["min"] <= radius["median"] <= radius["max"]
    assert radius["max"] <= r_max * (1 + 1e-9)
    for keep in ("moduli", "phases"):
        ablation = json.loads(spectrum_file(cell, keep).with_name(f"{cell}-{keep}.npy.json").read_text())
        assert ablation["provenance"]["ablation_of"] == path.name and keep in ablation["law"]["ablation"]
        kept = ("pair_modulus", "real_modulus", "r_max") if keep == "moduli" else ("pair_phase", "positive")
        assert all(ablation["law"][k] == sidecar["law"][k] for k in kept)
    Spec(init=f"spectral:file={path}")



def test_e2_tiny_end_to_end():
    c = spectra.E2.config("tiny")
    json.dumps(config_dict(c))
    cells = spectra.E2.cells(c)
    assert {x["kind"] for x in cells} == {"eigen-spectra"} and len(cells) == 4
    results = spectra.E2.kinds["eigen-spectra"].compute(cells, "cpu")
    store = {json.dumps(x, sort_keys=True): r for x, r in zip(cells, results)}
    numbers = spectra.E2.analyze(c, lambda x: store[json.dumps(x, sort_keys=True)])
    assert set(numbers.tasks) == {"recall:5", "tomita:4"}
    for row in numbers.tasks.values():
        assert row["runs"] == 2 and 0 <= row["final"]["near_unit"][0] <= 1
    for task in numbers.tasks:
        assert len(numbers.clouds[task]["initial"]) == len(numbers.clouds[task]["final"]) == 2 * c.hidden
    claims = spectra.E2.claims(c, numbers)
    assert [x.id for x in claims] == [f"{k}_differs" for k in spectra.COMPARED]
    assert all(isinstance(x, Claim) for x in claims)
    for x in claims:
        d = x.measured
        assert x.passed == (abs(d["difference"]) > spectra.DIFFERENCE_SDS * d["sd"])
    fig = spectra.E2.plot(c, numbers)
    assert len(fig.axes) == 3  # two task disks, bars
    assert "recall:5" in spectra.E2.describe(numbers)
    json.dumps(config_dict(numbers) if hasattr(numbers, "to_dict") else numbers.__dict__, allow_nan=True)


def test_spectrum_statistics_of_a_known_spectrum():
    values = np.array([0.95, -0.5, 0.8 * np.exp(1j), 0.8 * np.exp(-1j)])
    stats = spectra.spectrum_statistics(values)
    assert stats["near_unit"] == 0.25 and stats["complex"] == 0.5 and stats["radius"] == 0.95
    assert math.isclose(stats["mean_modulus"], (0.95 + 0.5 + 1.6) / 4)
