"""`racer train` refuses bad input before it writes anything, only resumes runs that have a checkpoint,
extends budgets on --resume, takes a fixed reward file with --resume --reward, and continues the trace's
episode numbering (issue 9, items 7 and 8)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from racer.cli import main
from racer.runs import Run
from racer.simtrace import read_trace
from racer.train import train
from test_train import LIDAR_CAR, REWARD, lidar_config


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def car(tmp_path) -> str:
    path = tmp_path / "car.json"
    path.write_text(json.dumps(LIDAR_CAR))
    return str(path)


def _train_args(car: str, run_dir: Path, *extra: str, reward: Path = REWARD) -> list[str]:
    return ["train", "--reward", str(reward), "--car", car, "--track", "oval", "--run-dir", str(run_dir),
            "--envs", "2", "--hyper", "n_steps=128", "--hyper", "batch_size=64", "--hyper", "n_epochs=1",
            "--eval-every", "100000", *extra]


@pytest.mark.parametrize("extra, message", [
    (("--track", "no-such-track", "--steps", "256"), "no track named 'no-such-track'"),
    (("--hyper", "no_such_knob=1", "--steps", "256"), "no_such_knob"),
    (("--hyper", "n_steps=-3", "--steps", "256"), "n_steps"),
    (("--steps", "0"), "--steps"),
    (("--steps", "-5"), "--steps"),
    (("--minutes", "0"), "--minutes"),
    (("--eval-every", "0", "--steps", "256"), "--eval-every"),
    (("--envs", "0", "--steps", "256"), "--envs"),
    (("--race", "drag-race", "--steps", "256"), "drag-race"),
])
def test_bad_input_is_refused_before_the_run_exists(tmp_path, car, extra, message):
    latest = tmp_path / "latest"
    run_dir = tmp_path / "run"
    result = _cli(*_train_args(car, run_dir), *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not run_dir.exists() and not latest.exists()


def test_a_reward_file_without_reward_function_is_refused_before_the_run_exists(tmp_path, car):
    bad = tmp_path / "empty_reward.py"
    bad.write_text("x = 1\n")
    run_dir = tmp_path / "run"
    result = _cli(*_train_args(car, run_dir, "--steps", "256", reward=bad))
    assert result.exit_code == 2 and "empty_reward.py" in result.output and "reward_function" in result.output
    assert not run_dir.exists()


def test_a_run_without_checkpoint_is_not_resumable_and_may_be_started_again(tmp_path, car):
    crash = tmp_path / "crash.py"
    crash.write_text("def reward_function(params):\n    return params['nope']\n")
    run_dir = tmp_path / "run"
    result = _cli(*_train_args(car, run_dir, "--steps", "256", reward=crash))
    assert result.exit_code == 2 and "KeyError" in result.output
    assert "--resume" not in result.output and not (tmp_path / "latest").exists()
    resumed = _cli("train", "--resume", str(run_dir))
    assert resumed.exit_code == 2 and "no checkpoint" in resumed.output
    again = _cli(*_train_args(car, run_dir, "--steps", "256"))  # the failed start is replaced
    assert again.exit_code == 0, again.output
    assert (run_dir / "checkpoints" / "last.zip").is_file()
    assert (tmp_path / "latest").resolve() == run_dir.resolve()


def test_resume_extends_the_budget_and_continues_the_episode_numbers(tmp_path):
    run_dir = tmp_path / "run"
    run, state, _ = train(run_dir, lidar_config(steps=512, checkpoint_every=256, eval_every=10**6))
    assert 512 <= state.steps < 768
    trace = run_dir / "training-simtrace"
    before = {p.name for p in trace.glob("*.csv")}
    episodes_before = {r["episode"] for f in before for r in read_trace(trace / f)}

    result = _cli("train", "--resume", str(run_dir))  # its budget is used up
    assert result.exit_code == 2 and "--steps" in result.output and "Traceback" not in result.output

    result = _cli("train", "--resume", str(run_dir), "--steps", "512")
    assert result.exit_code == 0, result.output
    after = json.loads((run_dir / "checkpoints" / "state.json").read_text())["steps"]
    assert state.steps + 512 <= after < state.steps + 512 + 256
    assert json.loads(run.config_file.read_text())["config"]["steps"] == after
    new = {p.name for p in trace.glob("*.csv")} - before
    episodes_after = {r["episode"] for f in new for r in read_trace(trace / f)}
    assert episodes_after and not episodes_after & episodes_before
    assert min(episodes_after) > max(episodes_before)


def test_resume_says_the_reward_changed_and_takes_the_new_one_with_reward(tmp_path):
    mine = tmp_path / "my_reward.py"
    mine.write_text("def reward_function(params):\n    return 1.0\n")
    run_dir = tmp_path / "run"
    train(run_dir, lidar_config(reward=str(mine), steps=256, checkpoint_every=256, eval_every=10**6))
    mine.write_text("def reward_function(params):\n    return 2.0\n")

    stale = _cli("train", "--resume", str(run_dir), "--steps", "128")
    assert stale.exit_code == 0, stale.output
    assert "my_reward.py changed" in stale.output and "--reward" in stale.output
    assert (run_dir / "reward" / "my_reward.py").read_text().endswith("return 1.0\n")

    fresh = _cli("train", "--resume", str(run_dir), "--steps", "128", "--reward", str(mine))
    assert fresh.exit_code == 0, fresh.output
    assert (run_dir / "reward" / "my_reward.py").read_text() == mine.read_text()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["reward_sha256"] == hashlib.sha256(mine.read_bytes()).hexdigest()
    rewards = [r["reward"] for f in sorted((run_dir / "training-simtrace").glob("*.csv"))[-1:]
               for r in read_trace(f) if r["episode_status"] != "prepare"]
    assert rewards and set(np.round(rewards, 3)) == {2.0}


def test_a_user_track_is_copied_into_the_run(tmp_path, monkeypatch):
    from sim.track import load
    npy = tmp_path / "tracks" / "mine.npy"
    npy.parent.mkdir()
    t = load("oval")
    t.save(npy)
    monkeypatch.chdir(tmp_path)
    train("run", lidar_config(track="tracks/mine.npy", steps=256, checkpoint_every=256, eval_every=10**6))
    npy.unlink()
    monkeypatch.chdir(tmp_path.parent)
    cfg = Run(tmp_path / "run").load_config()
    assert Path(cfg.track).is_file() and Path(cfg.track).parent == (tmp_path / "run" / "track").resolve()
    assert load(cfg.track).length == pytest.approx(t.length, rel=1e-6)
