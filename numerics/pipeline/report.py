"""The report of a `reproduce` run, from its result files: what a reader looks at first.

    DIR/report.html           the summary (per paper: claims passed, failed, not run; compute
                              time; the machine and commit), every claim linked to its figure and
                              its JSON, and the derivation
    DIR/report-PAPER.html     one page per paper: its equations, what the toolkit chose where the
                              paper is silent, then each figure with its caption and claims
    DIR/report.md             all of it in one Markdown file (LaTeX for GitHub to render)
    DIR/claims.csv            one row per claim; each figure's data is DIR/NAME/NAME.csv (`figure_data`)

The report reads only result.json files (DIR/result.json, DIR/derivation/result.json, one
DIR/NAME/result.json per experiment) and the figures' PNGs; every number names the file it comes
from. It is built once as a list of blocks and printed by a Markdown and an HTML printer, so the two
never disagree. Each HTML page embeds its figures as base64 PNG, its own CSS and its mathematics as
MathML (latex2mathml; browsers render it natively): it opens offline, as one file, and fetches nothing.
"""
from __future__ import annotations

import base64
import csv
import dataclasses
import html
import io
import json
import re
from pathlib import Path

from ..io import read_result, write_atomic
from .experiment import Registry, fmt

CSS = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1a1a1a;
       max-width: 60em; margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.6em; border-bottom: 2px solid #0072B2; padding-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1em 0; font-size: .88em; width: 100%; }
th, td { border: 1px solid #ccc; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #f2f4f7; }
td.pass { color: #fff; background: #009E73; font-weight: bold; text-align: center; }
td.fail { color: #fff; background: #D55E00; font-weight: bold; text-align: center; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .95em; color: #222; margin-top: .4em; }
code, pre { font-family: Menlo, Consolas, monospace; font-size: .88em; background: #f6f8fa; }
pre { padding: .6em; overflow-x: auto; }
.summary { font-size: 1.1em; padding: .6em; background: #f2f4f7; border-left: 4px solid #0072B2; }
math[display="block"] { display: block; margin: .6em 0 .6em 1.5em; font-size: 1.1em; overflow-x: auto; }
nav { font-size: .9em; margin: .5em 0 1.5em; }
a { color: #0060a0; }
table.wide td:nth-child(2) { width: 42%; }
@media (max-width: 40em) { body { font-size: 14px; } th, td { padding: .2em .3em; }
  table { font-size: .8em; display: block; overflow-x: auto; } table.wide td:nth-child(2) { min-width: 14em; } }
"""


# ------------------------------------------------------------------------------- printers

def _md_text(text: str, table: bool = False) -> str:
    """Plain text for Markdown: `code` spans kept; *, < (and | in tables) escaped, since Markdown
    would read them as emphasis, HTML or a column break."""
    parts = str(text).split("`")
    for i in range(0, len(parts), 2):
        for ch in "\\*<" + ("|" if table else ""):
            parts[i] = parts[i].replace(ch, "\\" + ch)
    return "`".join(parts)


_SUBSCRIPT = re.compile(r"\b([A-Za-zα-ωΑ-Ω]\u0302?)_([A-Za-z0-9]{1,2})\b")
_SUPERSCRIPT = re.compile(r"\^\{([^{}]{1,12})\}")


def _html_text(text: str) -> str:
    """Plain text for HTML: `code` spans become <code>; a one-letter symbol's short subscript
    (α_j, σ_W, n_x, δ_ab) becomes <sub> and ^{…} becomes <sup>; everything else is escaped."""
    def symbols(plain: str) -> str:
        return _SUPERSCRIPT.sub(r"<sup>\1</sup>", _SUBSCRIPT.sub(r"\1<sub>\2</sub>", html.escape(plain)))

    parts = str(text).split("`")
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else symbols(p) for i, p in enumerate(parts))


@dataclasses.dataclass(frozen=True)
class Link:
    """A table cell or list item that links: text, and a path relative to the report's directory."""

    text: str
    href: str


def _md_cell(x, table: bool = True) -> str:
    return f"[{_md_text(x.text, table)}]({x.href})" if isinstance(x, Link) else _md_text(x, table)


def _html_cell(x) -> str:
    return f'<a href="{html.escape(x.href)}">{_html_text(x.text)}</a>' if isinstance(x, Link) else _html_text(x)


def markdown(blocks: list) -> str:
    lines = []
    for kind, *body in blocks:
        if kind == "h":
            anchor = [f'<a id="{body[2]}"></a>', ""] if len(body) > 2 and body[2] else []
            lines += anchor + ["#" * body[0] + " " + body[1], ""]
        elif kind == "p":
            lines += [_md_text(body[0]), ""]
        elif kind == "math":
            lines += ["$$", body[0], "$$", ""]
        elif kind == "list":
            lines += ["- " + _md_cell(item, False) for item in body[0]] + [""]
        elif kind == "code":
            lines += ["```", body[0], "```", ""]
        elif kind == "figure":
            lines += [f"![{_md_text(body[1])}]({body[0]})", "", _md_text(body[2] if len(body) > 2 else body[1]), ""]
        elif kind == "table":
            header, rows = body[:2]
            lines.append("| " + " | ".join(_md_text(h, True) for h in header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(_md_cell(x) for x in row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)


def mathml(latex: str) -> str:
    """Display MathML for a LaTeX formula (latex2mathml); without it, the LaTeX as code."""
    try:
        from latex2mathml.converter import convert
    except ImportError:  # an optional library: the device machines' Python lacks it
        return f'<pre><code class="tex">{html.escape(latex)}</code></pre>'
    # HTML5 needs no namespace on <math>; without it the page holds no URL at all
    return convert(latex, display="block").replace(' xmlns="http://www.w3.org/1998/Math/MathML"', "")


def to_html(blocks: list, root: Path, title: str) -> str:
    out = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}</title>",
           f"<style>{CSS}</style></head><body>"]
    for kind, *body in blocks:
        if kind == "h":
            anchor = f' id="{html.escape(body[2])}"' if len(body) > 2 and body[2] else ""
            out.append(f"<h{body[0]}{anchor}>{_html_text(body[1])}</h{body[0]}>")
        elif kind == "p":
            css = ' class="summary"' if len(body) > 1 and body[1] == "summary" else ""
            out.append(f"<p{css}>{_html_text(body[0])}</p>")
        elif kind == "math":
            out.append(mathml(body[0]))
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{_html_cell(item)}</li>" for item in body[0]) + "</ul>")
        elif kind == "code":
            out.append(f"<pre><code>{html.escape(body[0])}</code></pre>")
        elif kind == "figure":
            png = (root / body[0]).read_bytes()
            data = base64.b64encode(png).decode()
            # Shown at a fixed scale of the 200-dpi PNG, so one- and two-column figures keep their
            # relative size (a two-column figure fills the page; text stays ~14 px); never wider than the page.
            width = round(0.65 * int.from_bytes(png[16:20], "big"))
            out.append(f'<figure><img alt="{html.escape(body[1])}" style="width: {width}px" '
                       f'src="data:image/png;base64,{data}">'
                       f"<figcaption>{_html_text(body[2] if len(body) > 2 else body[1])}</figcaption></figure>")
        elif kind == "table":
            header, rows = body[:2]
            css = f' class="{body[2]}"' if len(body) > 2 else ""
            out.append(f"<table{css}><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
            for row in rows:
                cells = []
                for x in row:
                    css = {"PASS": ' class="pass"', "FAIL": ' class="fail"'}.get(str(x), "")
                    cells.append(f"<td{css}>{_html_cell(x)}</td>")
                out.append("<tr>" + "".join(cells) + "</tr>")
            out.append("</table>")
    out.append("</body></html>\n")
    return "\n".join(out)


# --------------------------------------------------------------------------------- report

def _verdict(claim: dict) -> str:
    return "PASS" if claim["passed"] else "FAIL"


class Report:
    """The report's content, from the result files under `root`: `summary()` (the first page),
    `paper(key)` (one page per paper) and `rows()` (claims.csv)."""

    def __init__(self, registry: Registry, root: Path):
        self.registry, self.root = registry, root
        self.top = read_result(root)
        self.derivation = read_result(root / "derivation")
        self.figures = {name: read_result(root / name) for name in registry.experiments
                        if (root / name / "result.json").exists()}
        self.scale = json.loads((root / "scale.json").read_text())

    def page(self, paper: str) -> str:
        return f"report-{paper}.html"

    def claims(self, paper: str | None = None) -> list:
        """(figure, claim) pairs in report order; the derivation's belong to paper 1."""
        first = next(iter(self.registry.papers))
        pairs = [("derivation", c) for c in self.derivation["claims"]] if paper in (None, first) else []
        return pairs + [(name, c) for name, rec in self.figures.items() for c in rec["claims"]
                        if paper is None or self.registry.experiments[name].paper == paper]

    def summary(self) -> list:
        top, env = self.top, self.top["environment"]
        claims = self.claims()
        passed = sum(c["passed"] for _, c in claims)
        versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
        workers = top.get("scheduler") or f"{top.get('jobs', 1)} worker{'s' * (top.get('jobs', 1) != 1)}"
        rows = []
        for key, about in self.registry.papers.items():
            names = [n for n, e in self.registry.experiments.items() if e.paper == key]
            mine = self.claims(key)
            time = top.get("papers", {}).get(key)
            rows.append([Link(about.title, self.page(key)), str(sum(c["passed"] for _, c in mine)),
                         str(sum(not c["passed"] for _, c in mine)),
                         str(len(names) - sum(n in self.figures for n in names)),
                         f"{time['cell_seconds']:.0f} s ({time['cells']} cells)" if time else "–"])
        out = [
            ("h", 1, "rnnmemory: reproduction report"),
            ("p", f"{passed} of {len(claims)} claims pass. Scale: {self.scale['name']}. {top['cells']['total']} cells "
                  f"({top['cells']['computed']} computed in this run, {top['cells']['reused']} reused from DIR/cells). "
                  f"Wall time {top['wall_seconds']:.0f} s on {env['device_name']}, {workers}.", "summary"),
            ("table", ["paper", "claims passed", "failed", "figures not run", "compute time"], rows),
            ("p", "Compute time is the seconds a paper's cells took, summed over the workers (the papers' cells run "
                  "interleaved, so no paper has a wall time of its own; cached cells count with the time they took "
                  "when made)."),
            ("p", f"Command: {top.get('command') or 'rnnmemory reproduce'}. Git commit {env['git_commit']}; {versions}; "
                  f"{env['platform']}; {env['created']}."),
            ("p", "Every number comes from a result.json under this directory; each lists the cell files "
                  "(DIR/cells/<sha256>.json) it was computed from, and each cell file holds its inputs, its result "
                  "and the environment it ran in. The data behind each figure is a CSV beside it, one row per plotted "
                  "point; every claim is in claims.csv. `rnnmemory figure F5 --out DIR` redraws one figure."),
            ("list", [Link("claims.csv: every claim, one row each", "claims.csv")]
             + [Link(f"{about.title}: its page", self.page(key)) for key, about in self.registry.papers.items()]),
            ("h", 2, "Claims"),
            ("table", ["figure", "claim", "measured", "tolerance", "verdict", "numbers"],
             [[self._figure_link(name), c["claim"], fmt(c["measured"]), c["tolerance"], _verdict(c),
               Link(self._json(name), self._json(name))] for name, c in claims], "wide"),
        ]
        return out + self._derivation()

    def _figure_link(self, name: str):
        if name == "derivation":
            return Link("derivation", "#derivation")
        return Link(name, f"{self.page(self.registry.experiments[name].paper)}#{name}")

    @staticmethod
    def _json(name: str) -> str:
        return f"{name}/result.json"

    def _derivation(self) -> list:
        d = self.derivation
        return [
            ("h", 2, "Derivation", "derivation"),
            ("p", "The lag weights of the neural tangent kernel, derived in SymPy for the spec "
                  f"({_spec_text(d['spec'])}); Θ = δ_ab Σ_j α_j ⟨x_(k−j), x′_(k′−j)⟩ / n_x with"),
            ("math", f"\\alpha_j = {d['derivation']['latex']}"),
            ("code", f"alpha_j = {d['derivation']['alpha']}\nn_x Var L_j(0) = {d['derivation']['nngp']}"),
            ("p", "Generated code (derivation/generated/): " + ", ".join(
                f"{name} {'matches' if ok else 'DIFFERS from'} the committed module" for name, ok in d["fresh"].items())
                + ". Source: derivation/result.json."),
        ]

    def paper(self, key: str, level: int = 1) -> list:
        about = self.registry.papers[key]
        shown = [(name, rec) for name, rec in self.figures.items() if self.registry.experiments[name].paper == key]
        mine = self.claims(key)
        out = [("h", level, about.title, key),
               ("p", f"{sum(c['passed'] for _, c in mine)} of {len(mine)} claims pass; {len(shown)} figures."),
               ("list", [Link("the summary of the run, with every paper's claims", "report.html")])]
        for sentence, latex in about.model:
            out += [("p", sentence), ("math", latex)]
        if about.chosen:
            out += [("h", level + 1, "Chosen or reconstructed where the paper is silent"), ("list", list(about.chosen))]
        sources = []
        for name, rec in shown:
            exp = self.registry.experiments[name]
            numbers = exp.numbers(**rec["numbers"])
            # the caption says what the reader should see: the experiment's own description of its numbers
            out += [("h", level + 1, f"{name}. {rec['title']}", name),
                    ("figure", f"{name}/{name}.png", f"{name}. {rec['title']}.",
                     exp.describe(numbers) + f" Source: {name}/result.json ({len(rec['cells'])} cells).")]
            if rec["claims"]:
                out.append(("table", ["claim", "measured", "tolerance", "verdict"],
                            [[c["claim"], fmt(c["measured"]), c["tolerance"], _verdict(c)] for c in rec["claims"]]))
                out.append(("p", "Where each measured value is read: " + "; ".join(c["source"] for c in rec["claims"])
                            + "."))
            out.append(("list", [Link(f"data: {name}/{name}.csv (one row per plotted point)", f"{name}/{name}.csv"),
                                 Link(f"numbers and claims: {name}/result.json", self._json(name)),
                                 Link(f"vector figure: {name}/{name}.pdf", f"{name}/{name}.pdf")]))
            if exp.sources is not None:
                sources += [("p", text) for text in exp.sources(numbers)]
        if sources:
            out += [("h", level + 1, "Data")] + sources
        return out

    def scale_blocks(self) -> list:
        return [("h", 2, "Scale"),
                ("code", "\n".join(f"{name}: " + ", ".join(f"{k} = {v}" for k, v in config.items())
                                   for name, config in self.scale["configs"].items()))]

    def rows(self) -> list[dict]:
        papers = {name: e.paper for name, e in self.registry.experiments.items()}
        first = next(iter(self.registry.papers))
        return [{"paper": papers.get(name, first), "figure": name, "id": c["id"], "claim": c["claim"],
                 "measured": json.dumps(c["measured"]) if isinstance(c["measured"], (list, dict)) else c["measured"],
                 "tolerance": c["tolerance"], "passed": c["passed"], "source": c["source"]} for name, c in self.claims()]


def _spec_text(spec: dict) -> str:
    return (f"{spec['param']} parameterization, convention {spec['convention']}, feed-through "
            f"{'on' if spec['feedthrough'] else 'off'}, trained {','.join(spec['trained'])}")


def claims_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["paper", "figure", "id", "claim", "measured", "tolerance", "passed",
                                                "source"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_report(registry: Registry, root: str | Path) -> list[Path]:
    """Write root/report.md, root/report.html, one root/report-PAPER.html per paper and root/claims.csv;
    returns their paths, the summary page last."""
    root = Path(root)
    report = Report(registry, root)
    written = []
    papers = {key: report.paper(key) for key in registry.papers}
    for key, content in papers.items():
        path = root / report.page(key)
        write_atomic(path, to_html(content + report.scale_blocks(), root, registry.papers[key].title))
        written.append(path)
    md = root / "report.md"
    write_atomic(md, markdown(report.summary() + [b for key in papers for b in report.paper(key, level=2)]
                              + report.scale_blocks()))
    write_atomic(root / "claims.csv", claims_csv(report.rows()))
    page = root / "report.html"
    write_atomic(page, to_html(report.summary() + report.scale_blocks(), root, "rnnmemory reproduction report"))
    return [md, root / "claims.csv", *written, page]
