"""The scripts under benchmarks/: refusals before hours of work, and no stored results lost."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def headroom():
    spec = importlib.util.spec_from_file_location("headroom", ROOT / "benchmarks" / "headroom.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _refused(headroom, argv, capsys) -> str:
    with pytest.raises(SystemExit) as exited:
        headroom.main(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_headroom_checks_every_planner_and_its_options_before_measuring(headroom, tmp_path, capsys):
    """A width too wide for boredom+drift's horizon was found after boredom's hours of
    planning; --users 0 was a raw error, -1 all users but one."""
    base = ["--dataset", "synthetic", "--out", str(tmp_path / "out")]
    err = _refused(headroom, [*base, "--user-models", "boredom,boredom+drift", "--width", "4096"],
                   capsys)  # fmt: skip
    assert "width" in err and "4096" in err
    for users in ("0", "-1"):
        assert "--users must be at least 1" in _refused(headroom, [*base, "--users", users], capsys)
    assert not (tmp_path / "out").exists()


def test_headroom_never_replaces_another_command_s_results_without_force(
    headroom, tmp_path, capsys
):
    """--out defaulted to the ml-100k results whatever the dataset: a 2-user synthetic run
    replaced them."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"command": "python benchmarks/headroom.py"}))
    argv = ["--dataset", "synthetic", "--users", "2", "--user-models", "static", "--out", str(out)]
    assert "holds the results of another command" in _refused(headroom, argv, capsys)
    assert json.loads((out / "results.json").read_text())["command"].endswith("headroom.py")
