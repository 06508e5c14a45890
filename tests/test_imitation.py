"""The expert warm start (racer.imitation): labels, returns, and a policy that learns the expert."""
from __future__ import annotations

import numpy as np
import pytest

from racer.imitation import discounted_returns, label_entropy, nearest_action
from sim.actions import default_action_space, parse_action_space


def test_a_command_maps_to_the_nearest_discrete_action():
    space = default_action_space()  # steering -30..30 by 15, speeds 0.5 and 1.0
    assert space.actions[nearest_action(space, 14.0, 0.9)] == (15.0, 1.0)
    assert space.actions[nearest_action(space, -29.0, 0.55)] == (-30.0, 0.5)
    assert space.actions[nearest_action(space, 4.0, 0.74)] == (0.0, 0.5)  # ranges scaled: 0.24 of 0.5 m/s
    assert space.actions[nearest_action(space, 0.0, 1.6)] == (0.0, 1.0)  # beyond the table: its edge


def test_a_command_maps_onto_a_continuous_space_and_back():
    space = parse_action_space({"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 1.5}})
    a = nearest_action(space, 15.0, 1.25)
    assert a == pytest.approx([0.5, 0.5])
    assert space.command(a) == pytest.approx((15.0, 1.25))


def test_returns_are_discounted_cut_at_episode_ends_and_bootstrapped():
    rewards = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 1.0]], dtype=np.float32)
    dones = np.array([[0, 0], [1, 0], [0, 0]], dtype=np.float32)
    out = discounted_returns(rewards, dones, last_values=np.array([10.0, 4.0]), gamma=0.5)
    # env 0: the episode ends at t=1 (G1 = 2, G0 = 1 + 0.5 * 2); t=2 starts a new one, bootstrapped by 10
    # env 1: one episode throughout, bootstrapped by 4: G2 = 1 + 2, G1 = 1 + 1.5, G0 = 0 + 1.25
    assert out[:, 0].tolist() == [2.0, 2.0, 8.0]
    assert out[:, 1].tolist() == [1.25, 2.5, 3.0]


def test_label_entropy_is_that_of_the_action_frequencies():
    assert label_entropy(np.array([3, 3, 3, 3])) == 0.0
    assert label_entropy(np.array([0, 1, 0, 1])) == pytest.approx(np.log(2))
    assert label_entropy(np.zeros((4, 2), dtype=np.float32)) is None


def test_the_policy_learns_from_its_camera_what_the_expert_does(tmp_path):
    """After a short warm start the policy predicts the expert's actions better than any policy blind to
    its sensors could (its loss below the entropy of the expert's action frequencies), and it then
    laps the oval cleanly and faster than the untrained policy did."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    import sim
    from racer.garage import metadata_to_dict, parse_metadata
    from racer.imitation import imitate
    from racer.runs import TrainConfig
    from racer.train import make_model
    from sim.laps import run_laps

    car = metadata_to_dict(parse_metadata({"sensor": ["FRONT_FACING_CAMERA"], "neural_network": "RACER_POOLED_SHALLOW"},
                                          where="test"))
    cfg = TrainConfig(reward="unused", metadata=car, track="oval", seed=0)
    camera = ["FRONT_FACING_CAMERA"]
    vec = DummyVecEnv([lambda k=k: gym.make(sim.ENV_ID, track="oval", sensors=camera, start_offset=k / 2)
                       for k in range(2)])
    model = make_model(cfg, vec, None)
    env = gym.make(sim.ENV_ID, track="oval", sensors=camera, mode="evaluation", laps=1)

    def lap():
        def policy(obs, _env):
            return model.policy.predict(obs, deterministic=True)[0]
        return run_laps(env, policy, seed=0, options={"start": 0.0})[0]

    before = lap()
    report = imitate(model, steps=2000, seed=0)
    after = lap()
    vec.close()
    env.close()
    assert report.steps == 2000
    assert report.label_entropy > 0.3  # the expert does more than one thing round the oval
    assert report.loss < report.label_entropy - 0.2
    assert after.clean and after.time_s < 0.7 * before.time_s


def test_a_run_with_a_warm_start_imitates_once_then_evaluates_it_before_ppo(tmp_path):
    from racer.garage import metadata_to_dict, parse_metadata
    from racer.reward import example_rewards
    from racer.runs import TrainConfig
    from racer.train import train

    car = metadata_to_dict(parse_metadata({"sensor": ["LIDAR"]}, where="test"))
    cfg = TrainConfig(reward=str(example_rewards()["center_and_progress"]), metadata=car, track="oval", steps=256,
                      minutes=None, envs=2, eval_every=10_000, eval_starts=1, eval_laps=1, checkpoint_every=256,
                      imitate_steps=256, hyper={"n_steps": 128, "batch_size": 64, "n_epochs": 1})
    run, state, _ = train(tmp_path / "run", cfg)
    log = (run.path / "log.txt").read_text()
    assert log.count("imitation: expert drove") == 4  # one line a round
    first_eval = log.index("eval at")
    assert first_eval > log.index("imitation: expert drove 0%")  # the imitated policy is evaluated at once
    assert state.wall_seconds > 0
    train(run.path, more_steps=128)  # resuming trains on with PPO, without imitating again
    assert (run.path / "log.txt").read_text().count("imitation: expert drove") == 4
