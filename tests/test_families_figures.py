"""F8 (lag kernels of initializer families) and F9 (which initializers learn long memory), end to
end at the tiny scale, and the training cells that carry an initializer."""
import json

import numpy as np
import pytest

from derivations.spec import DEFAULT, Spec
from numerics.experiments.linear import common, init_training, lag_kernels
from numerics.experiments.registry import EXPERIMENTS, REGISTRY
from numerics.pipeline import reproduce as pipeline
from numerics.pipeline.cells import cell_key

pytestmark = pytest.mark.slow  # F8 and F9 end to end

TINY = "tiny"


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    out = tmp_path_factory.mktemp("families")
    return {name: json.loads((pipeline.make_figure(REGISTRY, name, TINY, out) / "result.json").read_text())
            for name in ("F8", "F9")}


def test_registered_in_report_order():
    names = list(EXPERIMENTS)
    assert names.index("F8") + 1 == names.index("F9") and names.index("F9") == max(
        i for i, n in enumerate(names) if n.startswith("F"))


def test_f8_end_to_end(drawn):
    record = drawn["F8"]
    ids = [c["id"] for c in record["claims"]]
    assert ids == ["family_kernels_match_theory", "family_kernel_error_slope", "identity_kernel_rank",
                   "attractor_keeps_long_lags", "gaussian_outremembers_normal", "orthogonal_same_limit",
                   "orthogonal_fluctuates_less"]
    claims = {c["id"]: c for c in record["claims"]}
    # Claims about the derived kernels alone hold at any scale.
    assert claims["identity_kernel_rank"]["measured"] == [3, 2] and claims["identity_kernel_rank"]["passed"]
    assert claims["orthogonal_same_limit"]["passed"]
    assert claims["gaussian_outremembers_normal"]["measured"][0] > 1
    n = record["numbers"]
    config = EXPERIMENTS["F8"].config(TINY)
    for init in config.inits:
        theory = np.array(n["theory"][init])
        assert theory.shape == (config.lags, config.lags) and np.allclose(theory, theory.T)
        assert np.linalg.eigvalsh(theory).min() > -1e-9 * np.abs(theory).max()  # PSD
        assert len(n["error"][init]) == len(config.widths)
    text = EXPERIMENTS["F8"].describe(EXPERIMENTS["F8"].numbers(**n))
    assert "circular" in text and "Orthogonal" in text


def test_f9_end_to_end(drawn):
    record = drawn["F9"]
    assert [c["id"] for c in record["claims"]] == ["closed_form_predicts_every_family", "deviation_falls_with_width",
                                                   "same_ranking_of_families", "same_best_family_on_long_lags"]
    n = record["numbers"]
    config = EXPERIMENTS["F9"].config(TINY)
    for teacher in config.teachers:
        for init in config.inits:
            rows = n["runs"][teacher][init]
            assert [r["width"] for r in rows] == list(config.widths)
            assert all(np.isfinite(r["test_error_rnn"]) and np.isfinite(r["test_error_closed_form"]) for r in rows)
            assert len(n["responses"][teacher][init]["rnn"]) == config.length
    assert "Spearman" in EXPERIMENTS["F9"].describe(EXPERIMENTS["F9"].numbers(**n))


def test_lag_gram_cells_hold_symmetric_grams():
    config = EXPERIMENTS["F8"].config(TINY)
    [result] = lag_kernels.compute_lag_grams([lag_kernels.cell(config, "identity", 16)], "cpu")
    grams = np.array(result["grams"])
    assert grams.shape == (config.seeds, config.lags, config.lags)
    assert np.allclose(grams, grams.transpose(0, 2, 1))


def test_gaussian_training_cells_are_unchanged():
    """The Gaussian's cells (F3–F7) keep their keys: the spec adds `init` only for other families."""
    fields = dict(teacher="decay:0.9", width=16, sigma_w=0.5, length=8, samples=4, steps=5, center=True, seed=0)
    plain = common.training_cell(**fields)
    assert plain == common.training_cell(**fields, spec=DEFAULT) == common.training_cell(**fields, spec=Spec())
    assert "init" not in plain["config"]["spec"]
    other = common.training_cell(**fields, spec=Spec(init="identity"))
    assert other["config"]["spec"]["init"] == "identity" and cell_key(other) != cell_key(plain)
    assert REGISTRY.group(other) != REGISTRY.group(plain)  # a family trains in its own ensembles


def test_f9_runs_each_family_from_its_own_initializer():
    config = EXPERIMENTS["F9"].config(TINY)
    specs = {json.dumps(c["config"]["spec"], sort_keys=True) for c in init_training.cells(config)}
    assert len(specs) == len(config.inits)
