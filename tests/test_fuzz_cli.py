"""Fuzzing the option parsers: whatever a user types ends in exit code 0 or 2, never a traceback.

A bad input gives exactly one line on stderr, starting "rnnmemory: error:". Valid inputs run at
tiny sizes so that each example costs little; huge widths must be refused before anything is
allocated.
"""
import tempfile

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cli

OUT = tempfile.mkdtemp(prefix="rnnmemory-fuzz-")
FUZZ = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10 ** 6),
                    st.sampled_from(["1e308", "-0", "nan", "inf", "0.5", "1", "", " ", "x", "1/2", "²", "0x10"]))
junk = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12)


def ends_cleanly(*args):
    result = CliRunner().invoke(cli.main, list(args))
    assert result.exit_code in (0, 2), (args, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.startswith("rnnmemory: error:")]
        assert len(lines) == 1, (args, result.stderr)
        assert result.stderr.strip().splitlines()[-1] == lines[0]
    return result


@st.composite
def assignments(draw, names):
    items = draw(st.lists(st.tuples(st.one_of(st.sampled_from(names), junk), numbers.map(str),
                                    st.sampled_from(["=", ":", "", "=="])), max_size=4))
    return ",".join(f"{name}{sep}{value}" for name, value, sep in items)


@FUZZ
@given(assignments(["sigma_W", "sigma_F", "sigma_C", "sigma_D", "lambda_W", "lambda_X"]),
       st.one_of(st.sampled_from(["0:4", "3", "2:1", "-1:3", "0:0", ":", "a:b", "0:2:3"]), junk))
def test_derive_eval_and_lags(point, lags):
    ends_cleanly("derive", "--format", "json", "--eval", point, "--lags", lags)


@FUZZ
@given(st.lists(st.one_of(assignments(["W", "F", "C", "D", "Q"]), junk), max_size=3),
       st.one_of(st.sampled_from(["W,F", "W,C", "D", "F,D", "", ",", "W,W", "X"]), junk))
def test_derive_rates_and_trained_blocks(rates, trained):
    args = [a for rate in rates for a in ("--rate", rate)]
    ends_cleanly("derive", "--format", "json", "--no-feedthrough", "--train", trained, *args)


teachers = st.one_of(
    st.tuples(st.sampled_from(["decay", "delay", "resonant", "lti", "file", "ramp", ""]),
              st.lists(numbers.map(str), max_size=3)).map(lambda t: f"{t[0]}:{','.join(t[1])}"),
    st.sampled_from(["file:/nonexistent.npy", "file:" + __file__, "lti:3,1e300", "delay:5", "decay"]), junk)


@FUZZ
@given(teachers, st.sampled_from(["2", "0", "-3", "1", "x", "1e9", ""]),
       st.sampled_from(["auto", "0.1", "0", "-1", "nan", "inf", "1e300", "fast"]),
       st.sampled_from(["0.5", "5", "1e308", "-1", "nan", "inf"]))
def test_check_train_options(teacher, steps, lr, sigma_w):
    ends_cleanly("check", "train", "--teacher", teacher, "--steps", steps, "--lr", lr, "--sigma-w", sigma_w,
                 "--width", "4", "--samples", "2", "--length", "6", "--device", "cpu", "--out", OUT, "--force")


widths = st.lists(st.one_of(st.integers(1, 12).map(str), st.sampled_from(["0", "-4", "1000000", str(10 ** 12),
                                                                          str(2 ** 63), "4.5", "x", ""])),
                  min_size=1, max_size=3).map(",".join)


@FUZZ
@given(st.one_of(widths, junk), st.one_of(st.lists(numbers.map(str), min_size=1, max_size=2).map(",".join), junk))
def test_check_ntk_widths_and_sigmas(width, sigma_ws):
    ends_cleanly("check", "ntk", "--width", width, "--sigma-w", sigma_ws, "--lags", "2", "--seeds", "2",
                 "--jobs", "1", "--device", "cpu", "--out", OUT, "--force")
