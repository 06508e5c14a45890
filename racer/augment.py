"""Camera augmentation for training: random brightness, contrast and pixel noise per episode.

It costs no training steps and keeps a model steady under lighting changes, so it is on by
default.  Only camera observations are touched; LIDAR passes through.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from sim.observation import CAMERA_SENSORS


class CameraAugment(gym.ObservationWrapper):
    """Per episode: gain in [1-b, 1+b], contrast in [1-c, 1+c]; per frame: Gaussian noise."""

    def __init__(self, env: gym.Env, brightness: float = 0.3, contrast: float = 0.3, noise: float = 6.0):
        super().__init__(env)
        self.brightness, self.contrast, self.noise = brightness, contrast, noise
        self._gain, self._contrast = 1.0, 1.0
        self._noise_bank: dict[str, np.ndarray] = {}  # pre-drawn noise frames: drawing per step costs more than the env

    def reset(self, **kwargs):
        rng = self.np_random
        self._gain = 1.0 + rng.uniform(-self.brightness, self.brightness)
        self._contrast = 1.0 + rng.uniform(-self.contrast, self.contrast)
        return super().reset(**kwargs)

    def observation(self, obs: dict) -> dict:
        out = dict(obs)
        for name in CAMERA_SENSORS:
            if name in obs:
                img = obs[name].astype(np.float32)
                img = (img - 128.0) * self._contrast + 128.0
                img *= self._gain
                img += self._noise(name, img.shape)
                out[name] = np.clip(img, 0, 255).astype(np.uint8)
        return out

    def _noise(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in self._noise_bank:
            self._noise_bank[name] = self.np_random.normal(0.0, self.noise, size=(8, *shape)).astype(np.float32)
        bank = self._noise_bank[name]
        frame = bank[self.np_random.integers(len(bank))]
        return np.roll(frame, self.np_random.integers(shape[1]), axis=1)
