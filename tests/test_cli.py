"""The command line: documented examples, JSON contract, and one-line errors with exit code 2."""
import json

import click
import pytest
import sympy as sp
from click.testing import CliRunner

import cli


def run(*args):
    return CliRunner().invoke(cli.main, list(args))


def _commands(group=cli.main, prefix=()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + (name,))
        else:
            yield prefix + (name,), command


@pytest.mark.parametrize("path,command", list(_commands()), ids=lambda x: " ".join(x) if isinstance(x, tuple) else "")
def test_every_command_has_help_and_an_example(path, command):
    result = run(*path, "--help")
    assert result.exit_code == 0
    assert command.help and "Example: rnnmemory " + " ".join(path) in command.help


def test_derive_json_contract():
    result = run("derive", "--format", "json", "--eval", "sigma_W=0.8,sigma_F=1,sigma_C=1,sigma_D=0.5", "--lags", "0:5")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"spec", "alpha", "blocks", "nngp", "latex", "properties", "values"} <= set(data)
    alpha = sp.sympify(data["alpha"])
    assert {s.name for s in alpha.free_symbols} <= {"j", "sigma_W", "sigma_F", "sigma_C", "sigma_D"}
    point = {"sigma_W": 0.8, "sigma_F": 1, "sigma_C": 1, "sigma_D": 0.5}
    for row in data["values"]:
        assert float(alpha.subs(point | {"j": row["lag"]})) == pytest.approx(row["alpha"], rel=1e-12)
    assert [row["lag"] for row in data["values"]] == list(range(5))


def test_symbolic_rates_keep_lambdas():
    data = json.loads(run("derive", "--format", "json", "--symbolic-rates", "--train", "W,C").stdout)
    names = {s.name for s in sp.sympify(data["alpha"]).free_symbols}
    assert {"lambda_W", "lambda_C"} <= names and "lambda_F" not in names


def test_rates_are_substituted():
    one = sp.sympify(json.loads(run("derive", "--format", "json").stdout)["blocks"]["W"])
    three = sp.sympify(json.loads(run("derive", "--format", "json", "--rate", "W=3").stdout)["blocks"]["W"])
    assert sp.simplify(three - 3 * one) == 0


def test_text_states_the_normalization():
    out = run("derive").stdout
    assert "/ n_x" in out and "alpha_j =" in out


@pytest.mark.parametrize("args,needle", [
    (["derive", "--eval", "sigma_W=-0.5"], "sigma_W"),
    (["derive", "--train", "W,Q"], "'Q'"),
    (["derive", "--rate", "W3"], "W3"),
    (["derive", "--rate", "W=-1"], "rate of W"),
    (["derive", "--rate", "W=abc"], "rate of W"),
    (["derive", "--eval", "sigma_W"], "sigma_W"),
    (["derive", "--eval", "sigma_X=1"], "sigma_X"),
    (["derive", "--eval", "sigma_W=0.8", "--lags", "5:2"], "5:2"),
    (["derive", "--convention", "C"], "--convention"),
    (["derive", "--param", "mup"], "--param"),
    (["derive", "--format", "yaml"], "--format"),
    (["derive", "--no-feedthrough", "--train", "W,D"], "feed-through"),
    (["emit", "--target", "rust", "--out", "x"], "--target"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    result = run(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.output


def test_emit_to_a_file_path_is_an_error(tmp_path):
    path = tmp_path / "taken"
    path.write_text("")
    result = run("emit", "--target", "numpy", "--out", str(path))
    assert result.exit_code == 2 and "is a file" in result.stderr


def test_emit_writes_files(tmp_path):
    result = run("emit", "--target", "c", "--out", str(tmp_path / "gen"))
    assert result.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == ["lag_weights.c", "lag_weights.h"]
