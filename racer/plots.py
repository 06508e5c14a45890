"""Plots: tracks, racing lines, rewards over the track."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
