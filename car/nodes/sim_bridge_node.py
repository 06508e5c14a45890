"""The simulator bridge: the car's sensors and motors, played by a DeepRacerEnv.

It stands in for camera_node, lidar_node and the PWM hardware, so the SAME inference,
navigation and control nodes drive the simulated car:

- every 1/15 s (real time / `realtime_factor`): read the latest SERVO_PWM pulse widths (none
  yet = neutral: stopped), invert the calibration to steering and throttle in [-1, 1], step
  the env with `steer = steering * max_steer_deg` (CarSpec), `speed = max(0, throttle) * top_speed`, then
  publish the env's raw RGB camera frame(s) (sensor_msgs/Image rgb8) stamped now;
- every 1/10 s: a raw LaserScan (the 64 contract beams, full 12 m reach) so that the car's
  `scan_to_beams` recovers the beams exactly;
- at 2 Hz: SIM_STATUS (JSON); when the laps are done it writes `results_file`, logs
  "laps complete" and holds the car still.

Parameters: track, sensors (or model_path's bundle.json), laps, start, calibration_file,
top_speed, results_file, realtime_factor, lidar_noise_std, seed, race, race_config.
"""
from __future__ import annotations

import json
import math

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState, LaserScan
from std_msgs.msg import String

from car import topics as T
from car.calibration import Calibration, CalibrationError, load
from car.nodes.common import Param, StartupError, declare_params, in_range, rgb_to_image, run_node, scan_to_msg
from racer.bundle.files import atomic_write_text
from racer.bundle.format import BundleError, read_bundle_json
from sim.car import CarSpec
from sim.env import DeepRacerEnv
from sim.laps import LapBook
from sim.lidar import Lidar
from sim.rules import FAILURES, RaceRules
from sim.track import TrackError

CAR = CarSpec()
STATUS_HZ = 2.0
HUGE = 10**9  # immobilised / reversed steps: the real car may stand still as long as it likes


def _positive(v) -> str | None:
    return None if v > 0 else f"{v} must be > 0"


PARAMS = [
    Param("track", "reinvent-like", "bundled track name or DeepRacer .npy path"),
    Param("model_path", "", "bundle directory: its bundle.json's sensors (overrides `sensors`)"),
    Param("sensors", ["FRONT_FACING_CAMERA"], "DeepRacer sensor names (when model_path is empty)"),
    Param("laps", 3, "laps to drive; then the car is held still", in_range(1, 100000)),
    Param("start", 0.0, "start point, fraction of the track", in_range(0.0, 1.0)),
    Param("calibration_file", "", "calibration JSON ('' = DeepRacer defaults): inverted on the PWM"),
    Param("top_speed", CAR.max_speed, "m/s of the simulated car at full throttle", _positive),
    Param("results_file", "", "JSON of the laps, written when they are done ('' = none)"),
    Param("realtime_factor", 1.0, "simulated seconds per real second", in_range(0.01, 100.0)),
    Param("lidar_noise_std", 0.01, "m: noise of the raw LIDAR scan", in_range(0.0, 1.0)),
    Param("seed", 0, "random seed of the LIDAR noise and of random box / bot layouts"),
    Param("race", "", "race type ('' = the bundle's race, else time-trial)"),
    Param("race_config", "", "YAML of the race's knobs ('' = the bundle's race_config)"),
]


# ---- helpers (pure) -------------------------------------------------------------------------
def scan_layout(cfg) -> tuple[float, float]:
    """angle_min and angle_increment (rad, car frame) of the contract beams."""
    angles = cfg.beam_angles()
    inc = float(angles[1] - angles[0])
    # LaserScan angles are float32: round angle_min DOWN, so that the first beam never lies a
    # hair before it (that would wrap to the far end of the scan in scan_to_beams' modulo)
    amin = np.float32(angles[0])
    if float(amin) > float(angles[0]):
        amin = np.nextafter(amin, np.float32(-np.inf))
    return float(amin), inc


def pwm_to_command(pwm_names, pwm_positions, calib: Calibration) -> tuple[float, float]:
    """SERVO_PWM pulse widths (ns) -> (steering, throttle) in [-1, 1]; a missing one = neutral."""
    by_name = dict(zip(pwm_names, pwm_positions))
    steering = throttle = 0.0
    if "steering" in by_name and math.isfinite(by_name["steering"]):
        steering = float(calib.steering.from_pulse(by_name["steering"]))
    if "throttle" in by_name and math.isfinite(by_name["throttle"]):
        throttle = float(calib.throttle.from_pulse(by_name["throttle"]))
    return max(-1.0, min(1.0, steering)), max(-1.0, min(1.0, throttle))


# ---- the node ----------------------------------------------------------------------------
class SimBridge(Node):
    def __init__(self, **kwargs):
        super().__init__("sim_bridge", **kwargs)
        p = declare_params(self, PARAMS)
        sensors = p["sensors"]
        sensors = [x.strip() for x in sensors.split(",") if x.strip()] if isinstance(sensors, str) \
            else [str(x) for x in sensors]
        race, race_config = p["race"] or "time-trial", p["race_config"] or None
        try:
            if p["model_path"]:
                bundle = read_bundle_json(p["model_path"])
                sensors = list(bundle["sensors"])
                race = p["race"] or bundle.get("race", race)
                race_config = race_config or (bundle.get("race_config") if race == bundle.get("race") else None)
            self.calib = load(p["calibration_file"]) if p["calibration_file"] else Calibration()
            self.laps = p["laps"]
            rules = RaceRules(mode="evaluation", laps=self.laps, immobilized_steps=HUGE, reversed_steps=HUGE,
                              time_limit=1e12)
            self.env = DeepRacerEnv(track=p["track"], sensors=sensors, mode="evaluation", laps=self.laps,
                                    rules=rules, lidar={"noise_std": p["lidar_noise_std"]}, race=race,
                                    race_config=race_config)
        except (BundleError, CalibrationError, TrackError, OSError, ValueError) as exc:
            raise StartupError(str(exc)) from None
        env = self.env
        env.reset(seed=p["seed"], options={"start": p["start"]})
        # the car's LIDAR delivers the full 12 m range: a separate caster with no reach limit
        self.raw_lidar = Lidar(env.world, env.car_index, env.suite.lidar,
                               np.random.default_rng(p["seed"] + 1), reach=None)
        self.track, self.sensors, self.top_speed = str(p["track"]), sensors, p["top_speed"]
        self.results_file = p["results_file"]
        self.stereo = env.suite.stereo
        self.book = LapBook()
        self.info = env.info()
        self.done = False
        self.results_written = False
        self.last_pwm: JointState | None = None
        self.steps = 0

        self.cam_pubs = [self.create_publisher(Image, t, T.SENSOR_QOS) for t in T.camera_topics(self.stereo)]
        self.cam_frames = ("camera_left", "camera_right") if self.stereo else ("camera",)
        self.scan_pub = self.create_publisher(LaserScan, T.SCAN, T.SENSOR_QOS)
        self.status_pub = self.create_publisher(String, T.SIM_STATUS, 10)
        self.create_subscription(JointState, T.SERVO_PWM, self._on_pwm, T.COMMAND_QOS)
        rtf = p["realtime_factor"]
        self.step_timer = self.create_timer(1.0 / (T.CONTROL_HZ * rtf), self._tick)
        self.scan_timer = self.create_timer(1.0 / (env.suite.lidar.rate_hz * rtf), self._scan)
        self.status_timer = self.create_timer(1.0 / (STATUS_HZ * rtf), self._status)
        self.get_logger().info(
            f"sim bridge: track {self.track}, sensors {sensors}, {self.laps} laps from {p['start']:g}, "
            f"top speed {self.top_speed:g} m/s, realtime x{rtf:g}; publishing "
            f"{', '.join(T.camera_topics(self.stereo))}, {T.SCAN}, {T.SIM_STATUS}; driven by {T.SERVO_PWM}")

    # ---- callbacks ----------------------------------------------------------------------------
    def _on_pwm(self, msg) -> None:
        self.last_pwm = msg

    def command(self) -> tuple[float, float]:
        """(steering, throttle) in [-1, 1] from the latest PWM (held, as hardware holds a pulse);
        stopped before the first."""
        if self.last_pwm is None:
            return 0.0, 0.0
        return pwm_to_command(self.last_pwm.name, self.last_pwm.position, self.calib)

    def _tick(self) -> None:
        if not self.done:
            steering, throttle = self.command()
            _, _, terminated, truncated, info = self.env.step_command(
                steering * CAR.max_steer_deg, max(0.0, throttle) * self.top_speed, min_speed=0.0)
            self.steps += 1
            self.info = info
            self.book.update(info, terminated or truncated)
            if terminated or truncated:
                self._finish("complete" if info["laps"] >= self.laps else str(info["status"]))
        self.publish_frames()

    def publish_frames(self) -> None:
        stamp = self.get_clock().now().to_msg()
        for pub, frame, fid in zip(self.cam_pubs, self.env.camera_frames(), self.cam_frames):
            pub.publish(rgb_to_image(frame, stamp, fid))

    def _scan(self) -> None:
        cfg = self.env.suite.lidar
        ranges = self.raw_lidar.scan(*self.env.state[:3])
        amin, inc = scan_layout(cfg)
        self.scan_pub.publish(scan_to_msg(ranges, amin, inc, self.get_clock().now().to_msg(), "laser",
                                          cfg.range_min, cfg.range_max, 1.0 / cfg.rate_hz))

    def status(self) -> dict:
        info, env = self.info, self.env
        return {"laps": info["laps"], "laps_target": self.laps, "lap_times": info["lap_times"],
                "progress": float(info["params"]["progress"]), "resets": info["resets"],
                **{str(k): info[f"{k}_count"] for k in FAILURES},
                "status": "complete" if self.done else str(info["status"]),
                "sim_time": info["sim_time"], "speed": float(env.state.speed),
                "pose": [float(v) for v in env.state[:3]], "command": list(info["command"])}

    def _status(self) -> None:
        self.status_pub.publish(String(data=json.dumps(self.status())))

    def results(self, status: str) -> dict:
        info = self.info
        done = info["laps"]
        partial = 0.0 if done >= self.laps else float(info["params"]["progress"])
        st = self.status()
        return {"track": self.track, "race": self.env.race_type, "sensors": self.sensors, "status": status,
                "laps_target": self.laps,
                "laps_done": done, "completion": 100.0 * min(self.laps, done + partial / 100.0) / self.laps,
                "lap_times": info["lap_times"], "total_time": float(sum(info["lap_times"])),
                "laps": [r.as_dict() for r in self.book.laps], "resets": st["resets"],
                **{str(k): st[k] for k in FAILURES}, "steps": self.steps}

    def write_results(self, status: str) -> None:
        if not self.done and self.info["sim_time"] > 0:
            self.book.update(self.info, True)  # the unfinished lap, as far as it got
        if self.results_file:
            atomic_write_text(self.results_file, json.dumps(self.results(status), indent=2) + "\n")
        self.results_written = True

    def _finish(self, status: str) -> None:
        self.done = True
        self.write_results(status)
        times = ", ".join(f"{t:.3f}" for t in self.info["lap_times"])
        self.get_logger().info(f"laps complete: {self.info['laps']}/{self.laps} ({status}); "
                               f"lap times {times} s; the car is held stopped")

    def shutdown(self) -> None:
        if not self.results_written:
            self.write_results("stopped")
        self.env.close()


def main(args=None) -> None:
    run_node(SimBridge, args, name="sim_bridge")


if __name__ == "__main__":
    main()
