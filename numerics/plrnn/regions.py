"""A trained PLRNN's dynamics, evaluated through the code emitted from `derivations.plrnn`
(`derivations/generated/plrnn_numpy.py`, committed and checked for freshness): its linear regions,
their Jacobians and fixed points, k-cycles, and Jacobian products with their derived bounds.

Every function takes the model's parameters in float64 (A as a vector, W with its diagonal ignored,
as the model masks it at every step, h) and raises NumericsError, one line, for mismatched shapes.

    visited_regions(states), region_of(z), region_jacobian(A, W, d)
    fixed_point(A, W, h, d), fixed_points(A, W, h, regions), all_fixed_points(A, W, h)
    cycles(A, W, h, k), min_unit_circle_distance(eigenvalues)
    step_jacobians(A, W, states), jacobian_products(A, W, states)
    regularization_violation(A, W, n_reg), product_bounds(A, W, states, n_reg, atol) → ProductBounds
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from derivations.generated import plrnn_numpy as code

from ..errors import NumericsError


def _parameters(A, W, h=None):
    """float64 copies; W's diagonal zeroed, as the model masks it at every step."""
    A = np.asarray(A, dtype=np.float64).reshape(-1)
    W = np.array(W, dtype=np.float64)
    if W.shape != (A.size, A.size):
        raise NumericsError(f"W must be {A.size}×{A.size} for {A.size} units, got shape {W.shape}")
    np.fill_diagonal(W, 0.0)
    if h is None:
        return A, W
    h = np.asarray(h, dtype=np.float64).reshape(-1)
    if h.shape != A.shape:
        raise NumericsError(f"h must have {A.size} entries, got {h.size}")
    return A, W, h


def _region(d, size: int) -> np.ndarray:
    d = np.asarray(d).reshape(-1)
    if d.size != size or not np.isin(d, (0, 1)).all():
        raise NumericsError(f"a region is {size} entries 0/1 (or booleans), got {d!r}")
    return d.astype(np.float64)


def region_of(z) -> tuple[int, ...]:
    """The region a state lies in: d_i = 1 where z_i > 0."""
    return tuple(int(v > 0) for v in np.asarray(z).reshape(-1))


def visited_regions(states) -> list[tuple[int, ...]]:
    """The distinct regions of visited states (T, M), in order of first visit: candidates for
    `fixed_points`."""
    seen = dict.fromkeys(region_of(z) for z in np.asarray(states))
    return list(seen)


def region_jacobian(A, W, d) -> np.ndarray:
    """J_D = diag(A) + W diag(d) (W's diagonal ignored)."""
    A, W = _parameters(A, W)
    return code.region_jacobian(A, W, _region(d, A.size))


def _consistent(z: np.ndarray, d: np.ndarray, tol: float) -> bool:
    """z_i > 0 where d_i = 1 and z_i ≤ 0 elsewhere, up to tol·max(1, ‖z‖∞) for rounding at a boundary."""
    slack = tol * max(1.0, float(np.abs(z).max(initial=0.0)))
    return bool(np.all(np.where(d == 1, z > -slack, z <= slack)))


def fixed_point(A, W, h, d, tol: float = 1e-10) -> np.ndarray | None:
    """z*_D = (I − A − W D)⁻¹ h for region d, or None where I − J_D is singular (numerical rank < M)
    or z*_D is not in region d."""
    A, W, h = _parameters(A, W, h)
    d = _region(d, A.size)
    J = code.region_jacobian(A, W, d)
    if np.linalg.matrix_rank(np.eye(A.size) - J) < A.size:
        return None
    z = np.asarray(code.fixed_point(A, W, h, d), dtype=np.float64).reshape(-1)
    return z if _consistent(z, d, tol) else None


@dataclasses.dataclass(frozen=True)
class FixedPoint:
    z: np.ndarray
    region: tuple[int, ...]
    eigenvalues: np.ndarray  # of J_D at z


def fixed_points(A, W, h, regions, tol: float = 1e-10) -> list[FixedPoint]:
    """The consistent fixed points among the candidate regions (e.g. `visited_regions` of a
    trajectory), each with the eigenvalues of its Jacobian; a point on a boundary is listed once."""
    A, W, h = _parameters(A, W, h)
    found: list[FixedPoint] = []
    for d in dict.fromkeys(tuple(int(v) for v in np.asarray(r).reshape(-1)) for r in regions):
        z = fixed_point(A, W, h, d, tol)
        if z is None or any(np.allclose(z, f.z, rtol=0, atol=10 * tol * max(1.0, np.abs(z).max())) for f in found):
            continue
        found.append(FixedPoint(z, d, np.linalg.eigvals(region_jacobian(A, W, d))))
    return found


def all_fixed_points(A, W, h, max_units: int = 12, tol: float = 1e-10) -> list[FixedPoint]:
    """Every fixed point, by trying all 2^M regions (M ≤ max_units)."""
    A, W, h = _parameters(A, W, h)
    if A.size > max_units:
        raise NumericsError(f"exhaustive search over 2^{A.size} regions: allowed up to M = {max_units}; "
                         "use fixed_points with candidate regions")
    return fixed_points(A, W, h, itertools.product((0, 1), repeat=A.size), tol)


@dataclasses.dataclass(frozen=True)
class Cycle:
    points: np.ndarray  # (k, M): z_0 … z_{k−1}, z_{j+1} = F(z_j), F(z_{k−1}) = z_0
    regions: tuple[tuple[int, ...], ...]
    eigenvalues: np.ndarray  # of the k-step Jacobian J_{k−1} ⋯ J_0


def _primitive_necklace(seq: tuple[int, ...]) -> bool:
    """The least rotation of a sequence that is not a repetition of a shorter one: each cycle's
    region sequence is tried once, and sequences of a shorter period (shorter cycles) not at all."""
    k = len(seq)
    rotations = [seq[i:] + seq[:i] for i in range(1, k)]
    return all(seq < r for r in rotations)


def cycles(A, W, h, k: int, max_sequences: int = 2 ** 16, tol: float = 1e-10) -> list[Cycle]:
    """Every cycle of exact period k, by trying each region sequence (up to rotation): compose the
    region maps (`affine_composition_step`), solve (I − P) z_0 = c, keep it if every point lies in its
    region. k = 1 gives the fixed points."""
    A, W, h = _parameters(A, W, h)
    size = A.size
    if k < 1:
        raise NumericsError(f"k must be ≥ 1, got {k}")
    if (2 ** size) ** k > max_sequences:
        raise NumericsError(f"(2^{size})^{k} region sequences exceed max_sequences = {max_sequences}")
    regions = list(itertools.product((0, 1), repeat=size))
    jacobians = [region_jacobian(A, W, d) for d in regions]
    eye, out = np.eye(size), []
    for seq in itertools.product(range(len(regions)), repeat=k):
        if k > 1 and not _primitive_necklace(seq):
            continue
        P, c = eye, np.zeros(size)
        for j in seq:
            P, c = jacobians[j] @ P, jacobians[j] @ c + h
        if np.linalg.matrix_rank(eye - P) < size:
            continue
        points = [np.linalg.solve(eye - P, c)]
        for j in seq[:-1]:
            points.append(jacobians[j] @ points[-1] + h)
        if all(_consistent(p, np.asarray(regions[j], dtype=float), tol) for p, j in zip(points, seq)):
            out.append(Cycle(np.array(points), tuple(regions[j] for j in seq), np.linalg.eigvals(P)))
    return out


def min_unit_circle_distance(eigenvalues) -> float:
    """min ||λ| − 1| over the given eigenvalues: how close the nearest one is to the unit circle
    (the statistic the released rPLRNN code reports for fixed points)."""
    values = np.asarray(eigenvalues).reshape(-1)
    if values.size == 0:
        raise NumericsError("no eigenvalues")
    return float(np.min(np.abs(np.abs(values) - 1.0)))


def step_jacobians(A, W, states) -> np.ndarray:
    """J_t = diag(A) + W diag(1[z_t > 0]) for each state z_t of `states` (T, M), by the emitted
    `region_jacobian`: (T, M, M). Their products along a trajectory give its Lyapunov exponents."""
    A, W = _parameters(A, W)
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] != A.size:
        raise NumericsError(f"states must be (T, {A.size}), got shape {states.shape}")
    return np.array([code.region_jacobian(A, W, (z > 0).astype(np.float64)) for z in states])


def jacobian_products(A, W, states) -> np.ndarray:
    """‖∂z_T/∂z_t‖₂ = ‖J_{T−1} ⋯ J_t‖₂ for t = 0 … T−1, where states (T, M) are z_0 … z_{T−1}, the
    states the map was applied to, and J_s = diag(A) + W diag(1[z_s > 0]) = ∂z_{s+1}/∂z_s."""
    jacobians = step_jacobians(A, W, states)
    T, size = jacobians.shape[:2]
    norms, P = np.empty(T), np.eye(size)
    for t in range(T - 1, -1, -1):
        P = P @ jacobians[t]  # an earlier step multiplies on the right
        norms[t] = np.linalg.norm(P, 2)
    return norms


@dataclasses.dataclass(frozen=True)
class ProductBounds:
    """Bounds on ‖J_{T−1} ⋯ J_t‖₂ for t = 0 … T−1 (arrays of length T), all valid for the given
    states: lower (1 with regularized units, else 0); stepwise ∏_s ‖J_s‖₂; model
    (max|A| + ‖W‖₂)^{T−t}; and with regularized units block (σ_max of the per-step norm recursion)
    and uniform (B_{T−t} from the model's x, y alone; bounded in T when y < 1)."""
    lower: np.ndarray
    stepwise: np.ndarray
    model: np.ndarray
    block: np.ndarray | None = None
    uniform: np.ndarray | None = None


def regularization_violation(A, W, n_reg: int) -> float:
    """max(|A_ii − 1|, |W_ij|) over the first n_reg units' rows (h is not needed for the Jacobians)."""
    A, W = _parameters(A, W)
    if not 0 <= n_reg <= A.size:
        raise NumericsError(f"n_reg must be in [0, {A.size}], got {n_reg}")
    if n_reg == 0:
        return 0.0
    return float(max(np.abs(A[:n_reg] - 1).max(), np.abs(W[:n_reg]).max()))


def product_bounds(A, W, states, n_reg: int = 0, atol: float = 0.0) -> ProductBounds:
    """The derived bounds for `jacobian_products(A, W, states)`. With n_reg > 0 the first n_reg units
    must satisfy the regularization hypotheses (A_ii = 1, W rows 0) to within atol — exactly by
    default; a trained rPLRNN meets them only approximately, and then the block bounds are too."""
    A, W = _parameters(A, W)
    violation = regularization_violation(A, W, n_reg)
    if violation > atol:
        raise NumericsError(f"the first {n_reg} units are not regularized (A_ii = 1, W rows 0): off by "
                         f"{violation:.3g} > atol = {atol}; use n_reg=0 for the general bounds")
    jacobians = step_jacobians(A, W, states)
    T = jacobians.shape[0]
    n = np.arange(T, 0, -1)  # factors in the product from t to T − 1
    step_norms = np.array([np.linalg.norm(J, 2) for J in jacobians])
    stepwise = np.cumprod(step_norms[::-1])[::-1]
    model_bound = (np.abs(A).max() + np.linalg.norm(W, 2)) ** n.astype(float)
    if n_reg == 0:
        return ProductBounds(np.zeros(T), stepwise, model_bound)
    r = n_reg

    def norm2(m):
        return float(np.linalg.norm(m, 2)) if m.size else 0.0

    # the right recursion's norms: ℓ_t = ℓ_{t+1} + ρ_{t+1} ‖X_t‖, ρ_t = ρ_{t+1} ‖Y_t‖, from ℓ_T = 0, ρ_T = 1
    ell_t, rho_t, block = 0.0, 1.0, np.empty(T)
    for t in range(T - 1, -1, -1):
        ell_t, rho_t = ell_t + rho_t * norm2(jacobians[t][r:, :r]), rho_t * norm2(jacobians[t][r:, r:])
        block[t] = code.block_norm_bound(ell_t, rho_t)
    x_bar = norm2(W[r:, :r])
    y_bar = (np.abs(A[r:]).max() if A.size > r else 0.0) + norm2(W[r:, r:])
    uniform = np.asarray(code.regularized_product_bound(x_bar, y_bar, n), dtype=np.float64)
    return ProductBounds(np.ones(T), stepwise, model_bound, block, uniform)
