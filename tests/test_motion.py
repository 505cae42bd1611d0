"""`check motion` (numerics/train/motion.py): the kernel's motion by lag and width, and where the
widest two widths agree (where a 1/n expansion can hold)."""
import json

import pytest
from click.testing import CliRunner

from cli import main
from numerics.train.motion import AGREEMENT, holds_to, verdicts


def _found(small, large):
    return {"widths": [256, 512], "agreement": AGREEMENT,
            "motion": {"256": {"mean": small}, "512": {"mean": large}}}


def test_holds_to_is_the_last_lag_of_the_agreeing_run_from_lag_0():
    assert holds_to(_found([10, 100, 1000, 9000], [11, 95, 700, 3000])) == 1  # 1000 → 700 is 30 % off
    assert holds_to(_found([10, 100], [20, 100])) is None  # lag 0 already disagrees
    assert holds_to({**_found([1], [1]), "widths": [256]}) is None


def test_verdicts_tell_a_difference_from_noise():
    found = {"widths": [256, 512], "agreement": AGREEMENT, "seeds": 4,
             "motion": {"256": {"mean": [10, 100, 100], "sd": [1, 1, 200]},
                        "512": {"mean": [11, 200, 200], "sd": [1, 1, 200]}}}
    assert verdicts(found) == ["agree", "differ", "unresolved"]


def test_check_motion_writes_the_motion_and_the_spectral_radii(tmp_path):
    out = tmp_path / "motion"
    args = ["check", "motion", "--width", "32,64", "--lags", "4", "--seeds", "2", "--steps", "20", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "result.json").read_text())
    assert len(record["motion"]["64"]["mean"]) == 4 and record["inputs"]["seeds"] == 2
    # training only ever grows this kernel at the first lag (the first-step change is positive)
    assert all(record["motion"][n]["mean"][0] > 0 for n in ("32", "64"))
    assert {"radius_before", "radius_after", "dW_norm"} <= set(record["runs"]["32"][0])
    assert (out / "motion.png").stat().st_size > 10_000 and (out / "motion.csv").exists()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "--force" in again.output


@pytest.mark.parametrize("args, message", [(["--width", "64,64"], "twice"), (["--sigma-w", "0"], "positive"),
                                           (["--seeds", "1"], "seeds")])
def test_check_motion_refuses_bad_input_before_any_file(tmp_path, args, message):
    result = CliRunner().invoke(main, ["check", "motion", *args, "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m").exists()
