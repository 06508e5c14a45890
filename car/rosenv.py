"""The environment every process that starts rclpy must have: traffic stays on this machine."""
from __future__ import annotations

import os
import random
import socket
from pathlib import Path


def safe_ros_env(base: dict | None = None, domain_id: int | None = None, log_dir: str | Path | None = None) -> dict:
    """A copy of `base` (default os.environ) with localhost-only discovery, a domain id
    (random in 1..101 unless given or already set) and ROS logs under `log_dir`."""
    env = dict(os.environ if base is None else base)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    else:
        env.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        env["ROS_LOG_DIR"] = str(log_dir)
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    return env


def apply_safe_ros_env(domain_id: int | None = None, log_dir: str | Path | None = None) -> None:
    """Set the safe environment in this process, before rclpy.init()."""
    os.environ.update(safe_ros_env(domain_id=domain_id, log_dir=log_dir))


def only_loopback() -> bool:
    """This process's network namespace has no interface but loopback, so no DDS packet can
    leave the machine (socket.if_nameindex asks the kernel about the CURRENT namespace)."""
    try:
        return [name for _, name in socket.if_nameindex()] == ["lo"]
    except OSError:
        return False
