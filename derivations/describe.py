"""What `rnnmemory derive` prints: the derivation as text, LaTeX or JSON-ready data."""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

from . import symbols as S
from .emit import functions
from .kernel import Derivation
from .lag_kernel import other_lag
from .printers import as_code, latex_align
from .properties import properties

NORMALIZATION = "Θ((x,k,a),(x',k',b)) = δ_ab Σ_j α_j ⟨x_{k-j}, x'_{k'-j}⟩ / n_x  (n → ∞; cross-lag terms vanish)"
EQUIVALENT_MODEL = ("gradient flow on the impulse response: dL_j/dt = -α_j ∂ℒ/∂L_j, "
                    "from L_j(0) with iid entries of variance n_x⁻¹·nngp_j; ŷ_k = Σ_j L_j x_{k-j}")


def _in_sigma(expr):
    return expr.subs(S.q, S.sigma["W"] ** 2) if isinstance(expr, sp.Basic) else expr


def summary(d: Derivation) -> dict:
    """Expressions for n_x = n_y = 1 in the symbols j, sigma_*, (lambda_*), as SymPy-parsable strings."""
    props = {k: _in_sigma(v) for k, v in properties(d).items()}
    return {
        "spec": d.spec.to_dict(),
        "normalization": NORMALIZATION,
        "alpha": sp.sstr(d.alpha.expr()),
        "blocks": {b: sp.sstr(f.expr()) for b, f in d.blocks.items()},
        "nngp": sp.sstr(d.nngp.expr()),
        "cross_lag": sp.sstr(d.cross_lag),
        "latex": sp.latex(d.alpha.expr()),
        "equivalent_model": EQUIVALENT_MODEL,
        "properties": {k: (v if isinstance(v, (str, int)) or v is None else sp.sstr(v)) for k, v in props.items()},
        "_props": props,
    }


def evaluate(d: Derivation, values: dict[str, float], lags: range) -> list[dict]:
    """α_j and the NNGP variance at the given σ (and λ): the emitted functions' expressions, evaluated
    by SymPy's numpy lambdify with the same common subexpressions, so the numbers are the generated
    code's without running it."""
    funcs = {f.name: as_code(f) for f in functions(d)}
    j = np.arange(lags.start, lags.stop)

    def numeric(name: str) -> np.ndarray:
        f = funcs[name]
        fn = sp.lambdify(f.args, f.expr, "numpy", cse=lambda expr: sp.cse(expr, optimizations="basic", list=False))
        with np.errstate(over="ignore", invalid="ignore"):  # σ_W ≫ 1 at long lags: inf, printed as such
            return np.broadcast_to(fn(j, *(values[a.name] for a in f.args[1:])), j.shape)

    alpha, nngp = numeric("lag_weights"), numeric("initial_impulse_variance")
    return [{"lag": int(k), "alpha": float(a), "nngp": float(v)} for k, a, v in zip(j, alpha, nngp)]


def property_values(props: dict, values: dict[str, float]) -> dict[str, float | None]:
    """Numbers for the σ-only properties at the evaluation point (None where they do not apply)."""
    subs = {sp.Symbol(k, positive=True): v for k, v in values.items()}
    out = {}
    for name in ("decreasing_below_sigma_W", "peak_crossing", "total_weight", "mean_lag"):
        expr = props.get(name)
        value = complex(expr.subs(subs).evalf()) if isinstance(expr, sp.Basic) else complex("nan")
        out[name] = float(value.real) if np.isfinite(value.real) and abs(value.imag) < 1e-12 else None
    crossing = out.pop("peak_crossing")
    if values.get("sigma_W", 1) >= 1:  # the series diverge and α_j has no interior peak
        out["total_weight"] = out["mean_lag"] = None
        out["peak_lag"] = None
    else:  # α_j rises while j < j_c, so it peaks at ceil(j_c), or at the first weighted lag
        first = props["decreasing_from_lag"]
        out["peak_lag"] = max(first, math.ceil(crossing)) if crossing is not None else first
    return out


def text(d: Derivation, data: dict, rows: list[dict] | None, numbers: dict | None) -> str:
    p = data["properties"]
    lines = [f"spec: {d.spec.describe()}", f"kernel: {NORMALIZATION}", "", "derivation:"]
    lines += [f"  {title}: {body}" for title, body in d.steps]
    lines += ["", f"alpha_j = {data['alpha']}"]
    lines += [f"  from {b}: {e}" for b, e in data["blocks"].items()]
    lines += [f"n_x Var L_j(0) = {data['nngp']}", f"equivalent model: {EQUIVALENT_MODEL}", "", "properties:"]
    lines += [
        f"  alpha_(j+1)/alpha_j = {p['ratio']}  (j >= {p['ratio_from_lag']})",
        f"  strictly decreasing iff sigma_W < {p['decreasing_below_sigma_W']}  ({p['decreasing_reason']})",
        f"  otherwise increasing while j < j_c = {p['peak_crossing']} (peak at ceil(j_c)); (1 - sigma_W^2) j_c -> {p['peak_edge']} as sigma_W -> 1",
        f"  sum_j alpha_j = {p['total_weight']}  (sigma_W < 1)",
        f"  mean lag = {p['mean_lag']}  (sigma_W < 1)",
        f"  at sigma_W = 1: alpha_j = {p['alpha_at_sigma_W_1']}; (1 - sigma_W^2) * mean lag -> {p['mean_lag_edge']}",
        f"  kernel norm of the teacher rho^j: sum_j rho^(2j)/alpha_j = {p['kernel_norm_decay']}  (rho < sigma_W)",
    ]
    if rows is not None:
        lines += ["", f"{'lag':>4} {'alpha':>14} {'n_x Var L(0)':>14}"]
        lines += [f"{r['lag']:>4} {r['alpha']:>14.6g} {r['nngp']:>14.6g}" for r in rows]
        lines += [f"{k} = {v:.6g}" if v is not None else f"{k}: n/a (sigma_W >= 1)" for k, v in numbers.items()]
        if d.alpha.special:
            lines.append(f"(peak_lag is that of the general form; lag(s) {sorted(d.alpha.special)} carry extra terms such as sigma_D^2)")
    return "\n".join(lines)


def latex(d: Derivation, data: dict) -> str:
    """The derived functions as one align environment, printed as `emit --target latex` prints them."""
    return latex_align(functions(d, data["_props"])).rstrip("\n")


# ---- any initializer family: the full lag kernel ----

LAG_KERNEL_NORMALIZATION = ("Θ((x,k,a),(x',k',b)) = δ_ab Σ_{j,j'} Θ_jj' ⟨x_{k-j}, x'_{k'-j'}⟩ / n_x  (n → ∞), "
                            "m(a,b) = τ(W^a (W^b)ᵀ), mT(a,b) = τ((W^a)ᵀ W^b)")


def lag_kernel_summary(lk) -> dict:
    """The lag kernel's expressions (SymPy-parsable strings in j, k and the family's parameters)."""
    from .lag_properties import separable_rank

    rank = separable_rank(lk)
    where = f"j, k >= {lk.first_lag}" + ("" if lk.corner is None else "; Theta_00 given apart")
    return {
        "lag_kernel": sp.sstr(lk.general),
        "lag_kernel_holds_for": where,
        "lag_kernel_corner": None if lk.corner is None else sp.sstr(lk.corner),
        "lag_kernel_generic": sp.sstr(lk.generic),
        "lag_kernel_blocks": {b: sp.sstr(e) for b, e in lk.blocks.items()},
        "moments": {"m": sp.sstr(lk.moments[0]), "mT": sp.sstr(lk.moments[1])},
        "initial_covariance": sp.sstr(lk.nngp),
        "initial_covariance_corner": None if lk.nngp_corner is None else sp.sstr(lk.nngp_corner),
        "rank": None if rank is None else {"rank": rank[0], "span": [sp.sstr(f) for f in rank[1]]},
    }


def family_summary(lk) -> dict:
    data = {"spec": lk.spec.to_dict(), "normalization": LAG_KERNEL_NORMALIZATION,
            "alpha": sp.sstr(lk.diagonal), "nngp": sp.sstr(lk.nngp.subs(other_lag, S.lag)),
            "latex": sp.latex(lk.general)}
    data.update(lag_kernel_summary(lk))
    return data


def family_text(lk, data: dict, found: dict | None) -> str:
    lines = [f"spec: {lk.spec.describe()}", f"kernel: {LAG_KERNEL_NORMALIZATION}", "",
             f"moments of W: m(a,b) = {data['moments']['m']}", f"              mT(a,b) = {data['moments']['mT']}",
             "", f"derivation (moments undetermined): Theta_jk = {data['lag_kernel_generic']}", ""]
    lines += [f"Theta_jk = {data['lag_kernel']}  ({data['lag_kernel_holds_for']})"]
    if data["lag_kernel_corner"] is not None:
        lines.append(f"Theta_00 = {data['lag_kernel_corner']}")
    lines += [f"  from {b}: {e}" for b, e in data["lag_kernel_blocks"].items()]
    lines += [f"alpha_j = Theta_jj = {data['alpha']}",
              f"n_x Cov(L_j(0), L_k(0)) = {data['initial_covariance']}  ({data['lag_kernel_holds_for'].split(';')[0]})"]
    if data["initial_covariance_corner"] is not None:
        lines.append(f"n_x Var L_0(0) = {data['initial_covariance_corner']}")
    rank = data["rank"]
    if rank is not None:
        span = ", ".join(rank["span"])
        lines.append(f"rank of Theta (general form): {rank['rank']}; in the kernel regime the impulse response moves "
                     f"only within span{{{span}}}" + (" plus e_0 (the feed-through)" if data["lag_kernel_corner"] else ""))
    if found is not None:
        n = found["numbers"]
        lags = [r["lag"] for r in found["rows"]]
        lines += ["", f"{'lag':>4} {'alpha':>14} {'n_x Var L(0)':>14}"]
        lines += [f"{r['lag']:>4} {r['alpha']:>14.6g} {r['nngp']:>14.6g}" for r in found["rows"]]
        lines += ["", f"Theta_jk over lags {lags[0]}..{lags[-1]}:"]
        lines += ["  " + " ".join(f"{x:10.4g}" for x in row) for row in found["kernel"]]
        fmt_ = lambda v: "n/a" if v is None else f"{v:.6g}"  # noqa: E731
        lines += [
            "", f"spectral radius of W: {fmt_(n['spectral_radius'])}",
            f"alpha_j over the lags shown: peak at lag {n['peak_lag']}, decreasing from lag {n['decreasing_from_lag']}, "
            f"half-life (first lag after the peak at half its value) {n['half_life']}",
            f"sum_j alpha_j = {fmt_(n['total_weight'])}, mean lag = {fmt_(n['mean_lag'])}  (all lags; n/a when the series diverges)",
            f"numerical rank of Theta on these lags: {n['numerical_rank']}",
            "leading eigenvectors of Theta (the impulse responses gradient descent learns first):",
        ]
        lines += [f"  {w:10.4g}: " + " ".join(f"{x:+.3f}" for x in v) for w, v in zip(found["eigenvalues"], found["eigenvectors"])]
    return "\n".join(lines)


def family_latex(lk) -> str:
    rows = [rf"\Theta_{{jk}} &= {sp.latex(lk.general)}", rf"\alpha_j &= {sp.latex(lk.diagonal)}",
            rf"m(a,b) &= {sp.latex(lk.moments[0])}"]
    if lk.corner is not None:
        rows.insert(1, rf"\Theta_{{00}} &= {sp.latex(lk.corner)}")
    return "\\begin{align}\n" + " \\\\\n".join(rows) + "\n\\end{align}"


def derive_output(spec, fmt: str, point: dict | None, lags: range) -> str:
    """What `rnnmemory derive` prints for a spec: 'text', 'latex' or 'json', with the values at
    `point` (σ's, and λ's with symbolic rates) over `lags` when given."""
    import json

    from .kernel import derive
    from .spec import SpecError

    if spec.family != "gaussian":
        return _family_output(spec, fmt, point, lags)
    d = derive(spec)
    data = summary(d)
    rows = numbers = None
    if point is not None:
        missing = [f"lambda_{b}" for b in spec.trained if spec.symbolic_rates and f"lambda_{b}" not in point]
        if missing:
            raise SpecError(f"--eval needs {', '.join(missing)} with --symbolic-rates")
        rows = evaluate(d, point, lags)
        numbers = property_values(data["_props"], point)
    if fmt == "json":
        data.pop("_props")
        if rows is not None:
            data.update(eval=point, values=rows, property_values=numbers)
        return json.dumps(data, indent=2)
    return latex(d, data) if fmt == "latex" else text(d, data, rows, numbers)


def _family_output(spec, fmt: str, point: dict | None, lags: range) -> str:
    """derive for a non-Gaussian W: the full lag kernel Θ_jk and its properties."""
    import json

    from .lag_kernel import derive_lag_kernel
    from .lag_properties import evaluate as evaluate_family
    from .spec import SpecError

    if spec.symbolic_rates:
        raise SpecError("--symbolic-rates is implemented for the Gaussian family only; give --rate values")
    lk = derive_lag_kernel(spec)
    data = family_summary(lk)
    found = evaluate_family(lk, point, lags) if point is not None else None
    if fmt == "json":
        if found is not None:
            data.update(eval=point, values=found["rows"], kernel=found["kernel"], property_values=found["numbers"],
                        eigenvalues=found["eigenvalues"], eigenvectors=found["eigenvectors"])
        return json.dumps(data, indent=2)
    return family_latex(lk) if fmt == "latex" else family_text(lk, data, found)


def finite_width_output(spec, fmt: str, lags: int) -> str:
    """The 1/n terms of `finite_width.order_one` at lags 0 … lags−1, as 'text', 'latex' or 'json'."""
    import json

    from .finite_width import order_one

    terms = order_one(spec, lags)
    titles = {"static": ("Mean at initialization", "E Θ_jk(0) = δ_jk α_j + S_jk / n + O(1/n²)", "S"),
              "first_step": ("One gradient step, rate η, residual r_l = ∂ℒ/∂L_l (l < {lags})",
                             "E[Θ_jk(1) − Θ_jk(0)] = M_jk / n + O(1/n²) + O(η⁴)", "M")}
    if fmt == "json":
        return json.dumps({"order": 1, "lags": lags, **{name: {f"{j},{k}": str(e) for (j, k), e in found.items()}
                                                        for name, found in terms.items()}}, indent=2)
    if fmt == "latex":
        rows = []
        for name, found in terms.items():
            symbol = titles[name][2]
            rows += [f"{symbol}_{{{j}{k}}} &= {sp.latex(e)}" for (j, k), e in found.items()]
        return "\\begin{align}\n" + " \\\\\n".join(rows) + "\n\\end{align}"
    lines = [f"Finite width, order 1/n (exact Wick contractions, W tied across time; lags 0..{lags - 1}, "
             "pairs j ≤ k, zero entries left out):"]
    for name, found in terms.items():
        title, law, symbol = titles[name]
        lines += [f"  {title.format(lags=lags)}:", f"    {law}"]
        lines += [f"    {symbol}_{j}{k} = {e}" for (j, k), e in found.items()] or ["    (no 1/n term)"]
    return "\n".join(lines)
