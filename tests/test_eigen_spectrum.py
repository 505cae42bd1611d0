"""`rnnmemory eigen spectrum`: block eigenvalues and the gated step's Jacobian of a fresh module."""
import json

import numpy as np
from click.testing import CliRunner

import cli
from numerics.eigen.spectrum import fresh_module, spectrum


def test_orthogonal_gru_has_the_derived_step_spectrum():
    """Orthogonal blocks, zero biases: J = W_hn/4 + I/2, so its eigenvalues lie on the circle of
    radius 1/4 around 1/2 (W_hn's lie on the unit circle)."""
    data = spectrum(fresh_module("gru", "orthogonal", 32, seed=1))
    for points in data["blocks"].values():
        assert np.allclose(np.hypot(*np.array(points).T), 1)
    z = np.array(data["step_jacobian"])
    assert np.allclose(np.hypot(z[:, 0] - 0.5, z[:, 1]), 0.25)


def test_cli_writes_result_and_figure(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli.main, ["eigen", "spectrum", "--cell", "lstm", "--init", "nprnn", "--hidden", "8",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "result.json").read_text())
    assert set(data["blocks"]) == {"0/i", "0/f", "0/g", "0/o"} and len(data["step_jacobian"]) == 16
    assert (tmp_path / "spectrum.png").exists()
    again = runner.invoke(cli.main, ["eigen", "spectrum", "--out", str(tmp_path)])
    assert again.exit_code == 2 and "--force" in again.output
    bad = runner.invoke(cli.main, ["eigen", "spectrum", "--cell", "tcn", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_cli_fit_writes_a_spectrum_the_inits_read(tmp_path):
    from derivations.families import load_spectrum

    out = tmp_path / "spectrum.npy"
    result = CliRunner().invoke(cli.main, ["eigen", "fit", "--task", "tomita:4", "--seeds", "2", "--hidden", "16",
                                           "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "well-trained" in result.output and out.exists() and (tmp_path / "spectrum.npy.json").exists()
    assert np.iscomplexobj(load_spectrum(str(out)))
    bad = CliRunner().invoke(cli.main, ["eigen", "fit", "--task", "tomita:0", "--out", str(tmp_path / "b.npy")])
    assert bad.exit_code == 2 and not (tmp_path / "b.npy").exists()
