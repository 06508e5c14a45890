"""navigation_node: the model's output row (ACTION) -> steering and throttle in [-1, 1] (SERVO_CMD).

    discrete     argmax of the row -> that action's (steering deg, speed m/s)
    continuous   the two outputs clipped to [-1, 1] and rescaled to the action space's ranges
    empty row    "stop": zero steering, zero throttle

    steering = steer_deg / max_steering_deg
    throttle = max_speed * speed / top_speed   if autonomous, else 0

Parameters (all take effect at once when changed): model_path (its bundle.json gives the
action space), max_speed (in [0, 1], DEFAULT 0: the car does not move until it is set),
autonomous (default false), top_speed (m/s at full throttle), max_steering_deg.
geometry_msgs/TwistStamped: angular.z = steering, linear.x = throttle, header.stamp = the action's.
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState

from car import topics as T
from car.nodes.common import (Param, StartupError, ThrottledLog, best_effort, declare_params, in_range, on_params,
                              run_node)
from racer.bundle.format import BundleError, bundle_action_space
from sim.actions import ActionSpace
from sim.car import CarSpec

CAR = CarSpec()


def _positive(v) -> str | None:
    return None if v > 0 else f"{v} must be > 0"


PARAMS = [
    Param("model_path", "", "exported model bundle directory: its action space", dynamic=True),
    Param("max_speed", 0.0, "speed setting in [0, 1]; 0 = the car does not move", in_range(0.0, 1.0), dynamic=True),
    Param("autonomous", False, "drive from the model (false: throttle 0)", dynamic=True),
    Param("top_speed", CAR.max_speed, "m/s of the car at full throttle", _positive, dynamic=True),
    Param("max_steering_deg", CAR.max_steer_deg, "steering angle at full lock (deg)", _positive, dynamic=True),
]


def action_command(actions: ActionSpace, row) -> tuple[float, float]:
    """An output row -> (steering deg, speed m/s); ValueError if it does not fit the action space."""
    a = np.asarray(row, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"the action {a.tolist()} is not finite")
    if actions.kind == "discrete":
        if a.size != actions.n:
            raise ValueError(f"the action has {a.size} values, the model's discrete action space has {actions.n}")
        return actions.command(int(np.argmax(a)))
    if a.size != 2:
        raise ValueError(f"the action has {a.size} values, a continuous action space needs 2")
    return actions.command(a)


class NavigationNode(Node):
    def __init__(self, **kwargs):
        super().__init__("navigation", **kwargs)
        self.p = declare_params(self, PARAMS)
        self.actions: ActionSpace | None = None
        if self.p["model_path"]:
            try:
                self.actions = bundle_action_space(self.p["model_path"])
            except BundleError as exc:
                raise StartupError(str(exc)) from None
        else:
            self.get_logger().warning("no model_path: every action maps to a stop command")
        self.pub = self.create_publisher(TwistStamped, T.SERVO_CMD, T.COMMAND_QOS)
        self.sub = self.create_subscription(JointState, T.ACTION, self._on_action, T.COMMAND_QOS)
        self.log = ThrottledLog(self.get_logger())
        self.commands = 0
        on_params(self, PARAMS, self._apply)
        self.get_logger().info(f"navigation: {self._describe()}")

    def _describe(self) -> str:
        p = self.p
        space = "no action space" if self.actions is None else f"{self.actions.kind} action space"
        return (f"{space}; max_speed {p['max_speed']:g}, autonomous {p['autonomous']}, "
                f"top_speed {p['top_speed']:g} m/s, max_steering_deg {p['max_steering_deg']:g}")

    def _apply(self, name: str, value) -> str | None:
        if name == "model_path":
            self.actions = None  # stop until the new action space is known
            if value:
                try:
                    self.actions = bundle_action_space(value)
                except BundleError as exc:
                    self.get_logger().error(f"model_path refused, every action maps to stop: {exc}")
                    return str(exc)
        self.p[name] = value
        self.get_logger().info(f"{name} = {value!r}: {self._describe()}")
        return None

    def command(self, row) -> tuple[float, float]:
        """An ACTION row -> (steering, throttle) in [-1, 1], with the current settings."""
        if len(row) == 0:
            return 0.0, 0.0
        if self.actions is None:
            self.log.warning("no-space", "an action arrived but no action space is loaded (model_path): stop")
            return 0.0, 0.0
        try:
            steer_deg, speed = action_command(self.actions, row)
        except ValueError as exc:
            self.log.warning("bad-action", f"stop: {exc}")
            return 0.0, 0.0
        p = self.p
        steering = max(-1.0, min(1.0, steer_deg / p["max_steering_deg"]))
        throttle = max(-1.0, min(1.0, p["max_speed"] * speed / p["top_speed"])) if p["autonomous"] else 0.0
        return float(steering), float(throttle)

    def _on_action(self, msg) -> None:
        steering, throttle = self.command(msg.position)
        out = TwistStamped()
        out.header.stamp = msg.header.stamp
        out.header.frame_id = "base_link"
        out.twist.angular.z = steering
        out.twist.linear.x = throttle
        self.pub.publish(out)
        self.commands += 1

    def publish_stop(self) -> None:
        """A zero command (steering and throttle 0)."""
        out = TwistStamped()
        out.header.stamp = self.get_clock().now().to_msg()
        self.pub.publish(out)

    def shutdown(self) -> None:
        best_effort(self, "publishing the last stop", self.publish_stop)


def main(args=None) -> None:
    run_node(NavigationNode, args, name="navigation")


if __name__ == "__main__":
    main()
