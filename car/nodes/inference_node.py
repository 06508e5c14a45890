"""inference_node: camera frame(s) + the latest LIDAR scan -> the model's output row on ACTION.

Parameters:
  model_path     the exported bundle directory (racer export).  Missing or damaged at start:
                 the reason is logged at ERROR and the node exits 1, so nothing ever commands
                 the car.  Changed at run time: an EMPTY JointState ("stop") goes out at once,
                 then the new bundle loads; a bad one is refused (the parameter keeps its old
                 value) and the node runs no model (the car stays stopped) until a good one is set.
  max_scan_age   s: a LIDAR model skips frames while the newest scan is older (the lidar died)
  latency_log_period   s between latency summaries in the log (0 = none)

For each camera frame (stereo: once the left and right frames with one stamp are both here)
the observation is built with sim.observation, exactly as in the simulator, the policy runs,
and ACTION carries the output row with header.stamp = the frame's stamp.  A LIDAR-only model
runs on each scan instead.  `latency_stats()` gives frame stamp -> publish latency.
"""
from __future__ import annotations

import math
import time
from collections import deque
from pathlib import Path

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState, LaserScan

from car import topics as T
from car.nodes.common import (Param, StartupError, ThrottledLog, best_effort, declare_params, image_to_rgb, in_range,
                              on_params, run_node, scan_from_msg, stamp_key, stamp_ns)
from racer.bundle.format import BundleError, bundle_lidar_config
from racer.bundle.runtime import BundlePolicy
from sim.observation import CameraConfig, SensorSuite, camera_observation, lidar_observation, scan_to_beams

PARAMS = [
    Param("model_path", "", "exported model bundle directory (racer export)", dynamic=True),
    Param("max_scan_age", 0.5, "s: skip frames while the newest LIDAR scan is older than this",
          in_range(0.01, 60.0), dynamic=True),
    Param("latency_log_period", 10.0, "s between latency summaries in the log (0 = none)", in_range(0.0, 3600.0),
          dynamic=True),
]
LATENCY_WINDOW = 1000


def load_bundle(path: str) -> tuple[BundlePolicy, SensorSuite]:
    """The policy and the sensor suite of a bundle; BundleError says why it cannot be used."""
    if not path:
        raise BundleError("model_path is empty: give the exported model bundle directory (racer export)")
    bundle_dir = Path(path)
    if not bundle_dir.is_dir():
        raise BundleError(f"{bundle_dir}: no such model bundle directory")
    policy = BundlePolicy.load(bundle_dir, sensors=None)
    try:
        suite = SensorSuite(tuple(policy.sensors), CameraConfig(), bundle_lidar_config(bundle_dir))
    except ValueError as exc:
        raise BundleError(f"{bundle_dir / 'bundle.json'}: {exc}") from None
    zeros = {name: np.zeros(shape[1:], dtype=np.float32) for name, shape in policy.bundle["inputs"].items()}
    policy.outputs(zeros)  # the first inference is the slow one: not on the first frame
    return policy, suite


class InferenceNode(Node):
    def __init__(self, **kwargs):
        super().__init__("inference", **kwargs)
        p = declare_params(self, PARAMS)
        self.max_scan_age = p["max_scan_age"]
        self.latency_log_period = p["latency_log_period"]
        self.pub = self.create_publisher(JointState, T.ACTION, T.COMMAND_QOS)
        self.policy: BundlePolicy | None = None
        self.suite: SensorSuite | None = None
        self.model_path = ""
        self.names: list[str] = []
        self.subs: list = []
        self._sub_topics: list[str] = []  # what `subs` were asked for (before remapping)
        self.pending: list = [None, None]  # stereo: the newest left and right frame not yet paired
        self.scan = None  # (raw (ranges, amin, inc), receive time.monotonic())
        self.lidar_obs = None
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)  # ms, frame stamp -> publish
        self.infer_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)  # ms, observation + policy
        self.published = 0
        self.skipped = 0
        self.log = ThrottledLog(self.get_logger())
        self._since_log = 0
        try:
            self.load(p["model_path"])
        except BundleError as exc:
            raise StartupError(str(exc)) from None
        on_params(self, PARAMS, self._apply)
        self._log_timer = None
        self._set_log_timer()

    # ---- model ----------------------------------------------------------------------------------
    def load(self, path: str) -> None:
        """Load the bundle and subscribe to the sensors it needs (BundleError if it is unusable)."""
        t0 = time.perf_counter()
        policy, suite = load_bundle(path)
        self.policy, self.suite, self.model_path = policy, suite, path
        self.names = ([f"action_{i}" for i in range(policy.actions.n)] if policy.discrete
                      else ["steering", "speed"])
        self._subscribe()
        self.get_logger().info(
            f"model {path}: sensors {list(policy.sensors)}, {policy.actions.kind} action space "
            f"({len(self.names)} outputs), loaded in {1000 * (time.perf_counter() - t0):.0f} ms; "
            f"listening on {', '.join(s.topic_name for s in self.subs)}")

    def _subscribe(self) -> None:
        """Subscribe to the model's sensors (kept across a swap when they do not change)."""
        suite = self.suite
        want = list(T.camera_topics(suite.stereo)) if suite.camera_name else []
        if suite.lidar_name:
            want.append(T.SCAN)
        self.pending = [None, None]
        if self._sub_topics != want:
            for sub in self.subs:
                self.destroy_subscription(sub)
            self.subs, self._sub_topics = [], want
            for i, topic in enumerate(want):
                if topic == T.SCAN:
                    self.subs.append(self.create_subscription(LaserScan, T.SCAN, self._on_scan, T.SENSOR_QOS))
                else:
                    self.subs.append(self.create_subscription(
                        Image, topic, lambda m, i=i: self._on_image(i, m), T.SENSOR_QOS))
        if suite.lidar_name and self.scan is not None:  # the new model may preprocess differently
            self.lidar_obs = self._lidar_obs(*self.scan[0])

    def publish_stop(self) -> None:
        """An EMPTY action: navigation turns it into a zero command."""
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub.publish(msg)

    def _apply(self, name: str, value) -> str | None:
        if name == "max_scan_age":
            self.max_scan_age = value
        elif name == "latency_log_period":
            self.latency_log_period = value
            self._set_log_timer()
        elif name == "model_path":
            self.publish_stop()
            self.policy = None  # no frame runs through the old model any more
            self.get_logger().info(f"model swap: {self.model_path or '(none)'} -> {value}; stopped while loading")
            try:
                self.load(value)
            except BundleError as exc:
                self.get_logger().error(f"model swap refused, the car stays stopped (no model runs): {exc}")
                self.publish_stop()
                return str(exc)
        return None

    # ---- sensors --------------------------------------------------------------------------------
    def _lidar_obs(self, ranges, amin, inc) -> np.ndarray:
        cfg = self.suite.lidar
        return lidar_observation(scan_to_beams(ranges, amin, inc, cfg), self.suite.lidar_name, cfg)

    def _on_scan(self, msg) -> None:
        if self.suite is None:
            return
        raw = scan_from_msg(msg)
        if len(raw[0]) == 0 or not raw[2] > 0:
            self.log.warning("scan", f"ignoring a LaserScan with {len(raw[0])} ranges and increment {raw[2]}")
            return
        self.scan = (raw, time.monotonic())
        self.lidar_obs = self._lidar_obs(*raw)
        if self.policy is not None and not self.suite.camera_name:
            self._infer([], msg.header.stamp)

    def _on_image(self, idx: int, msg) -> None:
        if self.policy is None:
            return
        if not self.suite.stereo:
            self._infer([msg], msg.header.stamp)
            return
        self.pending[idx] = msg
        other = self.pending[1 - idx]
        if other is not None and stamp_key(other) == stamp_key(msg):
            frames, self.pending = list(self.pending), [None, None]
            self._infer(frames, msg.header.stamp)

    def _infer(self, images: list, stamp) -> None:
        t0 = time.perf_counter()
        suite = self.suite
        obs = {}
        if suite.lidar_name:
            if self.scan is None:
                self.skipped += 1
                self.log.warning("no-scan", f"waiting for the first LIDAR scan on {T.SCAN}: frames are skipped")
                return
            age = time.monotonic() - self.scan[1]
            if age > self.max_scan_age:
                self.skipped += 1
                self.log.warning("old-scan", f"the newest LIDAR scan is {age:.2f} s old (max_scan_age "
                                       f"{self.max_scan_age} s): frames are skipped, the car stops")
                return
            obs[suite.lidar_name] = self.lidar_obs
        if suite.camera_name:
            try:
                obs[suite.camera_name] = camera_observation([image_to_rgb(m) for m in images], suite.camera)
            except ValueError as exc:
                self.skipped += 1
                self.log.warning("image", f"skipping a frame: {exc}")
                return
        try:
            out = self.policy.outputs(obs)
        except (RuntimeError, ValueError) as exc:  # no action: the control watchdog stops the car
            self.skipped += 1
            self.log.warning("infer", f"inference failed, frame skipped: {exc}")
            return
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = self.names
        msg.position = [float(v) for v in out]
        self.pub.publish(msg)
        now_ns = self.get_clock().now().nanoseconds
        self.infer_ms.append(1000 * (time.perf_counter() - t0))
        self.latencies.append((now_ns - stamp_ns(stamp)) / 1e6)
        self.published += 1
        self._since_log += 1
        if self.published == 1:
            self.get_logger().info(f"first action published: {np.round(out, 4).tolist()}")

    # ---- latency --------------------------------------------------------------------------------
    def latency_stats(self) -> dict:
        """Frame stamp -> publish latency (ms) and observation + inference time (ms), recent frames."""
        def pct(values, q):
            return float(np.percentile(np.asarray(values), q)) if values else math.nan
        lat, inf = list(self.latencies), list(self.infer_ms)
        return {"frames": self.published, "skipped": self.skipped, "window": len(lat),
                "latency_p50_ms": pct(lat, 50), "latency_p99_ms": pct(lat, 99),
                "latency_max_ms": max(lat, default=math.nan),
                "inference_p50_ms": pct(inf, 50), "inference_p99_ms": pct(inf, 99)}

    def _set_log_timer(self) -> None:
        if self._log_timer is not None:
            self.destroy_timer(self._log_timer)
            self._log_timer = None
        if self.latency_log_period > 0:
            self._log_timer = self.create_timer(self.latency_log_period, self._log_latency)

    def _log_latency(self) -> None:
        if not self._since_log:
            return
        s = self.latency_stats()
        self.get_logger().info(
            f"{self._since_log} actions in {self.latency_log_period:g} s; frame -> action latency p50 "
            f"{s['latency_p50_ms']:.2f} ms, p99 {s['latency_p99_ms']:.2f} ms (inference p50 "
            f"{s['inference_p50_ms']:.2f} ms); {self.skipped} frames skipped so far")
        self._since_log = 0

    def shutdown(self) -> None:
        best_effort(self, "publishing the last stop", self.publish_stop)


def main(args=None) -> None:
    run_node(InferenceNode, args, name="inference")


if __name__ == "__main__":
    main()
