"""Files: atomic writes, JSON without NaN, and the one result writer — a directory with
result.json (inputs, numbers, versions, device, seed, git commit) and its figures, every file
written atomically, never overwritten without force.

Neutral ground for derivations/ (emitted code) and numerics/ (results, cells, reports): it
imports neither SymPy nor, at import time, torch.
"""
from __future__ import annotations

import datetime
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from .errors import NumericsError

PACKAGES = ("rnnmemory", "torch", "numpy", "sympy", "matplotlib", "click", "statsmodels", "dask", "distributed")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write through a temporary file in the same folder, so no reader sees half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_files(out: str | Path, files: dict[str, str]) -> list[Path]:
    """Write name → text into the folder `out` (created if missing), each file atomically."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NumericsError(f"output path {out} is a file, not a directory")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files.items():
        write_atomic(out / name, text)
        paths.append(out / name)
    return paths


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


def device_name(device) -> str:
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def environment(device) -> dict:
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
    """Where one command's results go. Refuses an existing result unless `force`; the directory is
    made when the first file is written, so a run refused on the way leaves nothing behind."""

    def __init__(self, path: str | Path, force: bool = False):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise NumericsError(f"output path {self.path} is a file, not a directory")
        if (self.path / "result.json").exists() and not force:
            raise NumericsError(f"{self.path} already holds a result; pass --force to overwrite it")

    def write_result(self, result: dict) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / "result.json"
        write_atomic(target, to_json(result))
        return target

    def save_figure(self, fig, stem: str) -> list[Path]:
        """PNG for looking, PDF (vector) for the paper, CSV (one row per plotted point, read from the
        drawn figure: `figure_data`) for loading the numbers; the figure is closed once saved."""
        import matplotlib.pyplot as plt

        from .figure_data import tidy_rows, to_csv

        self.path.mkdir(parents=True, exist_ok=True)
        paths = []
        try:
            rows = tidy_rows(fig, stem)
        except Exception as error:  # the figure matters more than its table: say so, draw it anyway
            print(f"rnnmemory: {stem}.csv not written ({type(error).__name__}: {error})", file=sys.stderr)
        else:
            paths.append(self.path / f"{stem}.csv")
            write_atomic(paths[0], to_csv(rows))
        for ext in ("png", "pdf"):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=ext, dpi=200, bbox_inches="tight")
            target = self.path / f"{stem}.{ext}"
            write_atomic(target, buffer.getvalue())
            paths.append(target)
        plt.close(fig)  # pyplot keeps every figure it made alive until closed
        return paths


def read_result(path: str | Path) -> dict:
    path = Path(path)
    target = path / "result.json" if path.is_dir() else path
    if not target.exists():
        raise NumericsError(f"no result at {target}")
    return json.loads(target.read_text())


def record(command: str, spec, inputs: dict, device: str, seed: int, result: dict) -> dict:
    """Everything needed to trace and rerun a result: command, spec, inputs, environment, numbers.

    A device this machine lacks (a cluster's GPUs, seen from the login node) is recorded by name;
    each cell file records the worker's own environment."""
    from .device import resolve_device

    try:
        env = environment(resolve_device(device))
    except NumericsError:
        env = {**environment("cpu"), "device": device, "device_name": f"{device} on the Dask workers"}
    return {"command": command, "spec": None if spec is None else spec.to_dict(), "inputs": inputs, "seed": seed, "environment": env, **result}
