"""A command whose optional extra is not installed ends with one sentence saying what to install."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from racer.extras import missing_extra

ROOT = Path(__file__).resolve().parent.parent


def racer_without(modules: list[str], args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`racer ARGS` in a fresh interpreter where importing `modules` fails as if they were not installed."""
    code = (f"import sys\nfor m in {modules!r}: sys.modules[m] = None\n"
            f"from racer.cli import main\nmain({args!r})")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=120)


def test_training_without_tensorboard_says_which_extra(tmp_path):
    proc = racer_without(["tensorboard"], ["train", "--reward", "center_and_progress", "--track", "oval",
                                           "--steps", "100", "--run-dir", str(tmp_path / "run")], ROOT)
    assert proc.returncode == 1, proc.stdout
    assert "this command needs tensorboard, which is not installed: pip install 'racer[train]'" in proc.stdout
    assert "Traceback" not in proc.stdout


def test_export_without_torch_says_which_extra(tmp_path):
    (tmp_path / "run").mkdir()
    proc = racer_without(["torch"], ["export", str(tmp_path / "run"), "--out", str(tmp_path / "b")], ROOT)
    assert proc.returncode == 1, proc.stdout
    assert "needs torch, which is not installed: pip install 'racer[train]'" in proc.stdout
    assert "Traceback" not in proc.stdout


@pytest.mark.parametrize("name, extra", [("rclpy", "car"), ("openvino.runtime", "car"), ("stable_baselines3", "train")])
def test_missing_extra_names_the_extra(name, extra):
    assert missing_extra(ModuleNotFoundError("x", name=name)).endswith(f"pip install 'racer[{extra}]'")


def test_other_missing_modules_are_not_hidden():
    assert missing_extra(ModuleNotFoundError("x", name="my_reward_helpers")) is None


def test_import_runs_on_a_car_without_torch_or_pybullet(tmp_path):
    """`racer import` is what the car runs: numpy, OpenVINO and the bundle package only."""
    from racer.bundle.archive import archive_bundle
    archive = archive_bundle(ROOT / "tests" / "data" / "bundle-oval", tmp_path / "oval.tar.gz")
    proc = racer_without(["torch", "stable_baselines3", "pybullet"],
                         ["import", str(archive), "--out", str(tmp_path / "models" / "oval")], tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert (tmp_path / "models" / "oval" / "model.xml").is_file()
