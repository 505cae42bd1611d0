"""Code generation from the derived expressions: one table of targets over one shared path.

Every target prints the same named functions (lag weights, their per-block parts, the NNGP
variance, the lag ratio, the total weight and mean lag for σ_W < 1) with SymPy's printers.
The numpy and torch modules for the default spec are committed in `derivations/generated/`
and a test regenerates them; the numeric side computes every theory prediction through them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
import types
from pathlib import Path

import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.utilities.codegen import C99CodeGen

from . import symbols as S
from .kernel import Derivation, derive
from .properties import properties
from .spec import DEFAULT, Spec, SpecError

GENERATED = Path(__file__).parent / "generated"
LAG_SIGMAS = tuple(S.sigma[b] for b in ("W", "F", "C", "D"))


@dataclasses.dataclass(frozen=True)
class Function:
    name: str
    expr: sp.Expr
    args: tuple[sp.Symbol, ...]
    doc: str


def functions(d: Derivation, props: dict | None = None) -> list[Function]:
    """The functions every target emits, in σ_W (not q), with lag deltas as Piecewise."""
    props = properties(d) if props is None else props
    rates = tuple(S.rate[b] for b in d.spec.trained) if d.spec.symbolic_rates else ()
    lag_args = (S.lag,) + LAG_SIGMAS + rates
    const_args = LAG_SIGMAS + rates

    def clean(e):
        return e.subs(S.q, S.sigma["W"] ** 2)

    out = [Function("lag_weights", clean(d.alpha.expr()), lag_args,
                    "α_j, the NTK weight on lag j: Θ = Σ_j α_j ⟨x_{k-j}, x'_{k'-j}⟩ / n_x.")]
    for block, part in d.blocks.items():
        out.append(Function(f"lag_weights_{block}", clean(part.expr()), lag_args, f"The part of α_j from training {block}."))
    out += [
        Function("initial_impulse_variance", clean(d.nngp.expr()), lag_args,
                 "n_x · Var L_j(0): variance of the initial impulse response (NNGP side)."),
        Function("lag_weight_ratio", clean(props["ratio"]), lag_args,
                 f"α_{{j+1}}/α_j for j ≥ {props['ratio_from_lag']} and σ_W > 0."),
        Function("total_weight", clean(props["total_weight"]), const_args, "Σ_j α_j, for σ_W < 1."),
        Function("mean_lag", clean(props["mean_lag"]), const_args, "Σ_j j α_j / Σ_j α_j (effective memory), for σ_W < 1."),
    ]
    return out


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


def expression_hash(funcs: list[Function]) -> str:
    return hashlib.sha256(sp.srepr([(f.name, f.expr) for f in funcs]).encode()).hexdigest()[:16]


def header(spec: Spec, funcs: list[Function], target: str, comment: str) -> str:
    lines = [
        f"Generated by `rnnmemory emit --target {target}` from the SymPy derivation in derivations/. Do not edit.",
        f"SymPy {sp.__version__}",
        f"spec: {json.dumps(spec.to_dict(), sort_keys=True)}",
        f"expression sha256: {expression_hash(funcs)}",
    ]
    return "".join(f"{comment} {line}\n" for line in lines)


def _python_body(printer, f: Function, prelude: str) -> str:
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


def _render_python(printer_factory, base_imports: str, prelude: str, extra=""):
    def render(spec: Spec, funcs: list[Function], target: str) -> dict[str, str]:
        imports = base_imports
        scalar = target == "numpy" and any(f.expr.has(sp.Sum) for f in funcs)
        printer = ScalarPrinter() if scalar else printer_factory()
        bodies = "\n\n".join(_python_body(printer, f, prelude) for f in funcs)
        if "functools." in bodies:  # Min/Max of lags (non-Gaussian kernels)
            imports = "import functools\n" + imports
        if "math." in bodies:  # Catalan numbers as Γ quotients (nprnn), π
            imports = "import math\n" + imports
        if "builtins." in bodies:  # finite sums
            imports = "import builtins\n" + imports
        inputs = extra(spec) if callable(extra) else extra
        text = header(spec, funcs, target, "#") + f'"""Lag weights for {spec.describe()}."""\n{imports}{inputs}\n\n' + bodies
        return {f"lag_weights_{target}.py": text}
    return render


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


def _torch_inputs(spec: Spec) -> str:
    # A non-Gaussian kernel has terms like sin(π(j − k)/2): (1/2)·j of an int64 tensor would be
    # float32, so its lags become float64 too (the Gaussian's module keeps its integer lags).
    lag_dtype = "torch.int64 if isinstance(v, int) else dtype" if spec.family == "gaussian" else "dtype"
    return _TORCH_INPUTS.replace("LAG_DTYPE", lag_dtype)


_TORCH_INPUTS = '''

def _as_tensors(*values):
    """Python numbers become tensors (torch.pow rejects float bases) with the dtype and device of
    the tensor arguments (float64 if none); tensors pass through."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    dtype = next((v.dtype for v in tensors if v.is_floating_point()), torch.float64)
    device = tensors[0].device if tensors else None
    return tuple(v if isinstance(v, torch.Tensor) else
                 torch.as_tensor(v, dtype=LAG_DTYPE, device=device) for v in values)
'''


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


def _render_latex(spec: Spec, funcs: list[Function], target: str) -> dict[str, str]:
    return {"lag_weights.tex": header(spec, funcs, target, "%") + latex_align(funcs, comments=True)}


def _render_c(spec: Spec, funcs: list[Function], target: str) -> dict[str, str]:
    gen = C99CodeGen(project="rnnmemory")
    routines = [gen.routine(f.name, as_code(f).expr, f.args, None) for f in funcs]
    files = gen.write(routines, "lag_weights", header=False, empty=True)
    top = header(spec, funcs, target, "//")
    return {name: top + code for name, code in files}


TARGETS = {
    "numpy": _render_python(NumPyPrinter, "import numpy\n", ""),
    "torch": _render_python(TorchCodePrinter, "import torch\n", "    {args} = _as_tensors({args})", _torch_inputs),
    "latex": _render_latex,
    "c": _render_c,
}


def family_functions(spec: Spec) -> list[Function]:
    """What every target emits for a non-Gaussian W: Θ_jk at every pair of lags, its diagonal α_j,
    the initial covariance and the moment rule, with the family's parameters (the attractor's p)
    as trailing arguments."""
    from .lag_kernel import derive_lag_kernel, other_lag
    from .moments import a, b, family_values

    lk = derive_lag_kernel(spec)
    if lk.general.has(sp.Function("mu"), sp.Function("muT")):
        raise SpecError(f"{spec.family} moments are measured from {spec.init_params['file']}, not a closed rule: "
                         "use `derive --format json --eval …` for the kernel's numbers")
    extra = tuple(family_values(spec))
    sigmas = LAG_SIGMAS + (tuple(S.rate[x] for x in spec.trained) if spec.symbolic_rates else ()) + extra
    j, k = S.lag, other_lag
    s = lk.first_lag

    def at_every_lag(general, corner, lags):
        pieces = []
        if corner is not None:
            pieces.append((corner, sp.And(*[sp.Eq(x, 0) for x in lags])))
        if s:
            pieces.append((0, sp.Or(*[x < s for x in lags])))
        return sp.Piecewise(*pieces, (general, True)) if pieces else general

    # m' (the second tangent's position) is not a name in code
    names = {S.position_other: sp.Symbol("m2", integer=True, nonnegative=True)}
    return [dataclasses.replace(f, expr=f.expr.xreplace(names)) for f in [
        Function("lag_kernel", at_every_lag(lk.general, lk.corner, (j, k)), (j, k) + sigmas,
                 "Θ_jk: Θ((x,k),(x',k')) = Σ_{j,j'} Θ_jj' x_{k-j} x'_{k'-j'} / n_x (n → ∞), for scalar lags j, k"
                 " (a geometric sum's closed form: σ_W ≠ 1, where σ_W = 1 is its limit)."),
        Function("lag_weights", at_every_lag(lk.diagonal, lk.corner, (j,)), (j,) + sigmas,
                 "α_j = Θ_jj, the kernel's weight on lag j."),
        Function("initial_impulse_covariance", at_every_lag(lk.nngp, lk.nngp_corner, (j, k)), (j, k) + sigmas,
                 "n_x Cov(L_j(0), L_k(0)) of the initial impulse response."),
        Function("moment", lk.moments[0], (a, b, S.sigma["W"]) + extra, "m(a, b) = τ(W^a (W^b)ᵀ) in the limit."),
    ]]


def render(spec: Spec, target: str, derivation: Derivation | None = None) -> dict[str, str]:
    """File name → text for one target."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r} (choose {', '.join(TARGETS)})")
    if spec.family != "gaussian":
        funcs = family_functions(spec)
        if target in ("c", "torch") and any(f.expr.has(sp.Sum) for f in funcs):
            raise SpecError(f"the {spec.family} kernel keeps finite sums over positions, which are emitted as "
                             "scalar numpy code only: use --target numpy (or latex)")
        return TARGETS[target](spec, funcs, target)
    d = derive(spec) if derivation is None else derivation
    return TARGETS[target](spec, functions(d), target)


_MODULES: dict[tuple[Spec, str], types.ModuleType] = {}


def _module(spec: Spec, target: str, derivation: Derivation | None) -> types.ModuleType:
    key = (spec, target)
    if key not in _MODULES:
        if spec == DEFAULT:
            _MODULES[key] = importlib.import_module(f"derivations.generated.lag_weights_{target}")
        else:
            (source,) = render(spec, target, derivation).values()
            module = types.ModuleType(f"rnnmemory_generated_{target}_{spec.digest()}")
            exec(compile(source, f"<generated {target} for {spec.digest()}>", "exec"), module.__dict__)
            _MODULES[key] = module
    return _MODULES[key]


def numpy_module(spec: Spec = DEFAULT, derivation: Derivation | None = None) -> types.ModuleType:
    """The generated numpy functions for a spec (the committed module for the default spec)."""
    return _module(spec, "numpy", derivation)


def torch_module(spec: Spec = DEFAULT, derivation: Derivation | None = None) -> types.ModuleType:
    """The generated torch functions for a spec; they accept floats or tensors."""
    return _module(spec, "torch", derivation)


# PLRNN (derivations/plrnn.py): matrix functions of symbolic size M and scalar bounds, printed by
# the same body writer as the lag weights, for the targets below.


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


def _shape_prelude(f: Function) -> str:
    """Bind each symbolic size an identity matrix needs from the first argument with that many rows."""
    sizes = {s for e in f.expr.atoms(sp.Identity) for s in e.shape if isinstance(s, sp.Symbol)}
    lines = []
    for size in sorted(sizes, key=str):
        arg = next(a for a in f.args if isinstance(a, sp.MatrixSymbol) and a.rows == size)
        lines.append(f"    {size} = numpy.shape({arg.name})[0]")
    return "\n".join(lines)


def _guard_special_values(*pieces):
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


def plrnn_functions() -> list[Function]:
    """What every PLRNN target emits: region Jacobian, fixed point of a region, the block norm
    bound and the regularized product bound."""
    from .plrnn import code_functions

    return [Function(*f) for f in code_functions()]


def _plrnn_header(funcs: list[Function], target: str, comment: str) -> str:
    lines = [
        f"Generated by derivations.emit.render_plrnn({target!r}) from the SymPy derivation in derivations/plrnn.py. Do not edit.",
        f"SymPy {sp.__version__}",
        f"expression sha256: {expression_hash(funcs)}",
    ]
    return "".join(f"{comment} {line}\n" for line in lines)


def _render_plrnn_numpy(funcs: list[Function], target: str) -> dict[str, str]:
    printer = MatrixNumPyPrinter()
    funcs = [dataclasses.replace(f, expr=f.expr.replace(sp.Piecewise, _guard_special_values)) for f in funcs]
    bodies = "\n\n".join(_python_body(printer, f, _shape_prelude(f)) for f in funcs)
    imports = ("import math\n" if "math." in bodies else "") + "import numpy\n"
    doc = '"""PLRNN z_t = A z_{t-1} + W relu(z_{t-1}) + h + C s_t: regions, fixed points, Jacobian-product bounds."""\n'
    return {f"plrnn_{target}.py": _plrnn_header(funcs, target, "#") + doc + imports + "\n\n" + bodies}


def _latex_display(f: Function) -> Function:
    """diag(v) for SymPy's DiagMatrix(v), which LaTeX would print as its class name."""
    expr = f.expr.replace(sp.DiagMatrix, lambda v: sp.MatrixSymbol(
        rf"\operatorname{{diag}}({sp.latex(v)})", v.rows, v.rows)) if isinstance(f.expr, sp.MatrixExpr) else f.expr
    return dataclasses.replace(f, expr=expr)


def _render_plrnn_latex(funcs: list[Function], target: str) -> dict[str, str]:
    return {"plrnn.tex": _plrnn_header(funcs, target, "%") + latex_align([_latex_display(f) for f in funcs], comments=True)}


PLRNN_TARGETS = {"numpy": _render_plrnn_numpy, "latex": _render_plrnn_latex}


def render_plrnn(target: str) -> dict[str, str]:
    """File name → text of the PLRNN functions for one target."""
    if target not in PLRNN_TARGETS:
        raise ValueError(f"unknown PLRNN target {target!r} (choose {', '.join(PLRNN_TARGETS)})")
    return PLRNN_TARGETS[target](plrnn_functions(), target)


_PLRNN_MODULE: list[types.ModuleType] = []


def plrnn_module() -> types.ModuleType:
    """The emitted numpy PLRNN functions, rendered and loaded once per process."""
    if not _PLRNN_MODULE:
        (source,) = render_plrnn("numpy").values()
        module = types.ModuleType("rnnmemory_generated_plrnn_numpy")
        exec(compile(source, "<generated plrnn numpy>", "exec"), module.__dict__)
        _PLRNN_MODULE.append(module)
    return _PLRNN_MODULE[0]
