"""E1, the initializer × cell × task benchmark (numerics/experiments/eigen/bench.py) and
`rnnmemory eigen bench`: tiny runs end to end, the IRNN mapping, divergences as results, resuming,
and bad input refused before any run."""
import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from numerics.errors import NumericsError
from numerics.experiments.eigen import bench, bench_runs
from numerics.pipeline.cells import CellCache, cell_key
from numerics.pipeline.runner import run_cells

TINY = bench.SCALES["tiny"]
HAS_DEFAULT = all(bench.spectrum_digest(bench.default_spectrum(c, i)) for c in bench.CELLS for i in bench.EIGEN)


@pytest.fixture
def spectrum(tmp_path):
    """A small spectrum file: reals and one member per conjugate pair, inside the unit disk."""
    path = tmp_path / "law.npy"
    np.save(path, np.array([0.95 * np.exp(0.3j), 0.8 * np.exp(1.2j), 0.9, -0.5, 0.6]))
    return str(path)


def test_irnn_is_a_relu_rnn_with_identity_and_is_skipped_on_gated_cells():
    cell = bench.run_cell(TINY, "tomita:3", "rnn", "irnn", 0)
    assert cell["run"]["cell"] == "rnn-relu" and cell["run"]["init"] == "identity:input_init=xavier"
    assert cell["cell"] == "rnn" and cell["init"] == "irnn"  # as the benchmark names it
    assert bench.skip_reason("gru", "irnn", TINY) and bench.skip_reason("lstm", "irnn", TINY)
    assert not any(c["init"] == "irnn" and c["cell"] in bench.GATED for c in bench.cells(TINY))
    # one pack group per task and *trained* cell: rnn (tanh), rnn-relu (the IRNN) and gru
    assert len({bench_runs.run_group(c) for c in bench.cells(TINY)}) == len(TINY.tasks) * 3


def test_tiny_end_to_end_with_a_spectrum_file(tmp_path, spectrum):
    config = dataclasses.replace(TINY, spectrum=spectrum)
    todo = bench.E1.cells(config)
    assert any(c["init"] == "eigen" and c["spectrum"]["sha256"] for c in todo)
    records = run_cells(todo, bench_runs.compute_runs, CellCache(tmp_path), group=bench_runs.run_group)
    found = {cell_key(c): r["result"] for c, r in zip(todo, records)}
    numbers = bench.E1.analyze(config, lambda c: found[cell_key(c)])
    json.dumps(dataclasses.asdict(numbers))  # JSON-ready
    for task in config.tasks:
        for cell in config.cells:
            for row in numbers.rows[task][cell].values():
                assert row["runs"] == config.seeds and row["final_mean"] is not None
                assert 0 <= row["final_mean"] <= 1 and len(row["curve_mean"]) == len(row["curve_step"]) > 1
    assert {(s["cell"], s["init"]) for s in numbers.skipped} == {("gru", "irnn")}
    claims = {c.id: c for c in bench.E1.claims(config, numbers)}
    assert set(claims) == {"every_run_finished", "eigen_not_worse_than_xavier", "eigen_not_worse_than_best",
                           "eigen_better_than_xavier"}
    assert claims["every_run_finished"].passed
    assert isinstance(claims["eigen_better_than_xavier"].measured, int)  # measured, pass or fail
    assert set(numbers.paired["tomita:3"]["rnn"]) == {"xavier", "irnn"}
    fig = bench.E1.plot(config, numbers)
    fig.savefig(tmp_path / "E1.png")
    assert (tmp_path / "E1.png").stat().st_size > 10_000
    assert "tomita:3" in bench.E1.describe(numbers) and "eigen" in bench.table(numbers)


def test_a_cells_numbers_do_not_depend_on_its_pack(tmp_path):
    # the runner packs a group's runs however its chunks fall; packs of 8 and packs of one must agree exactly
    config = dataclasses.replace(TINY, inits=("xavier", "irnn", "orthogonal"))
    todo = bench.E1.cells(config)
    assert {c["kind"] for c in todo} == {"eigen-train"}
    compute = bench.E1.kinds["eigen-train"].compute
    found = {}
    for size in (bench_runs.PACK, 1):
        records = run_cells(todo, lambda chunk, device, context: compute(chunk, device), CellCache(tmp_path / str(size)),
                            group=bench_runs.run_group, group_size=size)
        found[size] = [r["result"] for r in records]
    for packed, alone in zip(found[bench_runs.PACK], found[1]):
        assert packed["curve"] == alone["curve"] and packed["eigenvalues"] == alone["eigenvalues"]
        assert packed["config"]["trainer"] == "packed"


def test_eigen_claims_fail_without_a_spectrum_file(tmp_path):
    config = dataclasses.replace(TINY, tasks=("tomita:3",), cells=("rnn",), spectrum=str(tmp_path / "none.npy"))
    assert all(c["init"] != "eigen" for c in bench.cells(config))
    fake = {"final_metric": 0.7, "steps_to_threshold": None, "metric": "accuracy", "threshold": 0.95,
            "curve": {"step": [0, 10], "test_metric": [0.5, 0.7]}}
    numbers = bench.analyze(config, lambda c: fake)
    claims = {c.id: c for c in bench.claims(config, numbers)}
    assert not claims["eigen_not_worse_than_xavier"].passed and "no spectrum file" in claims["eigen_better_than_xavier"].measured


def test_a_divergence_is_listed_and_fails_its_claim():
    config = dataclasses.replace(TINY, tasks=("tomita:3",), cells=("rnn",), inits=("xavier", "irnn"))
    good = {"final_metric": 0.9, "steps_to_threshold": 10, "metric": "accuracy", "threshold": 0.95,
            "curve": {"step": [0, 10], "test_metric": [0.5, 0.9]}}
    bad = {"status": "diverged", "diverged": {"step": 7, "loss": float("inf")}, "curve": {}}
    numbers = bench.analyze(config, lambda c: bad if (c["init"], c["seed"]) == ("irnn", 1) else good)
    assert numbers.diverged == [{"task": "tomita:3", "cell": "rnn", "init": "irnn", "seed": 1, "step": 7,
                                 "loss": float("inf")}]
    assert numbers.rows["tomita:3"]["rnn"]["irnn"]["finished"] == 1
    finished = next(c for c in bench.claims(config, numbers) if c.id == "every_run_finished")
    assert not finished.passed and "seed 1 at step 7" in finished.measured[0]


@pytest.mark.skipif(not HAS_DEFAULT, reason="no committed spectrum files yet")
def test_each_cell_gets_its_own_law_and_np_rnn_is_relu():
    config = dataclasses.replace(TINY, cells=("rnn", "lstm", "gru"), inits=bench.INITS)
    todo = bench.cells(config)
    files = {(c["cell"], c["init"]): c["spectrum"]["file"] for c in todo if "spectrum" in c}
    assert files[("lstm", "eigen")].endswith("spectra/lstm.npy") and files[("gru", "eigen")].endswith("spectra/gru.npy")
    assert files[("rnn", "eigen-moduli")].endswith("spectra/rnn-moduli.npy")
    assert files[("gru", "eigen-phases")].endswith("spectra/gru-phases.npy")
    nprnn = {c["cell"]: c["run"]["cell"] for c in todo if c["init"] == "nprnn"}
    assert nprnn == {"rnn": "rnn-relu", "lstm": "lstm", "gru": "gru"}
    bench.check_config(config)
    one = dataclasses.replace(config, spectrum="/some/law.npy")
    assert bench.spectrum_for(one, "lstm", "eigen") == "/some/law.npy"
    assert bench.spectrum_for(one, "lstm", "eigen-moduli").endswith("spectra/lstm-moduli.npy")


ARGS = ["eigen", "bench", "--task", "tomita:3", "--cell", "rnn,gru", "--init", "xavier,irnn", "--seeds", "2",
        "--steps", "10", "--hidden", "8", "--jobs", "1"]


def test_cli_bench_writes_its_files_and_a_rerun_reuses_its_cells(tmp_path):
    out = tmp_path / "bench"
    first = CliRunner().invoke(main, [*ARGS, "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert "6 runs (6 computed, 0 reused)" in first.output
    for name in ("result.json", "bench.png", "bench.pdf", "table.txt"):
        assert (out / name).exists(), name
    record = json.loads((out / "result.json").read_text())
    assert record["spec"] is None and record["command"].startswith("rnnmemory eigen bench")
    assert {c["id"] for c in record["claims"]} >= {"every_run_finished"}
    assert "± " in (out / "table.txt").read_text()
    cells = sorted((out / "cells").glob("*.json"))
    assert len(cells) == 6
    again = CliRunner().invoke(main, [*ARGS, "--out", str(out)])
    assert again.exit_code == 0 and "6 runs (0 computed, 6 reused)" in again.output
    assert sorted((out / "cells").glob("*.json")) == cells


@pytest.mark.parametrize("change, message", [
    (["--task", "tomita:8"], "numbered 1 to 7"),
    (["--task", "tomita:3,parity"], "unknown task"),
    (["--cell", "rnn,transformer"], "unknown cell"),
    (["--init", "xavier,glorot"], "unknown initializer"),
    (["--init", "eigen", "--spectrum", "/nonexistent/law.npy"], "no spectrum file"),
])
def test_cli_bench_refuses_bad_input_in_one_line_before_any_run(tmp_path, change, message):
    args = list(ARGS)
    for option, value in zip(change[::2], change[1::2]):
        if option in args:
            args[args.index(option) + 1] = value
        else:
            args += [option, value]
    out = tmp_path / "bench"
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
    assert not out.exists()


def test_a_malformed_spectrum_file_is_refused(tmp_path):
    path = tmp_path / "bad.npy"
    np.save(path, np.array([[1.0, 2.0], [3.0, 4.0]]))
    with pytest.raises(NumericsError):
        bench.check_config(dataclasses.replace(TINY, spectrum=str(path)))


# --- multi30k: translation as a task of E1 (numerics/experiments/eigen/translation.py) -----------

# a word-for-word English→German table, as in tests/test_multi30k.py
WORDS = {"a": "ein", "man": "mann", "dog": "hund", "red": "rot", "runs": "läuft", "sees": "sieht",
         "the": "die", "ball": "ball"}


@pytest.fixture
def corpus(tmp_path):
    """A tiny Multi30k directory: 40 training and 10 val and test pairs of 3–5 words, in the standard names."""
    rng = np.random.default_rng(0)
    directory = tmp_path / "multi30k"
    directory.mkdir()
    for name, count in (("train", 40), ("val", 10), ("test_2016_flickr", 10)):
        sentences = [list(rng.choice(sorted(WORDS), rng.integers(3, 6))) for _ in range(count)]
        for language, words in (("en", lambda s: s), ("de", lambda s: [WORDS[w] for w in s])):
            (directory / f"{name}.{language}").write_text(
                "".join(" ".join(words(s)).capitalize() + " .\n" for s in sentences), encoding="utf-8")
    return directory


MT_ARGS = ["eigen", "bench", "--task", "multi30k", "--cell", "gru,rnn", "--init", "xavier,eigen", "--seeds", "2",
           "--steps", "3", "--hidden", "8", "--embed", "8", "--jobs", "1", "--device", "cpu"]


def test_cli_bench_on_multi30k_scores_bleu_and_skips_the_vanilla_rnn(tmp_path, corpus, spectrum):
    pytest.importorskip("sacrebleu")
    out = tmp_path / "bench"
    result = CliRunner().invoke(main, [*MT_ARGS, "--spectrum", spectrum, "--multi30k-dir", str(corpus),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "4 runs (4 computed, 0 reused)" in result.output  # gru × 2 inits × 2 seeds; no rnn runs
    record = json.loads((out / "result.json").read_text())
    numbers = record["numbers"]
    assert numbers["metric"] == {"multi30k": "bleu"} and numbers["threshold"] == {"multi30k": None}
    assert numbers["curve"] == {"multi30k": "train loss"} and numbers["rows"]["multi30k"]["rnn"] == {}
    for row in numbers["rows"]["multi30k"]["gru"].values():
        assert row["finished"] == 2 and 0 <= row["final_mean"] <= 100 and row["steps_mean"] is None
        assert row["curve_step"] == [3] and row["curve_mean"][0] > 0  # the mean training loss
    assert {(s["task"], s["cell"]) for s in numbers["skipped"]} == {("multi30k", "rnn")}
    assert "--multi30k-dir" in record["command"] and "--spectrum" in record["command"]
    table = (out / "table.txt").read_text()
    assert "multi30k   gru   eigen       BLEU" in table and "n/a (no test curve)" in table
    assert "skipped: rnn on multi30k (xavier, eigen): the translation model is a GRU or LSTM" in table
    cells = [json.loads(p.read_text())["inputs"] for p in (out / "cells").glob("*.json")]
    assert {c["kind"] for c in cells} == {"eigen-translate"}
    assert all(c["data"]["data_dir"] == str(corpus.resolve()) and len(c["data"]["fingerprint"]) == 64 for c in cells)
    assert {c["run"]["hidden"] for c in cells} == {8} and "eigen" in {c["init"] for c in cells}


def test_multi30k_cells_follow_the_files_and_refuse_changed_ones(corpus):
    config = dataclasses.replace(TINY, tasks=("multi30k",), cells=("gru",), inits=("xavier",), seeds=1,
                                 multi30k_dir=str(corpus))
    cell = bench.cells(config)[0]
    assert cell["kind"] == "eigen-translate" and cell["run"]["steps"] == 3000  # the trainer's default
    (corpus / "test_2016_flickr.de").write_text("ein hund .\n" * 10, encoding="utf-8")
    assert bench.cells(config)[0]["data"] != cell["data"]
    with pytest.raises(NumericsError, match="changed since"):
        bench_runs.compute_translations([cell], "cpu")


def test_the_full_scale_has_multi30k_only_with_a_directory(corpus):
    assert "multi30k" not in bench.full_config().tasks
    assert not any("multi30k" in c.tasks for c in (bench.SCALES["quick"], bench.SCALES["tiny"]))
    full = bench.full_config(None, str(corpus))
    assert full.tasks[-1] == "multi30k" and full.multi30k_dir == str(corpus.resolve())


@pytest.mark.parametrize("extra, message", [
    ([], "--multi30k-dir"),
    (["--multi30k-dir", "/nonexistent/multi30k"], "does not exist"),
    (["--multi30k-dir", "EMPTY"], "not found"),
    (["--multi30k-dir", "DATA", "--train-subset", "41"], "train subset"),
])
def test_cli_bench_refuses_a_missing_multi30k_directory_in_one_line(tmp_path, corpus, extra, message):
    (tmp_path / "empty").mkdir()
    extra = [{"EMPTY": str(tmp_path / "empty"), "DATA": str(corpus)}.get(e, e) for e in extra]
    out = tmp_path / "bench"
    result = CliRunner().invoke(main, [*MT_ARGS, "--init", "xavier", *extra, "--out", str(out)])
    assert result.exit_code == 2 and (result.exception is None or isinstance(result.exception, SystemExit))
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output, result.output
    assert not out.exists()


def test_paired_comparison_decides_by_the_interval_of_the_per_seed_differences():
    """A constant lead of eigen over the other seed by seed is 'better' even when the seeds spread far
    more than the lead (the pairing removes the seed's share); a lead smaller than its own noise is
    'not distinguishable'; a constant deficit is 'worse'. The interval is mean ± t(0.975, n−1)·sd/√n."""
    from scipy import stats

    base = [0.50, 0.90, 0.60, 0.80]
    lead = bench.paired([b + 0.01 + 0.001 * k for k, b in enumerate(base)], base)
    assert lead["verdict"] == "better" and lead["pairs"] == 4 and lead["low"] > 0
    noisy = bench.paired([b + d for b, d in zip(base, (0.05, -0.04, 0.03, -0.03))], base)
    assert noisy["verdict"] == "not distinguishable" and noisy["low"] < 0 < noisy["high"]
    d = np.array((0.05, -0.04, 0.03, -0.03))
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert noisy["low"] == pytest.approx(d.mean() - half) and noisy["high"] == pytest.approx(d.mean() + half)
    assert bench.paired([b - 0.02 - 0.001 * k for k, b in enumerate(base)], base)["verdict"] == "worse"
    # a seed that diverged for either initializer leaves its pair out; fewer than two pairs: None
    assert bench.paired([0.5, None, 0.7], [0.4, 0.5, None]) is None


def test_the_claims_correct_for_the_pairs_they_range_over():
    """Nine task × cell pairs: one pair 'worse' at p = 0.04 on its own is not shown worse once the claim
    corrects for the nine (Holm); a pair worse at p = 0.001 still is; the claim against the others
    corrects over every comparison; 'better' is corrected the same way."""
    from types import SimpleNamespace

    def comparison(mean, p):
        return {"pairs": 8, "mean": mean, "low": mean - 0.01, "high": mean + 0.01, "p": p,
                "verdict": "worse" if mean < 0 and p < 0.05 else "better" if p < 0.05 else "not distinguishable",
                "differences": []}

    def bench_of(special):
        paired = {f"task{k}": {"rnn": {"xavier": special if k == 0 else comparison(0.01, 0.5),
                                       "orthogonal": comparison(0.01, 0.6)}} for k in range(9)}
        return SimpleNamespace(paired=paired, best={t: {"rnn": "xavier"} for t in paired}, seeds=8, diverged=[],
                               skipped=[])

    def claims(special):
        return {c.id: c for c in bench.claims(bench.SCALES["quick"], bench_of(special))}

    edge = claims(comparison(-0.05, 0.04))
    assert edge["eigen_not_worse_than_xavier"].passed and edge["eigen_not_worse_than_best"].passed
    strong = claims(comparison(-0.05, 0.001))
    assert not strong["eigen_not_worse_than_xavier"].passed and "corrected p 0.009" in \
        strong["eigen_not_worse_than_xavier"].measured[0]
    # against every other initializer: 18 comparisons, not the 9 pairs' best by mean
    assert "corrected p 0.018" in strong["eigen_not_worse_than_best"].measured[0]
    assert claims(comparison(+0.05, 0.001))["eigen_better_than_xavier"].measured == 1
    assert claims(comparison(+0.05, 0.04))["eigen_better_than_xavier"].measured == 0
