"""Torch numerics for rnnmemory: linear RNNs, their tangent kernels, and training beside the kernel limit.

Theory predictions come from the generated `derivations.emit` code; nothing here re-derives them.
"""
from .device import resolve_device, resolve_dtype
from .errors import NumericsError, TrainingDiverged
from .model import LinearRNN, causal_convolution, lagged_inputs
from .ntk import (empirical_lag_weights, generic_tangent_gram, gram_diagonal, largest_cross_term,
                  structured_tangent_gram, theory_initial_variance, theory_lag_weights)
from .teachers import parse_teacher
from .training import (Problem, ScaledConvolution, compare_training, design_matrix,
                       kernel_gradient_descent, make_problem, predict, stable_lr, train, white_noise_data)

__all__ = [
    "NumericsError", "TrainingDiverged", "resolve_device", "resolve_dtype",
    "LinearRNN", "causal_convolution", "lagged_inputs",
    "generic_tangent_gram", "structured_tangent_gram", "gram_diagonal", "largest_cross_term",
    "empirical_lag_weights", "theory_lag_weights", "theory_initial_variance",
    "parse_teacher",
    "white_noise_data", "design_matrix", "predict", "Problem", "make_problem", "ScaledConvolution",
    "kernel_gradient_descent", "stable_lr", "train", "compare_training",
]
