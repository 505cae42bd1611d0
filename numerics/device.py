"""Where and in what precision the numerics run."""
from __future__ import annotations

import torch

from .errors import NumericsError

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' (CUDA when available, else CPU), 'cpu' or 'cuda'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise NumericsError("device 'cuda' requested but no CUDA GPU is available (use 'cpu' or 'auto')")
        return torch.device("cuda")
    raise NumericsError(f"unknown device {name!r} (choose auto, cpu or cuda)")


def resolve_dtype(dtype: str | torch.dtype = "float64") -> torch.dtype:
    """'float64' or 'float32' (or the torch dtype itself)."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if dtype in DTYPES:
        return DTYPES[dtype]
    raise NumericsError(f"unknown dtype {dtype!r} (choose float64 or float32)")
