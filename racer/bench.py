"""Benchmarks: simulator and training throughput, policy latency (figures, not tests); the car
graph's latency is car.bench."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

import sim
from racer.reward import example_rewards
from sim.car import CONTROL_DT
from sim.params import default_reward

SENSOR_CONFIGS = {
    "LIDAR only": ["LIDAR"],
    "mono camera": ["FRONT_FACING_CAMERA"],
    "stereo": ["STEREO_CAMERAS"],
    "stereo + LIDAR": ["STEREO_CAMERAS", "LIDAR"],
}

# the race rows (each with the time trial's "LIDAR only" and "stereo + LIDAR" sensors): name -> race, race_config
RACE_CONFIGS = {
    "object avoidance, 6 boxes": ("object-avoidance", {"NUMBER_OF_OBSTACLES": 6, "RANDOMIZE_OBSTACLE_LOCATIONS": True}),
    "head-to-bot, 3 bots": ("head-to-bot", {"NUMBER_OF_BOT_CARS": 3, "BOT_CAR_SPEED": 0.5, "IS_LANE_CHANGE": True}),
}
RACE_SENSORS = ("LIDAR only", "stereo + LIDAR")


@dataclass(frozen=True)
class EnvBench:
    steps: int
    seconds: float
    episodes: int

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds

    @property
    def real_time_factor(self) -> float:
        """Simulated seconds per wall second."""
        return self.steps_per_s * CONTROL_DT


def pin_one_core() -> None:
    """Run this process on a single core, as the targets are stated."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def bench_env(sensors: list[str], steps: int = 5000, track: str = "reinvent-like", seed: int = 0,
              race: str = "time-trial", race_config: dict | None = None) -> EnvBench:
    """Time `steps` env steps (random actions, resets included) with params and reward every step."""
    pin_one_core()
    env = gym.make(sim.ENV_ID, track=track, sensors=sensors, reward_fn=default_reward, race=race,
                   race_config=race_config).unwrapped
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, env.action_space.n, size=steps)
    env.reset(seed=seed)
    episodes = 1
    t0 = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
            episodes += 1
    seconds = time.perf_counter() - t0
    env.close()
    return EnvBench(steps, seconds, episodes)


TRAIN_CONFIGS = {
    "camera (pooled CNN)": (["FRONT_FACING_CAMERA"], "RACER_POOLED_SHALLOW"),
    "camera (shallow CNN)": (["FRONT_FACING_CAMERA"], "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"),
    "stereo + LIDAR (pooled)": (["STEREO_CAMERAS", "LIDAR"], "RACER_POOLED_SHALLOW"),
    "LIDAR only": (["LIDAR"], "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"),
}


def scratch_config(sensors: list[str], network: str, steps: int, track: str = "reinvent-like"):
    """A `racer train` config for benchmarks: the bundled reward, no evaluations."""
    from racer.garage import metadata_to_dict, parse_metadata
    from racer.runs import TrainConfig

    reward = example_rewards()["center_and_progress"]
    metadata = metadata_to_dict(parse_metadata({"sensor": sensors, "neural_network": network}, where="bench"))
    return TrainConfig(reward=str(reward), metadata=metadata, track=track, steps=steps, minutes=None,
                       eval_every=10**9, checkpoint_every=steps)


def bench_train(sensors: list[str], network: str, steps: int = 4096, track: str = "reinvent-like") -> EnvBench:
    """Training throughput (env steps/s, learning included) of `racer train` in a scratch run."""
    import tempfile

    from racer.train import train

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        _, state, _ = train(Path(tmp) / "run", scratch_config(sensors, network, steps, track))
        seconds = time.perf_counter() - t0
    return EnvBench(state.steps, seconds, 0)


_STEREO_LIDAR = ["STEREO_CAMERAS", "LIDAR"]
REFERENCE_POLICIES = {  # the car's latency targets are stated for the first
    "stereo + LIDAR, shallow CNN, FP32": (_STEREO_LIDAR, "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", "FP32"),
    "stereo + LIDAR, shallow CNN, INT8W": (_STEREO_LIDAR, "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", "INT8W"),
    "stereo + LIDAR, pooled CNN, FP32": (_STEREO_LIDAR, "RACER_POOLED_SHALLOW", "FP32"),
}


def reference_bundle(sensors: list[str], network: str, precision: str, out_dir) -> Path:
    """Train `network` for one short rollout (once per network under `out_dir`) and export it at
    `precision`: a real bundle of the right shape for timing (latency does not depend on how well
    the weights drive)."""
    from racer.export import export_run
    from racer.runs import Run
    from racer.train import train

    run_dir = Path(out_dir) / f"run-{'-'.join(sensors)}-{network}"
    run = Run(run_dir) if run_dir.is_dir() else train(run_dir, scratch_config(sensors, network, 1024, "oval"))[0]
    return export_run(run.path, Path(out_dir) / f"bundle-{run_dir.name[4:]}-{precision}", precision=precision,
                      samples=32)


def bench_policy_latency(bundle_dir, n: int = 2000, seed: int = 0) -> dict:
    """p50/p99 latency (ms) of one `BundlePolicy.outputs(obs)` call on one core, random raw observations."""
    from racer.bundle.runtime import BundlePolicy

    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    pin_one_core()  # before loading, so OpenVINO's threads start on that core too
    try:
        return _time_outputs(BundlePolicy.load(bundle_dir), n, seed)
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)


def _time_outputs(policy, n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    obs_pool = []
    for _ in range(16):
        obs = {}
        for name, shape in policy.bundle["inputs"].items():
            dims = [d for d in shape[1:]]
            obs[name] = (rng.integers(0, 256, size=dims, dtype=np.uint8) if len(dims) == 3
                         else rng.uniform(0.15, 1.0, size=dims).astype(np.float32))
        obs_pool.append(obs)
    for i in range(50):  # warm up
        policy.outputs(obs_pool[i % 16])
    times = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        policy.outputs(obs_pool[i % 16])
        times[i] = time.perf_counter() - t0
    return {"p50_ms": float(np.percentile(times, 50) * 1e3), "p99_ms": float(np.percentile(times, 99) * 1e3),
            "n": n}
