"""What is painted on the floor: road, white borders, dashed centre line, as polygons.

Both renderers draw from these polygons (the numpy floor texture and the PyBullet meshes), so
the fast camera and the PyBullet reference view show the same scene.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.track import Track, vertex_normals

FLOOR = (70, 110, 60)
ROAD = (60, 60, 66)
LINE = (240, 240, 240)
DASH = (250, 200, 40)
WALL = (170, 170, 180)
BORDER_LINE_WIDTH = 0.05  # m, centred on each border
DASH_WIDTH = 0.03
DASH_ON, DASH_OFF = 0.15, 0.15


@dataclass(frozen=True)
class Layer:
    """Convex quads of one colour: (K, 4, 2) corners, world metres, drawn in list order."""

    color: tuple[int, int, int]
    quads: np.ndarray


def _strip(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Quads between two matching polylines a and b (each (N, 2))."""
    return np.stack([a[:-1], a[1:], b[1:], b[:-1]], axis=1)


def layers(track: Track) -> list[Layer]:
    """The painted layers of a track, bottom first: road, border lines, centre dashes."""
    out = [Layer(ROAD, _strip(track.left, track.right))]
    hw = BORDER_LINE_WIDTH / 2
    border_quads = []
    for border in (track.left, track.right):
        n = vertex_normals(border, track.closed)
        border_quads.append(_strip(border + n * hw, border - n * hw))
    out.append(Layer(LINE, np.concatenate(border_quads)))
    period = DASH_ON + DASH_OFF
    starts = np.arange(0.0, track.length - DASH_ON, period)
    p0, h0 = track.point_at(starts)
    p1, _ = track.point_at(starts + DASH_ON)
    n = np.stack([-np.sin(h0), np.cos(h0)], axis=1) * (DASH_WIDTH / 2)
    out.append(Layer(DASH, np.stack([p0 + n, p1 + n, p1 - n, p0 - n], axis=1)))
    return out
