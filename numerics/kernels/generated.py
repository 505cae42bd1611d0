"""The generated functions of a spec, loaded for the numeric side: every theory prediction goes
through them. The default spec's numpy and torch modules are committed in `derivations/generated/`
(imported directly, which keeps SymPy out of sweep workers); any other spec's are rendered by
`derivations.emit` on first use and loaded once per process."""
from __future__ import annotations

import importlib
import types

from derivations.spec import DEFAULT, Spec

from ..errors import NumericsError

_MODULES: dict[tuple[Spec, str], types.ModuleType] = {}


def generated_module(spec: Spec = DEFAULT, target: str = "numpy") -> types.ModuleType:
    """The lag-weight functions of `spec` for target 'numpy' or 'torch' (the torch ones accept
    floats or tensors)."""
    key = (spec, target)
    if key not in _MODULES:
        if spec == DEFAULT:
            _MODULES[key] = importlib.import_module(f"derivations.generated.lag_weights_{target}")
        else:
            try:
                from derivations import emit
            except ImportError as error:
                raise NumericsError(f"theory predictions need derivations.emit, which is not available ({error})") from None
            (source,) = emit.render("lag-weights", target, spec).values()
            module = types.ModuleType(f"rnnmemory_generated_{target}_{spec.digest()}")
            exec(compile(source, f"<generated {target} for {spec.digest()}>", "exec"), module.__dict__)
            _MODULES[key] = module
    return _MODULES[key]
