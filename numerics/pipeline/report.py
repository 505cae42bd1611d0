"""DIR/report.md and a self-contained DIR/report.html from the result files of `reproduce`.

The report reads only result.json files (DIR/result.json, DIR/derivation/result.json, one
DIR/NAME/result.json per experiment of the registry) and the figures' PNGs; every number it prints
names the file it comes from. Each experiment says in words what its numbers show (`describe`). It is built once as a list of blocks (heading, paragraph, table, figure,
code) and printed twice, by a Markdown printer and an HTML printer, so the two never disagree.
The HTML embeds the figures as base64 PNG and its own CSS: it opens offline, as one file.
"""
from __future__ import annotations

import base64
import html
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
figcaption { font-size: .88em; color: #444; }
code, pre { font-family: Menlo, Consolas, monospace; font-size: .88em; background: #f6f8fa; }
pre { padding: .6em; overflow-x: auto; }
.summary { font-size: 1.1em; padding: .6em; background: #f2f4f7; border-left: 4px solid #0072B2; }
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


def markdown(blocks: list) -> str:
    lines = []
    for kind, *body in blocks:
        if kind == "h":
            lines += ["#" * body[0] + " " + body[1], ""]
        elif kind == "p":
            lines += [_md_text(body[0]), ""]
        elif kind == "code":
            lines += ["```", body[0], "```", ""]
        elif kind == "figure":
            lines += [f"![{_md_text(body[1])}]({body[0]})", "", f"*{_md_text(body[1])}*", ""]
        elif kind == "table":
            header, rows = body
            lines.append("| " + " | ".join(_md_text(h, True) for h in header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(_md_text(x, True) for x in row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)


def to_html(blocks: list, root: Path, title: str) -> str:
    out = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
           f"<style>{CSS}</style></head><body>"]
    for kind, *body in blocks:
        if kind == "h":
            out.append(f"<h{body[0]}>{_html_text(body[1])}</h{body[0]}>")
        elif kind == "p":
            css = ' class="summary"' if len(body) > 1 and body[1] == "summary" else ""
            out.append(f"<p{css}>{_html_text(body[0])}</p>")
        elif kind == "code":
            out.append(f"<pre><code>{html.escape(body[0])}</code></pre>")
        elif kind == "figure":
            png = (root / body[0]).read_bytes()
            data = base64.b64encode(png).decode()
            # Shown at a fixed scale of the 200-dpi PNG, so one- and two-column figures keep their
            # relative size (a two-column figure fills the page; text stays ~14 px).
            width = round(0.65 * int.from_bytes(png[16:20], "big"))
            out.append(f'<figure><img alt="{html.escape(body[1])}" style="width: {width}px" '
                       f'src="data:image/png;base64,{data}">'
                       f"<figcaption>{html.escape(body[1])}</figcaption></figure>")
        elif kind == "table":
            header, rows = body
            out.append("<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
            for row in rows:
                cells = []
                for x in row:
                    css = {"PASS": ' class="pass"', "FAIL": ' class="fail"'}.get(str(x), "")
                    cells.append(f"<td{css}>{_html_text(x)}</td>")
                out.append("<tr>" + "".join(cells) + "</tr>")
            out.append("</table>")
    out.append("</body></html>\n")
    return "\n".join(out)


# --------------------------------------------------------------------------------- report

def blocks(registry: Registry, root: Path) -> list:
    """The report's content, from the result files under `root`."""
    top = read_result(root)
    derivation = read_result(root / "derivation")
    figures = {name: read_result(root / name) for name in registry.experiments
               if (root / name / "result.json").exists()}
    claims = [(name, c) for name, rec in [("derivation", derivation)] + list(figures.items()) for c in rec["claims"]]
    passed = sum(c["passed"] for _, c in claims)
    env, scale = top["environment"], json.loads((root / "scale.json").read_text())
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    out = [
        ("h", 1, "rnnmemory: reproduction report"),
        ("p", f"{passed} of {len(claims)} claims pass. Scale: {scale['name']}. "
              f"{top['cells']['total']} cells ({top['cells']['computed']} computed in this run, "
              f"{top['cells']['reused']} reused from DIR/cells). Wall time {top['wall_seconds']:.0f} s on "
              f"{env['device_name']}.", "summary"),
        *([("p", "Compute time per paper (seconds its cells took, summed over the workers, which run the papers' "
                 "cells interleaved; cached cells count with the time they took when made): " + "; ".join(
                     f"{registry.papers[paper].title.split(' (')[0] if paper in registry.papers else paper} "
                     f"{t['cell_seconds']:.0f} s ({t['cells']} cells)" for paper, t in top["papers"].items()) + ".")]
          if top.get("papers") else []),
        ("p", f"Command: {top.get('command') or 'rnnmemory reproduce'}. Git commit {env['git_commit']}; "
              f"{versions}; {env['platform']}; {env['created']}."),
        ("p", "Every number below comes from a result.json under this directory (named in the 'source' column and "
              "in each section); each of those lists the cell files (DIR/cells/<sha256>.json) it was computed from, "
              "and each cell file holds its inputs, its result and the environment it ran in. "
              "`rnnmemory figure F5 --out DIR` redraws one figure from the same cells."),
        ("h", 2, "Claims"),
        ("table", ["", "claim", "measured", "tolerance", "verdict", "source"],
         [[name, c["claim"], fmt(c["measured"]), c["tolerance"], "PASS" if c["passed"] else "FAIL", c["source"]]
          for name, c in claims]),
        ("h", 2, "Derivation"),
        ("p", "The lag weights of the neural tangent kernel, derived in SymPy for the spec "
              f"({_spec_text(derivation['spec'])}), Θ = δ_ab Σ_j α_j ⟨x_(k−j), x′_(k′−j)⟩ / n_x with"),
        ("code", f"alpha_j = {derivation['derivation']['alpha']}\n"
                 f"n_x Var L_j(0) = {derivation['derivation']['nngp']}\n"
                 f"LaTeX: \\alpha_j = {derivation['derivation']['latex']}"),
        ("p", "Generated code (derivation/generated/): " + ", ".join(
            f"{name} {'matches' if ok else 'DIFFERS from'} the committed module" for name, ok in derivation["fresh"].items())
            + ". Source: derivation/result.json."),
    ]
    sources = []
    for paper, about in registry.papers.items():
        shown = [(name, rec) for name, rec in figures.items() if registry.experiments[name].paper == paper]
        if shown and len(registry.papers) > 1:
            out.append(("h", 2, about.title))
        for name, rec in shown:
            exp = registry.experiments[name]
            numbers = exp.numbers(**rec["numbers"])
            out += [("h", 2, f"{name}. {rec['title']}"),
                    ("figure", f"{name}/{name}.png", f"{name}. {rec['title']}. Vector version: {name}/{name}.pdf."),
                    ("p", exp.describe(numbers) + f" Source: {name}/result.json ({len(rec['cells'])} cells).")]
            if rec["claims"]:
                out.append(("table", ["claim", "measured", "tolerance", "verdict"],
                            [[c["claim"], fmt(c["measured"]), c["tolerance"], "PASS" if c["passed"] else "FAIL"]
                             for c in rec["claims"]]))
            if exp.sources is not None:
                sources += [("p", text) for text in exp.sources(numbers)]
    if sources:
        out += [("h", 2, "Data")] + sources
    out += [("h", 2, "Scale"),
            ("code", "\n".join(f"{name}: " + ", ".join(f"{k} = {v}" for k, v in config.items())
                               for name, config in scale["configs"].items()))]
    return out


def _spec_text(spec: dict) -> str:
    return (f"{spec['param']} parameterization, convention {spec['convention']}, feed-through "
            f"{'on' if spec['feedthrough'] else 'off'}, trained {','.join(spec['trained'])}")


def write_report(registry: Registry, root: str | Path) -> list[Path]:
    """Write root/report.md and root/report.html; returns their paths."""
    root = Path(root)
    content = blocks(registry, root)
    md, page = root / "report.md", root / "report.html"
    write_atomic(md, markdown(content))
    write_atomic(page, to_html(content, root, "rnnmemory reproduction report"))
    return [md, page]
