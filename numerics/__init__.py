"""Torch numerics for rnnmemory: linear RNNs, their tangent kernels, training beside the kernel
limit, and the experiments that turn them into a paper's figures.

Theory predictions come from the generated `derivations` code; nothing here re-derives them.
Names load on first use, so `import numerics.io` (the file writer `rnnmemory emit` uses) does not
import torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "NumericsError": "errors", "TrainingDiverged": "errors",
    "LinearRNN": "models.linear", "ScaledConvolution": "models.convolution",
    "structured_tangent_gram": "kernels.empirical", "generic_tangent_gram": "kernels.empirical",
    "theory_lag_weights": "kernels.theory", "theory_initial_variance": "kernels.theory",
    "kernel_gradient_descent": "kernels.theory",
    "Problem": "data.problem", "WhiteNoise": "data.problem", "parse_teacher": "data.teachers",
    "Comparison": "train.compare", "compare_training": "train.compare", "compare_training_many": "train.compare",
    "REGISTRY": "experiments.registry", "reproduce": "pipeline.reproduce",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'numerics' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
