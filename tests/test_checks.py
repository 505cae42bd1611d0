"""`rnnmemory check`: theory vs finite-width networks, result directories, bad input."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

import cli
from derivations import Spec
from numerics import checks

SMALL_NTK = ["check", "ntk", "--width", "64,256", "--sigma-w", "0.7", "--lags", "5", "--seeds", "3", "--device", "cpu"]
SMALL_TRAIN = ["check", "train", "--teacher", "decay:0.6", "--width", "64", "--sigma-w", "0.5", "--steps", "30",
               "--samples", "8", "--length", "12", "--device", "cpu"]


def run(*args):
    return CliRunner().invoke(cli.main, list(args))


def test_empirical_lag_weights_match_theory_within_fluctuations(tmp_path):
    """At width n the relative spread of α̂_j is about K√(j+1)/√n (K ≈ 1.6, measured in
    tests/test_monte_carlo.py); the seed mean must lie within 4 standard errors of theory."""
    width, seeds, lags = 1024, 6, 6
    result = checks.check_ntk(Spec(), [width], [0.8], lags, seeds, tmp_path, device="cpu")
    for row in result["rows"]:
        band = 4 * 1.6 * np.sqrt(row["lag"] + 1) / np.sqrt(width * seeds)
        assert abs(row["ratio_mean"] - 1) < band, row


def test_check_ntk_detects_a_wrong_theory(monkeypatch, tmp_path):
    """Negative control: the same statistic rejects α_j scaled by (j+1)/(j+2)."""
    import numerics.kernels.ntk_cells as C

    real = C.theory_lag_weights
    monkeypatch.setattr(C, "theory_lag_weights",
                        lambda spec, lags, sigmas: real(spec, lags, sigmas) * (np.arange(lags) + 1) / (np.arange(lags) + 2))
    result = checks.check_ntk(Spec(feedthrough=False), [1024], [0.8], 6, 6, tmp_path, device="cpu")
    worst = max(abs(r["ratio_mean"] - 1) - 4 * 1.6 * np.sqrt(r["lag"] + 1) / np.sqrt(1024 * 6) for r in result["rows"])
    assert worst > 0


def test_check_ntk_writes_a_reproducible_result(tmp_path):
    first = run(*SMALL_NTK, "--out", str(tmp_path / "a"), "--format", "json")
    second = run(*SMALL_NTK, "--out", str(tmp_path / "b"), "--format", "json")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    a, b = (json.loads((tmp_path / d / "result.json").read_text()) for d in "ab")
    assert a["rows"] == b["rows"] and len(a["rows"]) == 2 * 5
    assert set(a["rows"][0]) >= {"width", "sigma_w", "lag", "alpha_theory", "alpha_mean", "alpha_std", "ratio_mean", "ratio_std"}
    env = a["environment"]
    assert env["versions"]["torch"] and env["device"] == "cpu" and "git_commit" in env and a["seed"] == 0
    assert a["inputs"]["widths"] == [64, 256] and "verdict" in a and "slopes" in a
    assert (tmp_path / "a" / "ntk.png").exists() and (tmp_path / "a" / "ntk.pdf").exists()


def test_existing_result_needs_force(tmp_path):
    assert run(*SMALL_NTK, "--out", str(tmp_path)).exit_code == 0
    before = (tmp_path / "result.json").read_text()
    again = run(*SMALL_NTK, "--seed", "1", "--out", str(tmp_path))
    assert again.exit_code == 2 and "--force" in again.stderr
    assert (tmp_path / "result.json").read_text() == before
    assert run(*SMALL_NTK, "--seed", "1", "--out", str(tmp_path), "--force").exit_code == 0


def test_check_train_writes_curves_and_figures(tmp_path):
    result = run(*SMALL_TRAIN, "--center", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "result.json").read_text())
    assert set(data["final"]) >= {"deviation", "test_error_rnn", "test_error_conv", "test_error_closed_form"}
    assert len(data["rnn"]["train_loss"]) == 31 and len(data["deviation"]) == 31
    for name in ("loss", "response"):
        assert (tmp_path / f"{name}.png").exists() and (tmp_path / f"{name}.pdf").exists()


def test_check_train_is_reproducible_by_seed(tmp_path):
    for d in "ab":
        assert run(*SMALL_TRAIN, "--out", str(tmp_path / d)).exit_code == 0
    a, b = (json.loads((tmp_path / d / "result.json").read_text()) for d in "ab")
    assert a["rnn"] == b["rnn"] and a["final"] == b["final"]


def test_divergence_stops_and_keeps_partial_results(tmp_path):
    result = run("check", "train", "--teacher", "decay:0.5", "--width", "64", "--sigma-w", "1.5", "--lr", "5",
                 "--steps", "200", "--samples", "8", "--length", "12", "--device", "cpu", "--out", str(tmp_path))
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("rnnmemory: error:") and "diverged at step" in line and "loss" in line
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["status"] == "diverged" and data["diverged"]["step"] >= 1 and data["curve"]


@pytest.mark.parametrize("args,needle", [
    (["check", "ntk", "--width", "0,64"], "--width"),
    (["check", "ntk", "--width", "64", "--sigma-w", "-0.5"], "--sigma-w"),
    (["check", "ntk", "--width", "64", "--lags", "0"], "--lags"),
    (["check", "train", "--width", "-4"], "--width"),
    (["check", "train", "--sigma-w", "-1"], "--sigma-w"),
    (["check", "train", "--teacher", "delay:50", "--length", "40"], "delay"),
    (["check", "train", "--teacher", "wiggle:3"], "unknown teacher"),
    (["check", "train", "--teacher", "file:/nonexistent/impulse.npy"], "impulse.npy"),
    (["check", "train", "--lr", "fast"], "--lr"),
    (["check", "train", "--optimizer", "lbfgs"], "--optimizer"),
])
def test_bad_input(tmp_path, args, needle):
    extra = ["--steps", "2"] if args[1] == "train" else []
    result = run(*args, *extra, "--device", "cpu", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and needle in result.stderr


def test_cuda_without_a_gpu_is_an_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = run(*SMALL_NTK[:-2], "--device", "cuda", "--out", str(tmp_path))
    assert result.exit_code == 2 and "cuda" in result.stderr.lower()
    assert not (tmp_path / "result.json").exists()


@pytest.mark.parametrize("args,needle", [
    (["--steps", "0"], "--steps"),  # no training step: the deviation would be 0/0
    (["--sigma-w", "5", "--length", "40"], "grow"),  # lag weights 1e55-fold apart: a step of 5e-57, errors of 1e51
    (["--teacher", "resonant:1e300,1"], "overflows"),
])
def test_meaningless_runs_are_refused(tmp_path, args, needle):
    result = run("check", "train", "--width", "8", "--samples", "4", *args, "--device", "cpu", "--out", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and needle in result.stderr
    assert not (tmp_path / "result.json").exists()  # refused before any work


def test_doubtful_runs_warn(tmp_path):
    result = run("check", "train", "--width", "8", "--samples", "4", "--length", "8", "--sigma-w", "5", "--steps", "2",
                 "--device", "cpu", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "rnnmemory: warning: σ_W = 5 makes the lag weights grow" in result.stderr


def test_check_ntk_full_lag_kernel_of_a_family(monkeypatch, tmp_path):
    """Off the Gaussian every entry Θ̂_jk is checked against `kernel_matrix`. For W = g·I all entries
    move together with ‖F‖² and ‖C‖², so a seed is nearly one sample: the error's slope from two widths
    has a standard deviation of about 0.33 at 6 seeds and 0.057 at 150 (bootstrap over 600 networks),
    hence 150 seeds for a verdict that holds. Negative control: off-diagonals scaled by 0.9 fail."""
    result = checks.check_ntk(Spec(init="identity"), [256, 1024], [0.8], 6, 150, tmp_path, device="cpu")
    assert result["verdict"]["passed"], result["verdict"]
    assert len(result["entries"]) == 2 * 6 * 7 // 2 and result["init"] == "identity"
    from derivations import lag_kernel

    real = lag_kernel.kernel_matrix

    def wrong(spec, lags, sigmas):
        out = real(spec, lags, sigmas)
        kernel = out["kernel"]
        return {**out, "kernel": 0.9 * kernel + 0.1 * np.diag(np.diagonal(kernel))}

    monkeypatch.setattr(lag_kernel, "kernel_matrix", wrong)
    wrong_result = checks.check_ntk(Spec(init="identity"), [256, 1024], [0.8], 6, 150, tmp_path, device="cpu")  # cached cells
    assert not wrong_result["verdict"]["claims"]["entries_within_3_standard_errors_or_5_percent"]["passed"]
    text = checks.ntk_text({**wrong_result, "environment": {"device_name": "cpu"}, "inputs": {"seeds": 150}}, tmp_path)
    assert "FAIL  entries within 3 standard errors or 5 percent" in text and "worst entry" in text
    checks.figures.close(checks.ntk_figure(result))
