"""The derived lag kernel Θ_jk: its closed forms, its numbers and the Gaussian special case.

The Monte Carlo check against random networks is tests/test_lag_kernel_mc.py; here the symbolic
forms are held to the numeric assembly from the same derived terms (two routes, one derivation),
and the special cases to what they must reduce to.
"""
import json

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import cli
from derivations import derive
from derivations import symbols as S
from derivations.lag_kernel import derive_lag_kernel, kernel_matrix, other_lag
from derivations.lag_properties import separable_rank
from derivations.moments import family_values
from derivations.spec import Spec

FAMILIES = ["gaussian", "orthogonal", "identity", "nprnn", "spectral", "spectral:modulus=ring,phase=0.5",
            "spectral:modulus=uniform,phase=0", "attractor:p=0.25"]
SIGMAS = {"W": 0.8, "F": 1.1, "C": 0.9, "D": 0.7}


def _symbolic_matrix(spec, lags):
    lk = derive_lag_kernel(spec)
    subs = {S.sigma[b]: v for b, v in SIGMAS.items()} | {k: v for k, v in family_values(spec).items()}
    out = np.zeros((lags, lags))
    for j in range(lags):
        for k in range(lags):
            if j < lk.first_lag or k < lk.first_lag:
                value = lk.corner if (j, k) == (0, 0) and lk.corner is not None else 0
            elif (j, k) == (0, 0) and lk.corner is not None:
                value = lk.corner
            else:
                value = lk.general.subs({S.lag: j, other_lag: k})
            out[j, k] = float(sp.sympify(value).subs(subs).doit().evalf())
    return out


@pytest.mark.slow
@pytest.mark.parametrize("init,convention", [(f, "A") for f in FAMILIES] + [("identity", "B"), ("attractor", "B")])
def test_closed_form_matches_numeric_assembly(init, convention):
    spec = Spec(init=init, convention=convention, rates=(("W", "3"),))
    lags = 3 if init == "nprnn" else 5  # nprnn: SymPy sums binomials × Catalan numbers slowly
    numeric = kernel_matrix(spec, lags, SIGMAS)["kernel"]
    assert np.allclose(_symbolic_matrix(spec, lags), numeric, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spec", [Spec(), Spec(convention="B"), Spec(param="standard", feedthrough=False),
                                  Spec(trained=("W", "C"), rates=(("W", "3"),)), Spec(init="orthogonal")])
def test_gaussian_family_is_todays_diagonal_alpha(spec):
    """m = δ_ab σ^{2a} substituted into the generic form gives today's α_j on the diagonal, 0 off it."""
    lk = derive_lag_kernel(spec)
    alpha = derive(Spec(param=spec.param, convention=spec.convention, feedthrough=spec.feedthrough,
                        trained=spec.trained, rates=spec.rates)).alpha
    j = S.lag
    assert sp.simplify(lk.diagonal - alpha.general.subs(S.q, S.sigma["W"] ** 2)) == 0
    off = lk.general.subs(other_lag, j + S.gap)  # k = j + d, d ≥ 1
    assert sp.simplify(off.replace(sp.KroneckerDelta, lambda a, b: 0 if sp.simplify(a - b) != 0 else 1)) == 0


def test_identity_kernel_is_rank_two():
    lk = derive_lag_kernel(Spec(init="identity"))
    j, k, s = S.lag, other_lag, S.sigma["W"]
    c = S.sigma["C"] ** 2 * S.sigma["F"] ** 2
    assert sp.simplify(lk.general - c * (2 * s ** (j + k) + j * k * s ** (j + k))) == 0
    rank, span = separable_rank(lk)
    assert rank == 2 and set(span) == {s ** j, j * s ** j}
    theta = kernel_matrix(Spec(init="identity", feedthrough=False), 12, SIGMAS)["kernel"]
    singular = np.linalg.svd(theta, compute_uv=False)
    assert singular[2] < 1e-12 * singular[0] < singular[1]


def test_circular_law_normal_matrix_remembers_less():
    """Same eigenvalues as the Gaussian, no non-normality: m(a, a) = σ^{2a}/(a + 1)."""
    lk = derive_lag_kernel(Spec(init="spectral"))
    a = sp.Symbol("a", integer=True, nonnegative=True)
    m = lk.moments[0]
    assert sp.simplify(m.subs(sp.Symbol("b", integer=True, nonnegative=True), a) - S.sigma["W"] ** (2 * a) / (a + 1)) == 0
    normal = np.diag(kernel_matrix(Spec(init="spectral"), 20, SIGMAS)["kernel"])
    gaussian = np.diag(kernel_matrix(Spec(), 20, SIGMAS)["kernel"])
    assert np.all(normal[2:] < gaussian[2:]) and normal[19] < 0.2 * gaussian[19]


def test_attractor_floor():
    """A fraction p of line attractors keeps Θ_jk ≥ 2 σ_C²σ_F² p at every lag pair."""
    p = 0.25
    theta = kernel_matrix(Spec(init=f"attractor:p={p}"), 40, SIGMAS)["kernel"]
    floor = 2 * SIGMAS["C"] ** 2 * SIGMAS["F"] ** 2 * p
    assert theta.min() >= floor * (1 - 1e-12)
    gaussian = np.diag(kernel_matrix(Spec(), 40, SIGMAS)["kernel"])
    assert gaussian[-1] < 1e-4 * floor


def test_default_json_keeps_its_keys_and_families_add_the_kernel():
    runner = CliRunner()
    result = runner.invoke(cli.main, ["derive", "--init", "identity", "--format", "json", "--eval", "sigma_W=0.7",
                                      "--lags", "0:4"])
    data = json.loads(result.output)
    kernel = np.array(data["kernel"])
    assert kernel.shape == (4, 4) and np.allclose(np.diag(kernel), [r["alpha"] for r in data["values"]])
    j, k = sp.symbols("j k", integer=True, nonnegative=True)
    parsed = sp.sympify(data["lag_kernel"], locals={"j": j, "k": k})
    value = parsed.subs({j: 2, k: 3, sp.Symbol("sigma_W"): 0.7, sp.Symbol("sigma_C"): 1, sp.Symbol("sigma_F"): 1})
    assert float(value) == pytest.approx(kernel[2, 3])
    assert {"m", "mT"} == set(data["moments"])


@pytest.mark.parametrize("args,message", [
    (["--init", "nosuch"], "unknown initializer 'nosuch'"),
    (["--init", "attractor:p=1.5"], "p must be in [0, 1]"),
    (["--init", "spectral:modulus=square"], "unknown modulus"),
    (["--init", "empirical:/no/such.npy"], "no such file"),
    (["--init", "identity", "--eval", "sigma_W=-1"], "sigma_W"),
])
def test_bad_init_is_one_line_exit_2(args, message):
    result = CliRunner().invoke(cli.main, ["derive", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_bad_files(tmp_path):
    runner = CliRunner()
    np.save(tmp_path / "rect.npy", np.ones((3, 4)))
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan], [0, 1]]))
    np.save(tmp_path / "big.npy", np.array([1.2, 0.5 + 0.5j]))
    for name, message in [("rect", "square real matrix"), ("nan", "finite numbers")]:
        result = runner.invoke(cli.main, ["derive", "--init", f"empirical:{tmp_path / name}.npy"])
        assert result.exit_code == 2 and message in result.output
    result = runner.invoke(cli.main, ["derive", "--init", f"spectral:file={tmp_path / 'big.npy'}", "--eval", "sigma_W=1"])
    assert result.exit_code == 2 and "the mean lag needs every |λ|·σ_W < 1" in result.output


def test_measured_families_use_the_file(tmp_path):
    """A measured matrix or spectrum enters through its own normalized traces: the identity matrix,
    or a spectrum of ones, gives the identity family's kernel exactly; a rotation by 90° (τ(R^k) = 0
    unless 4 | k) does not."""
    np.save(tmp_path / "eye.npy", np.eye(6))
    np.save(tmp_path / "ones.npy", np.ones(5))
    np.save(tmp_path / "rot.npy", np.array([[0.0, -1.0], [1.0, 0.0]]))
    identity = kernel_matrix(Spec(init="identity"), 8, SIGMAS)["kernel"]
    for init in (f"empirical:{tmp_path / 'eye.npy'}", f"spectral:file={tmp_path / 'ones.npy'}",
                 "spectral:modulus=ring,phase=0"):
        assert np.allclose(kernel_matrix(Spec(init=init), 8, SIGMAS)["kernel"], identity, rtol=1e-12)
    rotation = kernel_matrix(Spec(init=f"empirical:{tmp_path / 'rot.npy'}"), 8, SIGMAS)["kernel"]
    assert not np.allclose(rotation, identity)


@pytest.mark.parametrize("init,targets", [("identity", ["numpy", "torch"]), ("attractor:p=0.25", ["numpy", "torch"]),
                                          ("spectral", ["numpy"]), ("spectral:modulus=ring,phase=0.5", ["numpy"])])
@pytest.mark.parametrize("convention", ["A", "B"])
def test_emitted_kernel_matches_numbers(init, targets, convention):
    import types

    from derivations.emit import render

    spec = Spec(init=init, convention=convention)
    found = kernel_matrix(spec, 6, SIGMAS)
    args = [SIGMAS[b] for b in "WFCD"] + ([0.25] if init.startswith("attractor") else [])
    for target in targets:
        (source,) = render("lag-weights", target, spec).values()
        module = types.ModuleType("emitted")
        exec(compile(source, "emitted", "exec"), module.__dict__)
        kernel = [[float(module.lag_kernel(j, k, *args)) for k in range(6)] for j in range(6)]
        covariance = [[float(module.initial_impulse_covariance(j, k, *args)) for k in range(6)] for j in range(6)]
        alpha = [float(module.lag_weights(j, *args)) for j in range(6)]
        assert np.allclose(kernel, found["kernel"], rtol=1e-12, atol=1e-14)
        assert np.allclose(covariance, found["covariance"], rtol=1e-12, atol=1e-14)
        assert np.allclose(alpha, np.diag(found["kernel"]), rtol=1e-12, atol=1e-14)


def test_emit_refuses_what_it_cannot_write(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli.main, ["emit", "--init", "nprnn", "--target", "c", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "--target numpy" in result.output and not (tmp_path / "c").exists()
    np.save(tmp_path / "w.npy", np.eye(3))
    result = runner.invoke(cli.main, ["emit", "--init", f"empirical:{tmp_path / 'w.npy'}", "--target", "numpy",
                                      "--out", str(tmp_path / "e")])
    assert result.exit_code == 2 and "measured" in result.output


@pytest.mark.parametrize("args", [["--init", "identity", "--train", "C"], ["--init", "identity", "--train", "F,C"],
                                  ["--init", "spectral:modulus=ring,phase=0.5", "--train", "C"],
                                  ["--init", "spectral:modulus=uniform,phase=0.5", "--train", "C,D"]])
def test_emit_single_lag_and_partial_specs(tmp_path, args):
    """Specs whose kernel has powers in j + k or sines (found in review): every target renders and
    the python ones evaluate to the numbers."""
    import types

    from derivations.emit import render

    runner = CliRunner()
    for target in ("numpy", "torch", "c", "latex"):
        result = runner.invoke(cli.main, ["emit", *args, "--target", target, "--out", str(tmp_path / target)])
        assert result.exit_code == 0, result.output
    spec = Spec(trained=tuple(args[3].split(",")), init=args[1])
    found = kernel_matrix(spec, 4, SIGMAS)["kernel"]
    for target in ("numpy", "torch"):
        (source,) = render("lag-weights", target, spec).values()
        module = types.ModuleType("emitted")
        exec(compile(source, "emitted", "exec"), module.__dict__)
        with np.errstate(invalid="ignore", divide="ignore"):  # numpy.select evaluates the branch not taken
            got = [[float(module.lag_kernel(j, k, *(SIGMAS[b] for b in "WFCD"))) for k in range(4)] for j in range(4)]
        assert np.allclose(got, found, rtol=1e-12, atol=1e-14)


def test_properties_count_lags_from_zero():
    result = CliRunner().invoke(cli.main, ["derive", "--init", "identity", "--eval", "sigma_W=0.5", "--lags", "3:8",
                                           "--format", "json"])
    numbers = json.loads(result.output)["property_values"]
    assert numbers["peak_lag"] == 3 and numbers["decreasing_from_lag"] == 3 and numbers["half_life"] == 4
