"""Closed-form lag weights of linear RNNs in the wide limit, derived in SymPy from a `Spec`."""
from .kernel import Derivation, derive
from .spec import DEFAULT, Spec, SpecError

__all__ = ["DEFAULT", "Derivation", "Spec", "SpecError", "derive"]
