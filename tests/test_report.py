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
    assert "Compute time per paper" in (out / "report.md").read_text()
    assert result.stdout.strip().splitlines()[-1].endswith("report.html")
    assert result.stderr == ""  # no terminal, no progress bar; stdout only names the files


def test_html_is_self_contained(done):
    out, _ = done
    page = (out / "report.html").read_text()
    parser = Resources()
    parser.feed(page)
    assert "script" not in parser.tags and "link" not in parser.tags and "iframe" not in parser.tags
    assert parser.links and all(link.startswith("data:image/png;base64,") for link in parser.links)
    assert len(parser.links) == len(EXPERIMENTS)
    assert "url(" not in page and "@import" not in page


def test_every_claim_has_a_verdict_a_tolerance_and_a_source(done):
    out, _ = done
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    records = [json.loads((out / name / "result.json").read_text()) for name in EXPERIMENTS]
    derivation = json.loads((out / "derivation" / "result.json").read_text())
    claims = [c for r in records for c in r["claims"]] + derivation["claims"]
    assert len(claims) >= 12
    table = md.split("## Claims", 1)[1].split("## Derivation", 1)[0]
    rows = [line for line in table.splitlines() if re.search(r"\| (PASS|FAIL) \|", line)]
    assert len(rows) == len(claims)
    assert page.count('class="pass"') + page.count('class="fail"') == 2 * len(claims) - 1  # claims table + per figure
    passed = sum(c["passed"] for c in claims)
    assert f"{passed} of {len(claims)} claims pass" in md
    for claim in claims:
        assert claim["tolerance"] and claim["source"]


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
