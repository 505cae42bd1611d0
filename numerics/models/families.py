"""Samplers of the recurrent matrix W for each initializer family (`derivations.families`).

Every family is W = σ_W·W̃_unit. `recurrent_tilde` draws the matrix a `LinearRNN` stores in the
ntk parameterization, W̃ = √n·W̃_unit (so W = σ_W W̃/√n, as for the Gaussian, whose W̃ is the raw
torch.randn stream, unchanged); `unit_recurrent_matrix` is the same draw divided by √n. Drawn on
the CPU in float64 from the given generator, so a seed gives the same W on every device.

Choices the family's law leaves open, made here:
  spectral   n//2 blocks r·R(θ) with r from the modulus law of radius 1 (disk: r = √U, ring: r = 1,
             uniform: r = U) and θ ~ U(−φ, φ), in a Haar orthogonal basis. An odd width's last unit
             holds the real eigenvalue of the same modulus nearest the pair, r·sign(cos θ), so the
             moduli keep their law and phase = 1 stays symmetric under W → −W.
  spectral:file  the file's eigenvalues as blocks (a real one 1×1, a conjugate pair 2×2), drawn
             uniformly with replacement until n units are filled: in expectation the units then
             carry the file's eigenvalue law. A pair drawn for a single last unit becomes a real
             eigenvalue as above, |λ|·sign(Re λ).
  attractor  the first round(p·n) units have self-weight 1/σ_W (W_ii = 1 exactly once scaled) and
             no other recurrent weight; the rest an iid block with entries N(0, 1/m), m = n − round(p·n).
  empirical  the file's matrix M on the block diagonal, width/size copies; nothing random.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from derivations import families
from derivations.spec import Spec

from ..errors import NumericsError


def haar_orthogonal(width: int, generator: torch.Generator) -> torch.Tensor:
    """A Haar-random orthogonal matrix: QR of a Gaussian, columns' signs fixed by R's diagonal
    (without the fix Q is not Haar)."""
    q, r = torch.linalg.qr(torch.randn(width, width, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def normal_matrix(moduli: torch.Tensor, angles: torch.Tensor, real: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Q B Qᵀ with B block diagonal: 2×2 blocks r·R(θ) for each (modulus, angle), then 1×1 blocks
    `real`, and Q Haar orthogonal."""
    pairs, width = moduli.numel(), 2 * moduli.numel() + real.numel()
    B = torch.zeros(width, width, dtype=torch.float64)
    index = torch.arange(pairs) * 2
    cos, sin = moduli * torch.cos(angles), moduli * torch.sin(angles)
    B[index, index], B[index + 1, index + 1] = cos, cos
    B[index, index + 1], B[index + 1, index] = -sin, sin
    tail = torch.arange(2 * pairs, width)
    B[tail, tail] = real
    Q = haar_orthogonal(width, generator)
    return Q @ B @ Q.T


def _spectral(params: dict, width: int, generator: torch.Generator) -> torch.Tensor:
    if "file" in params:
        return _spectral_file(params["file"], width, generator)
    pairs = width // 2
    u = torch.rand(pairs + width % 2, generator=generator, dtype=torch.float64)
    moduli = {"disk": u.sqrt(), "ring": torch.ones_like(u), "uniform": u}[params["modulus"]]
    phi = float(params["phase"]) * math.pi
    angles = (2 * torch.rand(pairs + width % 2, generator=generator, dtype=torch.float64) - 1) * phi
    real = moduli[pairs:] * torch.where(torch.cos(angles[pairs:]) < 0, -1.0, 1.0)
    return normal_matrix(moduli[:pairs], angles[:pairs], real, generator)


def _spectral_file(path: str, width: int, generator: torch.Generator) -> torch.Tensor:
    values = families.load_spectrum(path)
    blocks = np.concatenate([values[values.imag == 0], values[values.imag > 0]])  # one entry per block
    pairs, real, filled = [], [], 0
    for index in torch.randint(blocks.size, (width,), generator=generator).tolist():  # width draws always suffice
        if filled == width:
            break
        value = complex(blocks[index])
        if value.imag == 0 or filled == width - 1:  # a pair with one unit left: its nearest real eigenvalue
            real.append(value.real if value.imag == 0 else abs(value) * math.copysign(1.0, value.real))
            filled += 1
        else:
            pairs.append(value)
            filled += 2
    pairs = torch.tensor(pairs, dtype=torch.complex128)
    return normal_matrix(pairs.abs(), pairs.angle(), torch.tensor(real, dtype=torch.float64), generator)


def _attractor(p: float, width: int, sigma_w: float, generator: torch.Generator) -> torch.Tensor:
    if not sigma_w > 0:
        raise NumericsError(f"attractor init needs σ_W > 0 (its units' self-weight 1 is σ_W·(1/σ_W)), got σ_W = {sigma_w}")
    units = round(p * width)
    rest = width - units
    W = torch.zeros(width, width, dtype=torch.float64)
    W[range(units), range(units)] = 1 / sigma_w
    if rest:
        W[units:, units:] = torch.randn(rest, rest, generator=generator, dtype=torch.float64) / math.sqrt(rest)
    return W


def _empirical(path: str, width: int) -> torch.Tensor:
    M = torch.from_numpy(families.load_matrix(path))
    size = M.shape[0]
    if width % size:
        raise NumericsError(f"empirical init: the width {width} is not a multiple of the matrix size {size}")
    return torch.block_diag(*[M] * (width // size))


def recurrent_tilde(spec: Spec, width: int, generator: torch.Generator, *, sigma_w: float) -> torch.Tensor:
    """W̃ with W = σ_W W̃/√n, shape (width, width), float64 on the CPU. Gaussian: torch.randn entries,
    the stream every committed result was drawn with."""
    family, params = spec.family, spec.init_params
    if family == "gaussian":
        return torch.randn((width, width), generator=generator, dtype=torch.float64)
    if family == "orthogonal":
        unit = haar_orthogonal(width, generator)
    elif family == "identity":
        unit = torch.eye(width, dtype=torch.float64)
    elif family == "nprnn":
        A = torch.randn(width, width, generator=generator, dtype=torch.float64)
        S = torch.eye(width, dtype=torch.float64) + A.T @ A / width
        unit = S / torch.linalg.eigvalsh(S)[-1]  # this matrix's own λ_max, not its limit 5
    elif family == "spectral":
        unit = _spectral(params, width, generator)
    elif family == "attractor":
        unit = _attractor(float(params["p"]), width, sigma_w, generator)
    elif family == "empirical":
        unit = _empirical(params["file"], width)
    else:
        raise NumericsError(f"no sampler for the initializer family {family!r}")
    return math.sqrt(width) * unit


def unit_recurrent_matrix(spec: Spec, width: int, generator: torch.Generator, *, sigma_w: float) -> torch.Tensor:
    """W̃_unit with W = σ_W·W̃_unit (σ_W is needed by the attractor family only)."""
    return recurrent_tilde(spec, width, generator, sigma_w=sigma_w) / math.sqrt(width)


def check_init(spec: Spec, widths, sigma_ws) -> None:
    """Refuse, before any network is drawn, widths or σ_W the spec's family cannot take."""
    for sigma_w in sigma_ws:
        if spec.family == "attractor" and not sigma_w > 0:
            _attractor(float(spec.init_params["p"]), 1, sigma_w, torch.Generator())
    if spec.family == "empirical":
        size = families.load_matrix(spec.init_params["file"]).shape[0]
        for width in widths:
            if width % size:
                raise NumericsError(f"empirical init: the width {width} is not a multiple of the matrix size {size}")
