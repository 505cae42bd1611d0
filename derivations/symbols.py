"""The SymPy symbols every derivation step and every emitted function share."""
import sympy as sp

from .spec import BLOCKS

lag = sp.Symbol("j", integer=True, nonnegative=True)
# A second lag is written lag + gap with gap ≥ 1, so cross-lag terms are decided, not guessed.
gap = sp.Symbol("d", integer=True, positive=True)
# Where the derivative lands inside W^p (product rule), for the two tangents of an inner product.
position = sp.Symbol("m", integer=True, nonnegative=True)
position_other = sp.Symbol("m'", integer=True, nonnegative=True)
width = sp.Symbol("n", positive=True)
input_dim = sp.Symbol("n_x", positive=True, integer=True)
sigma = {b: sp.Symbol(f"sigma_{b}", positive=True) for b in BLOCKS}
rate = {b: sp.Symbol(f"lambda_{b}", positive=True) for b in BLOCKS}
# σ_W² is the base of every geometric factor; properties are stated in it.
q = sp.Symbol("q", positive=True)
rho = sp.Symbol("rho", positive=True)

FAN_IN = {"W": width, "F": input_dim, "C": width, "D": input_dim}


def init_variance(block):
    """Entry variance of a block at initialization (both parameterizations): σ_X² / fan-in."""
    return sigma[block] ** 2 / FAN_IN[block]
