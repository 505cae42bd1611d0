"""SymPy's printers aimed at the toolkit's targets, and the rewrites every printed function gets.

Printers (one per target language, sharing SymPy's NumPy printer as their base):
  ScalarPrinter        numpy code for kernels that keep finite sums: a Piecewise is a conditional
                       expression, so only the branch taken is evaluated
  TorchCodePrinter     the NumPy printer aimed at torch (a Piecewise is nested torch.where)
  MatrixNumPyPrinter   numpy for matrix expressions of symbolic size (Identity, products, solves)
Rewrites (`as_code`, `guard_special_values`): numpy.select and torch.where evaluate every branch,
so a lag-dependent Piecewise's general branch is evaluated where it is defined (no inf, no NaN
gradients), and δ_{j,0} becomes a Piecewise. `python_function` writes one function's body (common
subexpressions first); `latex_align` is the one LaTeX path (`emit` and `derive --format latex`).
"""
from __future__ import annotations

import dataclasses
import math

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from . import symbols as S


@dataclasses.dataclass(frozen=True)
class Function:
    """One emitted function: its name, the derived expression, its arguments and its docstring."""
    name: str
    expr: sp.Expr
    args: tuple[sp.Symbol, ...]
    doc: str


def _guard_general_branch(*pieces):
    """numpy.select and torch.where evaluate every branch: evaluate a lag Piecewise's general
    branch at a lag where it is defined (σ_W^{2j-2} at j = 0 would give inf, and NaN gradients)."""
    special = [c.rhs for _, c in pieces[:-1] if isinstance(c, sp.Eq) and c.lhs == S.lag]
    if not special or len(special) != len(pieces) - 1:
        return sp.Piecewise(*pieces)
    safe = max(special) + 1
    general = pieces[-1][0].subs(S.lag, sp.Piecewise((safe, S.lag < safe), (S.lag, True)))
    return sp.Piecewise(*pieces[:-1], (general, True))


def _exact_small_lags(expr: sp.Expr) -> sp.Expr:
    """Where a power of σ_W has a negative exponent at small lags (j σ_W^{2j-2} at j = 0), the form
    is 0·∞ at σ_W = 0 although the weight is finite: give those lags their exact values."""
    specials, general = {}, expr
    if isinstance(expr, sp.Piecewise) and all(isinstance(c, sp.Eq) and c.lhs == S.lag for _, c in expr.args[:-1]):
        specials = {int(c.rhs): e for e, c in expr.args[:-1]}
        general = expr.args[-1][0]
    if not general.has(S.lag):
        return expr
    # Monomials with one combined power of σ_W each: σ_W^{2j} (j σ_C²/σ_W²) becomes j σ_C² σ_W^{2j-2}.
    general = sp.powsimp(sp.expand(general), force=True)
    safe = 0
    for power in general.atoms(sp.Pow):
        if power.base == S.sigma["W"] and power.exp.has(S.lag) and power.exp.free_symbols <= {S.lag} \
                and power.exp.is_polynomial(S.lag):
            exponent = sp.Poly(power.exp, S.lag)
            if exponent.degree() == 1:
                slope, offset = exponent.all_coeffs()
                safe = max(safe, int(sp.ceiling(-offset / slope)))
    for k in range(safe):
        specials.setdefault(k, sp.factor(general.subs(S.lag, k)))
    if not specials:
        return general
    return sp.Piecewise(*[(v, sp.Eq(S.lag, k)) for k, v in sorted(specials.items())], (general, True))


def as_code(f: Function) -> Function:
    """What code printers get: exact small lags, δ_{j,0} as a Piecewise, guarded general branches."""
    expr = f.expr
    if not expr.has(sp.Sum):  # a guarded lag would be a float, and range() needs an int: sums take scalar lags
        expr = _exact_small_lags(expr).replace(sp.Piecewise, _guard_general_branch)
    expr = expr.replace(sp.KroneckerDelta, lambda a, b: sp.Piecewise((1, sp.Eq(a, b)), (0, True)))
    return dataclasses.replace(f, expr=expr)


def python_function(printer, f: Function, prelude: str) -> str:
    f = as_code(f)
    # common subexpressions would lift a sum's index out of its sum (and cse cannot take matrix expressions)
    plain = f.expr.has(sp.Sum) or isinstance(f.expr, sp.MatrixExpr)
    replacements, (reduced,) = ([], (f.expr,)) if plain else sp.cse([f.expr], optimizations="basic")
    args = ", ".join(a.name for a in f.args)
    lines = [f"def {f.name}({args}):", f'    """{f.doc}"""']
    if prelude:
        lines.append(prelude.format(args=args))
    lines += [f"    {printer.doprint(sym)} = {printer.doprint(e)}" for sym, e in replacements]
    lines.append(f"    return {printer.doprint(reduced)}")
    return "\n".join(lines) + "\n"


class ScalarPrinter(NumPyPrinter):
    """For kernels that keep finite sums (range() needs integer lags): scalar code in which a
    Piecewise is a conditional expression, so only the branch taken is evaluated."""

    def _print_Piecewise(self, expr):
        *pieces, (last, cond) = expr.args
        out = self._print(last) if cond == sp.true else 'float("nan")'
        if cond != sp.true:
            pieces.append((last, cond))
        for value, condition in reversed(pieces):
            out = f"(({self._print(value)}) if {self._print(condition)} else ({out}))"
        return out

    def _print_Relational(self, expr):
        return f"({self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)})"

    def _print_And(self, expr):
        return "(" + " and ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr):
        return "(" + " or ".join(self._print(a) for a in expr.args) + ")"


class TorchCodePrinter(NumPyPrinter):
    """SymPy's NumPy printer aimed at torch. (sympy.printing.pytorch imports torch itself, about
    2 s, and `emit` must not import torch.) Piecewise becomes nested torch.where; comparisons are
    elementwise operators."""

    _module = "torch"
    printmethod = "_torchcode"
    # the NumPy printer's tables name numpy itself: functions become torch's, constants math's
    _kf = {k: "torch." + v.split(".", 1)[1] for k, v in NumPyPrinter._kf.items()}
    _kc = {k: "math." + v.split(".", 1)[1] for k, v in NumPyPrinter._kc.items() if hasattr(math, v.split(".", 1)[1])}

    def _print_Piecewise(self, expr):
        *pieces, (last, cond) = expr.args
        out = self._print(last) if cond == sp.true else 'float("nan")'
        if cond != sp.true:
            pieces.append((last, cond))
        for value, condition in reversed(pieces):
            out = f"torch.where({self._print(condition)}, {self._print(value)}, {out})"
        return out

    def _print_Relational(self, expr):
        return f"({self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)})"

    def _print_Max(self, expr, op="maximum"):
        out = f"torch.as_tensor({self._print(expr.args[0])})"
        for arg in expr.args[1:]:
            out = f"torch.{op}({out}, torch.as_tensor({self._print(arg)}))"
        return out

    def _print_Min(self, expr):
        return self._print_Max(expr, "minimum")

    def _print_And(self, expr):
        return "(" + " & ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr):
        return "(" + " | ".join(self._print(a) for a in expr.args) + ")"


def latex_align(funcs: list[Function], comments: bool = False) -> str:
    """One align environment of the functions' equations: the one LaTeX path (emit and derive)."""
    rows = []
    for f in funcs:
        lhs = {"lag_weights": r"\alpha_j", "initial_impulse_variance": r"n_x \operatorname{Var} L_j(0)",
               "lag_weight_ratio": r"\frac{\alpha_{j+1}}{\alpha_j}", "total_weight": r"\sum_j \alpha_j",
               "mean_lag": r"\bar{j}", "lag_kernel": r"\Theta_{jk}", "moment": r"m(a, b)",
               "initial_impulse_covariance": r"n_x \operatorname{Cov}(L_j(0), L_k(0))",
               "region_jacobian": r"J_D", "fixed_point": r"z^*_D",
               "block_norm_bound": r"\sigma_{\max}\begin{pmatrix} 1 & 0 \\ \ell & \rho \end{pmatrix}",
               "regularized_product_bound": r"B_n(x, y)"}.get(f.name, r"\alpha_j^{(%s)}" % f.name.rsplit("_", 1)[-1])
        rows.append((f"% {f.doc}\n" if comments else "") + f"{lhs} &= {sp.latex(f.expr)}")
    return "\\begin{align}\n" + " \\\\\n".join(rows) + "\n\\end{align}\n"


class MatrixNumPyPrinter(NumPyPrinter):
    """NumPy code for matrix expressions of symbolic size: Identity(M) is numpy.eye(M) with M bound
    from an argument's shape, products are `@`, and inverse-times-vector is a linear solve."""

    def _print_Identity(self, expr):
        return f"{self._module}.eye({self._print(expr.rows)})"

    def _print_MatMul(self, expr):
        coeff, factors = expr.as_coeff_matrices()
        if len(factors) == 2 and isinstance(factors[0], sp.Inverse):
            body = f"{self._module}.linalg.solve({self._print(factors[0].arg)}, {self._print(factors[1])})"
        else:
            body = "(" + " @ ".join(self._print(f) for f in factors) + ")"
        return body if coeff == 1 else f"-{body}" if coeff == -1 else f"{self._print(coeff)}*{body}"


def shape_prelude(f: Function) -> str:
    """Bind each symbolic size an identity matrix needs from the first argument with that many rows."""
    sizes = {s for e in f.expr.atoms(sp.Identity) for s in e.shape if isinstance(s, sp.Symbol)}
    lines = []
    for size in sorted(sizes, key=str):
        arg = next(a for a in f.args if isinstance(a, sp.MatrixSymbol) and a.rows == size)
        lines.append(f"    {size} = numpy.shape({arg.name})[0]")
    return "\n".join(lines)


def guard_special_values(*pieces):
    """A Piecewise (value, Eq(v, c)) … (general, True): numpy.select evaluates every branch, so the
    general one is evaluated at a safe v (0, or past the special values) where v is special (the
    geometric sum (1 − yⁿ)/(1 − y) at y = 1 would be 0/0, with warnings)."""
    special = [c for _, c in pieces[:-1] if isinstance(c, sp.Eq) and c.lhs.is_Symbol and c.rhs.is_number]
    if not special or len(special) != len(pieces) - 1 or len({c.lhs for c in special}) != 1:
        return sp.Piecewise(*pieces)
    var, values = special[0].lhs, [c.rhs for c in special]
    safe = 0 if 0 not in values else max(values) + 1
    guarded = sp.Piecewise(*[(safe, c) for c in special], (var, True))
    return sp.Piecewise(*pieces[:-1], (pieces[-1][0].xreplace({var: guarded}), True))


def latex_display(f: Function) -> Function:
    """diag(v) for SymPy's DiagMatrix(v), which LaTeX would print as its class name."""
    expr = f.expr.replace(sp.DiagMatrix, lambda v: sp.MatrixSymbol(
        rf"\operatorname{{diag}}({sp.latex(v)})", v.rows, v.rows)) if isinstance(f.expr, sp.MatrixExpr) else f.expr
    return dataclasses.replace(f, expr=expr)


