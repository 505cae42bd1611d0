"""Generated code: fresh, consistent across targets, safe to differentiate, written atomically."""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest
from generated_code import module as generated

from derivations import DEFAULT, Spec
from derivations import emit as E
from numerics import io
from numerics.errors import NumericsError

SPECS = [DEFAULT, Spec(convention="B"), Spec(param="standard", trained=("W", "C")), Spec(symbolic_rates=True)]
ARGS = dict(sigma_W=0.85, sigma_F=1.2, sigma_C=0.7, sigma_D=0.4)
RATES = dict(lambda_W=2.0, lambda_F=0.5, lambda_C=1.5, lambda_D=1.0)


def _args(spec):
    return ARGS | ({f"lambda_{b}": RATES[f"lambda_{b}"] for b in spec.trained} if spec.symbolic_rates else {})


@pytest.mark.parametrize("content,target", E.COMMITTED)
def test_committed_modules_are_fresh(content, target):
    """Regenerate the committed modules; a difference means the committed file is stale or hand-edited.

    Fix with: rnnmemory emit --content CONTENT --target TARGET --out derivations/generated.
    """
    (name, text), = E.render(content, target).items()
    assert (E.GENERATED / name).read_text() == text


def test_header_names_version_spec_and_hash():
    (text,) = E.render("lag-weights", "numpy", Spec(convention="B")).values()
    head = text.splitlines()[:4]
    assert "Do not edit" in head[0] and head[1].startswith("# SymPy ")
    assert '"convention": "B"' in head[2] and head[3].startswith("# expression sha256: ")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.digest())
def test_torch_matches_numpy_and_has_finite_gradients(spec):
    torch = pytest.importorskip("torch")
    np_mod, t_mod = generated(spec), generated(spec, "torch")
    lags = np.arange(0, 12)
    for f in E.functions(E.derive(spec)):
        lag_function = f.args[0].name == "j"
        args = _args(spec)
        expected = getattr(np_mod, f.name)(*( [lags] if lag_function else []), **args)
        got = getattr(t_mod, f.name)(*([torch.arange(12)] if lag_function else []), **args)
        np.testing.assert_allclose(got.numpy(), np.broadcast_to(expected, got.shape), rtol=1e-12)
        if not lag_function:
            continue
        # σ_W = 1 and 0 are where dead Piecewise branches bite; the ratio is defined for σ_W > 0.
        for sw in (1.0, 1.3) if f.name == "lag_weight_ratio" else (0.0, 1.0, 1.3):
            sigma = torch.tensor(sw, dtype=torch.float64, requires_grad=True)
            value = getattr(t_mod, f.name)(torch.arange(12), **(args | {"sigma_W": sigma})).sum()
            if value.requires_grad:  # parts such as α^(D) do not depend on σ_W
                (grad,) = torch.autograd.grad(value, sigma)
                assert torch.isfinite(grad).all(), (f.name, sw)


def test_torch_accepts_floats_and_float32_tensors():
    torch = pytest.importorskip("torch")
    t_mod = generated(target="torch")
    assert float(t_mod.lag_weights(3, 0.8, 1.0, 1.0, 0.0)) == pytest.approx(5 * 0.8**6)
    out = t_mod.lag_weights(torch.arange(4), torch.tensor(0.8), 1.0, 1.0, 0.0)
    assert out.dtype == torch.float32


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler")
@pytest.mark.parametrize("spec", SPECS[:3], ids=lambda s: s.digest())
def test_c_matches_numpy(tmp_path, spec):
    io.write_files(tmp_path, E.render("lag-weights", "c", spec))
    lib = tmp_path / "liblag.so"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-shared", "-fPIC", "-o", lib, tmp_path / "lag_weights.c", "-lm"], check=True)
    c = ctypes.CDLL(str(lib))
    np_mod = generated(spec)
    for name in ("lag_weights", "initial_impulse_variance"):
        fn = getattr(c, name)
        fn.restype = ctypes.c_double
        fn.argtypes = [ctypes.c_int] + [ctypes.c_double] * 4
        for j in range(8):
            assert fn(j, *ARGS.values()) == pytest.approx(float(getattr(np_mod, name)(j, **ARGS)), rel=1e-14)


def test_latex_target():
    (text,) = E.render("lag-weights", "latex", DEFAULT).values()
    assert r"\alpha_j &= " in text and r"\delta_{0 j}" in text and "\\end{align}" in text


def test_emit_refuses_a_file_as_output(tmp_path):
    target = tmp_path / "file"
    target.write_text("keep")
    with pytest.raises(NumericsError, match="not a directory"):
        io.write_files(target, E.render("lag-weights", "numpy", DEFAULT))
    assert target.read_text() == "keep"


def test_emit_never_leaves_half_a_file(tmp_path, monkeypatch):
    (tmp_path / "lag_weights_numpy.py").write_text("old")

    class Broken(str):
        pass

    def fail_midway(self, *args, **kwargs):
        raise OSError("disk full")

    real_open = io.os.fdopen

    def broken_fdopen(fd, mode):
        fh = real_open(fd, mode)
        fh.write = fail_midway.__get__(fh)
        return fh

    monkeypatch.setattr(io.os, "fdopen", broken_fdopen)
    with pytest.raises(OSError):
        io.write_files(tmp_path, E.render("lag-weights", "numpy", DEFAULT))
    assert (tmp_path / "lag_weights_numpy.py").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["lag_weights_numpy.py"]


@pytest.mark.parametrize("args", [["derive", "--format", "json", "--eval", "sigma_W=0.8"],
                                  ["emit", "--target", "torch", "--convention", "B", "--out", "{tmp}"]])
def test_derive_and_emit_do_not_import_torch_or_matplotlib(tmp_path, args):
    import subprocess
    import sys

    code = ("import sys, cli\n"
            "try:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, 'imported'\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
