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


def test_library_modules_stay_small_enough_to_read():
    """A module a newcomer opens fits in one sitting: every module of derivations/ and numerics/ is at
    most 450 lines (cli.py, option declarations and help text, is the one file left out)."""
    sizes = {str(path.relative_to(ROOT)): len(path.read_text().splitlines())
             for package in ("derivations", "numerics") for path in (ROOT / package).rglob("*.py")}
    assert len(sizes) > 50  # the walk found the packages
    assert not {name: n for name, n in sizes.items() if n > 450}
