"""Bad input found by fuzzing and by trying the commands as a new user: each is one line on stderr and
exit code 2 before anything is written, or, where the input is legitimate, a run with a one-line note."""
import numpy as np
import pytest
from click.testing import CliRunner

import cli

TRAIN = ["check", "train", "--width", "8", "--samples", "4", "--length", "6", "--steps", "3", "--device", "cpu"]


def run(*args):
    return CliRunner().invoke(cli.main, list(args))


def refused(result, needle: str, out=None) -> None:
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("rnnmemory: error: ") and needle in line, line
    assert out is None or not out.exists()


@pytest.mark.parametrize("extra, needle", [
    (["--lr", "1e-300"], "nothing would train"),                 # exited 0, having moved nothing
    (["--lazy-scale", "1e10"], "lazy_scale must be from"),      # test errors near 1e20
    (["--lazy-scale", "1e4"], "without centering"),             # uncentered: errors grow like A²
    (["--lazy-scale", "1e-300"], "lazy_scale must be from"),    # was blamed on the learning rate
    (["--teacher", "lti:3,5"], "a stable system"),            # an unstable teacher was accepted
    (["--rate", "D=2", "--train", "W"], "not trained"),          # a frozen block's rate was ignored
])
def test_check_train_refuses(tmp_path, extra, needle):
    refused(run(*TRAIN, *extra, "--out", str(tmp_path / "out")), needle, tmp_path / "out")


def test_a_complex_teacher_file_is_refused(tmp_path):
    np.save(tmp_path / "teacher.npy", 0.5 ** np.arange(6) * (1 + 1j))  # the imaginary part was dropped silently
    refused(run(*TRAIN, "--teacher", f"file:{tmp_path / 'teacher.npy'}", "--out", str(tmp_path / "out")), "complex")


def test_a_small_lr_that_moves_the_function_still_runs(tmp_path):
    result = run(*TRAIN, "--lr", "1e-3", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output


def test_check_ntk_refuses_absurd_seed_counts_at_once(tmp_path):
    result = run("check", "ntk", "--width", "8", "--seeds", "1000000000", "--device", "cpu", "--out", str(tmp_path / "o"))
    refused(result, "random networks", tmp_path / "o")  # was minutes of work, then a MemoryError


def test_a_mistyped_system_lists_the_built_in_ones(tmp_path):
    result = run("plrnn", "reconstruct", "--system", "lorenz", "--out", str(tmp_path / "out"))
    refused(result, "built-in ones are lorenz63, bursting", tmp_path / "out")  # said "pip install dysts"


def test_a_long_data_file_is_used_with_a_note(tmp_path):
    t = np.arange(4000) * 0.1
    np.save(tmp_path / "long.npy", np.c_[np.sin(t), np.cos(t)])
    result = run("plrnn", "reconstruct", "--system", f"data:{tmp_path / 'long.npy'}", "--model", "plrnn",
                 "--length", "300", "--test-length", "2000", "--hidden", "4", "--window", "10", "--tau-tf", "5",
                 "--steps", "2", "--batch", "2", "--jobs", "1", "--device", "cpu", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "using the first 2,300 of its 4,000 rows" in result.stderr  # once silent
    arrays = np.load(tmp_path / "out" / "trajectories.npz")
    assert all(len(a) <= 1500 for a in arrays.values())  # the help's promise; a file held 1951 points
