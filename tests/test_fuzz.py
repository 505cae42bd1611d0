"""Fuzzing the command-line option parsers with hypothesis.

The property, for every command line: the run ends (within `TIME_LIMIT_S`) in exit code 0, or in
exit code 2 with exactly one non-empty line on stderr that starts with "rnnmemory: error:" and no
traceback; an exception other than SystemExit never escapes the CLI. Bad sizes (widths, lags,
teacher dimensions) must be refused with that one line before anything of that size is allocated.

Valid inputs run at tiny sizes (width 4, 2 samples of length 6, 2 steps; 2 lags and 2 seeds for
check ntk) so that each example costs about a second at most. Each run happens under a time limit
(SIGALRM) and, on Linux, an address-space limit a few GiB above what the process already uses, so
that a CLI that hangs or allocates a huge array fails its example instead of stalling or getting
the test session killed. Runs are derandomized and keep no example database: the same examples
every time.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

import hypothesis.configuration
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import cli

pytestmark = pytest.mark.slow  # hypothesis drives the command line through hundreds of inputs

PREFIX = "rnnmemory: error:"
TIME_LIMIT_S = 10  # a valid tiny run takes ~0.1-2.5 s; a derivation ~0.1-1 s
MEMORY_HEADROOM = 6 * 2**30  # bytes of address space a run may add on top of what the process holds

# Module-level scratch space (hypothesis re-runs the test body, so no function-scoped fixtures).
TMP = Path(tempfile.mkdtemp(prefix="rnnmemory-fuzz-"))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
OUT = str(TMP / "out")
# Hypothesis keeps caches (unicode tables, constants) in ./.hypothesis even without a database:
# keep them out of the checkout.
if hasattr(hypothesis.configuration, "set_hypothesis_home_dir"):
    hypothesis.configuration.set_hypothesis_home_dir(TMP / ".hypothesis")

DERIVE = ["derive"]
TRAIN = ["check", "train", "--width", "4", "--samples", "2", "--length", "6", "--steps", "2",
         "--device", "cpu", "--out", OUT, "--force", "--format", "json"]
NTK = ["check", "ntk", "--lags", "2", "--seeds", "2", "--device", "cpu", "--out", OUT, "--force", "--format", "json"]


# The suite runs half the examples each test names, to stay within its time budget on 2 cores;
# RNNMEMORY_FUZZ_SCALE=10 fuzzes ten times harder.
SCALE = float(os.environ.get("RNNMEMORY_FUZZ_SCALE", "0.5"))


def fuzz_settings(max_examples: int):
    return settings(max_examples=max(5, round(max_examples * SCALE)), deadline=None, derandomize=True, database=None,
                    phases=(Phase.explicit, Phase.generate, Phase.shrink), print_blob=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.large_base_example])


# ---------------------------------------------------------------------------------------------
# Running one command line under limits, and the property


class _OutOfTime(BaseException):
    """Raised by SIGALRM inside a run. A BaseException, so `except Exception` in the code under
    test (or CliRunner's own handler) cannot swallow it."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise _OutOfTime()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _address_space() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise OSError("no VmSize in /proc/self/status")


@contextlib.contextmanager
def _memory_limit(headroom: int):
    """RLIMIT_AS at the current address space plus `headroom` while a run lasts (Linux only): a
    huge allocation then fails at once instead of swapping or waking the OOM killer."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = _address_space() + headroom
    except (ImportError, OSError, ValueError, AttributeError):
        yield
        return
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY:
        limit = min(limit, soft)  # never loosen a limit that is already there
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _close_figures():
    # Each check writes figures through pyplot and leaves them open; close them so that a long
    # fuzzing session neither grows nor warns about too many open figures.
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


def invoke(args: list[str]):
    timed_out = False
    with _memory_limit(MEMORY_HEADROOM):
        try:
            with _time_limit(TIME_LIMIT_S):
                result = CliRunner().invoke(cli.main, args)
        except _OutOfTime:
            timed_out = True
    _close_figures()
    if timed_out:
        # Raised outside the except block, so that where the alarm happened to land is no part of
        # the failure (hypothesis tells failures apart by their origin).
        raise AssertionError(f"rnnmemory {shlex.join(args)}: still running after {TIME_LIMIT_S} s")
    return result


def check(args: list[str]):
    """Run `rnnmemory ARGS` and assert the property; returns the click Result."""
    result = invoke(args)
    shown = f"rnnmemory {shlex.join(args)}"
    error = result.exception
    if error is not None and not isinstance(error, SystemExit):
        # Chain the CLI's own exception, with its traceback, as the cause: the report shows where
        # it arose, and hypothesis keeps distinct bugs apart.
        try:
            raise error.with_traceback(result.exc_info[2])
        except BaseException as cause:
            raise AssertionError(f"{shown}: uncaught {type(cause).__name__}: {cause} "
                                 f"(exit code {result.exit_code})") from cause
    assert result.exit_code in (0, 2), f"{shown}: exit code {result.exit_code}; stderr {result.stderr!r}"
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert "Traceback" not in result.output and "Traceback" not in result.stderr, (
            f"{shown}: a traceback in the output: {result.stderr!r}")
        assert len(lines) == 1 and lines[0].startswith(PREFIX) and lines[0][len(PREFIX):].strip(), (
            f"{shown}: exit code 2 needs exactly one line '{PREFIX} ...' on stderr, got {result.stderr!r}")
    return result


# ---------------------------------------------------------------------------------------------
# Building blocks

def junk(max_size: int = 8):
    """Arbitrary text: unicode, control characters, separators, empty."""
    return st.text(max_size=max_size)


NUMBER_TEXT = (
    "0", "1", "0.5", "0.8", "0.95", "2", "5", "-0", "-0.0", "-1", "-0.5", "1e-300", "-1e-300", "5e-324",
    "1e10", "1e100", "1e200", "1e300", "1e308", "1.7976931348623157e308", "1e309", "1e400", "-1e400",
    "nan", "-nan", "NaN", "inf", "-inf", "Infinity", " 0.8 ", "1_0", "٣", "１", "0x10", "1/2", "0.8.1",
    "1e", "e1", "--1", "", " ", "abc",
)


def number_text():
    """Text that may or may not be a number: edge cases, any float's repr, big integers, junk."""
    return st.one_of(st.sampled_from(NUMBER_TEXT), st.floats().map(repr),
                     st.integers(-10**30, 10**30).map(str), junk(6))


HUGE = (10**6, 10**7, 10**9, 10**12, 2**31, 2**63 - 1, 2**63, 10**30)


def count_text(small=(-3, 16), huge=HUGE):
    """Text for an integer count: mostly small values (valid or not), huge ones, and junk."""
    options = [st.integers(*small).map(str),
               st.sampled_from(["", " ", "4.0", "1e3", "0x10", "４", "+4", " 4 ", "4_0", "-0", "four"]), junk(4)]
    if huge:
        options.append(st.sampled_from(huge).map(str))
    return st.one_of(options)


# ---------------------------------------------------------------------------------------------
# derive: --eval, --rate, --lags, --train

SIGMAS = ("sigma_W", "sigma_F", "sigma_C", "sigma_D")
LAMBDAS = ("lambda_W", "lambda_F", "lambda_C", "lambda_D")
JUNK_NAMES = ("sigma_X", "sigma_w", "SIGMA_W", "σ_W", " sigma_W", "lambda_", "lambda_Q", "lambda_WC", "")

# Values: valid ones half the time, so that many examples get as far as the evaluation.
eval_value = st.one_of(st.floats(0, 2).map(repr), st.sampled_from(["0", "1", "0.5", "0.8", "0.95", "2"]),
                       number_text())
eval_item = st.one_of(
    st.tuples(st.sampled_from(SIGMAS + LAMBDAS), eval_value).map("=".join),
    st.tuples(st.sampled_from(SIGMAS + LAMBDAS + JUNK_NAMES) | junk(6), number_text()).map("=".join),
    st.sampled_from(SIGMAS + LAMBDAS),  # a name without "=VALUE"
    junk(8),
)
eval_strings = st.one_of(
    # σ_W (required) and other names, each with a value that is usually valid
    st.tuples(eval_value, st.dictionaries(st.sampled_from(SIGMAS[1:] + LAMBDAS), eval_value, max_size=4)).map(
        lambda t: ",".join([f"sigma_W={t[0]}", *(f"{k}={v}" for k, v in t[1].items())])),
    # a σ_W among arbitrary items
    st.tuples(eval_value, st.lists(eval_item, max_size=4)).map(lambda t: ",".join([f"sigma_W={t[0]}", *t[1]])),
    st.tuples(eval_value, st.lists(eval_item, max_size=4)).map(lambda t: ",".join([*t[1], f"sigma_W={t[0]}"])),
    st.lists(eval_item, max_size=4).map(",".join),
    junk(20),
)


@fuzz_settings(60)
@given(point=eval_strings, symbolic=st.sampled_from([False, False, True]), fmt=st.sampled_from(["text", "json"]))
def test_eval_strings(point, symbolic, fmt):
    check(DERIVE + ["--eval", point, "--lags", "0:4", "--format", fmt] + (["--symbolic-rates"] if symbolic else []))


# Rates: fast valid values first, then invalid ones, then exact rates with a large denominator
# (hypothesis shrinks towards the front of a sampled_from).
RATE_TEXT = ("1", "2", "3", "0.5", "0.25", "1/3", "2/3", "10", "0.1", " 2 ",
             "0", "0.0", "-1", "-0.5", "1/0", "0/1", "nan", "inf", "-inf", "", " ", "abc", "1e", "0x1",
             "1_0", "٣", "12.345", "1000", "1e-300", "1e400")
BLOCK_TEXT = ("W", "F", "C", "D", "w", "X", "WC", " W", "")


# Ordinary decimals, cheap ones first: the derivation's cost grows with the rate's denominator.
DECIMALS = ("1.7", "0.3", "2.5", "0.05", "12.345", "0.517", "3.14159", "99.99")
rate_text = st.one_of(st.sampled_from(RATE_TEXT), st.sampled_from(DECIMALS))


@fuzz_settings(30)
@given(rates=st.lists(st.one_of(st.tuples(st.sampled_from(BLOCK_TEXT), rate_text).map("=".join),
                                rate_text.map(lambda r: f"W={r}"),  # λ_W is the one in the Lerch argument
                                st.sampled_from(BLOCK_TEXT), junk(8)), min_size=1, max_size=3),
       symbolic=st.booleans())
def test_rate_strings(rates, symbolic):
    args = DERIVE + [a for r in rates for a in ("--rate", r)] + (["--symbolic-rates"] if symbolic else [])
    check(args)


LAG_HUGE = (10**10, 10**20, 2**63, 10**100)  # each fails at once when allocated: no slow runs
lag_bound = st.one_of(st.integers(-3, 40), st.integers(-3, 40), st.sampled_from(LAG_HUGE), st.sampled_from([-10**30]))
lag_strings = st.one_of(
    st.tuples(lag_bound, lag_bound).map(lambda t: f"{t[0]}:{t[1]}"),
    lag_bound.map(str),
    st.sampled_from(LAG_HUGE).map(lambda n: f"0:{n}"),  # a huge range from a valid start
    st.tuples(count_text((-3, 40), ()), count_text((-3, 40), ())).map(":".join),
    st.sampled_from([":", "::", "0:", ":4", "1:2:3", " 1 : 4 ", "１:３", "0x1:4", "1.5:3", "-0:3", "+1:+3",
                     "1_0:2_0", "0:1e3"]),
    junk(10),
)


@fuzz_settings(30)
@given(lags=lag_strings)
def test_lags_strings(lags):
    check(DERIVE + ["--eval", "sigma_W=0.8", "--lags", lags])


@fuzz_settings(30)
@given(trained=st.one_of(st.lists(st.sampled_from(("W", "F", "C", "D", "w", "X", "WC", "", " ", " W ", "Ｗ")) | junk(3),
                                  max_size=5).map(",".join), junk(10)),
       feedthrough=st.booleans(), convention=st.sampled_from(["A", "B"]), param=st.sampled_from(["ntk", "standard"]))
def test_train_blocks(trained, feedthrough, convention, param):
    check(DERIVE + ["--train", trained, "--convention", convention, "--param", param]
          + ([] if feedthrough else ["--no-feedthrough"]))


INITS = TMP / "inits"
INITS.mkdir()
np.save(INITS / "square.npy", np.eye(3) * 0.5)
np.save(INITS / "rect.npy", np.ones((2, 3)))
np.save(INITS / "eigs.npy", np.array([0.5, 0.3 + 0.4j]))
np.save(INITS / "big.npy", np.array([1.5, 0.2]))
(INITS / "text.npy").write_text("not numpy")
init_value = st.one_of(st.sampled_from(["0", "1", "0.25", "-1", "2", "nan", "inf", "1e300", "", "disk", "ring", "x"]
                                       + [str(INITS / f) for f in ("square.npy", "rect.npy", "eigs.npy", "big.npy",
                                                                   "text.npy", "none.npy")]), junk(4))
init_item = st.tuples(st.sampled_from(["p", "phase", "modulus", "file", "sha256", "g", "P", ""]), init_value).map("=".join)
init_strings = st.one_of(
    st.tuples(st.sampled_from(["gaussian", "orthogonal", "identity", "nprnn", "spectral", "attractor", "empirical",
                               "Identity", "", "foo"]), st.lists(st.one_of(init_item, init_value), max_size=3))
    .map(lambda t: t[0] + (":" + ",".join(t[1]) if t[1] else "")),
    junk(12))


@fuzz_settings(60)
@given(init=init_strings, sigma_w=st.sampled_from(["0", "0.5", "1", "3"]), fmt=st.sampled_from(["text", "json"]))
def test_init_strings(init, sigma_w, fmt):
    check(DERIVE + ["--init", init, "--eval", f"sigma_W={sigma_w}", "--lags", "0:4", "--format", fmt])


# ---------------------------------------------------------------------------------------------
# check train --teacher

TEACHERS = TMP / "teachers"
TEACHERS.mkdir()
(TEACHERS / "ok.csv").write_text("1,0.5,0.25\n")
(TEACHERS / "column.csv").write_text("1\n0.5\n0.25\n")
(TEACHERS / "letters.csv").write_text("a,b\n")
(TEACHERS / "empty.csv").write_text("")
(TEACHERS / "nan.csv").write_text("1,nan\n")
(TEACHERS / "matrix.csv").write_text("1,2\n3,4\n")
(TEACHERS / "ok.txt").write_text("1,0.5\n")
(TEACHERS / "garbage.npy").write_bytes(b"not an npy file")
(TEACHERS / "directory.npy").mkdir()
np.save(TEACHERS / "ok.npy", np.array([1.0, 0.5, 0.25]))
np.save(TEACHERS / "long.npy", 0.9 ** np.arange(100.0))
np.save(TEACHERS / "scalar.npy", np.array(3.0))
np.save(TEACHERS / "empty.npy", np.zeros(0))
np.save(TEACHERS / "inf.npy", np.array([1.0, np.inf]))
np.save(TEACHERS / "huge.npy", np.array([1e308, 1e308]))
np.save(TEACHERS / "complex.npy", np.array([1 + 2j, 0.5]))
np.save(TEACHERS / "strings.npy", np.array(["a", "b"]))
np.save(TEACHERS / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
np.save(TEACHERS / "cube.npy", np.ones((2, 2, 2)))
TEACHER_PATHS = sorted(str(p) for p in TEACHERS.iterdir()) + [
    str(TEACHERS / "missing.npy"), str(TEACHERS / "missing.csv"), str(TEACHERS), "relative/missing.csv", "",
    "/dev/null", "nul\0byte.npy", str(TEACHERS / "ok.csv") + ",", "~/x.npy"]

delay_text = st.one_of(st.integers(-3, 9).map(str), st.sampled_from([str(2**63), str(10**30), str(-10**30)]),
                       st.sampled_from(["1.0", "1e3", "", "٣", " 2", "2,3"]), junk(4))
dim_text = st.one_of(st.integers(-2, 8).map(str),
                     st.sampled_from(["2.5", "1e9", "1e300", str(10**5), str(10**9), str(2**63), "3.0", "nan", "inf"]),
                     junk(4))
teacher_strings = st.one_of(
    number_text().map(lambda r: f"decay:{r}"),
    delay_text.map(lambda k: f"delay:{k}"),
    st.tuples(number_text(), number_text()).map(lambda t: f"resonant:{t[0]},{t[1]}"),
    st.one_of(dim_text.map(lambda d: f"lti:{d}"),
              st.tuples(dim_text, number_text()).map(lambda t: f"lti:{t[0]},{t[1]}")),
    st.sampled_from(TEACHER_PATHS).map(lambda p: f"file:{p}"),
    st.tuples(st.sampled_from(["decay", "delay", "resonant", "lti", "file", "DECAY", " decay", "foo", ""]) | junk(5),
              st.sampled_from([":", "", "::", ": "]), junk(8)).map("".join),
    junk(12),
)


@fuzz_settings(25)
@given(teacher=teacher_strings)
def test_teacher_strings(teacher):
    check(TRAIN + ["--teacher", teacher])


# ---------------------------------------------------------------------------------------------
# check ntk --width / --sigma-w, --lags / --seeds / --seed

def comma_list(item, max_size=3):
    return st.one_of(st.lists(item, min_size=1, max_size=max_size).map(",".join),
                     st.lists(item, min_size=1, max_size=max_size).map(", ".join),
                     st.tuples(st.lists(item, max_size=max_size), st.sampled_from(["", ",", ",,", " "])).map(
                         lambda t: ",".join(t[0]) + t[1]))


width_item = st.one_of(st.integers(1, 16).map(str), st.integers(1, 16).map(str), st.integers(-3, 0).map(str),
                       st.sampled_from(HUGE).map(str),
                       st.sampled_from(["", " ", "4.0", "1e3", "0x10", "４", "+4", "4_0", "nan", "four"]), junk(4))


@fuzz_settings(20)
@given(widths=comma_list(width_item))
def test_ntk_widths(widths):
    check(NTK + ["--width", widths, "--sigma-w", "0.5"])


@fuzz_settings(20)
@given(sigma_ws=comma_list(number_text()))
def test_ntk_sigma_w(sigma_ws):
    check(NTK + ["--width", "4", "--sigma-w", sigma_ws])


@fuzz_settings(15)
@given(lags=count_text((-2, 6), (10**5, 10**9, 2**63, 10**30)), seeds=count_text((-2, 4), ()))
def test_ntk_lags_seeds(lags, seeds):
    check(NTK + ["--width", "4", "--sigma-w", "0.5", "--lags", lags, "--seeds", seeds])


@fuzz_settings(10)
@given(seed=st.one_of(count_text((-3, 3), (2**32, 2**64, 10**30)), st.sampled_from(["-1", str(-(2**63))])),
       command=st.sampled_from(["ntk", "train"]))
def test_seed(seed, command):
    base = NTK + ["--width", "4", "--sigma-w", "0.5"] if command == "ntk" else TRAIN
    check(base + ["--seed", seed])


# ---------------------------------------------------------------------------------------------
# check train --width / --samples / --length, --sigma-w, --steps, --lr, --lazy-scale

SIZE_HUGE = (10**9, 10**12, 2**63 - 1, 2**63, 10**30)  # each fails at once when allocated: no slow runs


@fuzz_settings(15)
@given(option=st.sampled_from(["--width", "--samples", "--length"]), value=count_text((-2, 8), SIZE_HUGE))
def test_train_sizes(option, value):
    # one size at a time, the others at their tiny values
    check(TRAIN + [option, value, "--teacher", "decay:0.5"])


@fuzz_settings(15)
@given(sigma_w=number_text())
def test_train_sigma_w(sigma_w):
    check(TRAIN + ["--sigma-w", sigma_w])


@fuzz_settings(12)
@given(steps=count_text((-3, 6), (10**12, 2**63, 10**30)))
def test_train_steps(steps):
    check(TRAIN + ["--steps", steps])


LR_TEXT = ("auto", "AUTO", "Auto", " auto", "auto ", "0.1", "1", "1e-300", "5e-324", "0", "-0.0", "-1", "1e300",
           "1e308", "1e309")


@fuzz_settings(15)
@given(lr=st.one_of(st.sampled_from(LR_TEXT), number_text()), optimizer=st.sampled_from(["gd", "sgd", "adam"]))
def test_train_lr(lr, optimizer):
    check(TRAIN + ["--lr", lr, "--optimizer", optimizer])


@fuzz_settings(10)
@given(scale=st.one_of(number_text(), st.sampled_from(["1e-300", "1e-30", "1e-10", "1e10", "1e30", "1e300"])),
       center=st.booleans())
def test_train_lazy_scale(scale, center):
    check(TRAIN + ["--lazy-scale", scale] + (["--center"] if center else []))


# ---------------------------------------------------------------------------------------------
# Hand-picked edge cases, found by the fuzzers above or by hand: the same property, always run.

EDGE_CASES = [
    (DERIVE, ["--eval", "sigma_W=0.8,sigma_F=1e308"]),
    (DERIVE, ["--eval", "sigma_W=0.8", "--lags", f"0:{10**20}"]),
    (DERIVE, ["--eval", "sigma_W=0.8", "--lags", f"0:{10**10}"]),
    (DERIVE, ["--rate", "W=12.345"]),
    (DERIVE, ["--rate", "W=1000"]),
    (TRAIN, ["--teacher", f"delay:{10**30}"]),
    (TRAIN, ["--teacher", "lti:1e9"]),
    (TRAIN, ["--teacher", "lti:1e300"]),
    (TRAIN, ["--teacher", "decay:1e10"]),
    (TRAIN, ["--teacher", "decay:1e300"]),
    (TRAIN, ["--teacher", f"file:{TEACHERS / 'empty.csv'}"]),
    (TRAIN, ["--width", str(10**6)]),
    (TRAIN, ["--width", str(2**63)]),
    (TRAIN, ["--samples", str(10**9)]),
    (TRAIN, ["--length", str(10**7)]),
    (TRAIN, ["--sigma-w", "1e100"]),
    (TRAIN, ["--sigma-w", "inf"]),
    (TRAIN, ["--sigma-d", "inf"]),
    (TRAIN, ["--sigma-c", "0", "--train", "W,C"]),
    (TRAIN, ["--steps", str(10**12)]),
    (TRAIN, ["--lr", "1e300"]),
    (TRAIN, ["--lazy-scale", "1e-300"]),
    (TRAIN, ["--seed", "-1"]),
    (NTK, ["--width", str(10**6), "--sigma-w", "0.5"]),
    (NTK, ["--width", str(10**12), "--sigma-w", "0.5"]),
    (NTK, ["--width", str(2**63), "--sigma-w", "0.5"]),
    (NTK, ["--width", "4", "--sigma-w", "inf"]),
    (NTK, ["--width", "4", "--sigma-w", "0.5", "--sigma-d", "inf"]),
    (NTK, ["--width", "4", "--sigma-w", "0", "--sigma-f", "0", "--sigma-c", "0", "--sigma-d", "0"]),
    (NTK, ["--width", "4", "--sigma-w", "0.5", "--lags", str(10**5)]),
    (NTK, ["--width", "4", "--sigma-w", "0.5", "--seed", "-1"]),
]


@pytest.mark.parametrize("base,extra", EDGE_CASES,
                         ids=[" ".join(base[:2 if base[0] == "check" else 1] + extra).replace(str(TMP), "TMP")
                              for base, extra in EDGE_CASES])
def test_edge_case(base, extra):
    check(base + extra)
