"""Exact expectations over the Gaussian initialization at finite width n, by Wick's theorem, with W
tied across positions.

The infinite-width rules (`limits`, `moments`) keep only the leading power of n. The finite-width
theory needs the rest: which pairings of the entries of one W that stands at several positions of
a word cost a power of n. Here a quantity is a sum of `Net`s, products of entries of C (1 × n),
W (n × n) and F (n × 1) whose indices are summed from 1 to n; its expectation is Wick's theorem
carried out exactly: every perfect matching of the C entries among themselves, the F entries
among themselves and the W entries among themselves (E C_a C_b = v_C δ_ab, E W_ab W_cd =
v_W δ_ac δ_bd, E F_a F_b = v_F δ_ab) identifies indices, and the matching contributes
n^(number of free index classes left). So E[Net] is a polynomial in n, exact at every width; its
expansion in 1/n gives the wide limit and the corrections term by term.

The cost grows like the number of matchings ((2k − 1)!! for 2k entries of W): this is the ground
truth for short lags (tests, and checks of closed forms), not a route to long ones.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
from collections import Counter

import sympy as sp

from . import symbols as S


@dataclasses.dataclass(frozen=True)
class Net:
    """coefficient · Σ_indices Π factors; a factor is ("C", (i,)), ("F", (i,)) or ("W", (i, j))."""

    coefficient: sp.Expr
    factors: tuple


class Builder:
    """Fresh index labels, and the vectors the Markov parameters are made of:
    u_a = W^a F (the input side) and v_a = (Wᵀ)^a Cᵀ (the output side), each a list of factors
    ending at its free index."""

    def __init__(self):
        self._next = itertools.count()

    def index(self) -> int:
        return next(self._next)

    def u(self, power: int, out: int) -> list:
        factors, here = [], out
        for _ in range(power):
            nxt = self.index()
            factors.append(("W", (here, nxt)))
            here = nxt
        return factors + [("F", (here,))]

    def v(self, power: int, out: int) -> list:
        factors, here = [], out
        for _ in range(power):
            nxt = self.index()
            factors.append(("W", (nxt, here)))  # (Wᵀ)_{here, nxt} = W_{nxt, here}
            here = nxt
        return factors + [("C", (here,))]


def _matchings(slots: tuple) -> list[list[tuple]]:
    """Every perfect matching of `slots` as a list of pairs."""
    if not slots:
        return [[]]
    first, rest = slots[0], slots[1:]
    out = []
    for i, partner in enumerate(rest):
        for tail in _matchings(rest[:i] + rest[i + 1:]):
            out.append([(first, partner)] + tail)
    return out


@functools.lru_cache(maxsize=None)
def _matchings_of(count: int) -> tuple:
    return tuple(tuple(m) for m in _matchings(tuple(range(count))))


def index_classes(factors: tuple) -> Counter:
    """{k: number of matchings that leave k free index classes} (the variances not yet applied)."""
    by_block: dict[str, list] = {"C": [], "F": [], "W": []}
    labels = sorted({i for _, idx in factors for i in idx})
    position = {label: p for p, label in enumerate(labels)}
    for block, idx in factors:
        by_block[block].append(tuple(position[i] for i in idx))
    if any(len(v) % 2 for v in by_block.values()):
        return Counter()
    # each block's matchings as lists of index identifications
    unions = []
    for block in ("W", "C", "F"):
        entries = by_block[block]
        unions.append([[(entries[a][d], entries[b][d]) for a, b in m for d in range(len(entries[a]))]
                       for m in _matchings_of(len(entries))])
    counts: Counter = Counter()
    size = len(labels)
    for combo in itertools.product(*unions):
        parent = list(range(size))

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        classes = size
        for pairs in combo:
            for a, b in pairs:
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[ra] = rb
                    classes -= 1
        counts[classes] += 1
    return counts


def variances() -> dict:
    """Entry variances at initialization (NTK parameterization, n_x = 1): C and W have fan-in n."""
    return {"C": S.sigma["C"] ** 2 / S.width, "F": S.sigma["F"] ** 2, "W": S.sigma["W"] ** 2 / S.width}


def expectation(nets: list[Net]) -> sp.Expr:
    """E Σ nets, exactly, as a polynomial in n and 1/n."""
    var = variances()
    total = sp.Integer(0)
    cache: dict = {}
    for net in nets:
        key = _canonical(net.factors)
        if key not in cache:
            counts = index_classes(key)
            pairs = Counter(block for block, _ in key)
            prefactor = sp.Mul(*[var[b] ** (c // 2) for b, c in pairs.items()])
            cache[key] = sp.expand(prefactor * sum(count * S.width ** k for k, count in counts.items()))
        total += net.coefficient * cache[key]
    return sp.expand(total)


def _canonical(factors) -> tuple:
    """Relabel indices in order of appearance, so that equal networks share one count."""
    names: dict[int, int] = {}
    out = []
    for block, idx in factors:
        out.append((block, tuple(names.setdefault(i, len(names)) for i in idx)))
    return tuple(sorted(out))


def coefficients_in_inverse_width(expr: sp.Expr, order: int) -> list[sp.Expr]:
    """[c_0, c_1, …, c_order] with expr = c_0 + c_1/n + … + O(1/n^(order+1)); an expression that grows
    with n is an error (the quantity was not normalized)."""
    x = sp.Symbol("x", positive=True)  # x = 1/n
    series = sp.expand(expr.subs(S.width, 1 / x))
    poly = sp.Poly(series, x) if series.is_polynomial(x) else None
    if poly is None:
        raise ArithmeticError(f"the expectation grows with the width: {expr}")
    return [sp.factor(poly.coeff_monomial(x ** p)) for p in range(order + 1)]
