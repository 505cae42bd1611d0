"""Random PLRNNs and the PLRNN map written directly, independent of the derivation: shared by the
tests of the derivation (`test_plrnn_derivation`) and of the trained-model analysis (`test_plrnn_regions`)."""
import numpy as np


def step(A, W, h, z):
    """The PLRNN map written directly (diagonal of W masked), independent of the derivation."""
    W = W - np.diag(np.diag(W))
    return A * z + W @ np.maximum(z, 0) + h


def random_model(rng, M, a=(0.0, 0.9), w=1.0):
    return rng.uniform(*a, M), rng.normal(0, w / np.sqrt(M), (M, M)), rng.normal(0, 1, M)


def regularized(rng, M, n_reg):
    A, W, h = random_model(rng, M, a=(-0.9, 0.9), w=1.5)
    A[:n_reg], W[:n_reg], h[:n_reg] = 1.0, 0.0, 0.0
    return A, W, h
