"""Helpers the car's nodes share: message <-> numpy, typed parameters, and `run_node` (main)."""
from __future__ import annotations

import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from car.rosenv import apply_safe_ros_env


class StartupError(RuntimeError):
    """A node that refuses to start (missing model, bad calibration, ...); the message says why."""


# ---- logging ------------------------------------------------------------------------------------
LOG_PERIOD = 2.0  # s between two messages of one kind that could otherwise repeat every frame


class ThrottledLog:
    """A node's log for messages that may repeat every frame (a failing sensor, a bad action):
    each `key` is written at most once per `period` seconds, so the log is never flooded."""

    def __init__(self, logger, period: float = LOG_PERIOD) -> None:
        self.logger, self.period = logger, period
        self._last: dict[str, float] = {}

    def _due(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -math.inf) < self.period:
            return False
        self._last[key] = now
        return True

    def warning(self, key: str, text: str) -> None:
        """Log `text` at WARNING unless `key` was logged less than `period` s ago."""
        if self._due(key):
            self.logger.warning(text)

    def error(self, key: str, text: str) -> None:
        """Log `text` at ERROR unless `key` was logged less than `period` s ago."""
        if self._due(key):
            self.logger.error(text)


def best_effort(node, what: str, action: Callable[[], Any]) -> None:
    """Run a shutdown step (close a driver, publish a last stop) that may fail when the hardware or
    ROS is already gone; a failure is logged as a warning (when the logger still works), not raised."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - shutdown goes on whatever failed
        try:
            node.get_logger().warning(f"{what}: {exc}")
        except Exception:  # noqa: BLE001 - ROS is down: nowhere to log
            pass


# ---- messages -----------------------------------------------------------------------------------
_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer ns."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def stamp_key(msg) -> tuple[int, int]:
    return int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)


def rgb_to_image(frame: np.ndarray, stamp, frame_id: str = "camera"):
    """An (H, W, 3) uint8 RGB frame -> sensor_msgs/Image rgb8."""
    from sensor_msgs.msg import Image
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB frame, got {frame.shape}")
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(frame.shape[0]), int(frame.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = int(frame.shape[1]) * 3
    msg.data = frame.tobytes()
    return msg


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image (rgb8; bgr8, rgba8, bgra8 and mono8 converted) -> (H, W, 3) uint8 RGB."""
    enc = msg.encoding.lower()
    if enc not in _CHANNELS:
        raise ValueError(f"image encoding {msg.encoding!r} is not supported (use rgb8)")
    c = _CHANNELS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if step < w * c or len(msg.data) < step * h:
        raise ValueError(f"image: {len(msg.data)} bytes do not hold {h} rows of step {step} ({w}x{c} pixels)")
    rows = np.frombuffer(msg.data, dtype=np.uint8, count=step * h).reshape(h, step)
    px = rows[:, :w * c].reshape(h, w, c)
    if enc == "mono8":
        return np.repeat(px, 3, axis=2)
    if enc.startswith("bgr"):
        px = px[..., 2::-1]
    return np.ascontiguousarray(px[..., :3])


def scan_to_msg(ranges, angle_min: float, angle_increment: float, stamp, frame_id: str = "laser",
                range_min: float = 0.15, range_max: float = 12.0, scan_time: float = 0.1):
    """(ranges m, angle_min, angle_increment), car frame -> sensor_msgs/LaserScan."""
    from sensor_msgs.msg import LaserScan
    r = np.asarray(ranges, dtype=np.float32).reshape(-1)
    msg = LaserScan()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.angle_min = float(angle_min)
    msg.angle_increment = float(angle_increment)
    msg.angle_max = float(angle_min + angle_increment * max(0, len(r) - 1))
    msg.time_increment = 0.0
    msg.scan_time = float(scan_time)
    msg.range_min, msg.range_max = float(range_min), float(range_max)
    msg.ranges = r.tolist()
    return msg


def scan_from_msg(msg) -> tuple[np.ndarray, float, float]:
    """sensor_msgs/LaserScan -> (ranges float32, angle_min, angle_increment)."""
    r = np.frombuffer(msg.ranges, dtype=np.float32) if hasattr(msg.ranges, "typecode") \
        else np.asarray(msg.ranges, dtype=np.float32)
    return r.copy(), float(msg.angle_min), float(msg.angle_increment)


# ---- parameters ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """A node parameter: its default gives its type (float accepts integers); `check(value)`
    returns a reason to refuse it; `dynamic`: may change while the node runs."""

    name: str
    default: Any
    description: str
    check: Callable[[Any], str | None] | None = None
    dynamic: bool = False


def coerce(spec: Param, value):
    """A parameter value as the spec's type, or ValueError with the reason."""
    want = type(spec.default)
    if want is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value}")
        return value
    if want is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
        return value
    if want is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if want is str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        return value
    return value


def validate(spec: Param, value):
    value = coerce(spec, value)
    reason = spec.check(value) if spec.check else None
    if reason:
        raise ValueError(reason)
    return value


def in_range(low: float, high: float) -> Callable[[Any], str | None]:
    return lambda v: None if low <= v <= high else f"{v} is outside [{low}, {high}]"


def declare_params(node, specs: list[Param]) -> dict[str, Any]:
    """Declare the parameters (dynamic typing: launch files type '1' as an integer) and return
    their validated values; StartupError names the parameter that is wrong."""
    from rcl_interfaces.msg import ParameterDescriptor
    values = {}
    for spec in specs:
        desc = ParameterDescriptor(description=spec.description, dynamic_typing=True, read_only=not spec.dynamic)
        raw = node.declare_parameter(spec.name, spec.default, desc).value
        try:
            values[spec.name] = validate(spec, spec.default if raw is None else raw)
        except ValueError as exc:
            raise StartupError(f"parameter {spec.name}: {exc}") from None
    return values


def on_params(node, specs: list[Param], apply: Callable[[str, Any], str | None]) -> None:
    """Validate run-time changes of the `dynamic` parameters, then `apply(name, value)` each one
    (it may return a reason to refuse); a refusal names the parameter and says why."""
    from rcl_interfaces.msg import SetParametersResult
    by_name = {s.name: s for s in specs}

    def callback(params) -> SetParametersResult:
        checked = []
        for p in params:
            spec = by_name.get(p.name)
            if spec is None:
                continue
            if not spec.dynamic:
                return SetParametersResult(successful=False, reason=f"{p.name}: cannot change while the node runs")
            try:
                checked.append((p.name, validate(spec, p.value)))
            except ValueError as exc:
                node.get_logger().warning(f"refused {p.name} = {p.value!r}: {exc}")
                return SetParametersResult(successful=False, reason=f"{p.name}: {exc}")
        for name, value in checked:
            reason = apply(name, value)
            if reason:
                return SetParametersResult(successful=False, reason=f"{name}: {reason}")
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(callback)


# ---- main -----------------------------------------------------------------------------------------
def make_executor(context=None):
    """rclpy's EventsExecutor (callbacks dispatched from C++: 1-2.5 ms less per message chain than
    the SingleThreadedExecutor, measured through the car graph); RACER_ROS_EXECUTOR=single picks
    the classic one."""
    from rclpy.executors import SingleThreadedExecutor
    if os.environ.get("RACER_ROS_EXECUTOR", "events") == "single":
        return SingleThreadedExecutor(context=context)
    from rclpy.experimental import EventsExecutor
    return EventsExecutor(context=context)


def run_node(factory: Callable[[], Any], args: list[str] | None = None, name: str | None = None) -> None:
    """The nodes' main: safe ROS environment, rclpy.init, build the node, spin until SIGINT or
    SIGTERM, then the node's `shutdown()` (while ROS still runs, so it can publish "stop") and
    a clean exit 0.  A StartupError is logged at ERROR and exits 1."""
    apply_safe_ros_env()
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.signals import SignalHandlerOptions

    name = name or getattr(factory, "__name__", "node")
    if args is None:
        args = sys.argv
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signum

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    node = None
    code = 0
    try:
        try:
            node = factory()
        except StartupError as exc:
            rclpy.logging.get_logger(name).error(f"refusing to start: {exc}")
            code = 1
        if node is not None:
            executor = make_executor()
            executor.add_node(node)
            try:
                while stop["signal"] is None and rclpy.ok():
                    executor.spin_once(timeout_sec=0.1)
            except (KeyboardInterrupt, ExternalShutdownException):
                pass
            if stop["signal"] is not None:
                node.get_logger().info(f"{signal.Signals(stop['signal']).name}: shutting down")
    finally:
        if node is not None:
            try:
                if hasattr(node, "shutdown"):
                    node.shutdown()
            finally:
                node.destroy_node()
        rclpy.try_shutdown()
        for s, h in old.items():
            signal.signal(s, h)
    sys.exit(code)
