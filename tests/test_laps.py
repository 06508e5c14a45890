"""Evaluation runners (sim.laps): every start of a multi-start evaluation races its own layout."""
from __future__ import annotations

import gymnasium as gym
import pytest

import sim
from sim.laps import run_laps_batch, start_options


class _Stop(Exception):
    """Raised by the policy: the layouts are drawn at the resets, before the first action."""


def _stop(obs_list: list) -> list:
    raise _Stop


def test_each_start_gets_a_fresh_randomised_layout_and_a_rerun_the_same_ones():
    config = {"NUMBER_OF_OBSTACLES": 4, "RANDOMIZE_OBSTACLE_LOCATIONS": True}

    def layouts(seed: int) -> list:
        envs = [gym.make(sim.ENV_ID, track="oval", sensors=["LIDAR"], mode="evaluation", laps=1,
                         race="object-avoidance", race_config=config) for _ in range(3)]
        try:
            with pytest.raises(_Stop):
                run_laps_batch(envs, _stop, start_options(3), seed=seed)
            return [tuple((b.box.x, b.box.y) for b in env.unwrapped.world.objects) for env in envs]
        finally:
            for env in envs:
                env.close()

    first = layouts(0)
    assert len(set(first)) == 3  # three starts, three layouts
    assert layouts(0) == first  # reproducible from the seed
    assert layouts(1) != first
