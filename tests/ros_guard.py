"""For test files that start ROS 2 nodes: they run only in a private network namespace with
nothing but loopback, so no DDS packet can leave the machine (the README's test command makes one)."""
from __future__ import annotations

from pathlib import Path

import pytest

from car.rosenv import only_loopback


def require_private_network(test_file: str) -> None:
    """Skip the calling test module unless this process sees only loopback and rclpy is installed."""
    name = Path(test_file).name
    if not only_loopback():
        pytest.skip("starts ROS 2 nodes: run inside a private network namespace with only loopback "
                    f"(unshare -rn sh -c 'ip link set lo up && python -m pytest tests/{name}')",
                    allow_module_level=True)
    pytest.importorskip("rclpy", reason="rclpy (the car extra) is not installed")
