"""Replays as GIFs: the car seen from above (from trace rows) and from its own camera."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image, ImageDraw

from sim.car import CarSpec
from sim.laps import LapResult, Policy, run_laps
from sim.render import TEXTURE_RES, Box, texture_for
from sim.track import Track

CAR_COLOR = (255, 0, 255)  # magenta: no paint on the floor uses it
NOSE_COLOR = (255, 255, 255)
MIN_CAR_PX = 10  # the car is drawn at least this long, so it stays visible on big tracks
VIEW_MARGIN = 0.3  # m of floor round the track's borders


class TopDownView:
    """The painted floor of a track scaled into a `size` (width, height) image, +y up."""

    def __init__(self, track: Track, size: tuple[int, int], boxes: Sequence[Box] = ()):
        tex = texture_for(track)
        xmin, ymin, xmax, ymax = track.bounds
        c0 = max(0, int((xmin - VIEW_MARGIN - tex.x0) / TEXTURE_RES))
        r0 = max(0, int((ymin - VIEW_MARGIN - tex.y0) / TEXTURE_RES))
        c1 = min(tex.w, int(math.ceil((xmax + VIEW_MARGIN - tex.x0) / TEXTURE_RES)))
        r1 = min(tex.h, int(math.ceil((ymax + VIEW_MARGIN - tex.y0) / TEXTURE_RES)))
        crop = np.flipud(tex.rgb[r0:r1, c0:c1])
        w, h = size
        self.scale = min(w / crop.shape[1], h / crop.shape[0])  # output px per texture px
        fitted = Image.fromarray(crop).resize((max(1, round(crop.shape[1] * self.scale)),
                                               max(1, round(crop.shape[0] * self.scale))), Image.BILINEAR)
        self.background = Image.new("RGB", (w, h), tuple(int(v) for v in tex.rgb[0, 0]))
        self.left, self.top = (w - fitted.width) // 2, (h - fitted.height) // 2
        self.background.paste(fitted, (self.left, self.top))
        self.x0, self.y1 = tex.x0 + c0 * TEXTURE_RES, tex.y0 + r1 * TEXTURE_RES
        self.px_per_m = self.scale / TEXTURE_RES
        draw = ImageDraw.Draw(self.background)
        for box in boxes:  # obstacles stand still: drawn into the background once
            draw.polygon([self.to_pixels(x, y) for x, y in box.footprint()], fill=box.color)

    def to_pixels(self, x: float, y: float) -> tuple[float, float]:
        """Image (column, row) of a world point."""
        return (self.left + (x - self.x0) * self.px_per_m, self.top + (self.y1 - y) * self.px_per_m)

    def frame(self, x: float, y: float, yaw_deg: float, car: CarSpec | None = None) -> np.ndarray:
        """The view with the car whose front point (the trace's X, Y) is at (x, y)."""
        car = car or CarSpec()
        img = self.background.copy()
        yaw = math.radians(yaw_deg)
        c, s = math.cos(yaw), math.sin(yaw)
        grow = max(1.0, MIN_CAR_PX / (car.length * self.px_per_m))
        half_l, half_w = grow * car.length / 2, grow * car.width / 2
        cx, cy = x - car.front_point * c, y - car.front_point * s  # the car's centre

        def corner(along: float, side: float) -> tuple[float, float]:
            return self.to_pixels(cx + along * c - side * s, cy + along * s + side * c)

        draw = ImageDraw.Draw(img)
        draw.polygon([corner(half_l, half_w), corner(-half_l, half_w), corner(-half_l, -half_w),
                      corner(half_l, -half_w)], fill=CAR_COLOR)
        draw.polygon([corner(half_l, half_w * 0.6), corner(half_l * 0.5, 0.0), corner(half_l, -half_w * 0.6)],
                     fill=NOSE_COLOR)
        return np.asarray(img)


def top_down_frames(track: Track, rows: Sequence[dict], size: tuple[int, int] = (320, 240),
                    boxes: Sequence[Box] = ()) -> list[np.ndarray]:
    """One RGB uint8 frame (height, width, 3) per trace row, drawn from above, with the obstacle boxes."""
    view = TopDownView(track, size, boxes)
    return [view.frame(r["X"], r["Y"], r["yaw"]) for r in rows]


def camera_frames(env: gym.Env, policy: Policy, seed: int = 0,
                  options: dict | None = None) -> tuple[list[np.ndarray], list[LapResult]]:
    """The car camera's RGB view at every step of one evaluation episode, and its laps."""
    if env.render_mode != "rgb_array":
        raise ValueError(f"camera_frames: the env's render_mode is {env.render_mode!r}; make it with "
                         f"render_mode=\"rgb_array\"")
    frames: list[np.ndarray] = []

    def recording(obs, env_):
        frames.append(env_.render())
        return policy(obs, env_)

    laps = run_laps(env, recording, seed=seed, options=options)
    return frames, laps


def save_gif(frames: Sequence[np.ndarray], path: str | Path, fps: float = 15, max_frames: int = 300,
             scale: int | None = None) -> Path:
    """An animated GIF playing in real time: every k-th frame so at most `max_frames` remain.

    `scale` enlarges frames (nearest neighbour); None doubles frames at most 160 px wide.
    """
    if len(frames) == 0:
        raise ValueError(f"save_gif {path}: no frames to save")
    step = math.ceil(len(frames) / max_frames)
    kept = frames[::step]
    first = np.asarray(kept[0])
    if scale is None:
        scale = 2 if first.shape[1] <= 160 else 1
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in kept]
    if scale != 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in images]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 * step / fps), loop=0)
    return path
