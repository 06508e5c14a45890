"""The product as a user who runs `pip install racer-*.whl` gets it: the wheel is built from this
checkout, installed into a new venv outside it, and the CLI is run from another directory, so a
`../` path into the checkout, a missing package-data file or a module left out of the wheel fails.

The new venv is a hard-link copy of this one with its editable `racer` uninstalled: the third-party
packages (torch, OpenVINO, ROS 2) are the ones the tests use, without downloading gigabytes again;
racer itself comes only from the wheel (checked).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from car.rosenv import only_loopback

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "tests" / "data" / "bundle-oval"


def run(cmd: list[str], cwd: Path, env: dict, timeout: float = 300) -> str:
    """Run a command; its output, or a failure showing it."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(venv bin dir, a work directory outside the checkout, environment) with racer from the wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    source = tmp / "source"  # a copy, so that no stale build/ folder of the checkout goes into the wheel
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "runs",
                                                                 "__pycache__", "tests", "garage", "evaluations"))
    dist = tmp / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(source)],
        cwd=tmp, env=env)
    wheels = sorted(dist.glob("racer-*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp / "venv"
    subprocess.run(["cp", "-al", sys.prefix, str(venv)], check=True)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "uninstall", "-y", "-q", "racer"], cwd=tmp, env=env)
    run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheels[0])], cwd=tmp, env=env)
    work = tmp / "work"
    work.mkdir()
    where = run([str(python), "-c", "import car, racer, sim; print(racer.__file__, car.__file__, sim.__file__)"],
                cwd=work, env=env)
    assert str(ROOT) not in where and all(str(venv) in p for p in where.split()), where
    return venv / "bin", work, env


def test_the_wheel_ships_the_data(installed):
    bin_dir, work, env = installed
    out = run([str(bin_dir / "python"), "-c", (
        "from car.launcher import packaged_launch_files; from racer.reward import example_rewards; "
        "print(sorted(packaged_launch_files()), sorted(example_rewards()))")], cwd=work, env=env)
    assert "'car.launch.yaml', 'car_sim.launch.yaml'" in out and "'center_and_progress'" in out


def test_tracks_and_bench_from_the_wheel(installed):
    bin_dir, work, env = installed
    assert "reinvent-like" in run([str(bin_dir / "racer"), "tracks", "list"], cwd=work, env=env)
    out = run([str(bin_dir / "racer"), "bench", "env", "--steps", "500"], cwd=work, env=env)
    assert "LIDAR only" in out and "steps/s" in out


def test_train_with_a_shipped_example_reward(installed):
    bin_dir, work, env = installed
    out = run([str(bin_dir / "racer"), "train", "--reward", "center_and_progress", "--track", "oval", "--steps", "2000",
               "--eval-every", "1000000", "--run-dir", "runs/wheel"], cwd=work, env=env)
    assert "stopped:" in out
    config = json.loads((work / "runs" / "wheel" / "config.json").read_text())
    assert config["config"]["track"] == "oval" and (work / "runs" / "wheel" / "checkpoints" / "last.zip").is_file()
    assert (work / "runs" / "wheel" / "reward" / "center_and_progress.py").is_file()


@pytest.mark.skipif(not only_loopback(), reason="starts ROS 2 nodes: run inside a loopback-only network namespace")
def test_car_up_on_the_packaged_sim_launch_file(installed):
    bin_dir, work, env = installed
    bundle = work / "models" / "oval"
    shutil.copytree(BUNDLE, bundle)
    out = run([str(bin_dir / "racer"), "car", "up", "car_sim.launch.yaml", "--model", str(bundle),
               "--arg", "track=oval", "--arg", "max_speed=1.0", "--arg", "autonomous=true",
               "--duration", "8", "--run-dir", "runs/car"], cwd=work, env=env, timeout=120)
    assert "stopped:" in out
    results = json.loads((work / "runs" / "car" / "results.json").read_text())
    assert results["track"] == "oval" and results["steps"] > 0
    assert results["laps"] and results["laps"][0]["completion"] > 5.0, results  # it drove
