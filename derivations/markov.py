"""Markov parameters L_j of a linear RNN as noncommutative products of its blocks.

Unrolling h_k = W h_{k-1} + F x_{k-s} (s = 0 for convention A, 1 for B) gives
ŷ_k = Σ_j L_j x_{k-j} with L_j = C W^{j-s} F for j ≥ s, plus D at j = 0 with the feed-through.
"""
from __future__ import annotations

import dataclasses

import sympy as sp

from .spec import Spec


@dataclasses.dataclass(frozen=True)
class Factor:
    """One block in a product; only W carries a power other than 1."""

    block: str
    power: sp.Expr = sp.Integer(1)


Word = tuple[Factor, ...]


def as_expr(word: Word) -> sp.Expr:
    """The word as a noncommutative SymPy product, for display."""
    out = sp.Integer(1)
    for f in word:
        out = out * sp.Symbol(f.block, commutative=False) ** f.power
    return out


def markov_parameter(spec: Spec, j) -> list[Word]:
    """The words whose sum is L_j, for a concrete lag or a symbolic lag j ≥ 1."""
    words = []
    s = spec.input_lag
    if not (j.is_number and j < s):
        words.append((Factor("C"), Factor("W", j - s), Factor("F")))
    if spec.feedthrough and (j.is_number and j == 0):
        words.append((Factor("D"),))
    return words
