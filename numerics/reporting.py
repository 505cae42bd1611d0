"""The one result writer: a directory with result.json (inputs, numbers, versions, device, seed,
git commit) and its figures, every file written atomically, never overwritten without force."""
from __future__ import annotations

import datetime
import io
import json
import math
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from derivations.emit import write_atomic

from .errors import NumericsError

PACKAGES = ("rnnmemory", "torch", "numpy", "sympy", "matplotlib", "click", "statsmodels")


def git_commit() -> str | None:
    """HEAD of the repository this code runs from, with '+dirty' for uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def environment(device: torch.device) -> dict:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"versions": versions, "device": str(device), "device_name": device_name(device),
            "platform": platform.platform(), "git_commit": git_commit(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def _finite(value):
    """JSON has no NaN or infinity: write them as null; numpy scalars become Python numbers."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def to_json(data) -> str:
    return json.dumps(_finite(data), indent=1, allow_nan=False, ensure_ascii=False) + "\n"


class ResultDir:
    """Where one command's results go. Refuses an existing result unless `force`."""

    def __init__(self, path: str | Path, force: bool = False):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise NumericsError(f"output path {self.path} is a file, not a directory")
        if (self.path / "result.json").exists() and not force:
            raise NumericsError(f"{self.path} already holds a result; pass --force to overwrite it")
        self.path.mkdir(parents=True, exist_ok=True)

    def write_result(self, result: dict) -> Path:
        target = self.path / "result.json"
        write_atomic(target, to_json(result))
        return target

    def save_figure(self, fig, stem: str) -> list[Path]:
        """PNG for looking, PDF (vector) for the paper."""
        paths = []
        for ext in ("png", "pdf"):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=ext, dpi=200, bbox_inches="tight")
            target = self.path / f"{stem}.{ext}"
            write_atomic(target, buffer.getvalue())
            paths.append(target)
        return paths


def read_result(path: str | Path) -> dict:
    path = Path(path)
    target = path / "result.json" if path.is_dir() else path
    if not target.exists():
        raise NumericsError(f"no result at {target}")
    return json.loads(target.read_text())


def record(command: str, spec, inputs: dict, device: str, seed: int, result: dict) -> dict:
    """Everything needed to trace and rerun a result: command, spec, inputs, environment, numbers."""
    from .device import resolve_device

    return {"command": command, "spec": spec.to_dict(), "inputs": inputs, "seed": seed,
            "environment": environment(resolve_device(device)), **result}


def partial(error) -> dict:
    """What a diverged training run leaves: where it stopped and the curves up to there."""
    def plain(curves):
        return {k: (plain(v) if isinstance(v, dict) else v.tolist() if hasattr(v, "tolist") else v)
                for k, v in curves.items() if k != "responses"}

    return {"status": "diverged", "diverged": {"trainer": error.trainer, "step": error.step, "loss": error.loss},
            "partial": plain(error.curves)}


def _verdict_lines(verdict: dict) -> list[str]:
    lines = []
    for name, claim in verdict["claims"].items():
        worst = claim["worst"]
        lines.append(f"  {'PASS' if claim['passed'] else 'FAIL'}  {name.replace('_', ' ')}: worst {worst:.3g} "
                     f"(tolerance {claim['tolerance']:g})")
    return lines


def ntk_text(rec: dict, path: Path) -> str:
    rows = rec["rows"]
    widths = sorted({r["width"] for r in rows})
    lines = [f"check ntk — {rec['environment']['device_name']}, {rec['inputs']['seeds']} seeds per cell",
             "alpha_hat_j / alpha_j: mean ± sd over seeds"]
    for sw in sorted({r["sigma_w"] for r in rows}):
        lines.append(f"\nsigma_W = {sw:g}")
        lines.append(f"{'lag':>4} {'alpha_j':>11} " + " ".join(f"{'n=' + str(w):>17}" for w in widths))
        for j in sorted({r["lag"] for r in rows}):
            cells = {r["width"]: r for r in rows if r["sigma_w"] == sw and r["lag"] == j}
            theory = cells[widths[0]]["alpha_theory"]
            lines.append(f"{j:>4} {theory:>11.4g} " + " ".join(
                f"{cells[w]['ratio_mean']:>8.4f} ± {cells[w]['ratio_std']:<6.4f}" if cells[w]["ratio_mean"] is not None
                and np.isfinite(cells[w]["ratio_mean"]) else f"{'(α_j = 0)':>17}" for w in widths))
    lines.append("\nrms relative error and largest relative cross-lag term by width:")
    for e in rec["error"]:
        lines.append(f"  n={e['width']:<6} sigma_W={e['sigma_w']:<5g} error {e['rms_relative_error']:.4f}  "
                     f"cross {e['largest_cross_term']:.4f}")
    lines.append("slope of log(error) vs log(width) (theory -1/2): " +
                 ", ".join(f"sigma_W={k}: {v:.3f}" if v is not None else f"sigma_W={k}: n/a" for k, v in rec["slopes"].items()))
    lines.append(f"\nverdict at n = {rec['verdict']['width']}: {'PASS' if rec['verdict']['passed'] else 'FAIL'}")
    lines += _verdict_lines(rec["verdict"])
    lines.append(f"\nwritten: {path / 'result.json'}, {path / 'ntk.png'}, {path / 'ntk.pdf'}")
    return "\n".join(lines)


def train_text(rec: dict, path: Path) -> str:
    f = rec["final"]
    i = rec["inputs"]
    lines = [
        f"check train — {rec['environment']['device_name']}",
        f"teacher {i['teacher']}, width {i['width']}, sigma_W {i['sigma_w']}, {i['samples']} {i['task']} samples of "
        f"length {i['length']}, {i['steps']} {i['optimizer']} steps at lr {rec['lr']:.4g}"
        + (", centered" if i["center"] else "") + (f", lazy scale {i['lazy_scale']:g}" if i["lazy_scale"] != 1 else ""),
        f"deviation ||L_rnn - L_conv|| / ||L_conv - L_0|| at the end: {f['deviation']:.4g}",
        f"test excess error ||L - L*||^2:  rnn {f['test_error_rnn']:.6g}   scaled convolution {f['test_error_conv']:.6g}"
        f"   closed form {f['test_error_closed_form']:.6g}",
        f"rnn vs closed form: {100 * (f['test_error_rnn'] / f['test_error_closed_form'] - 1):+.2f}%"
        if f["test_error_closed_form"] else "",
        f"written: {path / 'result.json'}, loss.png/pdf, response.png/pdf",
    ]
    return "\n".join(line for line in lines if line)
