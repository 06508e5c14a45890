"""Replays (top-down and camera GIFs) and the racing-line / training-progress plots."""
from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
from PIL import Image

import sim
from racer.metrics import MetricsWriter
from racer.plots import plot_racing_line, plot_training_progress
from racer.replay import CAR_COLOR, TopDownView, camera_frames, save_gif, top_down_frames
from racer.simtrace import SimTraceWrapper, SimTraceWriter, read_trace
from sim import rules as R
from sim.expert import PurePursuit, expert_policy
from sim.track import load

CONTINUOUS = {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.1, "high": 1.0}}
EXPERT = expert_policy(PurePursuit())
FRONT = 0.14


def make(**kwargs) -> gymnasium.Env:
    return gymnasium.make(sim.ENV_ID, **({"track": "oval", "sensors": ["LIDAR"], "action_space": CONTINUOUS} | kwargs))


def hard_right(obs, env):
    return np.array([-1.0, 1.0], dtype=np.float32)


@pytest.fixture(scope="module")
def evaluation_trace(tmp_path_factory):
    """Trace rows and metrics file of an evaluation that drives off, is put back, then laps."""
    d = tmp_path_factory.mktemp("eval")
    writer = SimTraceWriter(d)
    metrics = MetricsWriter(d / "evaluation_metrics.json", "evaluation")
    env = SimTraceWrapper(make(mode="evaluation", laps=1), writer, metrics=metrics)
    obs, _ = env.reset(seed=0)
    done = False
    while not done:
        policy = hard_right if env.unwrapped.lap.resets == 0 else EXPERT
        obs, _, terminated, truncated, _ = env.step(policy(obs, env))
        done = terminated or truncated
    env.close()
    writer.close()
    return read_trace(d / "0-iteration.csv"), d / "evaluation_metrics.json"


def car_pixels(frame: np.ndarray) -> np.ndarray:
    """(row, col) of every pixel of the car's colour."""
    return np.argwhere(np.all(frame == CAR_COLOR, axis=-1))


# ---- top-down ----------------------------------------------------------------------------
@pytest.mark.parametrize("heading", [0.0, 60.0, 90.0, -150.0])
def test_top_down_frame_shows_the_car_where_and_how_it_stands(heading):
    track = load("oval")
    view = TopDownView(track, (320, 240))
    (x, y), _ = track.point_at(2.0)
    yaw = math.radians(heading)
    front = (x + FRONT * math.cos(yaw), y + FRONT * math.sin(yaw))  # the trace's X, Y
    [frame] = top_down_frames(track, [{"X": front[0], "Y": front[1], "yaw": heading}])
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
    pix = car_pixels(frame)
    assert len(pix) > 20
    col, row = view.to_pixels(x, y)  # the car's centre
    centre = pix.mean(axis=0)
    assert abs(centre[0] - row) < 3 and abs(centre[1] - col) < 3
    # the body's long axis points along the heading (image rows grow downwards: -y)
    cov = np.cov((pix - centre).T)
    _, vecs = np.linalg.eigh(cov)
    d_row, d_col = vecs[:, -1]
    axis = math.degrees(math.atan2(-d_row, d_col))
    assert abs(math.remainder(axis - heading, 180.0)) < 12
    assert len(car_pixels(np.asarray(view.background))) == 0


def test_top_down_keeps_up_up():
    track = load("oval")
    xmin, ymin, xmax, ymax = track.bounds
    view = TopDownView(track, (320, 240))
    assert view.to_pixels(xmin, ymax)[1] < view.to_pixels(xmin, ymin)[1]
    assert view.to_pixels(xmin, ymin)[0] < view.to_pixels(xmax, ymin)[0]
    # the painted road is where the track is: the centre line's first point lies on road colour
    col, row = view.to_pixels(*track.center[0])
    assert tuple(np.asarray(view.background)[round(row), round(col)]) != tuple(np.asarray(view.background)[0, 0])


def test_top_down_gif_of_a_trace(tmp_path, evaluation_trace):
    rows, _ = evaluation_trace
    frames = top_down_frames(load("oval"), rows[::2])
    path = save_gif(frames, tmp_path / "top.gif")
    with Image.open(path) as gif:
        assert gif.n_frames > 10 and gif.size == (320, 240)
        assert gif.n_frames <= 300
    assert path.stat().st_size < 5_000_000


# ---- camera ------------------------------------------------------------------------------
def test_camera_frames_and_gif(tmp_path):
    env = make(mode="evaluation", laps=1, render_mode="rgb_array")
    try:
        frames, laps = camera_frames(env, EXPERT)
    finally:
        env.close()
    assert laps[0].status == "lap_complete"
    assert len(frames) > 100 and frames[0].shape == (120, 160, 3) and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0], frames[len(frames) // 2])  # the view moves
    path = save_gif(frames, tmp_path / "camera.gif")
    with Image.open(path) as gif:
        assert gif.size == (320, 240) and gif.n_frames > 10
    few = save_gif(frames, tmp_path / "few.gif", max_frames=40, scale=1)
    with Image.open(few) as gif:
        step = math.ceil(len(frames) / 40)
        assert gif.size == (160, 120) and 10 < gif.n_frames <= 40
        assert gif.info["duration"] == pytest.approx(1000 * step / 15, abs=10)


def test_camera_frames_need_rgb_render_mode():
    env = make()
    try:
        with pytest.raises(ValueError, match="render_mode"):
            camera_frames(env, EXPERT)
    finally:
        env.close()
    with pytest.raises(ValueError, match="no frames"):
        save_gif([], "x.gif")


# ---- plots -------------------------------------------------------------------------------
def test_racing_line_plot(tmp_path, evaluation_trace):
    rows, _ = evaluation_trace
    statuses = {r["episode_status"] for r in rows}
    assert {R.Status.OFF_TRACK, R.Status.PAUSE, R.Status.LAP_COMPLETE} <= statuses  # the trace has all that is marked
    path = tmp_path / "line.png"
    plot_racing_line(load("oval"), rows, str(path))
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert img.shape[:2] == (600, 800)
    red = np.all(np.abs(img - (255, 0, 0)) < 30, axis=-1)  # the off-track marker
    assert red.sum() > 5
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # a colour map, not a blank figure
    with pytest.raises(ValueError, match="no trace rows"):
        plot_racing_line(load("oval"), [], str(path))


def test_training_progress_plot(tmp_path, evaluation_trace):
    _, eval_metrics = evaluation_trace
    metrics = MetricsWriter(tmp_path / "training_metrics.json", "training")
    for i in range(30):
        metrics.add_episode(episode=i, reward=10 * i, progress=min(100, 4 * i), status="off_track",
                            sim_seconds=3.0, start_time=1.7e9)
    path = tmp_path / "progress.png"
    plot_training_progress(str(metrics.path), str(path))
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape[:2] == (600, 900) and img.std() > 10
    plot_training_progress(str(eval_metrics), str(tmp_path / "eval.png"))
    empty = tmp_path / "empty.json"
    empty.write_text('{"metrics": []}')
    with pytest.raises(ValueError, match="no episodes"):
        plot_training_progress(str(empty), str(path))


def test_racing_line_plot_draws_the_boxes(tmp_path, evaluation_trace):
    from sim.render import Box
    rows, _ = evaluation_trace
    green = (20, 200, 60)
    (x, y), yaw = load("oval").point_at(2.0)
    box = Box(float(x), float(y), float(yaw), 0.4, 0.3, 0.25, green)
    counts = []
    for boxes in ((), (box,)):
        plot_racing_line(load("oval"), rows, str(tmp_path / "line.png"), boxes)
        img = np.asarray(Image.open(tmp_path / "line.png").convert("RGB")).astype(int)
        counts.append(int(np.all(np.abs(img - green) < 20, axis=-1).sum()))
    assert counts[0] == 0 and counts[1] > 30


def test_top_down_frames_draw_the_boxes_where_they_stand():
    from sim.render import Box
    track = load("oval")
    (x, y), yaw = track.point_at(2.0)
    green = (20, 200, 60)
    box = Box(float(x), float(y), float(yaw), 0.4, 0.3, 0.25, green)
    row = {"X": float(track.center[0][0]), "Y": float(track.center[0][1]), "yaw": 0.0}
    [plain] = top_down_frames(track, [row])
    [frame] = top_down_frames(track, [row], boxes=[box])
    view = TopDownView(track, (320, 240))
    col, r = (round(v) for v in view.to_pixels(float(x), float(y)))
    assert tuple(frame[r, col]) == green and tuple(plain[r, col]) != green
    assert np.all(np.abs(frame.astype(int) - green) < 5, axis=-1).sum() >= 4  # 0.4 x 0.3 m at this scale


def test_racing_line_plot_draws_the_bots_paths(tmp_path, evaluation_trace):
    rows, _ = evaluation_trace
    track = load("oval")
    path = [tuple(track.point_at(s, 0.2)[0]) for s in np.linspace(0.0, 4.0, 40)]
    counts = []
    for paths in ((), (path,)):
        plot_racing_line(track, rows, str(tmp_path / "line.png"), bot_paths=paths)
        img = np.asarray(Image.open(tmp_path / "line.png").convert("RGB")).astype(int)
        counts.append(int(np.all(np.abs(img - 115) < 6, axis=-1).sum()))  # matplotlib grey "0.45"
    assert counts[1] > counts[0] + 50
