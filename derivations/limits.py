"""Infinite-width rules: each states a limit n → ∞ (all else fixed) and when it holds.

Every rule is a small function so it can be tested on random matrices by itself
(tests/test_limits.py). The kernel derivation only ever reaches n → ∞ through these.
"""
from __future__ import annotations

import sympy as sp

from .markov import Word
from .symbols import init_variance, sigma, width


def normalized_trace_of_powers(p, r) -> sp.Expr:
    """tr(W^p (W^r)ᵀ) → n δ_pr σ_W^{2p}.

    Holds for W with iid N(0, σ_W²/n) entries: (1/n) tr(W^p (W^r)ᵀ) concentrates on the
    free-probability moment of a circular element, 1 for p = r and 0 otherwise, times σ_W^{p+r}.
    Relative fluctuations are O(n^{-1}).
    """
    return width * sp.KroneckerDelta(p, r) * sigma["W"] ** (2 * p)


def gaussian_quadratic_form(variance, trace) -> sp.Expr:
    """u_aᵀ M u_b → δ_ab v tr(M) for Gaussian vectors u_a, u_b with iid N(0, v) entries.

    Holds when M is independent of the u's (here: M is built from W only, u from C or F) and
    ‖M‖_F is O(√n): the quadratic form concentrates on its mean with O(v ‖M‖_F) fluctuations.
    The index delta is 1 for the scalar input and output the kernel is stated for.
    """
    return variance * trace


def gaussian_bilinear_second_moment(variance_u, variance_v, trace) -> sp.Expr:
    """E[(uᵀ M v)²] = v_u v_v tr(M Mᵀ) for independent Gaussian u, v with iid entries, independent of M."""
    return variance_u * variance_v * trace


def _outer_and_power(word: Word, outer_first: bool):
    """Split a side word into its Gaussian end block and the power of W next to it.

    Output sides are [C] or [C, W^m]; input sides are [F] or [W^p, F]; empty means identity.
    """
    if not word:
        return None, None
    outer = word[0] if outer_first else word[-1]
    rest = word[1:] if outer_first else word[:-1]
    if outer.block not in ("C", "F", "D") or len(rest) > 1 or any(f.block != "W" for f in rest):
        raise NotImplementedError(f"no limit rule for a side of the form {word}")
    return outer.block, (rest[0].power if rest else sp.Integer(0))


def side_limit(word_a: Word, word_b: Word, outer_first: bool) -> sp.Expr:
    """Limit of one side of a tangent inner product.

    Output side e_aᵀ (left_a)(left_b)ᵀ e_b, input side e_cᵀ (right_a)ᵀ(right_b) e_d: the Gaussian
    end block's rows (C) or columns (F) form a quadratic form around a product of W powers,
    whose trace is a normalized trace of powers.
    """
    block_a, p = _outer_and_power(word_a, outer_first)
    block_b, r = _outer_and_power(word_b, outer_first)
    if block_a != block_b:
        raise NotImplementedError(f"sides {word_a} and {word_b} end in different blocks")
    if block_a is None:
        return sp.Integer(1)  # e_aᵀ e_b = δ_ab
    return gaussian_quadratic_form(init_variance(block_a), normalized_trace_of_powers(p, r))


def word_second_moment(word: Word) -> sp.Expr:
    """Limit of E[(L_j)_ac²] for one word at initialization (the NNGP side)."""
    if len(word) == 1:
        return init_variance(word[0].block)
    if [f.block for f in word] != ["C", "W", "F"]:
        raise NotImplementedError(f"no second-moment rule for {word}")
    p = word[1].power
    return gaussian_bilinear_second_moment(init_variance("C"), init_variance("F"), normalized_trace_of_powers(p, p))
