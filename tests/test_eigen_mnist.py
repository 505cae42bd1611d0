"""Pixel-by-pixel and permuted MNIST in the eigen benchmark (numerics/eigen/train.py, E1 and
`rnnmemory eigen bench --data-dir`), on a tiny fake MNIST directory of random images written here."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli import main
from numerics.data import digits
from numerics.data.digits import mnist_fingerprint
from numerics.eigen.tasks import load_task
from numerics.eigen.train import train_classifier
from numerics.errors import NumericsError
from numerics.experiments.eigen import bench, bench_runs

TRAIN, TEST = 40, 20


def _write_idx(path, magic, array):
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_dir(tmp_path):
    """Four IDX files: 40 training and 20 test images of 28 × 28 random pixels with random labels."""
    rng = np.random.default_rng(0)
    directory = tmp_path / "mnist"
    directory.mkdir()
    for (images, labels), n in zip(digits.MNIST_FILES.values(), (TRAIN, TEST)):
        _write_idx(directory / images, digits.IMAGES_MAGIC, rng.integers(0, 256, (n, 28, 28)))
        _write_idx(directory / labels, digits.LABELS_MAGIC, rng.integers(0, 10, n))
    return directory


def _run(task, mnist_dir, **options):
    return train_classifier(task, "rnn", "xavier", 0, hidden=4, steps=2, batch=8, track_every=1,
                            data_dir=str(mnist_dir), **options)


def test_mnist_runs_784_steps_and_is_deterministic(mnist_dir):
    task = load_task("mnist", data_dir=mnist_dir)
    assert task.train[0].shape == (TRAIN, 784, 1) and task.test[0].shape == (TEST, 784, 1)
    assert task.outputs == 10 and torch.equal(task.train[1], torch.full((TRAIN,), 784))
    first, again = _run("mnist", mnist_dir), _run("mnist", mnist_dir)
    assert first["curve"] == again["curve"] and first["eigenvalues"] == again["eigenvalues"]
    assert first["metric"] == "accuracy" and first["curve"]["step"] == [0, 1, 2]
    config = first["config"]
    assert config["data"] == {"train": TRAIN, "test": TEST, "train_steps": 784, "test_steps": 784}
    assert config["data_dir"] == str(mnist_dir.resolve()) and len(config["fingerprint"]) == 64
    subset = _run("mnist", mnist_dir, train_subset=10)
    assert subset["config"]["data"]["train"] == 10 and subset["config"]["train_subset"] == 10
    with pytest.raises(NumericsError, match="exceeds"):
        load_task("mnist", data_dir=mnist_dir, train_subset=TRAIN + 1)


def test_pmnist_applies_one_permutation_fixed_by_the_data_seed(mnist_dir):
    plain = load_task("mnist", data_dir=mnist_dir)
    permuted = load_task("pmnist", data_dir=mnist_dir)
    order = digits.pixel_permutation(784, 0)
    assert torch.equal(permuted.train[0], plain.train[0][:, order])
    assert torch.equal(permuted.test[0], plain.test[0][:, order])
    assert torch.equal(load_task("pmnist", data_dir=mnist_dir).train[0], permuted.train[0])
    other = load_task("pmnist", 1, data_dir=mnist_dir).train[0]
    assert torch.equal(other, plain.train[0][:, digits.pixel_permutation(784, 1)])
    assert not torch.equal(other, permuted.train[0])
    result = _run("pmnist", mnist_dir)
    assert result["curve"] == _run("pmnist", mnist_dir)["curve"] and result["config"]["task"] == "pmnist"


def test_mnist_needs_a_well_formed_directory(tmp_path, mnist_dir):
    with pytest.raises(NumericsError, match="needs the directory"):
        load_task("mnist")
    with pytest.raises(NumericsError, match="not found"):
        load_task("pmnist", data_dir=tmp_path / "nowhere")
    with pytest.raises(NumericsError, match="unknown task"):
        load_task("mnist:3", data_dir=mnist_dir)


def test_the_fingerprint_follows_the_files_and_keys_the_cells(mnist_dir):
    before = mnist_fingerprint(mnist_dir)
    config = dataclasses.replace(bench.SCALES["tiny"], tasks=("mnist",), cells=("rnn",), inits=("xavier",),
                                 seeds=1, data_dir=str(mnist_dir))
    cell = bench.cells(config)[0]
    assert cell["data"] == before and cell["run"]["data_dir"] == before["data_dir"]
    labels = mnist_dir / digits.MNIST_FILES["test"][1]
    raw = bytearray(labels.read_bytes())
    raw[-1] = (raw[-1] + 1) % 10
    labels.write_bytes(bytes(raw))
    assert mnist_fingerprint(mnist_dir)["fingerprint"] != before["fingerprint"]
    assert bench.cells(config)[0] != cell
    with pytest.raises(NumericsError, match="changed"):
        bench_runs.compute_runs([cell], "cpu")


def test_the_full_scale_has_mnist_only_with_a_directory(mnist_dir):
    assert not set(bench.MNIST_TASKS) & set(bench.full_config().tasks)
    assert not set(bench.MNIST_TASKS) & set(bench.SCALES["quick"].tasks)
    full = bench.full_config(str(mnist_dir))
    assert full.tasks[-2:] == ("mnist", "pmnist") and full.data_dir == str(mnist_dir.resolve())


ARGS = ["eigen", "bench", "--task", "mnist", "--cell", "rnn", "--init", "xavier", "--seeds", "1", "--steps", "2",
        "--hidden", "4", "--jobs", "1", "--device", "cpu"]


def test_cli_bench_on_mnist(tmp_path, mnist_dir):
    out = tmp_path / "bench"
    result = CliRunner().invoke(main, [*ARGS, "--data-dir", str(mnist_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 runs (1 computed, 0 reused)" in result.output
    record = json.loads((out / "result.json").read_text())
    assert "--data-dir" in record["command"] and "mnist" in (out / "table.txt").read_text()
    [cell] = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert cell["inputs"]["data"]["data_dir"] == str(mnist_dir.resolve())


@pytest.mark.parametrize("extra, message", [
    ([], "--data-dir"),
    (["--data-dir", "/nonexistent/mnist"], "not found"),
    (["--data-dir", "EMPTY"], "not found"),
    (["--data-dir", "DATA", "--train-subset", str(TRAIN + 1)], "train_subset"),
])
def test_cli_bench_refuses_a_missing_or_malformed_directory_in_one_line(tmp_path, mnist_dir, extra, message):
    (tmp_path / "empty").mkdir()
    extra = [{"EMPTY": str(tmp_path / "empty"), "DATA": str(mnist_dir)}.get(e, e) for e in extra]
    out = tmp_path / "bench"
    result = CliRunner().invoke(main, [*ARGS, *extra, "--out", str(out)])
    assert result.exit_code == 2 and (result.exception is None or isinstance(result.exception, SystemExit))
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output, result.output
    assert not out.exists()


def test_a_malformed_file_is_refused_before_any_run(tmp_path, mnist_dir):
    images = mnist_dir / digits.MNIST_FILES["train"][0]
    images.write_bytes(images.read_bytes()[:-5])  # truncated
    config = dataclasses.replace(bench.SCALES["tiny"], tasks=("mnist",), data_dir=str(mnist_dir))
    with pytest.raises(NumericsError, match="truncated"):
        bench.check_config(config)
