"""The experiment contract (`numerics.pipeline.experiment.Experiment`'s docstring, docs/extending.md):
every registered figure keeps it, and a figure drawn from theory alone, with no cells, runs through the
pipeline and the report like any other."""
import dataclasses
import json

import numpy as np
import pytest

from numerics.experiments.registry import EXPERIMENTS, REGISTRY
from numerics.pipeline import reproduce as pipeline
from numerics.pipeline.experiment import Claim, Experiment, Registry, config_dict


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_registered_experiment_keeps_the_contract(name):
    exp = EXPERIMENTS[name]
    assert exp.name == name and exp.paper in REGISTRY.papers, f"{name}: its paper must be one of {list(REGISTRY.papers)}"
    assert set(exp.scales) == set(pipeline.SCALES), f"{name}: needs a config for each of {pipeline.SCALES}"
    for scale in pipeline.SCALES:
        config = exp.config(scale)
        assert dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen, \
            f"{name}: the {scale} config must be a frozen dataclass (it names cells and is recorded)"
        json.dumps(config_dict(config))  # recorded in scale.json and every result.json
        unknown = {c["kind"] for c in exp.cells(config)} - set(REGISTRY.kinds)
        assert not unknown, f"{name}: cells of kinds no experiment computes: {unknown} (list them in `kinds`)"
    assert dataclasses.is_dataclass(exp.numbers), f"{name}: numbers must be a dataclass (stored in result.json)"
    assert len(exp.title) > 10, f"{name}: the title is the report's heading"
    tiny = exp.config("tiny")
    if not exp.cells(tiny):  # drawn from theory alone: analyze, describe and plot are quick, so check them here
        numbers = exp.analyze(tiny, lambda cell: None)
        assert len(exp.describe(numbers)) > 100, f"{name}: describe must return a paragraph, not a label"
        exp.plot(tiny, numbers)


# ---------------------------------------------------------------- a figure from theory alone


@dataclasses.dataclass(frozen=True)
class Sigmas:
    sigma_ws: tuple = (0.5, 0.9)
    lags: int = 12


@dataclasses.dataclass
class Weights:
    sigma_ws: list
    alpha: list  # one list of α_j per σ_W


def analyze(config: Sigmas, lookup) -> Weights:
    from derivations.spec import DEFAULT
    from numerics.kernels.theory import theory_lag_weights

    return Weights(list(config.sigma_ws), [theory_lag_weights(DEFAULT, config.lags, {"W": s}).tolist()
                                            for s in config.sigma_ws])


def claims(config: Sigmas, n: Weights) -> list:
    ratio = n.alpha[0][5] / n.alpha[1][5]
    return [Claim("smaller_sigma_forgets", "α_5 at the smaller σ_W over α_5 at the larger", ratio, "< 1", ratio < 1,
                  "T0/result.json: numbers.alpha")]


def plot(config: Sigmas, n: Weights):
    from numerics import style

    fig, axes = style.figure()
    for sigma, alpha in zip(n.sigma_ws, n.alpha):
        axes[0, 0].semilogy(np.arange(len(alpha)), alpha, label=rf"$\sigma_W = {sigma:g}$")
    axes[0, 0].set_xlabel("lag $j$")
    axes[0, 0].set_ylabel(r"$\alpha_j$")
    axes[0, 0].legend()
    return fig


def describe(n: Weights) -> str:
    return ("The derived lag weights α_j for two σ_W, from theory alone: the smaller σ_W forgets geometrically "
            "faster. " + "; ".join(f"σ_W = {s:g}: α_5 = {a[5]:.3g}" for s, a in zip(n.sigma_ws, n.alpha)) + ".")


THEORY_ONLY = Experiment("T0", "Lag weights at two σ_W, from theory alone", "linear",
                         {"quick": Sigmas(), "full": Sigmas(lags=32), "tiny": Sigmas(lags=6)}, Weights,
                         lambda config: [], analyze, claims, plot, describe)


def test_the_contract_refuses_a_label_for_a_description():
    short = dataclasses.replace(THEORY_ONLY, describe=lambda n: "α_j at two σ_W.")
    numbers = short.analyze(short.config("tiny"), lambda cell: None)
    assert len(short.describe(numbers)) <= 100  # what test_every_registered_experiment_keeps_the_contract refuses


def test_a_figure_from_theory_alone_runs_through_the_pipeline(tmp_path):
    registry = Registry([THEORY_ONLY], REGISTRY.papers)
    summary = pipeline.reproduce(registry, tmp_path, "tiny")
    assert summary["cells"]["total"] == 0
    record = json.loads((tmp_path / "T0" / "result.json").read_text())
    assert record["cells"] == [] and record["claims"][0]["passed"]
    assert (tmp_path / "T0" / "T0.png").stat().st_size > 5_000
    assert "from theory alone" in (tmp_path / "report.md").read_text()
