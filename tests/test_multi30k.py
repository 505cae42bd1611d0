"""Multi30k reader and the attentional encoder–decoder, end to end on a tiny parallel corpus that
the test writes: sentences of 3–6 words drawn from 16 English words, each translated word by word
through a fixed English→German table, so an attentional model can learn it and generalize to
unseen sentences of the same words (numerics/data/multi30k.py, numerics/eigen/translate.py)."""
from __future__ import annotations

import gzip
import random

import pytest
import torch

from numerics.data import multi30k
from numerics.errors import NumericsError

pytest.importorskip("sacrebleu")
from numerics.eigen.translate import build_model, train_translation

WORDS = {"a": "ein", "man": "mann", "woman": "frau", "dog": "hund", "cat": "katze", "red": "rot",
         "big": "groß", "small": "klein", "runs": "läuft", "sleeps": "schläft", "sees": "sieht",
         "the": "die", "ball": "ball", "and": "und", "house": "haus", "green": "grün"}


def write_corpus(directory, n_train=400, n_eval=20, gz=False):
    """train/val/test_2016_flickr .en/.de, capitalized and with a final " ." like Multi30k's lines."""
    rng = random.Random(0)
    english_words = sorted(WORDS)
    for name, count in (("train", n_train), ("val", n_eval), ("test_2016_flickr", n_eval)):
        english, german = [], []
        for _ in range(count):
            sentence = [rng.choice(english_words) for _ in range(rng.randint(3, 6))]
            english.append(" ".join(sentence).capitalize() + " .")
            german.append(" ".join(WORDS[w] for w in sentence).capitalize() + " .")
        for language, lines in (("en", english), ("de", german)):
            text = "\n".join(lines) + "\n"
            if gz:
                with gzip.open(directory / f"{name}.{language}.gz", "wt", encoding="utf-8") as handle:
                    handle.write(text)
            else:
                (directory / f"{name}.{language}").write_text(text, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("multi30k"))


# small enough to train in ~1.5 s on one thread; lr 1e-2 so 600 steps suffice
SMALL = {"hidden": 32, "embed": 16, "batch": 16, "lr": 1e-2, "max_len": 10, "min_freq": 1, "track_every": 50}


# --- reader ------------------------------------------------------------------------------------

def test_tokenize_lowercases_and_splits_punctuation():
    assert multi30k.tokenize("A man's  hat, Größe.") == ["a", "man", "'", "s", "hat", ",", "größe", "."]


def test_read_split_plain_and_gz(corpus, tmp_path):
    english, german = multi30k.read_split(corpus, "test")
    assert len(english) == len(german) == 20
    zipped = write_corpus(tmp_path, gz=True)
    assert multi30k.read_split(zipped, "test") == (english, german)


def test_vocabulary_specials_min_freq_and_encoding():
    vocab = multi30k.Vocabulary.build([["a", "b", "a"], ["a", "c", "c"]], min_freq=2)
    assert vocab.tokens == ["<pad>", "<unk>", "<bos>", "<eos>", "a", "c"]
    encoded = vocab.encode([["a", "b"], ["c"]], max_len=5, bos=True)
    assert encoded.tolist() == [[2, 4, 1, 3], [2, 5, 3, 0]]
    assert vocab.encode([["a", "a", "a"]], max_len=2).tolist() == [[4, 4, 3]]
    assert vocab.decode([2, 4, 1, 5, 3, 4]) == ["a", "c"]


def test_reader_errors_name_the_file(corpus, tmp_path):
    with pytest.raises(NumericsError, match="does not exist"):
        multi30k.read_split(tmp_path / "nowhere", "train")
    (tmp_path / "train.en").write_text("a man .\n", encoding="utf-8")
    with pytest.raises(NumericsError, match=r"train\.de .*not found"):
        multi30k.read_split(tmp_path, "train")
    (tmp_path / "train.de").write_text("ein mann .\nzwei .\n", encoding="utf-8")
    with pytest.raises(NumericsError, match=r"^train\.de: 2 lines, but train\.en has 1$"):
        multi30k.read_split(tmp_path, "train")
    with pytest.raises(NumericsError, match="unknown Multi30k split"):
        multi30k.read_split(corpus, "dev")


# --- model and training ------------------------------------------------------------------------

def test_both_recurrent_blocks_take_the_initializer():
    model = build_model("gru", "orthogonal", 0, 10, 12, hidden=8, embed=4)
    for rnn in (model.encoder, model.decoder):
        block = rnn.weight_hh_l0[:8].detach().double()
        assert torch.allclose(block @ block.T, torch.eye(8, dtype=torch.float64), atol=1e-5)
    assert not torch.equal(model.encoder.weight_hh_l0, model.decoder.weight_hh_l0)


# Measured BLEU on this corpus (val / test, seeds 0, 1, 2): untrained 0.4–0.8; GRU after 600 steps
# 96–100 (train loss ≈ 0.002); LSTM after 800 steps 54–80 on val, 28–54 on test (loss ≈ 0.1, it
# learns more slowly at the same rate). The thresholds sit well below the worst measured trained
# score and far above the untrained one, so they detect "does not learn" without flaking.
@pytest.mark.slow
@pytest.mark.parametrize("cell, steps, threshold", [("gru", 600, 80.0), ("lstm", 800, 35.0)])
def test_training_learns_the_word_mapping(corpus, cell, steps, threshold):
    untrained = train_translation(corpus, cell, "orthogonal", 0, steps=0, **SMALL)
    trained = train_translation(corpus, cell, "orthogonal", 0, steps=steps, **SMALL)
    assert untrained["bleu"]["val"] < 5.0
    assert trained["bleu"]["val"] > threshold
    assert trained["curve"]["train_loss"][-1] < 0.2 * trained["curve"]["train_loss"][0]
    assert trained["config"]["train_pairs"] == 400 and trained["vocab"] == {"en": 21, "de": 21}


def test_a_seed_reproduces_the_run(corpus):
    first, again, other = (train_translation(corpus, "gru", "orthogonal", seed, steps=60, train_subset=100, **SMALL)
                           for seed in (3, 3, 4))
    assert first == again
    assert first["curve"] != other["curve"]
    assert first["config"]["train_pairs"] == 100


def test_bad_options_are_refused(corpus):
    with pytest.raises(NumericsError, match="unknown cell 'rnn'"):
        train_translation(corpus, "rnn", "orthogonal", 0, steps=1)
    with pytest.raises(NumericsError, match="steps must be"):
        train_translation(corpus, "gru", "orthogonal", 0, steps=-1)
