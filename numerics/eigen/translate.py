"""Multi30k English→German translation with an attentional GRU/LSTM encoder–decoder whose recurrent
blocks take the eigen benchmark's initializers.

    train_translation(data_dir, cell, init, seed, *, hidden=…, embed=…, steps=…, …) → a JSON-ready dict

Model (`Seq2Seq`): source embedding → encoder nn.GRU / nn.LSTM (one layer, batch-first, packed so
padding never enters the state) → its final state starts the decoder nn.GRU / nn.LSTM over the
target embeddings; each decoder output h_t attends over the encoder outputs with Luong's dot score
(a_ts = softmax_s(h_t · e_s), padded source positions masked), and tanh(W_c [h_t; c_t]) with
c_t = Σ_s a_ts e_s is read out to target-vocabulary logits. Without input feeding, teacher-forced
training is one decoder call over the whole target; greedy decoding runs step by step from <bos>
until every sentence has emitted <eos> or `max_len` tokens.

Seeds: encoder and decoder are each `initialize(module, init, seed=…)` with seeds derived from
`seed` (streams 3 and 4); embeddings N(0, 0.1²) and output layers xavier-uniform with zero bias
from stream 5; minibatches from stream 2. Nothing reads torch's global generator, so on the CPU a
seed gives the same numbers. One intra-op thread by default (restored after), as in `train`.

Data: `numerics.data.multi30k` (train for training, optionally a seeded `train_subset` of it by
`data_seed`; val and test for BLEU). Vocabularies come from the training pairs used, with
`min_freq`. Training sentences are cut to `max_len` tokens.

BLEU: `sacrebleu.corpus_bleu` of the greedy hypotheses, detokenized by joining tokens with spaces,
against the references tokenized and joined the same way (lowercase, `multi30k.tokenize`), with
sacrebleu's default 13a tokenizer on top (a no-op on text already split this way). Scores are on
sacrebleu's 0–100 scale. Out-of-vocabulary reference words stay as they are, so a model is charged
for every <unk>-shaped miss (the hypotheses never contain <unk>: it is not written out).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..data import multi30k
from ..device import resolve_device
from ..errors import NumericsError, check_int
from ..models.initializers import initialize
from ..train.runtime import Recipe, check_seed, derived_seed, fit, torch_threads
from .model import parse_init

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}
DEFAULTS = {"hidden": 256, "embed": 128, "steps": 3000, "batch": 64, "lr": 1e-3, "max_len": 40,
            "min_freq": 2, "track_every": 100}


class Seq2Seq(nn.Module):
    """Encoder–decoder with Luong dot attention (see the module docstring)."""

    def __init__(self, cell: str, src_vocab: int, tgt_vocab: int, hidden: int, embed: int):
        super().__init__()
        rnn = CELLS[cell]
        self.src_embed = nn.Embedding(src_vocab, embed, padding_idx=0)
        self.tgt_embed = nn.Embedding(tgt_vocab, embed, padding_idx=0)
        self.encoder = rnn(embed, hidden, batch_first=True)
        self.decoder = rnn(embed, hidden, batch_first=True)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.readout = nn.Linear(hidden, tgt_vocab)

    def encode(self, src: torch.Tensor):
        """Encoder outputs (N, S, H), the source mask (N, S) and the final state."""
        mask = src != 0
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.src_embed(src), lengths, batch_first=True,
                                                   enforce_sorted=False)
        out, state = self.encoder(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        return out, mask, state

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor, state):
        """Logits (N, T, V) for the target inputs, and the decoder's last state."""
        out, state = self.decoder(self.tgt_embed(tgt_in), state)
        scores = out @ memory.transpose(1, 2)                      # (N, T, S): h_t · e_s
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        context = torch.softmax(scores, dim=-1) @ memory           # (N, T, H)
        return self.readout(torch.tanh(self.combine(torch.cat([out, context], -1)))), state

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, mask, state = self.encode(src)
        return self.decode(tgt_in, memory, mask, state)[0]

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, max_len: int) -> torch.Tensor:
        """(N, ≤ max_len + 1) token ids, each row the argmax continuation from <bos>."""
        memory, mask, state = self.encode(src)
        token = torch.full((src.shape[0], 1), 2, dtype=torch.long, device=src.device)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        out = []
        for _ in range(max_len + 1):
            logits, state = self.decode(token, memory, mask, state)
            token = logits[:, -1].argmax(-1, keepdim=True)
            out.append(token)
            done |= token[:, 0] == 3
            if bool(done.all()):
                break
        return torch.cat(out, 1)


def build_model(cell: str, init: str, seed: int, src_vocab: int, tgt_vocab: int, hidden: int,
                embed: int) -> Seq2Seq:
    """A seeded Seq2Seq: encoder and decoder by `initialize`, the rest from stream 5."""
    model = Seq2Seq(cell, src_vocab, tgt_vocab, hidden, embed)
    name, params = parse_init(init)  # 'name:key=value,…' and eigen:FILE, as in train.build_model
    initialize(model.encoder, name, seed=derived_seed(seed, 3), **params)
    initialize(model.decoder, name, seed=derived_seed(seed, 4), **params)
    generator = torch.Generator().manual_seed(derived_seed(seed, 5))
    with torch.no_grad():
        for embedding in (model.src_embed, model.tgt_embed):
            embedding.weight.normal_(0.0, 0.1, generator=generator)
            embedding.weight[0].zero_()
        for linear in (model.combine, model.readout):
            nn.init.xavier_uniform_(linear.weight, generator=generator)
            linear.bias.zero_()
    return model


def bleu(hypotheses: list[list[str]], references: list[list[str]]) -> float:
    """sacrebleu corpus BLEU (0–100) of space-joined token lists."""
    try:
        import sacrebleu
    except ImportError:
        raise NumericsError("BLEU needs sacrebleu: pip install 'sacrebleu>=2.3'") from None
    return float(sacrebleu.corpus_bleu([" ".join(h) for h in hypotheses],
                                       [[" ".join(r) for r in references]]).score)


def train_translation(data_dir, cell: str, init: str, seed: int, *, hidden: int = DEFAULTS["hidden"],
                      embed: int = DEFAULTS["embed"], steps: int = DEFAULTS["steps"],
                      batch: int = DEFAULTS["batch"], lr: float = DEFAULTS["lr"],
                      max_len: int = DEFAULTS["max_len"], train_subset: int | None = None,
                      min_freq: int = DEFAULTS["min_freq"], track_every: int = DEFAULTS["track_every"],
                      clip: float | None = 1.0, data_seed: int = 0, device: str = "cpu",
                      threads: int | None = 1) -> dict:
    """Train one encoder–decoder with teacher forcing (Adam, cross-entropy over non-pad targets)
    and report BLEU of greedy decoding on val and test. steps=0 scores the untrained model.

    Returns {"config": …, "curve": {"step", "train_loss"} (mean minibatch loss over each
    `track_every` steps), "bleu": {"val", "test"}, "vocab": {"en", "de"}}.
    """
    if cell not in CELLS:
        raise NumericsError(f"unknown cell {cell!r} for translation (choose {', '.join(CELLS)})")
    check_seed(seed)
    for name, value in (("hidden", hidden), ("embed", embed), ("batch", batch),
                        ("max_len", max_len), ("min_freq", min_freq), ("track_every", track_every)):
        check_int(value, name)
    recipe = Recipe(steps, lr, "adam", "constant", clip, track_every)  # steps = 0: the untrained baseline
    target = resolve_device(device)

    english, german = multi30k.read_split(data_dir, "train")
    if train_subset is not None:
        check_int(train_subset, "train_subset")
        rng = np.random.default_rng(np.random.SeedSequence([int(data_seed), 3]))
        rows = np.sort(rng.choice(len(english), min(train_subset, len(english)), replace=False))
        english, german = [english[i] for i in rows], [german[i] for i in rows]
    src_tokens = [multi30k.tokenize(line) for line in english]
    tgt_tokens = [multi30k.tokenize(line) for line in german]
    src_vocab = multi30k.Vocabulary.build(src_tokens, min_freq=min_freq)
    tgt_vocab = multi30k.Vocabulary.build(tgt_tokens, min_freq=min_freq)
    src = src_vocab.encode(src_tokens, max_len).to(target)
    tgt = tgt_vocab.encode(tgt_tokens, max_len, bos=True).to(target)  # <bos> w… <eos> <pad>…

    with torch_threads(threads):
        model = build_model(cell, init, seed, len(src_vocab), len(tgt_vocab), hidden, embed).to(target)
        batches = torch.Generator().manual_seed(derived_seed(seed, 2))
        curve = {"step": [], "train_loss": []}
        window = []

        def objective(step: int) -> torch.Tensor:
            rows = torch.randint(len(src), (batch,), generator=batches).to(target)
            s, t = src[rows], tgt[rows]
            width_s, width_t = int((s != 0).sum(1).max()), int((t != 0).sum(1).max())
            s, t = s[:, :width_s], t[:, :width_t]
            logits = model(s, t[:, :-1])
            return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), t[:, 1:].reshape(-1),
                                               ignore_index=0)

        def after_step(step: int, loss: torch.Tensor) -> None:  # the mean minibatch loss of each tracked window
            window.append(float(loss.detach()))
            if recipe.tracks(step):
                curve["step"].append(step)
                curve["train_loss"].append(sum(window) / len(window))
                window.clear()

        fit(model, recipe, objective, what=f"{cell} translation", curve=curve, after_step=after_step)
        model.eval()
        scores = {split: evaluate_bleu(model, data_dir, split, src_vocab, tgt_vocab, max_len, target)
                  for split in ("val", "test")}

    config = {"data_dir": str(data_dir), "cell": cell, "init": init, "seed": int(seed), "hidden": hidden,
              "embed": embed, "steps": steps, "batch": batch, "lr": lr, "max_len": max_len,
              "train_subset": train_subset, "train_pairs": len(src), "min_freq": min_freq,
              "track_every": track_every, "clip": clip, "data_seed": data_seed, "device": str(target),
              "attention": "luong-dot"}
    return {"config": config, "curve": curve, "bleu": scores,
            "vocab": {"en": len(src_vocab), "de": len(tgt_vocab)}}


def evaluate_bleu(model: Seq2Seq, data_dir, split: str, src_vocab: multi30k.Vocabulary,
                  tgt_vocab: multi30k.Vocabulary, max_len: int, device, chunk: int = 256) -> float:
    """BLEU of greedy translations of one split (sources cut to max_len tokens; references whole)."""
    english, german = multi30k.read_split(data_dir, split)
    sources = [multi30k.tokenize(line) for line in english]
    references = [multi30k.tokenize(line) for line in german]
    hypotheses = []
    for start in range(0, len(sources), chunk):
        src = src_vocab.encode(sources[start:start + chunk], max_len).to(device)
        hypotheses += [tgt_vocab.decode(row) for row in model.greedy(src, max_len).cpu()]
    return bleu(hypotheses, references) if hypotheses else math.nan
