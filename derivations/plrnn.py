"""Piecewise-linear RNN (paper 3): linear regions, fixed points, cycles and Jacobian products.

    z_t = A z_{t−1} + W relu(z_{t−1}) + h + C s_t,      A diagonal, W off-diagonal, M units.

Where the active units are d ∈ {0,1}^M (d_i = 1 ⇔ z_i > 0), relu(z) = D z with D = diag(d), so the
map is affine on each of the 2^M regions. From that substitution into the model's equation SymPy
derives (`region_map`, `region_jacobian_symbolic`, `jacobian_formula`, `fixed_point_formula`):

    J_D = A + W D                 the Jacobian, one per region; the input C s_t drops out of it,
    z*_D = (I − A − W D)⁻¹ h      a fixed point of the autonomous map if I − J_D is invertible and
                                  z*_D lies in its own region (z*_i > 0 where d_i = 1, ≤ 0 elsewhere),

and k-cycles by composing the region maps along a region sequence (`cycle_symbolic`,
`affine_composition_step`).

Regularized units (the rPLRNN): with the first M_reg units at A_ii = 1, W row i = 0 (and h_i = 0, so
they only integrate the input), every Jacobian J_s = ∂z_s/∂z_{s−1} is [[I, 0], [X_s, Y_s]] in the order (regularized,
rest), X_s = W_{rest,reg} D_reg, Y_s = A_rest + W_{rest,rest} D_rest (`jacobian_blocks`), and every
product ∂z_T/∂z_t = J_T ⋯ J_{t+1} = [[I, 0], [L, R]] keeps the identity block (`jacobian_product_blocks`, `product_recursion`). What follows, as
this toolkit states it (the paper states two theorems about these products; their wording could not be
read, so these statements and their hypotheses are the toolkit's own):
  - lower bound: ‖J_T ⋯ J_{t+1}‖₂ ≥ 1 at any distance T − t (`lower_bound`); a loss gradient carried by
    the regularized units of z_T reaches z_t unchanged, ∂L/∂z_t = ∂L/∂z_T when (∂L/∂z_T)_rest = 0, and
    in general ‖∂L/∂z_t‖ ≥ ‖g_reg‖ − ‖L‖₂‖g_rest‖, g = ∂L/∂z_T (`gradient_blocks`); the unconditional
    ‖∂L/∂z_t‖ ≥ ‖g_reg‖ does not hold (`gradient_counterexample`);
  - upper bound: ‖J_T ⋯ J_{t+1}‖₂ ≤ σ_max([[1, 0], [ℓ_n, ρ_n]]) with ℓ_n, ρ_n from the norm recursion
    of the blocks (`norm_recursion`, `block_norm_bound`, `regularized_product_bound`); for
    y = max|A_rest| + ‖W_rest,rest‖₂ < 1 it stays below √(1 + x²/(1 − y)²), x = ‖W_rest,reg‖₂, at
    every T (`uniform_limit`): gradients neither vanish nor explode. Without regularization only
    ‖J_T ⋯ J_{t+1}‖₂ ≤ (max_i |A_ii| + ‖W‖₂)^{T−t} holds (‖D‖₂ ≤ 1, triangle inequality).

Link to the lag kernel: the linear analogue of regularized units is the `attractor` initializer
family (derivations.families, derivations.moments): a fraction p of units with self-weight 1 and no
recurrent input in a linear RNN, whose moment τ(W^a (W^b)ᵀ) = p + (1 − p) δ_ab σ_W^{2a} keeps the
floor p at every lag — the linear counterpart of the identity block here. The family is block
diagonal, which is the case X_s = 0 (the attractor units feed nothing into the others); the PLRNN
allows X_s ≠ 0.

`numerics.plrnn.regions` evaluates these expressions for trained models through the code emitted
from them (`rnnmemory emit --content plrnn`, committed as `derivations/generated/plrnn_numpy.py`).
"""
from __future__ import annotations

import dataclasses
import functools

import sympy as sp

# ---------------------------------------------------------------------------------------------------
# The model in symbols (small M: every entry a symbol)


@dataclasses.dataclass(frozen=True)
class SymbolicPLRNN:
    a: sp.Matrix  # A's diagonal
    W: sp.Matrix  # off-diagonal: W_ii = 0
    h: sp.Matrix
    u: sp.Matrix  # the input drive C s_t
    z: sp.Matrix
    step: sp.Matrix  # A z + W relu(z) + h + u, relu(z_i) = Max(z_i, 0)


def relu(x):
    return sp.Max(x, 0)


@functools.cache
def model(M: int) -> SymbolicPLRNN:
    """The PLRNN step for M units with every parameter a symbol."""
    a = sp.Matrix(sp.symbols(f"a0:{M}", real=True))
    W = sp.Matrix(M, M, lambda i, j: 0 if i == j else sp.Symbol(f"w_{i}_{j}", real=True))
    h = sp.Matrix(sp.symbols(f"h0:{M}", real=True))
    u = sp.Matrix(sp.symbols(f"u0:{M}", real=True))
    z = sp.Matrix(sp.symbols(f"z0:{M}", real=True))
    step = sp.diag(*a) * z + W * z.applyfunc(relu) + h + u
    return SymbolicPLRNN(a, W, h, u, z, step)


def region_symbols(M: int) -> tuple[sp.Symbol, ...]:
    """d_i ∈ {0, 1}, for results that hold in every region at once."""
    return sp.symbols(f"d0:{M}", integer=True, nonnegative=True)


def relu_on_region(x, active) -> sp.Expr:
    """relu(x) on the side of 0 that `active` names, evaluated by SymPy under that sign assumption
    (x > 0: x; x ≤ 0: 0); a symbolic d gives d·(active value) + (1 − d)·(inactive value) = d x."""
    on, off = sp.Symbol("xi", positive=True), sp.Symbol("xi", nonpositive=True)
    value_on, value_off = relu(on).subs(on, x), relu(off).subs(off, x)
    return sp.expand(active * value_on + (1 - active) * value_off)


def region_map(M: int, d=None) -> sp.Matrix:
    """The step on region d (a 0/1 tuple; None: symbolic d_i): relu(z_i) replaced in the model's
    equation by its value on that side of 0, A z + W D z + h + u."""
    m = model(M)
    d = region_symbols(M) if d is None else d
    return m.step.xreplace({relu(zi): relu_on_region(zi, di) for zi, di in zip(m.z, d)})


def region_jacobian_symbolic(M: int, d=None) -> sp.Matrix:
    """∂(step)/∂z on region d: diag(a) + W diag(d), the same at every point of the region."""
    return region_map(M, d).jacobian(model(M).z)


# ---------------------------------------------------------------------------------------------------
# General M: the same results as matrix formulas (these are what the code emitter prints)

M_sym = sp.Symbol("M", integer=True, positive=True)
A_vec, d_vec, h_vec = (sp.MatrixSymbol(n, M_sym, 1) for n in ("A", "d", "h"))
W_mat = sp.MatrixSymbol("W", M_sym, M_sym)
z_vec = sp.MatrixSymbol("z", M_sym, 1)
# Diagonal matrices as plain symbols while differentiating (SymPy's matrix calculus recurses forever
# through DiagMatrix); they become diag(A), diag(d) afterwards.
_A_diag, _D_diag = sp.MatrixSymbol("A_diag", M_sym, M_sym), sp.MatrixSymbol("D_diag", M_sym, M_sym)
_AS_DIAG = {_A_diag: sp.DiagMatrix(A_vec), _D_diag: sp.DiagMatrix(d_vec)}


def _region_map_general() -> sp.MatrixExpr:
    # relu(z) = D z on the region (checked unit by unit by region_map for small M); s_t = 0
    return _A_diag * z_vec + W_mat * _D_diag * z_vec + h_vec


def _linear_parts(expr: sp.MatrixExpr, var: sp.MatrixSymbol) -> tuple[sp.MatrixExpr, sp.MatrixExpr]:
    """expr = K var + c for an expression affine in var: (K, c). SymPy's matrix derivative of a
    vector by a vector is laid out as ∂expr_j/∂var_i, hence the transpose."""
    return expr.diff(var).T, expr.subs(var, sp.ZeroMatrix(*var.shape)).doit()


def jacobian_formula() -> sp.MatrixExpr:
    """J_D = diag(A) + W diag(d) for any M: the linear part of the region map."""
    K, _ = _linear_parts(_region_map_general(), z_vec)
    return K.subs(_AS_DIAG)


def fixed_point_formula() -> sp.MatrixExpr:
    """z*_D = (I − diag(A) − W diag(d))⁻¹ h: the fixed-point equation z − F_D(z) = 0 is affine in z,
    K z + c = 0 with K = I − J_D and c = −h; it has one solution where K is invertible."""
    K, c = _linear_parts(z_vec - _region_map_general(), z_vec)
    return (K.inverse() * -c).subs(_AS_DIAG)


def fixed_point_symbolic(M: int, d) -> tuple[sp.Matrix, list]:
    """(z*, consistency conditions) on region d for small M, by solving step(z) = z with u = 0; the
    conditions are z*_i > 0 where d_i = 1 and z*_i ≤ 0 elsewhere. Empty z* where I − J_D is singular."""
    m = model(M)
    F = region_map(M, d).subs({ui: 0 for ui in m.u})
    solution = sp.solve(list(F - m.z), list(m.z), dict=True)
    if not solution or len(solution[0]) < M:
        return sp.Matrix([]), []
    z_star = m.z.xreplace(solution[0]).applyfunc(sp.factor)
    return z_star, [zi > 0 if di else zi <= 0 for zi, di in zip(z_star, d)]


def written_out(expr: sp.MatrixExpr, M: int, d=None) -> sp.Matrix:
    """A general-M formula for the symbolic M-unit model, entry by entry (region d; None: symbolic d_i),
    to compare with what the small-M derivation gives."""
    m = model(M)
    d = region_symbols(M) if d is None else d
    sized = expr.subs(M_sym, M)
    values = {A_vec.subs(M_sym, M): m.a, W_mat.subs(M_sym, M): m.W, h_vec.subs(M_sym, M): m.h,
              d_vec.subs(M_sym, M): sp.Matrix(d)}
    return sp.Matrix(sized.xreplace({k: sp.ImmutableMatrix(v) for k, v in values.items()}).doit())


def affine_composition_step() -> tuple[sp.MatrixExpr, sp.MatrixExpr]:
    """Composing z ↦ P z + c with the next region's map z ↦ J z + h gives J P z + (J c + h): the
    recursion (P, c) → (J P, J c + h) that builds a k-cycle's map P = J_{k−1}⋯J_0 from P = I, c = 0."""
    J, P = sp.MatrixSymbol("J", M_sym, M_sym), sp.MatrixSymbol("P", M_sym, M_sym)
    c = sp.MatrixSymbol("c", M_sym, 1)
    return _linear_parts(J * (P * z_vec + c) + h_vec, z_vec)


def cycle_symbolic(M: int, regions) -> tuple[list[sp.Matrix], list]:
    """(points z_0 … z_{k−1}, consistency conditions) of the k-cycle that visits the given regions in
    order, for small M: compose the region maps, solve Φ(z_0) = z_0 (linear), consistency per step."""
    m = model(M)
    maps = [region_map(M, d).subs({ui: 0 for ui in m.u}) for d in regions]
    image = m.z
    for F in maps:
        image = F.xreplace(dict(zip(m.z, image)))
    solution = sp.solve(list(image - m.z), list(m.z), dict=True)
    if not solution or len(solution[0]) < M:
        return [], []
    points = [m.z.xreplace(solution[0])]
    for F in maps[:-1]:
        points.append(F.xreplace(dict(zip(m.z, points[-1]))))
    points = [p.applyfunc(sp.factor) for p in points]
    conditions = [zi > 0 if di else zi <= 0 for p, d in zip(points, regions) for zi, di in zip(p, d)]
    return points, conditions


# ---------------------------------------------------------------------------------------------------
# Regularized units: the block structure of Jacobians and of their products

n_reg, n_rest = sp.symbols("M_reg M_rest", integer=True, positive=True)


def regularization(M: int, m_reg: int) -> dict:
    """The rPLRNN's hypotheses on the first m_reg units of the symbolic model: A_ii = 1, W row i = 0,
    h_i = 0."""
    m = model(M)
    rules = {m.a[i]: 1 for i in range(m_reg)} | {m.h[i]: 0 for i in range(m_reg)}
    rules |= {w: 0 for i in range(m_reg) for w in m.W.row(i) if w != 0}
    return rules


def jacobian_blocks(m_reg: int = 2, m_rest: int = 2) -> dict[str, sp.Matrix]:
    """The blocks of J = A + W D (every region at once: d symbolic) under `regularization`, in the
    order (regularized, rest): {"reg,reg": I, "reg,rest": 0, "rest,reg": X = W_{rest,reg} D_reg,
    "rest,rest": Y = A_rest + W_{rest,rest} D_rest}."""
    M_ = m_reg + m_rest
    J = region_jacobian_symbolic(M_).xreplace(regularization(M_, m_reg))
    r = m_reg
    return {"reg,reg": J[:r, :r], "reg,rest": J[:r, r:], "rest,reg": J[r:, :r], "rest,rest": J[r:, r:]}


def block_jacobian(X: sp.MatrixExpr, Y: sp.MatrixExpr) -> sp.BlockMatrix:
    """[[I, 0], [X, Y]] with symbolic block sizes."""
    return sp.BlockMatrix([[sp.Identity(n_reg), sp.ZeroMatrix(n_reg, n_rest)], [X, Y]])


def step_blocks(s) -> tuple[sp.MatrixSymbol, sp.MatrixSymbol]:
    """X_s, Y_s as generic matrices (nothing assumed beyond their sizes)."""
    return sp.MatrixSymbol(f"X_{s}", n_rest, n_reg), sp.MatrixSymbol(f"Y_{s}", n_rest, n_rest)


def jacobian_product_blocks(n: int) -> sp.ImmutableMatrix:
    """The blocks of J_n ⋯ J_1 for generic X_s, Y_s: [[I, 0], [Σ_s Y_n⋯Y_{s+1} X_s, Y_n⋯Y_1]]."""
    product = block_jacobian(*step_blocks(n))
    for s in range(n - 1, 0, -1):
        product = product * block_jacobian(*step_blocks(s))
    return sp.block_collapse(product).blocks


_L, _R = sp.MatrixSymbol("L", n_rest, n_reg), sp.MatrixSymbol("R", n_rest, n_rest)


def product_recursion() -> dict[str, sp.ImmutableMatrix]:
    """For P = [[I, 0], [L, R]] and one more step J = [[I, 0], [X, Y]]: J P = [[I, 0], [X + Y L, Y R]]
    (a later step, on the left) and P J = [[I, 0], [L + R X, R Y]] (an earlier one, on the right). The
    identity block is kept, which with P = J_1 proves it for every product by induction."""
    X, Y = step_blocks("s")
    P = block_jacobian(_L, _R)
    return {"left": sp.block_collapse(block_jacobian(X, Y) * P).blocks,
            "right": sp.block_collapse(P * block_jacobian(X, Y)).blocks}


def gradient_blocks() -> sp.ImmutableMatrix:
    """∂L/∂z_t = Pᵀ ∂L/∂z_T for P = ∂z_T/∂z_t = [[I, 0], [L, R]] and g = ∂L/∂z_T = (g_reg, g_rest):
    (g_reg + Lᵀ g_rest, Rᵀ g_rest). So g_rest = 0 gives ∂L/∂z_t = g exactly, and in general
    ‖∂L/∂z_t‖ ≥ ‖g_reg + Lᵀ g_rest‖ ≥ ‖g_reg‖ − ‖L‖₂ ‖g_rest‖."""
    g = sp.BlockMatrix([[sp.MatrixSymbol("g_reg", n_reg, 1)], [sp.MatrixSymbol("g_rest", n_rest, 1)]])
    return sp.block_collapse(block_jacobian(_L, _R).T * g).blocks


def lower_bound() -> sp.Expr:
    """‖J_T ⋯ J_{t+1}‖₂ ≥ ‖its reg,reg block‖₂ = ‖I‖₂ = 1 (a block's norm never exceeds the
    matrix's), for every T − t ≥ 1, under `regularization` with M_reg ≥ 1."""
    block = jacobian_product_blocks(3)[0, 0]
    if block != sp.Identity(n_reg):
        raise ArithmeticError(f"the product's reg,reg block is {block}, not I")
    return sp.Integer(1)


ell, rho = sp.symbols("ell rho", nonnegative=True)  # bounds on ‖L‖₂ and ‖R‖₂
x, y = sp.symbols("x y", nonnegative=True)  # bounds on ‖X_s‖₂ and ‖Y_s‖₂
steps = sp.Symbol("n", integer=True, nonnegative=True)  # number of factors T − t


def norm_recursion() -> tuple[sp.Expr, sp.Expr]:
    """(ℓ_n, ρ_n) with ‖L‖₂ ≤ ℓ_n, ‖R‖₂ ≤ ρ_n after n steps: the left recursion's norms,
    ‖X + Y L‖ ≤ x + y ‖L‖ and ‖Y R‖ ≤ y ‖R‖ (‖X_s‖₂ ≤ x, ‖Y_s‖₂ ≤ y), solved from L = 0, R = I
    (n = 0): ℓ_n = x (1 − yⁿ)/(1 − y) (x n at y = 1), ρ_n = yⁿ."""
    left = product_recursion()["left"]
    if left[1, 0] != step_blocks("s")[0] + step_blocks("s")[1] * _L or left[1, 1] != step_blocks("s")[1] * _R:
        raise ArithmeticError(f"unexpected block recursion {left}")
    lf, rf = sp.Function("ell"), sp.Function("rho")
    ell_n = sp.rsolve(lf(steps + 1) - (x + y * lf(steps)), lf(steps), {lf(0): 0})
    rho_n = sp.rsolve(rf(steps + 1) - y * rf(steps), rf(steps), {rf(0): 1})
    ell_n = sp.Piecewise((sp.limit(ell_n, y, 1), sp.Eq(y, 1)), (sp.factor(ell_n), True))
    return ell_n, rho_n


def block_norm_bound() -> sp.Expr:
    """σ_max([[1, 0], [ℓ, ρ]]): bounds ‖[[I, 0], [L, R]]‖₂ when ‖L‖₂ ≤ ℓ and ‖R‖₂ ≤ ρ, since
    ‖[[P_ij]]‖₂ ≤ ‖[[‖P_ij‖₂]]‖₂ and σ_max of a nonnegative matrix grows with its entries. The
    square root of the larger eigenvalue of NᵀN, N = [[1, 0], [ℓ, ρ]]."""
    N = sp.Matrix([[1, 0], [ell, rho]])
    roots = list((N.T * N).eigenvals())
    largest = max(roots, key=lambda e: float(e.subs({ell: 1, rho: 1})))
    return sp.sqrt(sp.simplify(largest))


class SigmaMax(sp.Function):
    """block_norm_bound at (ℓ, ρ), kept unevaluated inside larger bounds: emitted code calls the
    emitted `block_norm_bound`, LaTeX shows the matrix, doit() gives the closed form."""

    nargs = 2

    def doit(self, deep=True, **hints):
        args = [a.doit(deep=deep, **hints) for a in self.args] if deep else self.args
        return block_norm_bound().subs(dict(zip((ell, rho), args)))

    def _latex(self, printer):
        a, b = (printer._print(v) for v in self.args)
        return rf"\sigma_{{\max}}\begin{{pmatrix}} 1 & 0 \\ {a} & {b} \end{{pmatrix}}"

    def _numpycode(self, printer):
        return "block_norm_bound({}, {})".format(*(printer._print(v) for v in self.args))


def regularized_product_bound() -> sp.Expr:
    """B_n(x, y) = σ_max([[1, 0], [ℓ_n, ρ_n]]) ≥ ‖J_T ⋯ J_{t+1}‖₂ for n = T − t under
    `regularization`, with x ≥ ‖W_{rest,reg}‖₂ ≥ ‖X_s‖₂ and y ≥ max|A_rest| + ‖W_{rest,rest}‖₂ ≥ ‖Y_s‖₂
    (ℓ_n, ρ_n from `norm_recursion`). B_n ≥ 1 (the identity block)."""
    return SigmaMax(*norm_recursion())


def uniform_limit() -> sp.Expr:
    """lim_{n→∞} B_n for 0 ≤ y < 1: √(1 + x²/(1 − y)²), a bound on every product of the model,
    however long (ρ_n → 0, ℓ_n → x/(1 − y))."""
    kappa = sp.Symbol("kappa", positive=True)  # y = e^{−κ} < 1
    ell_n, rho_n = norm_recursion()
    limits = [sp.limit(e.args[-1][0] if isinstance(e, sp.Piecewise) else e, steps, sp.oo)
              for e in (ell_n.subs(y, sp.exp(-kappa)), rho_n.subs(y, sp.exp(-kappa)))]
    limits = [sp.simplify(v.subs(kappa, -sp.log(y))) for v in limits]
    gap = sp.Symbol("w", positive=True)  # 1 − y > 0
    at_limit = block_norm_bound().subs(dict(zip((ell, rho), limits))).subs(y, 1 - gap)
    # √((1 + ℓ²)²) = 1 + ℓ²: factor under each root so SymPy sees the square
    at_limit = at_limit.replace(lambda e: e.is_Pow and e.exp == sp.S.Half, lambda e: sp.sqrt(sp.factor(e.base)))
    return sp.simplify(at_limit).subs(gap, 1 - y)


def gradient_counterexample() -> dict:
    """One regularized and one free unit with A_rest = 0, W_{rest,reg} = 1, z_reg > 0: J = [[1, 0],
    [1, 0]], and g = ∂L/∂z_T = (1, −1) gives ∂L/∂z_{T−1} = Jᵀ g = 0 although g_reg = 1, so
    ‖∂L/∂z_t‖ ≥ ‖g_reg‖ needs a hypothesis (such as g_rest = 0)."""
    m = model(2)
    values = regularization(2, 1) | {m.a[1]: 0, m.W[1, 0]: 1}
    J = region_jacobian_symbolic(2, (1, 1)).xreplace(values)
    g = sp.Matrix([1, -1])
    return {"J": J, "g": g, "gradient": J.T * g}


def code_functions() -> list[tuple[str, sp.Expr, tuple, str]]:
    """(name, expression, arguments, doc) of what `derivations.emit` prints for the content 'plrnn'."""
    return [
        ("region_jacobian", jacobian_formula(), (A_vec, W_mat, d_vec),
         "J_D = diag(A) + W diag(d): the PLRNN's Jacobian on the region with active units d (W off-diagonal)."),
        ("fixed_point", fixed_point_formula(), (A_vec, W_mat, h_vec, d_vec),
         ("z*_D = (I − diag(A) − W diag(d))⁻¹ h: the fixed point of region d's map (a fixed point of the "
          "PLRNN only if z*_i > 0 exactly where d_i = 1).")),
        ("block_norm_bound", block_norm_bound(), (ell, rho),
         "σ_max([[1, 0], [ℓ, ρ]]) ≥ ‖[[I, 0], [L, R]]‖₂ for ‖L‖₂ ≤ ℓ, ‖R‖₂ ≤ ρ."),
        ("regularized_product_bound", regularized_product_bound(), (x, y, steps),
         ("B_n ≥ ‖J_T ⋯ J_{T−n+1}‖₂ with regularized units (A_reg = 1, W_reg rows 0), "
          "x ≥ ‖W_rest,reg‖₂, y ≥ max|A_rest| + ‖W_rest,rest‖₂.")),
    ]
