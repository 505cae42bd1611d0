"""`rnnmemory reproduce` end to end at a test size, and the report it writes."""
import json
import re
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

import cli
from numerics.experiments.registry import EXPERIMENTS, REGISTRY
from numerics.pipeline import reproduce as pipeline

pytestmark = pytest.mark.slow  # reproduce --tiny end to end, twice


def reproduce(out):
    """The real command at the tiny scale (seconds, not minutes)."""
    return CliRunner().invoke(cli.main, ["reproduce", "--tiny", "--out", str(out), "--device", "cpu", "--jobs", "1"])


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    result = reproduce(out)
    assert result.exit_code == 0, result.output
    return out, result


class Resources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.links = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [value for name, value in attrs if name in ("src", "href") and value]


def test_reproduce_writes_everything(done):
    out, result = done
    for name in EXPERIMENTS:
        assert (out / name / f"{name}.png").exists() and (out / name / f"{name}.pdf").exists()
        assert (out / name / "result.json").exists()
    assert (out / "derivation" / "generated" / "lag_weights_numpy.py").exists()
    summary = json.loads((out / "result.json").read_text())
    assert summary["cells"]["total"] == pipeline.count_cells(REGISTRY, "tiny") == summary["cells"]["computed"]
    # compute time per paper: each paper's own cells, their recorded seconds summed
    papers = summary["papers"]
    assert set(papers) == set(REGISTRY.papers) and all(p["cell_seconds"] > 0 for p in papers.values())
    assert sum(p["cells"] for p in papers.values()) >= summary["cells"]["total"]
    assert "compute time" in (out / "report.md").read_text()
    assert result.stdout.strip().splitlines()[-1].endswith("report.html")  # the summary page, named last
    assert result.stderr == ""  # no terminal, no progress bar; stdout only names the files


def _pages(out):
    return [out / "report.html"] + [out / f"report-{paper}.html" for paper in REGISTRY.papers]


def test_html_is_self_contained(done):
    out, _ = done
    images = 0
    for path in _pages(out):
        page = path.read_text()
        parser = Resources()
        parser.feed(page)
        assert "script" not in parser.tags and "link" not in parser.tags and "iframe" not in parser.tags
        assert "url(" not in page and "@import" not in page
        # nothing the page loads or links to lies outside the run's files (the data's provenance may
        # name its source's address in the text, as statsmodels does for the sunspots)
        assert not [link for link in parser.links if "://" in link], f"{path.name} links outside the run"
        assert "xmlns=" not in page and "<base" not in page
        embedded = [link for link in parser.links if link.startswith("data:")]
        assert all(link.startswith("data:image/png;base64,") for link in embedded)
        assert all((out / link.split("#")[0]).exists() for link in parser.links
                   if not link.startswith(("data:", "#"))), "a link to a file the run did not write"
        images += len(embedded)
    assert images == len(EXPERIMENTS)


def test_mathematics_is_typeset_as_mathml(done):
    out, _ = done
    for path in _pages(out):
        page = path.read_text()
        assert "<math" in page and "$$" not in page and "\\alpha" not in page.split("<math", 1)[0], path.name
    assert "$$" in (out / "report.md").read_text()  # the Markdown keeps LaTeX, which GitHub renders


def test_every_claim_has_a_verdict_a_tolerance_and_a_source(done):
    out, _ = done
    md = (out / "report.md").read_text()
    records = [json.loads((out / name / "result.json").read_text()) for name in EXPERIMENTS]
    derivation = json.loads((out / "derivation" / "result.json").read_text())
    claims = [c for r in records for c in r["claims"]] + derivation["claims"]
    assert len(claims) >= 12
    table = md.split("## Claims", 1)[1].split("## Derivation", 1)[0]
    rows = [line for line in table.splitlines() if re.search(r"\| (PASS|FAIL) \|", line)]
    assert len(rows) == len(claims)
    verdicts = sum(p.read_text().count('class="pass"') + p.read_text().count('class="fail"') for p in _pages(out))
    # the summary's table holds every claim, each figure's section its own (the derivation's are in the summary only)
    assert verdicts == 2 * len(claims) - len(derivation["claims"])
    passed = sum(c["passed"] for c in claims)
    assert f"{passed} of {len(claims)} claims pass" in md
    for claim in claims:
        assert claim["tolerance"] and claim["source"]


def test_claims_and_figure_data_load_with_pandas(done):
    pandas = pytest.importorskip("pandas")
    out, _ = done
    claims = pandas.read_csv(out / "claims.csv")
    records = {name: json.loads((out / name / "result.json").read_text()) for name in EXPERIMENTS}
    derivation = json.loads((out / "derivation" / "result.json").read_text())
    assert len(claims) == sum(len(r["claims"]) for r in records.values()) + len(derivation["claims"])
    assert set(claims["paper"]) == set(REGISTRY.papers)
    assert int(claims["passed"].sum()) == sum(c["passed"] for r in [*records.values(), derivation] for c in r["claims"])
    for name in EXPERIMENTS:
        data = pandas.read_csv(out / name / f"{name}.csv")
        assert list(data.columns[:3]) == ["figure", "panel", "panel_title"] and len(data) > 0, name
        assert set(data["figure"]) == {name} and data[["x", "y"]].notna().any().all(), name


def test_report_renders_in_a_real_browser(done):
    """Headless Chromium at desktop and phone widths: no console error, no request leaving the files,
    every image decoded, every formula laid out as MathML, nothing wider than the screen."""
    from report_browser import check_pages, missing

    reason = missing()
    if reason:
        pytest.skip(f"no browser check here: {reason}")
    out, _ = done
    for name, sizes in check_pages(_pages(out)).items():
        for size, found in sizes.items():
            where = f"{name} at {size} width"
            assert found["errors"] == [] and found["external"] == [], (where, found["errors"], found["external"])
            assert found["undecoded"] == 0 and found["formulas"] > 0 and found["unrendered"] == 0, (where, found)
            assert found["scroll_width"] <= found["width"], (where, found["scroll_width"])


def test_markdown_links_its_figures_and_escapes_markup(done):
    out, _ = done
    md = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(links) == sorted(f"{name}/{name}.png" for name in EXPERIMENTS)
    assert all((out / link).exists() for link in links)
    assert "L\\*" in md and "SILSO" in md and "Royal Observatory of Belgium" in md


def test_rerun_reuses_every_cell(done):
    out, _ = done
    result = reproduce(out)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "result.json").read_text())
    assert summary["cells"]["computed"] == 0 and summary["cells"]["reused"] == summary["cells"]["total"]


def test_figures_drawn_in_worker_processes_equal_those_drawn_here(done, tmp_path):
    """`draw_all` with workers: each figure in a fresh process, its registry found by `source`."""
    import shutil

    out, _ = done
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert REGISTRY.source == "numerics.experiments.registry:REGISTRY"
    pipeline.draw_all(REGISTRY, "tiny", copy, workers=2)
    for name in EXPERIMENTS:
        here, there = (json.loads((d / name / "result.json").read_text()) for d in (out, copy))
        assert here["numbers"] == there["numbers"] and here["claims"] == there["claims"], name
