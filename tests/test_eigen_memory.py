"""E3 (memory curves of each initializer) end to end at the tiny scale, and a wrong theory caught."""
import dataclasses
import json

import numpy as np
import pytest

from numerics.experiments.eigen import memory
from numerics.pipeline.cells import cell_key
from numerics.pipeline.experiment import config_dict
from numerics.style import close

CONFIG = memory.SCALES["tiny"]


@pytest.fixture(scope="module")
def store():
    """Every tiny cell computed once: cell key → result."""
    cells = memory.cells(CONFIG)
    return {cell_key(c): r for c, r in zip(cells, memory.compute_memory_curves(cells, "cpu"))}


def lookup(store):
    return lambda c: store[cell_key(c)]


def test_end_to_end(store, tmp_path):
    numbers = memory.analyze(CONFIG, lookup(store))
    claims = memory.claims(CONFIG, numbers)
    assert [c.id for c in claims] == ["memory_curves_match_theory", "half_lives_ranked_as_measured",
                                      "normal_forgets_faster_than_xavier"]
    verdict = {c.id: c for c in claims}
    assert verdict["memory_curves_match_theory"].passed
    assert verdict["normal_forgets_faster_than_xavier"].measured[0] == pytest.approx(CONFIG.headline_lag + 1)
    # the derived curves: identity, orthogonal and xavier at radius 0.9 are 0.81^k; the disk's is 0.81^k/(k + 1)
    k = np.arange(CONFIG.lags)
    for key in ("identity", "orthogonal", "xavier×0.9"):
        assert np.allclose(numbers.theory[key], 0.81 ** k)
    assert np.allclose(numbers.theory["spectral"], 0.81 ** k / (k + 1))
    assert np.allclose(numbers.theory["kaiming"], (25 / 9) ** k)
    assert numbers.half_life["kaiming"] == {"theory": None, "measured": None}
    # result.json round trip: the numbers, the figure and the text from JSON alone
    record = json.loads(json.dumps({"config": config_dict(CONFIG), "numbers": dataclasses.asdict(numbers)}))
    again = memory.MemoryCurves(**record["numbers"])
    fig = memory.plot(CONFIG, again)
    fig.savefig(tmp_path / "E3.png")
    close(fig)
    assert (tmp_path / "E3.png").stat().st_size > 0
    text = memory.describe(again)
    assert "circular law" in text and "gaussian at σ_W = 1.667" in text


def test_identity_curve_is_exact(store):
    """W = g·I: ‖W^k F‖² = g^{2k}‖F‖², so a network's curve is g^{2k} times its k = 0 value."""
    init = memory.find(CONFIG, "identity")
    curve = np.array(store[cell_key(memory.cell(CONFIG, init, CONFIG.widths[0], 0))]["memory"])
    assert np.allclose(curve, curve[0] * 0.81 ** np.arange(CONFIG.lags))


def test_wrong_theory_fails_agreement(store):
    """The Gaussian rule (σ^{2k}) for the normal disk matrix (σ^{2k}/(k + 1)): off by (k + 1)^{1/2k} per step."""
    wrong = tuple(dataclasses.replace(i, family="gaussian") if i.key == "spectral" else i for i in CONFIG.inits)
    config = dataclasses.replace(CONFIG, inits=wrong)
    assert memory.cells(config) == memory.cells(CONFIG)  # the theory is not part of a cell
    numbers = memory.analyze(config, lookup(store))
    [agreement] = [c for c in memory.claims(config, numbers) if c.id == "memory_curves_match_theory"]
    assert not agreement.passed and "spectral" in agreement.claim


def test_sigma_w_of_torch_initializers():
    """xavier-uniform's variance g²·2/(n + n) = g²/n, kaiming's tanh gain 5/3: measured on the blocks."""
    import torch
    from torch import nn

    from numerics.models.initializers import initialize, recurrent_blocks

    for key in ("xavier", "xavier×0.9", "kaiming"):
        init = memory.find(CONFIG, key)
        module = initialize(nn.RNN(1, 400, nonlinearity=init.nonlinearity, dtype=torch.float64), init.name, seed=0,
                            **dict(init.params))
        W = recurrent_blocks(module)[(0, "h")]
        assert float(W.std() * 400 ** 0.5) == pytest.approx(memory.sigma_w(init, 400), rel=0.02)
