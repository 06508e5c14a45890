"""Plots: tracks, racing lines, rewards over the track."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sim.render import Box  # noqa: E402
from sim.track import Track  # noqa: E402


def plot_track(track: Track, path: str) -> None:
    """Centre line (with the start marked) and borders, to a PNG file."""
    fig, ax = plt.subplots(figsize=(8, 6))
    for line, style in ((track.left, "k-"), (track.right, "k-"), (track.center, "y--")):
        ax.plot(line[:, 0], line[:, 1], style, lw=1)
    ax.plot(*track.center[0], "go", label="start")
    ax.set_aspect("equal")
    ax.set_title(f"{track.name}: {track.length:.1f} m")
    ax.legend()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_reward_over_track(track: Track, xs, ys, rewards, path: str) -> None:
    """The reward at each point, coloured, over the track's borders; NaN (a failed call) as red x."""
    import numpy as np

    xs, ys, rewards = (np.asarray(v, dtype=float) for v in (xs, ys, rewards))
    fig, ax = plt.subplots(figsize=(8, 6))
    _draw_borders(ax, track)
    ok = np.isfinite(rewards)
    points = ax.scatter(xs[ok], ys[ok], c=rewards[ok], cmap="viridis", s=18, zorder=3)
    fig.colorbar(points, ax=ax, label="reward")
    if not ok.all():
        ax.plot(xs[~ok], ys[~ok], "rx", label="error", zorder=4)
        ax.legend()
    ax.set_aspect("equal")
    ax.set_title(f"reward over {track.name}")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _draw_borders(ax, track: Track) -> None:
    for line in (track.left, track.right):
        ax.plot(line[:, 0], line[:, 1], "k-", lw=1)


def plot_racing_line(track: Track, rows: list[dict], path: str, boxes: Sequence[Box] = (),
                     bot_paths: Sequence[Sequence[tuple[float, float]]] = ()) -> None:
    """The driven path of trace rows (X, Y) coloured by commanded speed; failures and put-backs marked;
    the obstacle `boxes` drawn as their footprints, and the bot cars' paths as grey lines."""
    from sim import rules as R

    if not rows:
        raise ValueError(f"plot_racing_line {path}: no trace rows to plot")
    fig, ax = plt.subplots(figsize=(8, 6))
    _draw_borders(ax, track)
    for box in boxes:
        ax.fill(*box.footprint().T, color=[c / 255 for c in box.color], zorder=2)
    for i, bot_path in enumerate(bot_paths):
        if bot_path:
            ax.plot(*zip(*bot_path), "-", color="0.45", lw=1.5, zorder=2, label="bot cars" if i == 0 else None)
    driven = [r for r in rows if r["episode_status"] not in (R.Status.PREPARE, R.Status.PAUSE)] or rows
    points = ax.scatter([r["X"] for r in driven], [r["Y"] for r in driven], c=[r["throttle"] for r in driven],
                        cmap="plasma", s=8, zorder=3)
    fig.colorbar(points, ax=ax, label="commanded speed (m/s)")
    failed = [r for r in rows if r["episode_status"] in R.FAILURES]
    put_back = [r for prev, r in zip(rows, rows[1:])
                if r["episode_status"] == R.Status.PAUSE and prev["episode_status"] != R.Status.PAUSE]
    for marked, style, label in ((failed, "rx", "off track / crash"), (put_back, "b^", "put back")):
        if marked:
            ax.plot([r["X"] for r in marked], [r["Y"] for r in marked], style, ms=8, label=label, zorder=4)
    if failed or put_back or any(bot_paths):
        ax.legend()
    ax.set_aspect("equal")
    ax.set_title(f"racing line on {track.name}")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _moving_average(values, window: int):
    """Trailing mean over up to `window` values (shorter at the start)."""
    import numpy as np

    c = np.concatenate([[0.0], np.cumsum(values, dtype=float)])
    n = np.arange(1, len(values) + 1)
    lo = np.maximum(0, n - window)
    return (c[n] - c[lo]) / (n - lo)


def plot_training_progress(metrics_json_path: str, path: str) -> None:
    """Completion % and reward per episode of a DeepRacer metrics JSON, each with a moving average."""
    import json
    from pathlib import Path

    entries = json.loads(Path(metrics_json_path).read_text(encoding="utf-8")).get("metrics") or []
    if not entries:
        raise ValueError(f"{metrics_json_path}: no episodes in \"metrics\" to plot")
    fig, axes = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    for phase in sorted({e["phase"] for e in entries}):
        sel = sorted((e for e in entries if e["phase"] == phase), key=lambda e: e["episode"])
        episodes = [e["episode"] for e in sel]
        window = max(1, min(50, len(sel) // 10))
        for ax, key in zip(axes, ("completion_percentage", "reward_score")):
            values = [e[key] for e in sel]
            dots = ax.plot(episodes, values, ".", alpha=0.3, label=phase)[0]
            ax.plot(episodes, _moving_average(values, window), "-", color=dots.get_color(),
                    label=f"{phase}, mean of {window}")
    axes[0].set_ylabel("completion %")
    axes[1].set_ylabel("reward")
    axes[1].set_xlabel("episode")
    axes[0].legend()
    fig.savefig(path, dpi=100)
    plt.close(fig)
