"""Multi30k English→German sentence pairs, read from a local copy of the standard text files.

    read_split(data_dir, split) → (english lines, german lines)
    tokenize(line) → list of tokens
    Vocabulary.build(token lists, min_freq=…) → a vocabulary; .encode(token lists, max_len) → tensor

Files (one sentence a line, line i of .en translating line i of .de; plain or .gz): train.en/.de,
val.en/.de, test_2016_flickr.en/.de — the names of the Multi30k task-1 release. Nothing is
downloaded: the user names the directory. A missing directory or file, or an .en/.de pair with
different line counts, raises NumericsError in one line naming the file.

Tokenization (`tokenize`): lowercase, then split into runs of word characters (letters, digits,
underscore, including ä/ö/ü/ß) and single punctuation characters; whitespace only separates. So
"A man's hat." → ["a", "man", "'", "s", "hat", "."]. It is deliberately simple (no Moses rules, no
subwords) so that it needs no model files; BLEU is computed on the space-joined tokens of both
hypothesis and reference, so the two are tokenized alike.
"""
from __future__ import annotations

import gzip
import re
from collections import Counter
from pathlib import Path

import torch

from ..errors import NumericsError

SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}
LANGUAGES = ("en", "de")
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)  # indices 0, 1, 2, 3 in every vocabulary
_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(line: str) -> list[str]:
    """Lowercased word runs and single punctuation characters (see the module docstring)."""
    return _TOKEN.findall(line.lower())


def _find(data_dir: Path, name: str) -> Path:
    for candidate in (data_dir / name, data_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise NumericsError(f"Multi30k file {name} (or {name}.gz) not found in {data_dir}")


def _lines(path: Path) -> list[str]:
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            return handle.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise NumericsError(f"{path.name}: cannot be read ({error})") from None


def read_split(data_dir, split: str) -> tuple[list[str], list[str]]:
    """The (english, german) lines of one split: train, val or test (test_2016_flickr)."""
    if split not in SPLITS:
        raise NumericsError(f"unknown Multi30k split {split!r} (choose {', '.join(SPLITS)})")
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise NumericsError(f"Multi30k directory {data_dir} does not exist")
    paths = [_find(data_dir, f"{SPLITS[split]}.{language}") for language in LANGUAGES]
    english, german = (_lines(path) for path in paths)
    if len(english) != len(german):
        raise NumericsError(f"{paths[1].name}: {len(german)} lines, but {paths[0].name} has {len(english)}")
    return english, german


class Vocabulary:
    """Token ↔ index, the four specials first, then tokens by falling count (ties alphabetically)."""

    def __init__(self, tokens: list[str]):
        self.tokens = list(tokens)
        self.index = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, sentences: list[list[str]], *, min_freq: int = 2) -> Vocabulary:
        """From tokenized sentences; a token seen fewer than `min_freq` times maps to <unk>."""
        counts = Counter(token for sentence in sentences for token in sentence)
        kept = sorted((t for t, c in counts.items() if c >= min_freq and t not in SPECIALS),
                      key=lambda t: (-counts[t], t))
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, sentences: list[list[str]], max_len: int, *, bos: bool = False) -> torch.Tensor:
        """(N, L) long tensor: [<bos>] tokens <eos>, cut to max_len tokens before <eos>, <pad>-filled."""
        rows = []
        for sentence in sentences:
            ids = [self.index.get(token, 1) for token in sentence[:max_len]]
            rows.append(([2] if bos else []) + ids + [3])
        width = max((len(row) for row in rows), default=1)
        return torch.tensor([row + [0] * (width - len(row)) for row in rows], dtype=torch.long)

    def decode(self, ids) -> list[str]:
        """Tokens up to the first <eos>, skipping the specials (<unk> is not written out)."""
        out = []
        for i in ids:
            i = int(i)
            if i == 3:
                break
            if i > 3:
                out.append(self.tokens[i])
        return out
