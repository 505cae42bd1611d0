"""Tangents of a Markov parameter with respect to one block.

A word L = left · X · right has ∂L_ac/∂X = (leftᵀ e_a)(right e_c)ᵀ. For a power W^p the product
rule d(W^p) = Σ_{m=0}^{p-1} W^m dW W^{p-1-m} gives one tangent per position m of dW.
"""
from __future__ import annotations

import dataclasses

import sympy as sp

from .markov import Factor, Word


@dataclasses.dataclass(frozen=True)
class Tangent:
    """∂L/∂X at one place: left and right words, and the summed position (m, count) if any."""

    left: Word
    right: Word
    position: tuple[sp.Symbol, sp.Expr] | None = None


def block_tangents(word: Word, block: str, m: sp.Symbol) -> list[Tangent]:
    """Every place `block` stands in `word`, W^p expanded over the position m of dW."""
    out = []
    for i, f in enumerate(word):
        if f.block != block or f.power == 0:
            continue
        left, right = word[:i], word[i + 1:]
        if f.power == 1:
            out.append(Tangent(left, right))
        else:
            out.append(Tangent(left + (Factor(block, m),), (Factor(block, f.power - 1 - m),) + right, (m, f.power)))
    return out
