"""Offline data readers: the Tomita automata against independent definitions, the balanced sampler,
the 8×8 digits as sequences, and the MNIST IDX reader on small files written here."""
import gzip
import itertools
import re

import numpy as np
import pytest
import torch

from numerics.data import digits, tomita
from numerics.errors import NumericsError

MAX_LENGTH = 12


def _runs(string):
    return [(symbol, len(list(group))) for symbol, group in itertools.groupby(string)]


def _grammar3_by_scan(string):
    """Rejected iff some maximal odd 1-run comes before some maximal odd 0-run."""
    seen_odd_ones = False
    for symbol, length in _runs(string):
        if symbol == "1" and length % 2:
            seen_odd_ones = True
        elif symbol == "0" and length % 2 and seen_odd_ones:
            return False
    return True


# Grammar 3's complement: a maximal odd 1-run (starts the string or follows a 0; ends at a 0), then
# optionally anything from a 0 to a 1, then a maximal odd 0-run (ends the string or meets a 1).
_NOT_GRAMMAR3 = re.compile(r"(?:[01]*0)?1(?:11)*(?:0[01]*1)?0(?:00)*(?:1[01]*)?")

INDEPENDENT = {
    1: lambda s: re.fullmatch(r"1*", s) is not None,
    2: lambda s: re.fullmatch(r"(?:10)*", s) is not None,
    3: lambda s: _NOT_GRAMMAR3.fullmatch(s) is None,
    4: lambda s: "000" not in s,
    5: lambda s: s.count("0") % 2 == 0 and s.count("1") % 2 == 0,
    6: lambda s: (s.count("0") - s.count("1")) % 3 == 0,
    7: lambda s: re.fullmatch(r"0*1*0*1*", s) is not None,
}


def _all_strings(max_length):
    for length in range(max_length + 1):
        for chars in itertools.product("01", repeat=length):
            yield "".join(chars)


@pytest.mark.parametrize("grammar", range(1, 8))
def test_automata_agree_with_independent_definitions(grammar):
    for string in _all_strings(MAX_LENGTH):
        assert tomita.accepts(grammar, string) == INDEPENDENT[grammar](string), (grammar, string)


def test_grammar3_regex_and_run_scan_agree_and_read_later_not_immediately():
    for string in _all_strings(MAX_LENGTH):
        assert INDEPENDENT[3](string) == _grammar3_by_scan(string), string
    assert not tomita.accepts(3, "10") and tomita.accepts(3, "100") and tomita.accepts(3, "0100")
    assert not tomita.accepts(3, "100110")  # odd 1-run, even 0s, even 1s, then an odd 0-run later
    assert tomita.accepts(3, "110") and tomita.accepts(3, "1")


def test_grammar6_is_mod_3_not_mod_5():
    assert tomita.accepts(6, "000") and tomita.accepts(6, "0001") is False
    assert not tomita.accepts(6, "00000") and tomita.accepts(6, "111")


@pytest.mark.parametrize("grammar", range(1, 8))
def test_class_sizes_count_every_string(grammar):
    for length in range(MAX_LENGTH + 1):
        accepted = sum(tomita.accepts(grammar, "".join(c)) for c in itertools.product("01", repeat=length))
        assert tomita.class_sizes(grammar, length) == (accepted, 2**length - accepted)


def test_unknown_grammar_and_bad_symbols_raise_one_line():
    for bad in (0, 8, -1, "3", 2.0, True):
        with pytest.raises(NumericsError, match="numbered 1 to 7"):
            tomita.accepts(bad, "01")
    with pytest.raises(NumericsError, match="over '0' and '1'"):
        tomita.accepts(1, "012")
    with pytest.raises(NumericsError):
        tomita.sample(9, [3], 4, 0)


@pytest.mark.parametrize("grammar", range(1, 8))
def test_sampler_is_balanced_labelled_and_seeded(grammar):
    lengths, count = range(1, 16), 10
    strings, labels = tomita.sample(grammar, lengths, count, np.random.default_rng(5))
    assert len(strings) == len(labels) == count * len(lengths)
    assert all(tomita.accepts(grammar, s) == bool(y) for s, y in zip(strings, labels))
    for length in lengths:
        at = [y for s, y in zip(strings, labels) if len(s) == length]
        sizes = tomita.class_sizes(grammar, length)
        expected = count // 2 if all(sizes) else (count if sizes[0] else 0)
        assert len(at) == count and sum(at) == expected
    again = tomita.sample(grammar, lengths, count, np.random.default_rng(5))
    other = tomita.sample(grammar, lengths, count, np.random.default_rng(6))
    assert again[0] == strings and np.array_equal(again[1], labels) and other[0] != strings


def test_sampler_fills_an_empty_class_with_the_other():
    strings, labels = tomita.sample(2, [3, 4], 6, 0)  # grammar 2 accepts nothing of odd length
    odd = [y for s, y in zip(strings, labels) if len(s) == 3]
    assert odd == [False] * 6 and sum(labels) == 3
    assert tomita.class_sizes(1, 0) == (1, 0) and tomita.class_sizes(2, 5) == (0, 32)


def test_sampler_is_uniform_within_a_class():
    strings, labels = tomita.sample(4, [4], 4000, 1)
    accepted = [s for s, y in zip(strings, labels) if y]
    counts = np.array([accepted.count(s) for s in sorted(set(accepted))])
    assert len(counts) == tomita.class_sizes(4, 4)[0] == 13
    assert counts.min() > 0.6 * counts.mean() and counts.max() < 1.4 * counts.mean()


def test_dataset_pads_encodes_and_splits_short_from_long():
    data = tomita.dataset(5, range(1, 6), range(8, 11), 8, seed=3)
    train, test = data["train"], data["test"]
    assert train.inputs.shape == (40, 5, 2) and test.inputs.shape == (24, 10, 2)
    assert int(train.lengths.max()) == 5 and int(test.lengths.min()) == 8
    for batch in (train, test):
        for row, string in enumerate(batch.strings):
            n = len(string)
            assert batch.lengths[row] == n and batch.labels[row] == tomita.accepts(5, string)
            assert batch.symbols[row, :n].tolist() == [int(c) for c in string]
            assert torch.all(batch.symbols[row, n:] == tomita.PAD) and torch.all(batch.inputs[row, n:] == 0)
            assert torch.equal(batch.inputs[row, :n].argmax(-1), batch.symbols[row, :n])
    again = tomita.dataset(5, range(1, 6), range(8, 11), 8, seed=3)
    assert again["train"].strings == train.strings and torch.equal(again["test"].labels, test.labels)


# --- digits --------------------------------------------------------------------------------------

def test_split_sequences_is_a_seeded_partition():
    inputs, labels = torch.rand(50, 64, 1), torch.arange(50)
    parts = digits.split_sequences(inputs, labels, (0.6, 0.2), seed=1)
    assert [len(parts[k][1]) for k in ("train", "validation", "test")] == [30, 10, 10]
    assert sorted(torch.cat([parts[k][1] for k in parts]).tolist()) == list(range(50))
    assert torch.equal(parts["test"][0], inputs[parts["test"][1]])
    assert torch.equal(digits.split_sequences(inputs, labels, (0.6, 0.2), seed=1)["train"][1], parts["train"][1])
    with pytest.raises(NumericsError, match="split fractions"):
        digits.split_sequences(inputs, labels, (0.8, 0.3), seed=1)


def test_digits_sequences_shapes_and_range():
    pytest.importorskip("sklearn", reason="scikit-learn is not installed; the 8×8 digits ship inside it")
    parts = digits.digits_sequences(seed=0)
    total = sum(len(parts[k][1]) for k in parts)
    assert total == 1797
    for inputs, labels in parts.values():
        assert inputs.shape[1:] == (64, 1) and inputs.min() >= 0 and inputs.max() <= 1
        assert labels.dtype == torch.long and set(labels.tolist()) <= set(range(10))
    assert parts["train"][0].max() == 1


def test_digits_without_sklearn_say_so_in_one_line(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(NumericsError, match="scikit-learn") as error:
        digits.digits_sequences()
    assert "\n" not in str(error.value)


# --- MNIST IDX reader ----------------------------------------------------------------------------

def _idx_bytes(array: np.ndarray, magic_code=0x08) -> bytes:
    header = bytes([0, 0, magic_code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(">u1").tobytes()


def _write_mnist(directory, compress=False, counts=(6, 4), size=(28, 28)):
    rng = np.random.default_rng(0)
    written = {}
    for (split, (images_name, labels_name)), n in zip(digits.MNIST_FILES.items(), counts):
        images = rng.integers(0, 256, size=(n, *size), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for name, array in ((images_name, images), (labels_name, labels)):
            data = _idx_bytes(array)
            if compress:
                (directory / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (directory / name).write_bytes(data)
        written[split] = (images, labels)
    return written


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reader_round_trips_plain_and_gz(tmp_path, compress):
    written = _write_mnist(tmp_path, compress)
    loaded = digits.load_mnist(tmp_path)
    for split in ("train", "test"):
        assert np.array_equal(loaded[split][0], written[split][0])
        assert np.array_equal(loaded[split][1], written[split][1])
    sequences = digits.mnist_sequences(tmp_path)
    inputs, labels = sequences["train"]
    assert inputs.shape == (6, 784, 1) and sequences["test"][0].shape == (4, 784, 1)
    assert sequences["permutation"] is None and inputs.min() >= 0 and inputs.max() <= 1
    assert torch.allclose(inputs[2, :, 0], torch.as_tensor(written["train"][0][2].reshape(-1) / 255.0,
                                                           dtype=inputs.dtype))
    assert torch.equal(labels, torch.as_tensor(written["train"][1], dtype=torch.long))


def test_permuted_mnist_uses_one_fixed_seeded_permutation(tmp_path):
    _write_mnist(tmp_path)
    plain = digits.mnist_sequences(tmp_path)
    permuted = digits.mnist_sequences(tmp_path, permuted=True, seed=4)
    order = permuted["permutation"]
    assert sorted(order.tolist()) == list(range(784))
    for split in ("train", "test"):
        assert torch.equal(permuted[split][0], plain[split][0][:, order])
    assert torch.equal(digits.mnist_sequences(tmp_path, permuted=True, seed=4)["permutation"], order)
    assert not torch.equal(digits.mnist_sequences(tmp_path, permuted=True, seed=5)["permutation"], order)


def test_mnist_errors_name_the_file(tmp_path):
    with pytest.raises(NumericsError, match="directory not found"):
        digits.load_mnist(tmp_path / "nowhere")
    _write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(NumericsError, match="t10k-labels-idx1-ubyte .*not found") as error:
        digits.load_mnist(tmp_path)
    assert "\n" not in str(error.value)

    _write_mnist(tmp_path)  # restore, then swap the labels' magic into the images file
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(_idx_bytes(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(NumericsError, match="train-images-idx3-ubyte: magic number 0x00000801, expected 0x00000803"):
        digits.load_mnist(tmp_path)

    images.write_bytes(b"\x12\x34\x08\x03" + bytes(20))
    with pytest.raises(NumericsError, match="train-images-idx3-ubyte: not an IDX file"):
        digits.read_idx(images)

    full = _idx_bytes(np.zeros((6, 28, 28), dtype=np.uint8))
    images.write_bytes(full[:-100])
    with pytest.raises(NumericsError, match="train-images-idx3-ubyte: truncated"):
        digits.load_mnist(tmp_path)
    images.write_bytes(full[:10])
    with pytest.raises(NumericsError, match="truncated IDX header"):
        digits.read_idx(images)

    images.unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(full)[:-30])
    with pytest.raises(NumericsError, match="train-images-idx3-ubyte.gz"):
        digits.load_mnist(tmp_path)


def test_mnist_rejects_mismatched_counts_and_labels(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(NumericsError, match="6 images but .* 5 labels"):
        digits.load_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.full(6, 12, dtype=np.uint8)))
    with pytest.raises(NumericsError, match="digits 0–9"):
        digits.load_mnist(tmp_path)
