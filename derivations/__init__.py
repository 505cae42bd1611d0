"""Closed-form lag weights of linear RNNs in the wide limit, derived in SymPy from a `Spec`.

`derivations.spec` imports without SymPy (sweep workers and the torch model only need the spec);
`derive` and `Derivation` load the SymPy machinery on first use.
"""
from .spec import DEFAULT, Spec, SpecError

__all__ = ["DEFAULT", "Derivation", "Spec", "SpecError", "derive"]


def __getattr__(name):
    if name in ("derive", "Derivation"):
        from . import kernel

        return getattr(kernel, name)
    raise AttributeError(f"module 'derivations' has no attribute {name!r}")
