"""The code `derivations.emit` prints for a spec, loaded into a module for the tests of the
derivation (which import nothing from numerics; the library loads generated code only in
`numerics.kernels.generated`)."""
import functools
import types

from derivations import emit
from derivations.spec import DEFAULT


@functools.cache
def module(spec=DEFAULT, target: str = "numpy", content: str = "lag-weights") -> types.ModuleType:
    (source,) = [text for name, text in emit.render(content, target, spec).items() if name.endswith(".py")]
    loaded = types.ModuleType(f"generated_{content}_{target}")
    exec(compile(source, f"<generated {content} {target}>", "exec"), loaded.__dict__)
    return loaded
