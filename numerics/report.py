"""DIR/report.md and a self-contained DIR/report.html from the result files of `reproduce`.

The report reads only result.json files (DIR/result.json, DIR/derivation/result.json,
DIR/F1/result.json … DIR/F7/result.json) and the figures' PNGs; every number it prints names the
file it comes from. It is built once as a list of blocks (heading, paragraph, table, figure,
code) and printed twice, by a Markdown printer and an HTML printer, so the two never disagree.
The HTML embeds the figures as base64 PNG and its own CSS: it opens offline, as one file.
"""
from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

from derivations.emit import write_atomic

from .paper import FIGURES
from .reporting import read_result

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


# ------------------------------------------------------------------------------- numbers

def fmt(value, digits: int = 3) -> str:
    """A number as text; lists and dicts element-wise; missing values as 'n/a'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v, digits) for v in value) + "]"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {fmt(v, digits)}" for k, v in value.items())
    return str(value)


def _pct(value) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return "0.0%" if abs(value) < 5e-4 else f"{100 * value:+.1f}%"


def _describe_F1(n: dict) -> str:
    w = n["worst_ratio"]
    return (f"Lines: the derived α_j = (j+2) σ_W^{{2j}} + δ_j0 (at σ_F = σ_C = σ_D = 1), from the generated "
            f"code. Filled markers: the diagonal of the empirical tangent Gram of random networks at n = "
            f"{n['largest_width']} (mean ± sd over {n['seeds']} networks); hollow markers: the narrowest width. "
            f"The lag weights fall geometrically for σ_W < 1 (gradient descent is biased towards short memory) and "
            f"grow linearly at σ_W = 1. Largest disagreement at n = {n['largest_width']}: σ_W = {w['sigma_w']:g}, "
            f"lag {w['lag']}, mean α̂_j/α_j = {w['ratio_mean']:.3f} ± {w['ratio_std']:.3f} (sd).")


def _describe_F2(n: dict) -> str:
    by = ", ".join(f"σ_W = {k}: {fmt(v)}" for k, v in n["slopes_by_sigma_w"].items())
    return (f"(a) Root mean square of α̂_j/α_j − 1 over lags and networks; (b) the largest relative off-diagonal "
            f"(cross-lag) entry of the tangent Gram, which the theory says vanishes. Pooled over σ_W the error "
            f"falls from {fmt(n['pooled_rms_relative_error'][0])} at n = {n['widths'][0]} to "
            f"{fmt(n['pooled_rms_relative_error'][-1])} at n = {n['widths'][-1]}, log–log slope "
            f"{fmt(n['pooled_slope'])} (theory −1/2); the cross-lag entry falls with slope "
            f"{fmt(n['cross_term_slope'])}. Per σ_W the slopes scatter ({by}): within one network the errors of all "
            "lags move together, so each width contributes few independent samples.")


def _describe_F3(n: dict) -> str:
    rows = n["widths"]
    gaps = ", ".join(f"n = {r['width']}: {_pct(r['relative_gap'])}" for r in rows)
    return (f"Setting: {n['setting']}; curves of seed {n['curves_seed']}. The scaled convolution (dashed) and the "
            f"closed form (dotted) coincide; RNNs of growing width approach them. Final test error ‖L − L*‖² of the "
            f"RNN relative to the closed form (mean over seeds): {gaps}. A negative gap means the finite network "
            "generalizes better than the kernel predicts: it learns more of the teacher's long-memory tail.")


def _describe_F4(n: dict) -> str:
    parts = []
    for teacher, by_sigma in n["responses"].items():
        errs = ", ".join(f"σ_W = {s}: RNN {fmt(v['test_error_rnn'])} vs closed form {fmt(v['test_error_closed_form'])}"
                         for s, v in by_sigma.items())
        parts.append(f"{teacher}: {errs}")
    return (f"Setting: {n['setting']}. Grey bars: the teacher. Lines: the infinite-width closed form; markers: the "
            "trained RNN. Small σ_W puts the learned response on the first lags, whatever the teacher (short-memory "
            "bias); large σ_W lets it reach the delay. Test error ‖L − L*‖²: " + "; ".join(parts) + ".")


def _describe_F5(n: dict) -> str:
    parts = []
    for label in ("centered", "uncentered"):
        best = ", ".join(f"{t}: {fmt(v['best_sigma_w_theory'])} (RNN grid {fmt(v['best_sigma_w_rnn_grid'])})"
                         for t, v in n[label].items())
        parts.append(f"{label}: {best}")
    ratios = []
    for label in ("centered", "uncentered"):
        for t, v in n[label].items():
            for sw, r, th in zip(v["sigma_ws"], v["relative_test_error_rnn"], v["relative_test_error_theory"]):
                if r is not None and th:
                    ratios.append((r / th, label, t, sw))
    lo = min(ratios) if ratios else None
    hi = max(ratios) if ratios else None
    spread = (f" Across all points the RNN's error ranges from {lo[0]:.2f}× the theory ({lo[1]}, {lo[2]}, σ_W = "
              f"{lo[3]:g}) to {hi[0]:.2f}× ({hi[1]}, {hi[2]}, σ_W = {hi[3]:g}).") if ratios else ""
    return (f"Setting: {n['setting']}. Relative test error ‖L − L*‖²/‖L*‖² at the last step. Lines: the exact "
            "infinite-width expectation of kernel gradient descent over the random initial function, averaged "
            "over the same training sets as the networks; markers: trained RNNs, mean ± standard error over seeds. "
            "Small σ_W under-fits long memory (bias); large σ_W adds the variance of the random initial function "
            "in the uncentered runs. Best σ_W (theory, fine grid): " + "; ".join(parts) + "." + spread)


def _describe_F6(n: dict) -> str:
    d, b, c, u = n["data"], n["baselines"], n["centered"], n["uncentered"]
    gaps = ", ".join(f"σ_W = {s:g}: {_pct(g)}" for s, g in zip(c["sigma_ws"], c["relative_gap"]))
    return (f"Yearly sunspot numbers, standardized with the training years' mean {d['mean']:.1f} and sd "
            f"{d['sd']:.1f}; predict next year from the last {len(n['responses_reference'])} years. Train targets "
            f"{d['train_years'][0]}–{d['train_years'][1]} ({d['train_windows']} windows), test targets "
            f"{d['test_years'][0]}–{d['test_years'][1]} ({d['test_windows']} windows). Best σ_W by theory: "
            f"{fmt(c['best_sigma_w_theory'])} centered (test loss {fmt(c['best_test_loss_theory'])}), "
            f"{fmt(u['best_sigma_w_theory'])} uncentered (test loss {fmt(u['best_test_loss_theory'])}); the "
            f"least-squares filter scores {fmt(b['test_loss_least_squares_filter'])} and predicting the training "
            f"mean {fmt(b['test_loss_predict_mean'])}. RNN against theory (centered): {gaps}. (c) The learned "
            "filters: small σ_W keeps only the last years (persistence), larger σ_W picks up the ~11-year cycle.")


def _describe_F7(n: dict) -> str:
    m = n["largest_deviation_sqrt_n_over_T_tested"]
    slopes = ", ".join(f"T = {t}: {fmt(s)}" for t, s in n["slope_in_width_by_length"].items())
    broken = ", ".join(f"(n = {b['width']}, T = {b['length']})" for b in n["outside_broken"]) or "none"
    return (f"Setting: {n['setting']}. Colour and numbers: mean over seeds of the final relative deviation "
            "‖L_RNN − L_conv‖/‖L_conv − L(0)‖ of the trained RNN from the scaled convolution; 'div.' marks cells "
            "where every run diverged at the kernel's step, '*' cells where some did (the mean is over the rest). "
            "Below the line T = √n the kernel picture is expected to hold. There the deviation behaves like "
            f"c·T/√n: c = {fmt(n['c_from_narrowest_width'])} (twice the mean of deviation·√n/T at the narrowest "
            f"width), and at wider widths deviation·√n/T reaches at most {fmt(m['value'])} (T = {m['length']}, "
            f"n = {m['width']}); a least-squares fit of log(deviation/T) against log n gives slope "
            f"{fmt(n['pooled_slope_inside'])}. Slope in n at each fixed T: {slopes}. Above the line, runs that "
            f"diverged or deviate by more than 0.5: {broken}.")


DESCRIBE = {"F1": _describe_F1, "F2": _describe_F2, "F3": _describe_F3, "F4": _describe_F4, "F5": _describe_F5,
            "F6": _describe_F6, "F7": _describe_F7}


# --------------------------------------------------------------------------------- report

def blocks(root: Path) -> list:
    """The report's content, from the result files under `root`."""
    top = read_result(root)
    derivation = read_result(root / "derivation")
    figures = {name: read_result(root / name) for name in FIGURES if (root / name / "result.json").exists()}
    claims = [(name, c) for name, rec in [("derivation", derivation)] + list(figures.items()) for c in rec["claims"]]
    passed = sum(c["passed"] for _, c in claims)
    env, scale = top["environment"], top["scale"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    out = [
        ("h", 1, "rnnmemory: reproduction report"),
        ("p", f"{passed} of {len(claims)} claims pass. Scale: {scale['name']}. "
              f"{top['cells']['total']} cells ({top['cells']['computed']} computed in this run, "
              f"{top['cells']['reused']} reused from DIR/cells). Wall time {top['wall_seconds']:.0f} s on "
              f"{env['device_name']}.", "summary"),
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
    for name, rec in figures.items():
        out += [("h", 2, f"{name}. {rec['title']}"),
                ("figure", f"{name}/{name}.png", f"{name}. {rec['title']}. Vector version: {name}/{name}.pdf."),
                ("p", DESCRIBE[name](rec["numbers"]) + f" Source: {name}/result.json ({len(rec['cells'])} cells).")]
        if rec["claims"]:
            out.append(("table", ["claim", "measured", "tolerance", "verdict"],
                        [[c["claim"], fmt(c["measured"]), c["tolerance"], "PASS" if c["passed"] else "FAIL"]
                         for c in rec["claims"]]))
    if "F6" in figures:
        src = figures["F6"]["numbers"]["source"]
        out += [("h", 2, "Data"),
                ("p", f"{src['name']}, loaded with {src['loader']} (shipped inside the statsmodels package; nothing "
                      f"is downloaded). Citation: {src['citation']}"),
                ("p", f"statsmodels' description: {src['statsmodels_title']}; source: "
                      f"{' '.join(src['statsmodels_source'].split())}; {src['statsmodels_copyright']}")]
    out += [("h", 2, "Scale"),
            ("code", "\n".join(f"{k} = {v}" for k, v in scale.items()))]
    return out


def _spec_text(spec: dict) -> str:
    return (f"{spec['param']} parameterization, convention {spec['convention']}, feed-through "
            f"{'on' if spec['feedthrough'] else 'off'}, trained {','.join(spec['trained'])}")


def write_report(root: str | Path) -> list[Path]:
    """Write root/report.md and root/report.html; returns their paths."""
    root = Path(root)
    content = blocks(root)
    md, page = root / "report.md", root / "report.html"
    write_atomic(md, markdown(content))
    write_atomic(page, to_html(content, root, "rnnmemory reproduction report"))
    return [md, page]
