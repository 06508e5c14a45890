"""`racer train --imitate-expert N`: a warm start that learns from the scripted expert before PPO.

DAgger (Ross et al., 2011): the scripted expert (sim.expert, pure pursuit round the boxes and cars
from ground truth) labels every state with the action it would take; the policy learns to give
that action from its own sensors.  Round by round the expert's share of the driving falls, so the
later rounds are driven by the policy itself and it learns to recover from its own mistakes.  The
value head learns the discounted return of the user's reward over the same steps, so PPO's first
updates start from sensible advantages rather than from a random critic.  PPO then trains on the
user's reward from there; the run's evaluations keep whichever checkpoint drives best.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from stable_baselines3 import PPO
from torch.nn import functional as F

from sim.actions import ActionSpace
from sim.expert import PurePursuit, expert_command, normalised_action

EXPERT_SHARE = (1.0, 0.5, 0.0, 0.0)  # of the driving, per round: the expert first, the policy last
EPOCHS = 5  # after each round: this many times its samples, drawn from everything gathered so far
BATCH = 64
VALUE_WEIGHT = 0.1  # of the value loss (in units of the returns' variance) beside the imitation loss
MAX_GRAD_NORM = 0.5


@dataclass(frozen=True)
class ImitationReport:
    """What the warm start did: env steps, the policy's agreement with the expert in the last round."""

    steps: int
    agreement: float  # share of the last round's steps where the policy chose the expert's action
    loss: float  # imitation loss (negative log-likelihood of the expert's actions) after the last round
    label_entropy: float | None  # of the expert's discrete actions' frequencies: a sensor-blind policy's best loss


def nearest_action(space: ActionSpace, steer_deg: float, speed: float) -> int | np.ndarray:
    """The policy output closest to a command: the discrete action nearest in (steering / its range,
    speed / its range), or the continuous space's [-1, 1]^2 value."""
    if space.kind != "discrete":
        return normalised_action(steer_deg, speed, space.steer_range, space.speed_range)
    table = np.asarray(space.actions, dtype=np.float64)
    steer_span = max(np.ptp(table[:, 0]), 1e-9)
    speed_span = max(np.ptp(table[:, 1]), 1e-9)
    cost = ((table[:, 0] - steer_deg) / steer_span) ** 2 + ((table[:, 1] - speed) / speed_span) ** 2
    return int(np.argmin(cost))


def expert_actions(envs: list, expert: PurePursuit) -> np.ndarray:
    """The expert's action for each (unwrapped) DeepRacerEnv's car where it stands now."""
    out = []
    for env in envs:
        steer, speed = expert_command(expert, env.driving, env.state, env.params)
        out.append(nearest_action(env.actions, steer, speed))
    return np.asarray(out)


def label_entropy(actions: np.ndarray) -> float | None:
    """Entropy (nats) of how often each discrete action was the expert's: the imitation loss a policy that
    ignored its sensors could reach at best; None for a continuous space."""
    if actions.ndim != 1:
        return None
    p = np.bincount(actions) / len(actions)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def discounted_returns(rewards: np.ndarray, dones: np.ndarray, last_values: np.ndarray,
                       gamma: float) -> np.ndarray:
    """Returns G_t = r_t + gamma * G_{t+1} per env column (steps x envs), cut at episode ends and
    bootstrapped with `last_values` after the last step of an episode still running."""
    returns = np.zeros_like(rewards, dtype=np.float32)
    following = last_values.astype(np.float32)
    for t in range(len(rewards) - 1, -1, -1):
        following = rewards[t] + gamma * following * (1.0 - dones[t])
        returns[t] = following
    return returns


def _agreeing(chosen: np.ndarray, wanted: np.ndarray) -> int:
    """How many envs' policy actions match the expert's (continuous: within 0.1 on both axes)."""
    if wanted.ndim == 1:
        return int(np.sum(chosen == wanted))
    return int(np.sum(np.all(np.abs(chosen - wanted) < 0.1, axis=1)))


class _Dataset:
    """Observations (as the policy sees them), expert actions and returns, preallocated; rows [0, size) filled."""

    def __init__(self, space, capacity: int, action_shape: tuple, action_dtype) -> None:
        self.obs = {k: np.zeros((capacity, *s.shape), dtype=s.dtype) for k, s in space.spaces.items()}
        self.actions = np.zeros((capacity, *action_shape), dtype=action_dtype)
        self.returns = np.zeros(capacity, dtype=np.float32)
        self.size = 0

    def batch(self, idx: np.ndarray) -> tuple[dict, torch.Tensor, torch.Tensor]:
        obs = {k: torch.as_tensor(v[idx]) for k, v in self.obs.items()}
        return obs, torch.as_tensor(self.actions[idx]), torch.as_tensor(self.returns[idx])


def imitate(model: PPO, steps: int, threads: int = 1, seed: int = 0,
            log: Callable[[str], None] = lambda text: None) -> ImitationReport:
    """DAgger for `steps` env steps over the model's own (vectorised) training envs, then leave the
    envs for PPO.  `threads`: torch threads while learning (acting uses one)."""
    vec = model.get_env()
    envs = vec.get_attr("unwrapped")
    n = vec.num_envs
    space: ActionSpace = envs[0].actions
    top_speed = max(v for _, v in space.actions) if space.kind == "discrete" else space.speed_range[1]
    expert = PurePursuit(max_speed=top_speed)
    per_round = max(1, steps // (len(EXPERT_SHARE) * n))
    action_shape = () if space.kind == "discrete" else (2,)
    data = _Dataset(model.observation_space, per_round * n * len(EXPERT_SHARE), action_shape,
                    np.int64 if space.kind == "discrete" else np.float32)
    rng = np.random.default_rng(seed)
    policy = model.policy
    obs = vec.reset()
    agreement, loss = 0.0, float("nan")
    blind = None
    for share in EXPERT_SHARE:
        torch.set_num_threads(1)
        base = data.size  # this round's rows: step t of env i is row base + t * n + i
        rewards = np.zeros((per_round, n), dtype=np.float32)
        dones = np.zeros((per_round, n), dtype=np.float32)
        agree = 0
        for t in range(per_round):
            rows = slice(base + t * n, base + (t + 1) * n)
            wanted = expert_actions(envs, expert)
            chosen, _ = policy.predict(obs, deterministic=True)
            agree += _agreeing(chosen, wanted)
            drive = np.where(np.reshape(rng.random(n) < share, (n,) + (1,) * len(action_shape)), wanted, chosen)
            for k, v in obs.items():
                data.obs[k][rows] = v
            data.actions[rows] = wanted
            obs, rewards[t], done, _ = vec.step(drive)
            dones[t] = done
        with torch.no_grad():
            last_values = policy.predict_values(policy.obs_to_tensor(obs)[0]).numpy().reshape(n)
        returns = discounted_returns(rewards, dones, last_values, model.gamma)
        data.returns[base:base + per_round * n] = returns.reshape(-1)
        data.size += per_round * n
        agreement = agree / (per_round * n)
        torch.set_num_threads(threads)
        loss = _fit(policy, data, per_round * n, rng)
        blind = label_entropy(data.actions[:data.size])
        log(f"imitation: expert drove {100 * share:.0f}%, {data.size} steps so far, policy agreed with the "
            f"expert on {100 * agreement:.0f}%, imitation loss {loss:.3f}"
            + (f" (sensor-blind best {blind:.3f})" if blind is not None else ""))
    torch.set_num_threads(1)
    return ImitationReport(data.size, agreement, loss, blind)


def _fit(policy, data: _Dataset, new: int, rng: np.random.Generator) -> float:
    """Minibatch Adam on -log p(expert action) + VALUE_WEIGHT * value MSE / Var(returns) over everything so far,
    EPOCHS times as many samples as the `new` ones (so each round costs the same); the mean imitation loss."""
    policy.set_training_mode(True)
    losses = []
    spread = float(np.var(data.returns[:data.size])) + 1e-6  # the critic's loss in these units cannot swamp the CNN
    for _ in range(max(1, EPOCHS * new // BATCH)):
        obs, actions, returns = data.batch(rng.integers(0, data.size, BATCH))
        values, log_prob, _ = policy.evaluate_actions(obs, actions)
        imitation = -log_prob.mean()
        loss = imitation + VALUE_WEIGHT * F.mse_loss(values.flatten(), returns) / spread
        policy.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), MAX_GRAD_NORM)
        policy.optimizer.step()
        losses.append(imitation.item())
    policy.set_training_mode(False)
    return float(np.mean(losses[-max(1, len(losses) // EPOCHS):]))
