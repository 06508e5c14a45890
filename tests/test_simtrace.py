"""DeepRacer trace CSVs and metrics JSON written by SimTraceWrapper / MetricsWriter."""
from __future__ import annotations

import io
import json
import math

import gymnasium
import numpy as np
import pytest

import sim
from racer.metrics import MetricsWriter
from racer.simtrace import COLUMNS, SimTraceWrapper, SimTraceWriter, closest_waypoint, next_free_iteration, read_trace
from sim import rules as R
from sim.expert import PurePursuit, expert_policy

CONTINUOUS = {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.1, "high": 1.0}}
EXPERT = expert_policy(PurePursuit())
HEADER = ("episode,steps,X,Y,yaw,steer,throttle,action,reward,done,all_wheels_on_track,progress,closest_waypoint,"
          "track_len,tstamp,episode_status,pause_duration,obstacle_crash_counter,wall_clock")


def hard_right(obs, env):
    return np.array([-1.0, 1.0], dtype=np.float32)  # -30 deg at 1 m/s: off the oval in a few seconds


def slow_straight(obs, env):
    return np.array([0.0, -1.0], dtype=np.float32)  # 0 deg at 0.1 m/s


@pytest.fixture
def traced(tmp_path):
    """`traced(writer, **env_kwargs)` -> a SimTraceWrapper round an oval env (closed afterwards)."""
    envs = []

    def make(writer, episode_offset=0, episode_stride=1, metrics=None, **kwargs):
        kwargs = {"track": "oval", "sensors": ["LIDAR"], "action_space": CONTINUOUS} | kwargs
        env = SimTraceWrapper(gymnasium.make(sim.ENV_ID, **kwargs), writer, episode_offset, episode_stride, metrics)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


def drive(env, policy, max_steps=2000, **reset_kwargs):
    """One episode; returns (reset info, [(reward, terminated, truncated, info) per step])."""
    obs, info0 = env.reset(**reset_kwargs)
    steps = []
    for _ in range(max_steps):
        obs, reward, terminated, truncated, info = env.step(policy(obs, env))
        steps.append((reward, terminated, truncated, info))
        if terminated or truncated:
            return info0, steps
    raise AssertionError(f"episode did not end within {max_steps} steps")


def reversed_pose(env) -> tuple[float, float, float]:
    """The training start pose of the next episode's start point, turned round."""
    (x, y), yaw = env.unwrapped.track.point_at(0.0)
    return float(x), float(y), math.degrees(float(yaw)) + 180.0


# ---- the CSV -----------------------------------------------------------------------------
def test_rows_equal_the_info_of_each_step(tmp_path, traced):
    writer = SimTraceWriter(tmp_path)
    env = traced(writer)
    info0, steps = drive(env, EXPERT, seed=0)
    writer.close()
    path = tmp_path / "0-iteration.csv"
    assert len(COLUMNS) == 19 and ",".join(COLUMNS) == HEADER
    assert path.read_text().splitlines()[0] == HEADER
    rows = read_trace(path)
    assert len(rows) == len(steps) + 1

    prepare = rows[0]
    assert prepare["episode_status"] == "prepare" and prepare["steps"] == 1 and prepare["reward"] == 0
    assert prepare["done"] is False and prepare["X"] == pytest.approx(info0["params"]["x"], abs=1e-4)

    for row, (reward, terminated, truncated, info) in zip(rows[1:], steps):
        p = info["params"]
        assert row["episode"] == 0 and row["steps"] == p["steps"]
        assert row["X"] == pytest.approx(p["x"], abs=1e-4) and row["Y"] == pytest.approx(p["y"], abs=1e-4)
        assert row["yaw"] == pytest.approx(p["heading"], abs=1e-4)
        assert row["progress"] == pytest.approx(p["progress"], abs=1e-4)
        assert row["reward"] == pytest.approx(reward, abs=1e-4)
        assert row["episode_status"] == info["status"]
        assert row["done"] is (terminated or truncated)
        assert row["all_wheels_on_track"] is p["all_wheels_on_track"]
        assert row["closest_waypoint"] in p["closest_waypoints"]
        assert row["closest_waypoint"] == closest_waypoint(p)
        assert row["track_len"] == pytest.approx(p["track_length"], abs=0.01)
        assert row["tstamp"] == pytest.approx(info["sim_time"], abs=1e-3)
        steer, speed = info["command"]
        assert row["action"] == f"[{round(steer, 4)} {round(speed, 4)}]"
        assert row["steer"] == pytest.approx(steer, abs=1e-4) and row["throttle"] == pytest.approx(speed, abs=1e-4)
        assert row["pause_duration"] == 0 and row["obstacle_crash_counter"] == 0
        assert row["wall_clock"] > 1e9
    assert rows[-1]["episode_status"] == "lap_complete" and rows[-1]["progress"] == 100


def test_closest_waypoint_is_the_nearer_of_the_two():
    params = {"x": 0.8, "y": 0.1, "waypoints": [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0)], "closest_waypoints": [0, 1]}
    assert closest_waypoint(params) == 1
    assert closest_waypoint(params | {"x": 0.3}) == 0


def test_discrete_action_index_and_prepare_action(tmp_path, traced):
    writer = SimTraceWriter(tmp_path)
    env = traced(writer, action_space=None)  # the default discrete space: index 2 is straight at 0.5 m/s
    env.reset(seed=0)
    for _ in range(3):
        env.step(2)
    writer.close()
    rows = read_trace(tmp_path / "0-iteration.csv")
    assert [r["action"] for r in rows] == [-1, 2, 2, 2]
    assert [r["throttle"] for r in rows] == [0, 0.5, 0.5, 0.5]


def test_episode_numbers_with_offset_and_stride(tmp_path, traced):
    writer = SimTraceWriter(tmp_path)
    a, b = traced(writer, 0, 2), traced(writer, 1, 2)
    counts = {}
    for env in (a, b, a, b):
        _, steps = drive(env, hard_right)
        counts[env.episode] = len(steps) + 1
    writer.close()
    rows = read_trace(tmp_path / "0-iteration.csv")
    assert sorted({r["episode"] for r in rows}) == [0, 1, 2, 3]
    for episode, n in counts.items():
        mine = [r for r in rows if r["episode"] == episode]
        assert len(mine) == n and mine[0]["episode_status"] == "prepare"
        assert [r["done"] for r in mine] == [False] * (n - 1) + [True]
    assert {a.episode, b.episode} == {2, 3}


def test_next_iteration_and_resume(tmp_path, traced):
    writer = SimTraceWriter(tmp_path)
    env = traced(writer)
    drive(env, hard_right)
    writer.next_iteration()
    assert writer.path == tmp_path / "1-iteration.csv"
    drive(env, hard_right)
    writer.next_iteration()
    writer.next_iteration()  # an iteration without rows leaves no file
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0-iteration.csv", "1-iteration.csv"]
    first = (tmp_path / "0-iteration.csv").read_text()
    assert (tmp_path / "1-iteration.csv").read_text().splitlines()[0] == HEADER
    assert {r["episode"] for r in read_trace(tmp_path / "1-iteration.csv")} == {1}

    assert next_free_iteration(tmp_path) == 2 and next_free_iteration(tmp_path / "missing") == 0
    resumed = SimTraceWriter(tmp_path, start_iteration=next_free_iteration(tmp_path))
    drive(traced(resumed), hard_right)
    resumed.close()
    assert (tmp_path / "2-iteration.csv").exists()
    assert (tmp_path / "0-iteration.csv").read_text() == first


def test_rows_are_flushed_at_episode_end(tmp_path, traced):
    writer = SimTraceWriter(tmp_path)
    env = traced(writer)
    _, steps = drive(env, hard_right)
    env.reset()
    env.step(hard_right(None, env))  # a running episode, not flushed yet
    lines = (tmp_path / "0-iteration.csv").read_text().splitlines()
    assert len(lines) >= 1 + len(steps) + 1
    assert lines[len(steps) + 1].split(",")[9] == "True"
    writer.close()


@pytest.mark.parametrize("sink", ["stream", "callable"])
def test_sim_trace_log_lines_equal_csv_rows(tmp_path, traced, sink):
    stream, lines = io.StringIO(), []
    writer = SimTraceWriter(tmp_path, also_log=stream if sink == "stream" else lines.append)
    drive(traced(writer), hard_right)
    writer.close()
    if sink == "stream":
        lines = stream.getvalue().splitlines()
    rows = (tmp_path / "0-iteration.csv").read_text().splitlines()[1:]
    assert len(lines) == len(rows) > 1
    assert all(line.startswith("SIM_TRACE_LOG:") for line in lines)
    assert [line[len("SIM_TRACE_LOG:"):] for line in lines] == rows


def test_bad_log_target_and_missing_columns_are_refused(tmp_path):
    with pytest.raises(TypeError, match="also_log"):
        SimTraceWriter(tmp_path, also_log=42)
    with pytest.raises(KeyError, match="wall_clock"):
        SimTraceWriter(tmp_path).write({c: 0 for c in COLUMNS[:-1]})
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a DeepRacer trace"):
        read_trace(bad)


def test_evaluation_penalty_is_logged_as_pause_rows(tmp_path, traced):
    writer = SimTraceWriter(tmp_path)
    metrics = MetricsWriter(tmp_path / "evaluation_metrics.json", "evaluation")
    rules = R.RaceRules(mode="evaluation", laps=1, max_resets=1)  # put back once, the second failure ends it
    env = traced(writer, metrics=metrics, rules=rules)
    drive(env, hard_right)
    writer.close()
    rows = read_trace(tmp_path / "0-iteration.csv")
    statuses = [r["episode_status"] for r in rows]
    first_off = statuses.index("off_track")
    assert rows[first_off]["pause_duration"] == pytest.approx(rules.off_track_penalty)
    pauses = [r for r in rows if r["episode_status"] == "pause"]
    assert statuses[first_off + 1: first_off + 1 + len(pauses)] == ["pause"] * len(pauses)
    assert len(pauses) == round(rules.off_track_penalty * 15)
    durations = [r["pause_duration"] for r in pauses]
    assert durations[0] == pytest.approx(rules.off_track_penalty - 1 / 15, abs=1e-3)
    assert all(a > b for a, b in zip(durations, durations[1:])) and durations[-1] == pytest.approx(0, abs=1e-3)
    assert all(r["throttle"] == 0 and r["reward"] == 0 for r in pauses)
    assert len({(r["X"], r["Y"]) for r in pauses}) == 1  # held still where it was put back
    after = rows[first_off + 1 + len(pauses)]
    assert after["episode_status"] == "in_progress" and after["pause_duration"] == 0
    assert statuses[-1] == "off_track" and rows[-1]["done"] is True
    [entry] = metrics.metrics
    assert entry["episode_status"] == "Off track" and entry["phase"] == "evaluation"


# ---- metrics JSON ------------------------------------------------------------------------
def test_metrics_after_three_episodes_and_resume(tmp_path, traced):
    path = tmp_path / "metrics" / "training_metrics.json"
    writer = SimTraceWriter(tmp_path / "trace")
    env = traced(writer, metrics=MetricsWriter(path, "training"))
    _, lap = drive(env, EXPERT, seed=0)
    _, off = drive(env, hard_right)
    _, back = drive(env, slow_straight, options={"pose": reversed_pose(env)})
    writer.close()

    data = json.loads(path.read_text())
    assert data["version"] == "2" and data["best_model_metric"] == "progress"
    m = data["metrics"]
    assert [e["episode_status"] for e in m] == ["Lap complete", "Off track", "Reversed"]
    assert [e["episode"] for e in m] == [0, 1, 2] and [e["trial"] for e in m] == [1, 2, 3]
    assert {e["phase"] for e in m} == {"training"}
    assert m[0]["completion_percentage"] == 100
    assert m[0]["reward_score"] == round(sum(s[0] for s in lap))
    for entry, steps in zip(m, (lap, off, back)):
        assert entry["elapsed_time_in_milliseconds"] == round(steps[-1][3]["sim_time"] * 1000)
        assert entry["completion_percentage"] == int(steps[-1][3]["params"]["progress"])
        assert entry["metric_time"] >= entry["start_time"] > 1e12  # epoch milliseconds
    assert sorted(p.name for p in path.parent.iterdir()) == ["training_metrics.json"]  # no temp files left

    resumed = MetricsWriter(path, "training")
    assert resumed.metrics == m
    resumed.add_episode(episode=3, reward=1.6, progress=42.9, status="time_up", sim_seconds=1.0, start_time=0.0)
    m4 = json.loads(path.read_text())["metrics"]
    assert len(m4) == 4 and m4[:3] == m
    assert m4[3] | {"metric_time": 0} == {
        "reward_score": 2, "metric_time": 0, "start_time": 0, "elapsed_time_in_milliseconds": 1000, "episode": 3,
        "trial": 4, "phase": "training", "completion_percentage": 42, "episode_status": "Time up"}


def test_an_abandoned_episode_is_reported_in_progress(tmp_path, traced):
    metrics = MetricsWriter(tmp_path / "m.json", "training")
    writer = SimTraceWriter(tmp_path)
    env = traced(writer, metrics=metrics)
    env.reset(seed=0)
    for _ in range(5):
        env.step(EXPERT(None, env))
    env.reset()
    writer.close()
    assert [e["episode_status"] for e in metrics.metrics] == ["In progress"]


def test_metrics_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match="phase"):
        MetricsWriter(tmp_path / "m.json", "racing")
    with pytest.raises(ValueError, match="status"):
        MetricsWriter(tmp_path / "m.json", "training").add_episode(
            episode=0, reward=0, progress=0, status="prepare", sim_seconds=0, start_time=0)
    broken = tmp_path / "broken.json"
    broken.write_text("{\"metrics\": [")
    with pytest.raises(ValueError, match="broken.json.*move it away"):
        MetricsWriter(broken, "training")
