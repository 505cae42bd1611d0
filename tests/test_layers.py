"""The import layers stated in pyproject.toml ([tool.importlinter]) hold: `lint-imports` keeps every
contract. A change that makes the pipeline import an experiment, data import a model, one paper's
numerics import another's, or derivations import torch (or load its own generated code) fails here."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_lint_imports_keeps_every_contract():
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    result = subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
