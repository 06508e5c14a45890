"""Policy networks matching DeepRacer's `neural_network` choices, as SB3 feature extractors.

The camera branch takes the contract's image (SB3 hands it over channel-first and scaled to
[0, 1]); LIDAR inputs get two fully connected layers of 256 and are concatenated.
"""
from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sim.observation import CAMERA_SENSORS

# (out_channels, kernel, stride) per conv layer
CONV_STACKS = {
    "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW": [(32, 8, 4), (64, 4, 2), (64, 3, 1)],
    "DEEP_CONVOLUTIONAL_NETWORK": [(32, 5, 2), (32, 3, 1), (64, 3, 2), (64, 3, 1), (128, 3, 2)],
    "DEEP_CONVOLUTIONAL_NETWORK_DEEP": [(32, 5, 2), (32, 3, 1), (64, 3, 2), (64, 3, 1), (128, 3, 2),
                                        (128, 3, 1), (256, 3, 2)],
    "RACER_POOLED_SHALLOW": [(32, 8, 4), (64, 4, 2), (64, 3, 1)],
}
POOLED = {"RACER_POOLED_SHALLOW": 2}  # average-pool the image by this factor inside the network
CAMERA_FEATURES = 512
LIDAR_FEATURES = 256


def camera_branch(network: str, channels: int, height: int, width: int) -> tuple[nn.Module, int]:
    """The conv stack + FC for one `neural_network` name; returns (module, output size)."""
    if network not in CONV_STACKS:
        raise ValueError(f"neural_network: {network!r} is not one of {', '.join(CONV_STACKS)}")
    layers: list[nn.Module] = []
    if network in POOLED:
        layers.append(nn.AvgPool2d(POOLED[network]))
    c = channels
    for out, k, s in CONV_STACKS[network]:
        layers += [nn.Conv2d(c, out, k, s), nn.ReLU()]
        c = out
    layers.append(nn.Flatten())
    conv = nn.Sequential(*layers)
    with torch.no_grad():
        n = conv(torch.zeros(1, channels, height, width)).shape[1]
    return nn.Sequential(conv, nn.Linear(n, CAMERA_FEATURES), nn.ReLU()), CAMERA_FEATURES


class DeepRacerExtractor(BaseFeaturesExtractor):
    """Camera CNN and/or LIDAR MLP over a Dict observation keyed by sensor name."""

    def __init__(self, observation_space: gym.spaces.Dict, neural_network: str = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"):
        branches, size = {}, 0
        for name, space in observation_space.spaces.items():
            if name in CAMERA_SENSORS:
                c, h, w = space.shape  # SB3 transposes images to channel-first
                branches[name], n = camera_branch(neural_network, c, h, w)
            else:
                branches[name] = nn.Sequential(nn.Flatten(), nn.Linear(int(space.shape[0]), LIDAR_FEATURES), nn.ReLU(),
                                               nn.Linear(LIDAR_FEATURES, LIDAR_FEATURES), nn.ReLU())
                n = LIDAR_FEATURES
            size += n
        super().__init__(observation_space, features_dim=size)
        self.branches = nn.ModuleDict(branches)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([branch(observations[name]) for name, branch in self.branches.items()], dim=1)
