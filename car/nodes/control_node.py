"""control_node: steering and throttle commands (SERVO_CMD) -> PWM pulse widths on the servo and motor.

- At start, and on shutdown: NEUTRAL (the calibration's mid pulses: wheels straight, motor still).
- Each command: clipped (throttle to +-max_throttle), mapped through the calibration, written to
  the PWM channels, and published on SERVO_PWM (names steering, throttle; positions = ns;
  header.stamp = the command's stamp).
- WATCHDOG: a deadline timer, restarted by every command, fires WATCHDOG_PERIODS / CONTROL_HZ s
  (2/15 s) after the newest one: the outputs go neutral (and SERVO_PWM says so) until the next
  command.  So a dead inference node stops the car at most two control periods after its last
  command, however the death falls between commands.

Parameters: calibration_file ('' = DeepRacer defaults), pwm_root ('' = /sys/class/pwm; any
other directory holds a FAKE sysfs PWM tree, created if missing: nothing drives hardware),
pwm_chip, steering_channel, throttle_channel, max_throttle (in [0, 1], may change at run time).
"""
from __future__ import annotations

import math
import time

from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState

from car import topics as T
from car.calibration import Calibration, CalibrationError, load
from car.drivers.pwm import DEFAULT_ROOT, FakePwmDir, PwmChannel, PwmError, SysfsPwm, chip_path, is_sysfs
from car.nodes.common import Param, StartupError, ThrottledLog, declare_params, in_range, on_params, run_node

PARAMS = [
    Param("calibration_file", "", "calibration JSON ('' = DeepRacer defaults)"),
    Param("pwm_root", "", "sysfs PWM root ('' = /sys/class/pwm; elsewhere: a fake PWM tree)"),
    Param("pwm_chip", 0, "pwmchip number", in_range(0, 1023)),
    Param("steering_channel", 0, "PWM channel of the steering servo", in_range(0, 1023)),
    Param("throttle_channel", 1, "PWM channel of the motor's ESC", in_range(0, 1023)),
    Param("max_throttle", 1.0, "throttle commands are clipped to +-max_throttle", in_range(0.0, 1.0), dynamic=True),
]
WATCHDOG_TIMEOUT = T.WATCHDOG_PERIODS / T.CONTROL_HZ  # s


class ControlNode(Node):
    """`outputs`: (steering, throttle) PwmChannels to use instead of opening sysfs (tests)."""

    def __init__(self, outputs: tuple[PwmChannel, PwmChannel] | None = None, **kwargs):
        super().__init__("control", **kwargs)
        p = declare_params(self, PARAMS)
        self.max_throttle = p["max_throttle"]
        try:
            self.cal = load(p["calibration_file"]) if p["calibration_file"] else Calibration()
        except CalibrationError as exc:
            raise StartupError(str(exc)) from None
        if outputs is None:
            outputs = self._open_pwm(p)
        self.steering_pwm, self.throttle_pwm = outputs
        self.pub = self.create_publisher(JointState, T.SERVO_PWM, T.COMMAND_QOS)
        self.last_command: float | None = None  # time.monotonic() of the newest command
        self.timed_out = True  # neutral until a command arrives
        self.pulses = self.cal.neutral()
        self.log = ThrottledLog(self.get_logger())
        self.neutral()
        self.sub = self.create_subscription(TwistStamped, T.SERVO_CMD, self._on_command, T.COMMAND_QOS)
        self.watchdog = self.create_timer(WATCHDOG_TIMEOUT, self._watchdog)
        self.watchdog.cancel()  # armed by the first command
        on_params(self, PARAMS, self._apply)
        c = self.cal
        self.get_logger().info(
            f"control: steering {c.steering.min_ns}/{c.steering.mid_ns}/{c.steering.max_ns} ns "
            f"(polarity {c.steering.polarity}), "
            f"throttle {c.throttle.min_ns}/{c.throttle.mid_ns}/{c.throttle.max_ns} ns "
            f"(polarity {c.throttle.polarity}), max_throttle {self.max_throttle:g}, watchdog "
            f"{1000 * WATCHDOG_TIMEOUT:.0f} ms; outputs {self.steering_pwm!r}, {self.throttle_pwm!r}; neutral")

    def _open_pwm(self, p: dict) -> tuple[SysfsPwm, SysfsPwm]:
        root = p["pwm_root"] or DEFAULT_ROOT
        chip, st, th = p["pwm_chip"], p["steering_channel"], p["throttle_channel"]
        if st == th:
            raise StartupError(f"steering_channel and throttle_channel are both {st}")
        if not is_sysfs(root) and not chip_path(chip, root).is_dir():
            FakePwmDir.create(root, chip, max(st, th) + 1)
            self.get_logger().warning(f"pwm_root {root} is not sysfs: created a FAKE PWM tree there "
                                      f"(no hardware is driven)")
        try:
            return SysfsPwm(chip, st, root=root), SysfsPwm(chip, th, root=root)
        except (PwmError, ValueError) as exc:
            raise StartupError(str(exc)) from None

    def _apply(self, name: str, value) -> str | None:
        if name == "max_throttle":
            self.max_throttle = value
            self.get_logger().info(f"max_throttle = {value:g}")
        return None

    # ---- outputs ---------------------------------------------------------------------------------
    def output(self, steering: float, throttle: float, stamp) -> tuple[int, int]:
        """Write the calibrated pulses for (steering, throttle) and publish them on SERVO_PWM."""
        s_ns, t_ns = self.cal.steering.to_pulse(steering), self.cal.throttle.to_pulse(throttle)
        try:
            self.throttle_pwm.set_pulse_ns(t_ns)
            self.steering_pwm.set_pulse_ns(s_ns)
        except (OSError, ValueError) as exc:
            self.log.error("pwm", f"PWM write failed: {exc}")
        self.pulses = (s_ns, t_ns)
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = ["steering", "throttle"]
        msg.position = [float(s_ns), float(t_ns)]
        self.pub.publish(msg)
        return s_ns, t_ns

    def neutral(self) -> None:
        """Mid pulses (wheels straight, motor still) until the next command."""
        self.timed_out = True
        self.output(0.0, 0.0, self.get_clock().now().to_msg())

    def _on_command(self, msg) -> None:
        steering, throttle = msg.twist.angular.z, msg.twist.linear.x
        if not (math.isfinite(steering) and math.isfinite(throttle)):
            self.get_logger().warning(f"non-finite command ({steering}, {throttle}): neutral")
            steering = throttle = 0.0
        steering = max(-1.0, min(1.0, steering))
        throttle = max(-self.max_throttle, min(self.max_throttle, throttle))
        self.last_command = time.monotonic()
        self.watchdog.reset()  # (re)arms the deadline: WATCHDOG_TIMEOUT from now
        self.timed_out = False
        self.output(steering, throttle, msg.header.stamp)

    def _watchdog(self) -> None:
        self.watchdog.cancel()  # one shot; the next command re-arms it
        if self.timed_out or self.last_command is None:
            return
        silent = time.monotonic() - self.last_command
        self.neutral()
        self.get_logger().warning(f"watchdog: no command for {1000 * silent:.0f} ms: neutral")

    def shutdown(self) -> None:
        try:
            self.neutral()
        except Exception:  # noqa: BLE001 - ROS may already be down: the PWM write is what matters
            s_ns, t_ns = self.cal.neutral()
            try:
                self.throttle_pwm.set_pulse_ns(t_ns)
                self.steering_pwm.set_pulse_ns(s_ns)
            except (OSError, ValueError):
                pass
        for out in (self.steering_pwm, self.throttle_pwm):
            try:
                out.close()
            except Exception:  # noqa: BLE001
                pass


def main(args=None) -> None:
    run_node(ControlNode, args, name="control")


if __name__ == "__main__":
    main()
