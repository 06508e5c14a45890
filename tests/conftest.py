"""Shared fixtures: small hand-made tracks with easy geometry, and an env factory that closes."""
from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest

import sim  # noqa: F401  (registers racer/DeepRacer-v0)
from sim.track import Track, from_centerline

STRAIGHT = 10.0  # m: length of each straight of the stadium
RADIUS = 2.0  # m: radius of its two half circles
STRAIGHT_ACTION = [{"steering_angle": 0.0, "speed": 1.0}]
CIRCLE_STEER_DEG = 10.0  # the steady steering that drives the `circle` track


def stadium_centerline() -> np.ndarray:
    """CCW stadium: waypoint 0 at (5, 0) on the bottom straight (driving +x, left = +y),
    half circles round (10, 2) and (0, 2), top straight y = 4 driven -x; (5, 4) is half way."""
    pts = [(x, 0.0) for x in np.arange(5.0, 10.0, 0.25)]
    pts += [(10 + RADIUS * math.cos(a), 2 + RADIUS * math.sin(a))
            for a in np.radians(np.arange(-90.0, 90.0, 5.0))]
    pts += [(x, 4.0) for x in np.arange(10.0, 0.0, -0.25)]
    pts += [(RADIUS * math.cos(a), 2 + RADIUS * math.sin(a)) for a in np.radians(np.arange(90.0, 270.0, 5.0))]
    pts += [(x, 0.0) for x in np.arange(0.0, 5.0, 0.25)]
    return np.array(pts)


def circle_radius(steer_deg: float = CIRCLE_STEER_DEG, wheelbase: float = 0.164) -> float:
    """Radius of the circle the car origin drives at a constant steering (kinematic bicycle,
    origin midway between the axles): R = wheelbase / (cos(beta) tan(delta))."""
    delta = math.radians(steer_deg)
    beta = math.atan(0.5 * math.tan(delta))
    return wheelbase / (math.cos(beta) * math.tan(delta))


@pytest.fixture(scope="session")
def stadium() -> Track:
    """10 m straights, 2 m radius ends, 1.0 m wide, counter-clockwise."""
    return from_centerline(stadium_centerline(), 1.0, name="stadium")


@pytest.fixture(scope="session")
def circle() -> Track:
    """A 1.0 m wide CCW circle the car drives at CIRCLE_STEER_DEG steering (one lap ~ 6 m)."""
    a = np.linspace(0, 2 * np.pi, 240, endpoint=False)
    r = circle_radius()
    return from_centerline(np.stack([r * np.cos(a), r * np.sin(a)], axis=1), 1.0, name="circle")


@pytest.fixture
def make_env():
    """`make_env(track, **kwargs)` -> the unwrapped DeepRacerEnv; every env is closed afterwards."""
    envs = []

    def make(track, **kwargs):
        kwargs.setdefault("sensors", ["LIDAR"])
        env = gymnasium.make("racer/DeepRacer-v0", track=track, **kwargs)
        envs.append(env)
        return env.unwrapped

    yield make
    for env in envs:
        env.close()


@pytest.fixture(scope="module")
def real_params() -> dict:
    """The params of a real state on reinvent-like (steps 7)."""
    env = gymnasium.make("racer/DeepRacer-v0", track="reinvent-like", sensors=["LIDAR"])
    _, info = env.reset(seed=0)
    env.close()
    return {**info["params"], "steps": 7.0}


@pytest.fixture
def params(real_params) -> dict:
    return dict(real_params)
