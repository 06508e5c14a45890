"""End-to-end training to lapping models (minutes each: `python -m pytest -m slow`)."""
from __future__ import annotations

import pytest

from racer.evaluate import evaluate
from racer.garage import metadata_to_dict, new_metadata
from racer.reward import example_rewards
from racer.runs import TrainConfig
from racer.train import clean, train

pytestmark = pytest.mark.slow
REWARD = example_rewards()["center_and_progress"]


def _train_until_lapping(tmp_path, sensors, actions, track, minutes, starts=5, laps=3):
    md = metadata_to_dict(new_metadata(sensors=tuple(sensors), preset=actions, max_speed=1.0,
                                       network="RACER_POOLED_SHALLOW"))
    cfg = TrainConfig(reward=str(REWARD), metadata=md, track=track, minutes=minutes, stop_when_lapping=True,
                      eval_every=2500, eval_starts=starts, eval_laps=laps)
    run, state, reason = train(tmp_path / "run", cfg)
    assert reason == "lapping", f"no clean laps within {minutes} min ({state.steps} steps)"
    report = evaluate(run.path, laps=laps, starts=starts, out_dir=tmp_path / "eval")
    assert clean(report.laps, laps)
    return state


def test_camera_model_laps_the_loop_from_five_starts(tmp_path):
    state = _train_until_lapping(tmp_path, ["FRONT_FACING_CAMERA"], "discrete10", "reinvent-like", minutes=6)
    print(f"camera: lapping at {state.lapping_at}")


def test_continuous_action_space_laps_the_oval(tmp_path):
    state = _train_until_lapping(tmp_path, ["FRONT_FACING_CAMERA"], "continuous", "oval", minutes=10)
    print(f"continuous: lapping at {state.lapping_at}")
