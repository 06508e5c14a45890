"""The simulated LIDAR: horizontal rays at the contract's beam angles, cast exactly in the scan plane
against the footprints of the world's upright boxes (`World.cast_rays`, `kernels.cast_rays`; no PyBullet)."""
from __future__ import annotations

import math

import numpy as np

from sim.observation import LidarConfig
from sim.world import World

LIDAR_MOUNT = (0.0, 0.0, 0.08)  # m: above the car origin, below a car roof so cars see cars


class Lidar:
    """A car's scanner: casts every 1/rate_hz simulated seconds and holds the latest scan."""

    def __init__(self, world: World, car: int, cfg: LidarConfig, rng: np.random.Generator,
                 reach: float | None = None):
        """`reach`: how far rays are cast; farther hits read `range_max` (the observation
        clips them anyway).  None casts the sensor's full range, as a raw scan needs."""
        self.world, self.car, self.cfg, self.rng = world, car, cfg, rng
        self.reach = cfg.range_max if reach is None else min(reach, cfg.range_max)
        self._angles = cfg.beam_angles()
        self._next_scan = 0.0
        self.beams = np.full(cfg.beams, cfg.range_max, dtype=np.float32)

    def reset(self, sim_time: float) -> None:
        self._next_scan = sim_time

    def update(self, sim_time: float, x: float, y: float, yaw: float) -> np.ndarray:
        """Scan if a new scan is due at `sim_time`; return the latest beam distances (m)."""
        if sim_time + 1e-9 >= self._next_scan:
            self.beams = self.scan(x, y, yaw)
            self._next_scan = sim_time + 1.0 / self.cfg.rate_hz
        return self.beams

    def scan(self, x: float, y: float, yaw: float) -> np.ndarray:
        """One scan from the car pose: distances in beam order, noisy, within the sensor range."""
        cfg = self.cfg
        c, s = math.cos(yaw), math.sin(yaw)
        mx, my, mz = LIDAR_MOUNT
        origin = (x + c * mx - s * my, y + s * mx + c * my, mz)
        d = self.world.cast_rays(self.car, origin, self._angles + yaw, self.reach, cfg.range_max)
        if cfg.noise_std > 0:
            d = d + self.rng.normal(0.0, cfg.noise_std, size=d.shape).astype(np.float32)
        return np.minimum(np.maximum(d, cfg.range_min), cfg.range_max)
