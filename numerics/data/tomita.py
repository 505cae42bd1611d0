"""The seven Tomita grammars over {0, 1} (Tomita 1982) as exact deterministic finite automata.

    1  1*                                   5  even number of 0s and even number of 1s
    2  (10)*                                6  (#0 − #1) ≡ 0 (mod 3)   (not mod 5, as some generators have it)
    3  no odd-length run of 1s followed,    7  0*1*0*1*
       later, by an odd-length run of 0s
    4  no 000 substring

Grammar 3 reads runs as maximal blocks: a string is rejected when some maximal block of 1s of odd
length is followed, anywhere later (not necessarily immediately), by a maximal block of 0s of odd
length — "10" and "1 00 11 0" are rejected, "100" and "0 1 00" accepted. This is the wording of
Giles et al. 1992 ("no odd-length 0-string anywhere after an odd-length 1-string") and of the
`re` pattern Weiss et al. 2018 test against.

Membership is decided by the automaton alone (`accepts`); the tests check every automaton against
independent regular expressions and counts on all strings up to length 12. Sampling is exact and
uniform within a class: the number of accepted (or rejected) completions from every state is
counted with Python integers, and a string is drawn symbol by symbol in proportion to those counts,
so the sampler works at any length, including where a class holds a single string.

Training on short strings and testing on longer ones (`dataset`) is the usual generalization test.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
import torch

from ..errors import NumericsError

ALPHABET = "01"


@dataclasses.dataclass(frozen=True)
class Automaton:
    """A DFA over {0, 1}: state 0 starts, `transitions[q][s]` is the state after symbol s in state q.

    `states` names what each state remembers, in the same order as `transitions`.
    """

    grammar: int
    language: str
    states: tuple[str, ...]
    transitions: tuple[tuple[int, int], ...]
    accepting: frozenset[int]

    def run(self, string: str) -> int:
        """The state reached from the start after reading `string` (characters '0' and '1')."""
        state = 0
        for char in string:
            if char not in ALPHABET:
                raise NumericsError(f"Tomita strings are over '0' and '1', got {char!r} in {string!r}")
            state = self.transitions[state][int(char)]
        return state


AUTOMATA = {
    1: Automaton(1, "1*", ("only 1s so far", "dead: a 0 was read"),
                 ((1, 0), (1, 1)), frozenset({0})),
    2: Automaton(2, "(10)*", ("a whole number of 10s", "an unfinished 1", "dead"),
                 ((2, 1), (0, 2), (2, 2)), frozenset({0})),
    3: Automaton(3, "no odd 1-run followed later by an odd 0-run",
                 ("clean (no odd 1-run finished yet), outside an odd 1-run",
                  "clean, inside an odd-length 1-run",
                  "after an odd 1-run, inside an odd-length 0-run (rejects if the run ends here)",
                  "after an odd 1-run, anywhere else (an even 0-run, or a later 1-run)",
                  "dead: an odd 0-run followed an odd 1-run"),
                 # An even 1-run leaves no trace, so "clean, inside an even 1-run" is state 0; after an
                 # odd 1-run, an even 0-run and a later 1-run both turn into state 2 on the next 0.
                 ((0, 1), (2, 0), (3, 4), (2, 3), (4, 4)), frozenset({0, 1, 3})),
    4: Automaton(4, "no 000", ("ends in no 0", "ends in one 0", "ends in 00", "dead: 000 was read"),
                 ((1, 0), (2, 0), (3, 0), (3, 3)), frozenset({0, 1, 2})),
    5: Automaton(5, "even #0 and even #1",
                 ("#0 even, #1 even", "#0 even, #1 odd", "#0 odd, #1 even", "#0 odd, #1 odd"),
                 ((2, 1), (3, 0), (0, 3), (1, 2)), frozenset({0})),
    6: Automaton(6, "#0 − #1 ≡ 0 (mod 3)", ("#0 − #1 ≡ 0", "#0 − #1 ≡ 1", "#0 − #1 ≡ 2"),
                 ((1, 2), (2, 0), (0, 1)), frozenset({0})),
    7: Automaton(7, "0*1*0*1*", ("in the first 0*", "in the first 1*", "in the second 0*", "in the second 1*",
                                 "dead: a fifth block began"),
                 ((0, 1), (2, 1), (2, 3), (4, 3), (4, 4)), frozenset({0, 1, 2, 3})),
}


def automaton(grammar: int) -> Automaton:
    """The DFA of Tomita grammar `grammar` (1–7)."""
    if isinstance(grammar, bool) or not isinstance(grammar, (int, np.integer)) or int(grammar) not in AUTOMATA:
        raise NumericsError(f"Tomita grammars are numbered 1 to 7, got {grammar!r}")
    return AUTOMATA[int(grammar)]


def accepts(grammar: int, string: str) -> bool:
    """Whether `string` (of '0' and '1') is in Tomita grammar `grammar`, decided by its automaton."""
    dfa = automaton(grammar)
    return dfa.run(string) in dfa.accepting


@functools.lru_cache(maxsize=64)
def _completions(grammar: int, length: int, accepted: bool) -> tuple[tuple[int, ...], ...]:
    """counts[k][q]: how many strings of length k lead from state q into the class (exact integers)."""
    dfa = AUTOMATA[grammar]
    target = [(q in dfa.accepting) == accepted for q in range(len(dfa.states))]
    counts = [tuple(int(t) for t in target)]
    for _ in range(length):
        last = counts[-1]
        counts.append(tuple(last[a] + last[b] for a, b in dfa.transitions))
    return tuple(counts)


def class_sizes(grammar: int, length: int) -> tuple[int, int]:
    """(number of accepted, number of rejected) strings of exactly `length` symbols, counted exactly."""
    automaton(grammar)
    _check_length(length)
    return _completions(grammar, length, True)[length][0], _completions(grammar, length, False)[length][0]


def _draw(grammar: int, length: int, accepted: bool, rng: np.random.Generator) -> str:
    """One string drawn uniformly from the accepted (or rejected) strings of this length."""
    dfa, counts = AUTOMATA[grammar], _completions(grammar, length, accepted)
    state, chars = 0, []
    for remaining in range(length, 0, -1):
        to0, to1 = dfa.transitions[state]
        n0, n1 = counts[remaining - 1][to0], counts[remaining - 1][to1]
        symbol = int(rng.random() * (n0 + n1) >= n0) if n0 and n1 else int(n1 > 0)
        chars.append(ALPHABET[symbol])
        state = (to0, to1)[symbol]
    return "".join(chars)


def _check_length(length) -> int:
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise NumericsError(f"a string length must be an integer ≥ 0, got {length!r}")
    return int(length)


def sample(grammar: int, lengths, count: int, rng) -> tuple[list[str], np.ndarray]:
    """`count` strings of each length in `lengths`, half accepted and half rejected, shuffled together.

    Per length, `count // 2` strings are drawn uniformly (with replacement) from the accepted ones
    and the rest from the rejected ones. Where one class is empty at a length, all `count` strings
    of that length come from the other class, so the whole sample is then not exactly balanced:
    the empty string (length 0) is accepted by every grammar, grammars 2 and 5 accept nothing of
    odd length, grammar 6 nothing of length 1 (so a test set of odd lengths only is all rejected
    for grammars 2 and 5). Where a class is small, repeats occur (grammar 1 accepts only 1ⁿ, grammar 2 only
    (10)^(n/2)); `class_sizes` gives the exact sizes. `rng` is a numpy Generator or a seed.
    Returns (strings, labels) with labels a bool array, True for accepted.
    """
    automaton(grammar)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise NumericsError(f"the count per length must be an integer ≥ 1, got {count!r}")
    rng = np.random.default_rng(rng)
    strings, labels = [], []
    for length in lengths:
        length = _check_length(length)
        n_accepted, n_rejected = class_sizes(grammar, length)
        wanted = count // 2 if n_accepted and n_rejected else (count if n_accepted else 0)
        for accepted, k in ((True, wanted), (False, count - wanted)):
            strings += [_draw(int(grammar), length, accepted, rng) for _ in range(k)]
            labels += [accepted] * k
    order = rng.permutation(len(strings))
    return [strings[i] for i in order], np.asarray(labels, dtype=bool)[order]


@dataclasses.dataclass(frozen=True)
class StringBatch:
    """Padded binary strings: `inputs` one-hot (N, T_max, 2) with zero rows after each string's end,
    `symbols` (N, T_max) long with `PAD` after the end, `lengths` (N,) long, `labels` (N,) float 1/0.

    A seq2one model reads its output at step `lengths − 1` (for the empty string: its initial state).
    """

    inputs: torch.Tensor
    symbols: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    strings: tuple[str, ...]


PAD = 2


def encode(strings, labels) -> StringBatch:
    """Pack strings of '0'/'1' and their labels into a padded `StringBatch`."""
    strings = tuple(strings)
    lengths = torch.tensor([len(s) for s in strings], dtype=torch.long)
    width = int(lengths.max()) if len(strings) else 0
    symbols = torch.full((len(strings), width), PAD, dtype=torch.long)
    for row, string in enumerate(strings):
        if string:
            symbols[row, :len(string)] = torch.tensor([int(c) for c in string], dtype=torch.long)
    inputs = torch.nn.functional.one_hot(symbols, 3)[..., :2].to(torch.get_default_dtype())
    return StringBatch(inputs, symbols, lengths, torch.as_tensor(np.asarray(labels), dtype=inputs.dtype), strings)


def dataset(grammar: int, train_lengths, test_lengths, per_length: int, seed: int) -> dict[str, StringBatch]:
    """{"train", "test"}: balanced samples (`sample`) of `per_length` strings per length.

    The usual split trains on short strings and tests on longer ones (e.g. lengths 1–10 against
    11–20). The two splits draw from independent streams of one `SeedSequence(seed)`.
    """
    train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    return {"train": encode(*sample(grammar, train_lengths, per_length, train_rng)),
            "test": encode(*sample(grammar, test_lengths, per_length, test_rng))}
