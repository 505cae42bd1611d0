"""The rPLRNN paper's long-range problems (numerics/data/long_range.py) against their specification
(docs/theory.md, paper 3), and the task loading of numerics/plrnn/train.py."""
import numpy as np
import pytest
import torch

from numerics.data import digits
from numerics.data.long_range import (
    MNIST_MEAN,
    MNIST_STD,
    TOLERANCE,
    addition_problem,
    correct,
    fraction_correct,
    marker_problem,
    mnist_normalized,
    multiplication_problem,
)
from numerics.errors import NumericsError
from numerics.plrnn.train import load_long_range

COUNT = 4000


@pytest.mark.parametrize("task", ["addition", "multiplication"])
@pytest.mark.parametrize("T", [20, 21, 57])
def test_markers_values_and_targets_follow_the_specification(task, T):
    inputs, targets = marker_problem(task, T, COUNT, [3, T])
    assert inputs.shape == (COUNT, T, 2) and targets.shape == (COUNT, 1)
    assert inputs.dtype == targets.dtype == torch.get_default_dtype()
    values, markers = inputs[..., 0].double(), inputs[..., 1].double()
    assert values.min() >= 0 and values.max() < 1
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    assert torch.all(markers.sum(1) == 2)  # exactly two markers, never on one step
    positions = markers.nonzero()[:, 1].view(COUNT, 2)  # sorted per row
    # one marker among t ∈ {0..9}, the other in {0..⌊T/2⌋ − 1}: in sorted order the first is ≤ 9
    assert positions[:, 0].max() <= 9 and positions[:, 1].max() <= T // 2 - 1
    assert positions[:, 1].max() == T // 2 - 1 and positions[:, 0].min() == 0  # the whole range is drawn
    marked = (values * markers).sum(1) if task == "addition" else \
        torch.where(markers > 0, values, torch.ones_like(values)).prod(1)
    assert torch.allclose(targets.squeeze(1).double(), marked, atol=1e-6)


def test_first_marker_uniform_on_ten_steps_second_on_half_the_length():
    rng = np.random.default_rng(0)
    from numerics.data.long_range import marker_positions
    first, second = marker_positions(100, 200_000, rng)
    assert np.all(first != second)
    assert set(np.unique(first)) == set(range(10)) and set(np.unique(second)) == set(range(50))
    # rejection of equal pairs leaves t₁'s law uniform within sampling error (≈ 0.0007 per bin)
    assert np.abs(np.bincount(first, minlength=10) / len(first) - 0.1).max() < 0.004


def test_seeds_reproduce_and_separate_the_data():
    a = addition_problem(30, 50, [0, 1])
    assert all(torch.equal(x, y) for x, y in zip(a, addition_problem(30, 50, [0, 1])))
    assert not torch.equal(a[0], addition_problem(30, 50, [0, 2])[0])
    product = multiplication_problem(30, 50, [0, 1])
    assert torch.equal(product[0], a[0])  # the same draw, combined the other way
    assert not torch.allclose(product[1], a[1])


def test_the_threshold_and_the_chance_levels():
    targets = torch.tensor([[1.0], [1.0], [1.0], [1.0]])
    outputs = torch.tensor([[1.0], [1.0 + 0.039], [1.0 - 0.041], [float("nan")]])
    assert correct(outputs, targets).tolist() == [True, True, False, False]
    assert fraction_correct(outputs, targets) == 0.5 and TOLERANCE == 0.04
    # predicting the mean target scores the chance levels of docs/theory.md: ≈ 0.08 (sum), ≈ 0.11 (product)
    n = 200_000
    for task, mean, chance in (("addition", 1.0, 0.08 * (1 - 0.02)), ("multiplication", 0.25, 0.08 * np.log(4))):
        _, y = marker_problem(task, 20, n, 7)
        se = np.sqrt(chance * (1 - chance) / n)
        assert abs(fraction_correct(torch.full_like(y, mean), y) - chance) < 5 * se + 2e-3


@pytest.mark.parametrize("T, message", [(19, "T must be ≥ 20"), (5, "T must be ≥ 20"), (20.0, "integer"),
                                        (None, "integer")])
def test_too_short_or_malformed_lengths_are_refused_in_one_line(T, message):
    with pytest.raises(NumericsError, match=message) as error:
        addition_problem(T, 10, 0)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("call, message", [
    (lambda: marker_problem("subtraction", 30, 5, 0), "unknown marker problem"),
    (lambda: addition_problem(30, 0, 0), "number of sequences"),
    (lambda: addition_problem(30, 5, -1), "data seed"),
    (lambda: load_long_range("copy", 30), "unknown task"),
    (lambda: load_long_range("digits", 100), "T must be 64"),
    (lambda: load_long_range("digits", None, val_size=10), "fixed validation"),
    (lambda: load_long_range("mnist", None), "needs the directory"),
])
def test_bad_task_input_is_refused_in_one_line(call, message):
    with pytest.raises(NumericsError, match=message) as error:
        call()
    assert "\n" not in str(error.value)


def test_marker_splits_are_disjoint_draws_of_the_requested_sizes():
    splits = load_long_range("addition", 40, train_size=30, val_size=20, test_size=10, train_subset=12)
    assert [len(splits[k][1]) for k in ("train", "validation", "test")] == [12, 20, 10]
    assert not torch.equal(splits["validation"][0][:10], splits["test"][0])


def test_digits_keep_the_shared_split():
    splits = load_long_range("digits", 64)
    reference = digits.digits_sequences(0)
    for name in ("train", "validation", "test"):
        assert all(torch.equal(a, b) for a, b in zip(splits[name], reference[name]))


def _write_idx(path, magic, array):
    path.write_bytes(np.array([magic, *array.shape], dtype=">u4").tobytes() + array.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_dir(tmp_path):
    """40 training and 20 test images of random 28 × 28 pixels with random labels, as IDX files."""
    rng = np.random.default_rng(0)
    for (images, labels), n in zip(digits.MNIST_FILES.values(), (40, 20)):
        _write_idx(tmp_path / images, digits.IMAGES_MAGIC, rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / labels, digits.LABELS_MAGIC, rng.integers(0, 10, n))
    return tmp_path


def test_mnist_is_normalized_and_split_into_validation_and_test(mnist_dir):
    raw = digits.mnist_sequences(mnist_dir)
    data = mnist_normalized(mnist_dir)
    for split in ("train", "test"):
        assert torch.allclose(data[split][0] * MNIST_STD + MNIST_MEAN, raw[split][0], atol=1e-6)
        assert torch.equal(data[split][1], raw[split][1])
    splits = load_long_range("mnist", 784, data_dir=mnist_dir, val_size=10, test_size=5)
    assert [len(splits[k][1]) for k in ("train", "validation", "test")] == [30, 10, 5]
    assert splits["train"][0].shape[1:] == (784, 1)
    # validation rows are held out of training: together they are the 40 training images, once each
    rows = torch.cat([splits["train"][0], splits["validation"][0]]).flatten(1)
    assert torch.equal(rows.sort(0).values, data["train"][0].flatten(1).sort(0).values)
