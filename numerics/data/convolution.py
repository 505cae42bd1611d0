"""The causal convolution of an impulse response with input sequences: ŷ_k = Σ_j L_j x_{k−j}, by
lagged inputs (`lagged_inputs`, a direct contraction) or by FFT for long sequences. The one way
predictions are made from an impulse response, for problems (`problem.predict`) and models alike."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import NumericsError

# Causal convolutions with at least this many lags go through the FFT (measured crossover ≈ 32–64).
FFT_MIN_LAGS = 64


def lagged_inputs(x: torch.Tensor, lags: int) -> torch.Tensor:
    """X[..., b, k, j, c] = x[..., b, k - j, c] (0 before the sequence starts), shape (..., batch, T, lags, n_x).

    With it a causal convolution is one contraction: ŷ[b, k] = Σ_j L_j x[b, k - j].
    """
    padded = nn.functional.pad(x, (0, 0, lags - 1, 0))  # lags-1 zeros before time 0
    windows = padded.unfold(-2, lags, 1)  # (..., batch, T, n_x, lags), window k ends at time k
    return windows.flip(-1).transpose(-1, -2)


def causal_convolution(L: torch.Tensor, x: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """ŷ[b, k, a] = Σ_j L[j, a, c] x[b, k - j, c] for an impulse response L (lags, n_y, n_x) and x (batch, T, n_x).

    Leading dimensions of L and x (before lags and batch) are independent problems. method:
    'direct' contracts the lagged inputs (batch·T·lags·n_x·n_y products, as much memory); 'fft'
    multiplies the spectra (batch·T log T), with an absolute error per entry of order
    ε·Σ_j‖L_j‖·max|x| instead of a relative one; 'auto' takes the FFT from `FFT_MIN_LAGS` lags on.
    """
    lags, T = min(L.shape[-3], x.shape[-2]), x.shape[-2]  # lags past T never reach an output
    if method == "auto":
        method = "fft" if lags >= FFT_MIN_LAGS else "direct"
    if method == "direct":
        return torch.einsum("...btjc,...jac->...bta", lagged_inputs(x, L.shape[-3]), L)
    if method != "fft":
        raise NumericsError(f"unknown convolution method {method!r} (choose auto, direct or fft)")
    size = 2 ** math.ceil(math.log2(T + lags - 1))  # no wrap-around into the first T outputs
    spectrum = torch.einsum("...bfc,...fac->...bfa", torch.fft.rfft(x, size, dim=-2),
                            torch.fft.rfft(L[..., :lags, :, :], size, dim=-3))
    return torch.fft.irfft(spectrum, size, dim=-2)[..., :T, :]
