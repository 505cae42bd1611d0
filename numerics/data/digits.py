"""Handwritten digits read pixel by pixel as sequences, from data on this machine only.

- `digits_sequences`: scikit-learn's bundled 8×8 digits (`sklearn.datasets.load_digits`, 1797
  images, shipped inside the package, nothing downloaded) as 64-step sequences of one pixel each,
  scaled from 0…16 to [0, 1], with a seeded train/validation/test split.
- `mnist_sequences`: the standard MNIST IDX files from a directory the user gives (no wheel ships
  full MNIST, and nothing is downloaded) as 784-step sequences, optionally under one fixed seeded
  pixel permutation (permuted MNIST). `read_idx` parses the IDX format with numpy.

Sequences have shape (N, T, 1) in the default torch dtype, pixels in row-major order; labels are
long tensors of the digit 0–9.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import NumericsError

# IDX type codes (third magic byte) and their big-endian numpy types.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801  # 2051 and 2049: unsigned bytes, 3 and 1 dimensions
FINGERPRINT_BYTES = 1 << 20  # mnist_fingerprint hashes each file's first and last MiB


def _pixel_sequences(pixels: np.ndarray, scale: float) -> torch.Tensor:
    """(N, H, W) or (N, H·W) pixels → (N, H·W, 1) sequences in [0, 1], row-major."""
    flat = torch.as_tensor(np.asarray(pixels)).reshape(len(pixels), -1).to(torch.get_default_dtype())
    return (flat / scale).unsqueeze(-1)


def split_sequences(inputs: torch.Tensor, labels: torch.Tensor, fractions, seed: int) -> dict:
    """{"train", "validation", "test"}: (inputs, labels) pairs from one seeded shuffle.

    `fractions` gives the train and validation shares; the test split is the rest.
    """
    train, validation = (float(f) for f in fractions)
    if not (train > 0 and validation >= 0 and train + validation < 1):
        raise NumericsError(f"split fractions need train > 0, validation ≥ 0, and a test share left, got {fractions!r}")
    order = np.random.default_rng(seed).permutation(len(labels))
    parts = np.split(order, np.cumsum([round(train * len(labels)), round(validation * len(labels))]))
    return {name: (inputs[torch.as_tensor(part)], labels[torch.as_tensor(part)])
            for name, part in zip(("train", "validation", "test"), parts)}


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 8, 8) with values 0–16, labels (1797,)) from scikit-learn's bundled copy."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise NumericsError(f"the 8×8 digits need scikit-learn ({error}); pip install scikit-learn") from None
    bunch = load_digits()
    return bunch.images, bunch.target


def digits_sequences(seed: int = 0, fractions=(0.6, 0.2)) -> dict:
    """The 8×8 digits as 64-step sequences in [0, 1]: {"train", "validation", "test"} → (inputs, labels)."""
    images, labels = load_digits_arrays()
    return split_sequences(_pixel_sequences(images, 16.0), torch.as_tensor(labels, dtype=torch.long),
                           fractions, seed)


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path) -> np.ndarray:
    """The array stored in one IDX file (plain or .gz), checked against the sizes its header declares.

    Header: two zero bytes, a type code, the number of dimensions d, then d big-endian uint32 sizes;
    then the data, big-endian, row-major.
    """
    path = Path(path)
    try:
        with _open(path) as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise NumericsError(f"IDX file not found: {path}") from None
    except (OSError, EOFError) as error:  # a damaged or truncated .gz
        raise NumericsError(f"{path.name}: cannot be read ({error})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES or raw[3] == 0:
        raise NumericsError(f"{path.name}: not an IDX file (magic number {raw[:4].hex() or 'missing'})")
    ndim, dtype = raw[3], np.dtype(IDX_TYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise NumericsError(f"{path.name}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions declared)")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than declared"
        raise NumericsError(f"{path.name}: {state}: {len(raw)} bytes, the header {shape} needs {expected}")
    # a native-order, writable copy (frombuffer's view is read-only and big-endian)
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx_file(data_dir: Path, name: str) -> Path:
    """`name` in the directory, plain or .gz, also under the common dotted spelling (train-images.idx3-ubyte)."""
    for base in (name, name.replace("-idx", ".idx")):
        for candidate in (data_dir / base, data_dir / f"{base}.gz"):
            if candidate.is_file():
                return candidate
    raise NumericsError(f"MNIST file {name} (or {name}.gz) not found in {data_dir}")


def _magic(path: Path) -> int:
    try:
        with _open(path) as handle:
            head = handle.read(4)
    except (OSError, EOFError) as error:
        raise NumericsError(f"{path.name}: cannot be read ({error})") from None
    return int.from_bytes(head, "big") if len(head) == 4 else -1


def load_mnist(data_dir) -> dict:
    """{"train", "test"}: (images (N, rows, cols) uint8, labels (N,) uint8) from the four IDX files."""
    data_dir = Path(os.path.expanduser(str(data_dir)))
    if not data_dir.is_dir():
        raise NumericsError(f"MNIST directory not found: {data_dir}")
    splits = {}
    for split, (images_name, labels_name) in MNIST_FILES.items():
        images_path, labels_path = find_idx_file(data_dir, images_name), find_idx_file(data_dir, labels_name)
        for path, magic in ((images_path, IMAGES_MAGIC), (labels_path, LABELS_MAGIC)):
            found = _magic(path)
            if found != magic:
                raise NumericsError(f"{path.name}: magic number {found:#010x}, expected {magic:#010x}")
        images, labels = read_idx(images_path), read_idx(labels_path)
        if len(images) != len(labels):
            raise NumericsError(f"{images_path.name} holds {len(images)} images but {labels_path.name} "
                                f"{len(labels)} labels")
        if labels.size and labels.max() > 9:
            raise NumericsError(f"{labels_path.name}: labels must be digits 0–9, found {int(labels.max())}")
        splits[split] = (images, labels)
    if splits["train"][0].shape[1:] != splits["test"][0].shape[1:]:
        raise NumericsError(f"train and test images differ in size: {splits['train'][0].shape[1:]} and "
                            f"{splits['test'][0].shape[1:]}")
    return splits


def pixel_permutation(pixels: int, seed: int) -> torch.Tensor:
    """The fixed pixel order of permuted MNIST: one seeded permutation, shared by every image."""
    return torch.as_tensor(np.random.default_rng(seed).permutation(pixels), dtype=torch.long)


def mnist_sequences(data_dir, permuted: bool = False, seed: int = 0) -> dict:
    """MNIST as pixel sequences in [0, 1]: {"train", "test"} → (inputs (N, 784, 1), labels (N,)), and
    "permutation" → the pixel order used (a long tensor), or None for the plain row-major order.

    784 = 28 × 28 for the standard files; other image sizes in the same format give rows·cols steps.
    """
    splits = load_mnist(data_dir)
    pixels = int(np.prod(splits["train"][0].shape[1:]))
    order = pixel_permutation(pixels, seed) if permuted else None
    result = {"permutation": order}
    for split, (images, labels) in splits.items():
        inputs = _pixel_sequences(images, 255.0)
        result[split] = (inputs if order is None else inputs[:, order], torch.as_tensor(labels, dtype=torch.long))
    return result


def _mnist_files(data_dir) -> tuple[Path, list[Path]]:
    directory = Path(os.path.expanduser(str(data_dir))).resolve()
    if not directory.is_dir():
        raise NumericsError(f"MNIST directory not found: {directory}")
    return directory, [find_idx_file(directory, name) for pair in MNIST_FILES.values() for name in pair]


@functools.lru_cache(maxsize=16)
def _fingerprint(stats: tuple) -> str:
    digest = hashlib.sha256()
    for path, size, _ in stats:
        digest.update(f"{Path(path).name}:{size}\n".encode())
        with open(path, "rb") as handle:
            digest.update(handle.read(FINGERPRINT_BYTES))
            if size > FINGERPRINT_BYTES:
                handle.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
                digest.update(handle.read())
    return digest.hexdigest()


def mnist_fingerprint(data_dir) -> dict:
    """{"data_dir": the resolved absolute directory, "fingerprint": SHA-256 over each of the four
    files' name, size, first and last MiB} — the whole label files, the header and the first and
    last images of the image files: cheap (≤ 8 MiB read, remembered while sizes and mtimes stay),
    and different for any other data set or subset. Raises NumericsError when a file is missing."""
    directory, files = _mnist_files(data_dir)
    stats = tuple((str(f), s.st_size, (s.st_mtime_ns, s.st_ctime_ns, s.st_ino)) for f in files for s in [f.stat()])
    return {"data_dir": str(directory), "fingerprint": _fingerprint(stats)}
