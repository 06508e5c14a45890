"""Training runs: resumable after SIGKILL, per-env reward modules, trace CSVs, evaluation outputs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from racer.cli import main
from racer.evaluate import evaluate
from racer.garage import metadata_to_dict, parse_metadata
from racer.metrics import MetricsWriter
from racer.reward import example_rewards
from racer.runs import Run, TrainConfig, TrainError
from racer.simtrace import COLUMNS, SimTraceWriter, read_trace
from racer.train import MirrorOpponent, make_model, make_vec_env, train

ROOT = Path(__file__).parent.parent
LIDAR_CAR = metadata_to_dict(parse_metadata({"sensor": ["LIDAR"]}, where="test"))
REWARD = example_rewards()["center_and_progress"]


def lidar_config(**kw) -> TrainConfig:
    base = dict(reward=str(REWARD), metadata=LIDAR_CAR, track="oval", steps=2048, minutes=None,
                envs=2, eval_every=1024, eval_starts=2, eval_laps=1, checkpoint_every=512,
                hyper={"n_steps": 128, "batch_size": 64, "n_epochs": 2})
    return TrainConfig(**(base | kw))


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Run:
    run, state, reason = train(tmp_path_factory.mktemp("runs") / "short", lidar_config())
    assert reason == "step budget" and state.steps >= 2048
    return run


def test_run_directory_holds_everything(short_run):
    p = short_run.path
    cfg = json.loads((p / "config.json").read_text())
    assert len(cfg["reward_sha256"]) == 64
    assert (p / "reward" / REWARD.name).read_text() == REWARD.read_text()
    assert json.loads((p / "model_metadata.json").read_text())["sensor"] == ["LIDAR"]
    for f in ("checkpoints/last.zip", "checkpoints/best.zip", "checkpoints/state.json",
              "metrics/training_metrics.json", "metrics/evaluations.jsonl", "log.txt"):
        assert (p / f).is_file(), f
    assert any((p / "tensorboard").rglob("events.out.tfevents.*"))
    assert (p.parent / "latest").resolve() == p.resolve()


def test_trace_csv_has_the_reference_columns_and_a_row_per_step(short_run):
    files = sorted((short_run.path / "training-simtrace").glob("*-iteration.csv"))
    assert len(files) >= 2  # one per PPO iteration
    header = files[0].read_text().splitlines()[0].split(",")
    assert header == list(COLUMNS) and len(header) == 19
    rows = [r for f in files for r in read_trace(f)]
    steps = [r for r in rows if r["episode_status"] != "prepare"]
    state = json.loads((short_run.path / "checkpoints" / "state.json").read_text())
    assert len(steps) == state["steps"]  # every env step, once
    metrics = json.loads((short_run.path / "metrics" / "training_metrics.json").read_text())["metrics"]
    ended = {r["episode"] for r in rows if r["done"] is True}
    assert {m["episode"] for m in metrics} == ended


def test_each_env_has_its_own_reward_module(tmp_path):
    counter = tmp_path / "count.py"
    counter.write_text("CALLS = 0\n\ndef reward_function(params):\n    global CALLS\n    CALLS += 1\n"
                       "    return float(CALLS)\n")
    cfg = lidar_config(reward=str(counter), envs=4, augment=False)
    run = Run(tmp_path / "run")
    run.create(cfg, {})
    writer = SimTraceWriter(tmp_path / "trace")
    vec = make_vec_env(cfg, run, None, writer, MetricsWriter(tmp_path / "m.json", "training"), 0)
    vec.reset()
    rng = np.random.default_rng(0)
    for t in range(60):
        _, rewards, _, _ = vec.step(rng.integers(0, 10, size=4))
        # with one shared module the counts would grow by 4 per step
        assert rewards.tolist() == [float(t + 1)] * 4
    vec.close()
    writer.close()


def test_sigkill_then_resume_continues_from_the_last_checkpoint(tmp_path):
    run_dir = tmp_path / "killed"
    cfg = lidar_config(steps=40000, eval_every=10**9)
    code = ("import sys; from racer.train import train; from racer.runs import TrainConfig; import json; "
            f"train({str(run_dir)!r}, TrainConfig(**json.loads(sys.argv[1])))")
    from dataclasses import asdict
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(asdict(cfg))], cwd=ROOT)
    state_file = run_dir / "checkpoints" / "state.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if state_file.exists() and json.loads(state_file.read_text())["steps"] >= 1024:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state_file.read_text())["steps"]
    assert 1024 <= killed_at < 40000
    traces_before = sorted(p.name for p in (run_dir / "training-simtrace").glob("*.csv"))

    # continue with a budget just past the checkpoint
    config = json.loads((run_dir / "config.json").read_text())
    config["config"]["steps"] = killed_at + 1024
    (run_dir / "config.json").write_text(json.dumps(config))
    run, state, reason = train(run_dir)
    log = (run_dir / "log.txt").read_text()
    assert f"resumed from {run_dir / 'checkpoints' / 'last.zip'} at {killed_at} steps" in log
    assert state.steps >= killed_at + 1024 and state.steps < killed_at + 1024 + 512
    traces_after = sorted(p.name for p in (run_dir / "training-simtrace").glob("*.csv"))
    assert set(traces_before) < set(traces_after)  # old iterations kept, new ones added
    json.loads((run_dir / "metrics" / "training_metrics.json").read_text())  # still valid JSON


def test_evaluate_writes_report_trace_and_plot(short_run, tmp_path):
    report = evaluate(short_run.path, laps=1, starts=2, out_dir=tmp_path / "eval", compare_expert=True)
    assert len(report.laps) == 2 and all(len(r) >= 1 for r in report.laps)
    data = json.loads(report.files["report"].read_text())
    assert data["track"] == "oval" and len(data["laps"]) == 2
    rows = read_trace(report.files["trace"])
    assert {r["episode"] for r in rows} == {0, 1}
    assert report.files["racing_line"].stat().st_size > 10_000
    assert report.expert_laps and report.expert_laps[0][0].status == "lap_complete"


def test_cli_train_stops_on_a_crashing_reward_and_names_it(tmp_path):
    bad = tmp_path / "bad_reward.py"
    bad.write_text("def reward_function(params):\n    if params['steps'] > 5:\n"
                   "        return params['no_such_key']\n    return 1.0\n")
    car = tmp_path / "car.json"
    car.write_text(json.dumps(LIDAR_CAR))
    result = CliRunner().invoke(main, ["train", "--reward", str(bad), "--car", str(car), "--track", "oval",
                                       "--steps", "2048", "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "bad_reward.py" in result.output and "line 3" in result.output
    assert "step 6" in result.output and "KeyError" in result.output
    assert "racer train --resume" not in result.output  # no checkpoint yet: nothing to resume


def test_one_process_at_a_time_trains_in_a_run_directory(tmp_path):
    """A second trainer is refused with the holder's PID; a killed holder's lock is taken over."""
    run = Run(tmp_path / "run")
    run.create(TrainConfig(reward=str(REWARD), metadata={}, track="oval", steps=256), {})
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from racer.runs import Run\n"
        f"with Run({str(run.path)!r}).lock():\n    print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(TrainError, match=rf"in use by another racer process \(PID {holder.pid}\)"):
            train(run.path)
    finally:
        holder.kill()
        holder.wait()
    with run.lock():  # SIGKILLed: the kernel released it
        assert (run.path / ".lock").read_text().strip() == str(os.getpid())


def test_evaluating_again_replaces_the_evaluation_metrics(short_run, tmp_path):
    out = tmp_path / "eval"
    evaluate(short_run.path, laps=1, starts=2, out_dir=out)
    first = json.loads((out / "evaluation_metrics.json").read_text())["metrics"]
    evaluate(short_run.path, laps=1, starts=2, out_dir=out)
    second = json.loads((out / "evaluation_metrics.json").read_text())["metrics"]
    assert len(first) == len(second) >= 2  # like the trace and the report, not appended to


def test_mirror_opponent_is_a_frozen_copy_renewed_at_each_checkpoint(tmp_path):
    from stable_baselines3.common.vec_env import DummyVecEnv
    cfg = lidar_config()
    vec = DummyVecEnv([lambda: gym.make("racer/DeepRacer-v0", track="oval", sensors=["LIDAR"])])
    model = make_model(cfg, vec, None)
    obs = vec.envs[0].reset(seed=0)[0]
    mirror = MirrorOpponent()
    with pytest.raises(TrainError, match="no policy yet"):
        mirror(obs)
    mirror.refresh(model.policy)

    def logits(policy) -> torch.Tensor:
        with torch.no_grad():
            return policy.get_distribution(policy.obs_to_tensor(obs)[0]).distribution.logits

    assert torch.equal(logits(mirror.policy), logits(model.policy))
    with torch.no_grad():
        for p in model.policy.action_net.parameters():
            p.add_(1.0)
    assert not torch.equal(logits(mirror.policy), logits(model.policy))  # frozen until the next checkpoint
    mirror.refresh(model.policy)
    assert torch.equal(logits(mirror.policy), logits(model.policy))
    assert 0 <= int(mirror(obs)) < vec.action_space.n
    vec.close()
