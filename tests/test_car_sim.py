"""The car stack against the simulator: the sim bridge's sensors, rates, the full graph, safety.

These tests start ROS 2 nodes, so they run only inside a private network namespace with
nothing but loopback (no DDS traffic can leave the machine):

    unshare -rn sh -c 'ip link set lo up && python -m pytest -q tests/test_car_sim.py'
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from ros_guard import require_private_network

require_private_network(__file__)
import rclpy  # noqa: E402

from car import topics as T  # noqa: E402
from car.launcher import NodeSpec, packaged_launch_files, parse_launch, start  # noqa: E402
from car.rosenv import apply_safe_ros_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CAR_SIM = packaged_launch_files()["car_sim.launch.yaml"]
BUNDLE = Path(os.environ.get("RACER_CAR_TEST_BUNDLE", ROOT / "tests" / "data" / "bundle-oval"))
_DOMAINS = random.sample(range(1, 102), 101)  # one ROS domain per graph: graphs never hear each other
DOMAIN = _DOMAINS.pop()
apply_safe_ros_env(domain_id=DOMAIN)


def fresh_domain() -> int:
    return _DOMAINS.pop()
PERIOD = 1.0 / T.CONTROL_HZ
needs_bundle = pytest.mark.skipif(not (BUNDLE / "bundle.json").is_file(),
                                  reason=f"{BUNDLE} (a model that laps the oval) is absent")


# ---- an independent subscriber --------------------------------------------------------------
class Probe:
    """An rclpy node in its own context and thread that records (receive time, message) per topic."""

    def __init__(self, topics: dict[str, type], domain: int, depth: int = 50):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx, domain_id=domain)
        self.node = Node("test_probe", context=self.ctx)
        self.msgs: dict[str, list] = {t: [] for t in topics}
        self.lock = threading.Lock()
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        for topic, mtype in topics.items():
            self.node.create_subscription(mtype, topic, lambda m, t=topic: self._on(t, m), qos)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            while self.ctx.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except Exception:  # context shut down under us
            pass

    def _on(self, topic: str, msg) -> None:
        with self.lock:
            self.msgs[topic].append((time.monotonic(), msg))

    def get(self, topic: str) -> list:
        with self.lock:
            return list(self.msgs[topic])

    def clear(self) -> None:
        with self.lock:
            for v in self.msgs.values():
                v.clear()

    def wait_for(self, pred, timeout: float, what: str, launch=None):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = pred()
            if value:
                return value
            if launch is not None:
                launch.check()
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)
        self.thread.join(2.0)


def status_of(probe: Probe) -> dict | None:
    msgs = probe.get(T.SIM_STATUS)
    return json.loads(msgs[-1][1].data) if msgs else None


def rgb(msg) -> np.ndarray:
    assert msg.encoding == "rgb8" and msg.step == msg.width * 3
    return np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.width, 3)


# ---- the bridge on its own --------------------------------------------------------------------
BRIDGE_CASES = {"mono": ["FRONT_FACING_CAMERA", "LIDAR"], "stereo": ["STEREO_CAMERAS", "LIDAR"]}
START = 0.3


@pytest.fixture(scope="class", params=list(BRIDGE_CASES))
def bridge(request, tmp_path_factory):
    from sensor_msgs.msg import Image, LaserScan
    from std_msgs.msg import String

    sensors = BRIDGE_CASES[request.param]
    run = tmp_path_factory.mktemp(f"bridge-{request.param}")
    spec = NodeSpec("racer", "sim_bridge_node", "sim_bridge",
                    {"track": "oval", "sensors": sensors, "laps": 1, "start": START, "lidar_noise_std": 0.0,
                     "results_file": str(run / "results.json")})
    domain = fresh_domain()
    launch = start([spec], run, domain_id=domain)
    stereo = "STEREO_CAMERAS" in sensors
    probe = Probe({**{t: Image for t in T.camera_topics(stereo)}, T.SCAN: LaserScan, T.SIM_STATUS: String}, domain)
    try:
        probe.wait_for(lambda: all(len(probe.get(t)) >= 3 for t in (*T.camera_topics(stereo), T.SCAN))
                       and probe.get(T.SIM_STATUS), 30.0, "the bridge's first frames, scans and status", launch)
        yield {"sensors": sensors, "stereo": stereo, "probe": probe, "launch": launch, "run": run}
    finally:
        probe.close()
        codes = launch.stop()
    assert codes["sim_bridge"] == 0, (run / "sim_bridge.log").read_text()
    res = json.loads((run / "results.json").read_text())  # written at shutdown too
    assert res["status"] == "stopped" and res["laps_done"] == 0


class TestBridge:
    """The sim bridge alone (one per sensor set, stopped before the full-graph tests)."""

    def test_bridge_frames_give_the_env_observation(self, bridge):
        """(a) Image -> the observation contract == the env's own observation at the same pose."""
        from sim.env import DeepRacerEnv
        from sim.lidar import Lidar
        from sim.observation import camera_observation, lidar_observation, scan_to_beams

        probe, sensors = bridge["probe"], bridge["sensors"]
        cams = T.camera_topics(bridge["stereo"])

        def key(m):
            return (m.header.stamp.sec, m.header.stamp.nanosec)

        per_cam = [{key(m): m for _, m in probe.get(t)} for t in cams]
        common = sorted(set(per_cam[0]).intersection(*per_cam[1:]))
        assert common, "no camera frame (pair) with one stamp"
        last = [frames[common[-1]] for frames in per_cam]  # the latest tick every camera delivered
        scan = probe.get(T.SCAN)[-1][1]

        env = DeepRacerEnv("oval", sensors=sensors, mode="evaluation", laps=1, lidar={"noise_std": 0.0})
        try:
            obs, _ = env.reset(seed=0, options={"start": START})
            cam_name = sensors[0]
            got = camera_observation([rgb(m) for m in last], env.suite.camera)
            assert got.dtype == np.uint8 and got.shape == obs[cam_name].shape
            np.testing.assert_array_equal(got, obs[cam_name])

            assert scan.range_min == pytest.approx(0.15) and scan.range_max == pytest.approx(12.0)
            assert len(scan.ranges) == 64
            ranges = np.asarray(scan.ranges, dtype=np.float32)
            beams = scan_to_beams(ranges, scan.angle_min, scan.angle_increment, env.suite.lidar)
            np.testing.assert_array_equal(beams, ranges)  # every sample is one contract beam, in order
            raw = Lidar(env.world, env.car_index, env.suite.lidar, np.random.default_rng(), reach=None)
            np.testing.assert_array_equal(beams, raw.scan(*env.state[:3]))  # the raw 12 m scan
            assert 1.0 < beams.min() < 12.0  # the room's walls, beyond the observation's 1 m
            lidar = lidar_observation(beams, "LIDAR", env.suite.lidar)
            np.testing.assert_array_equal(lidar, obs["LIDAR"])
        finally:
            env.close()


    def test_bridge_topics_types_and_rates(self, bridge):
        """(b) The documented topics with standard types, at the real rates (+-30 %)."""
        probe = bridge["probe"]
        cams = T.camera_topics(bridge["stereo"])
        names = dict(probe.wait_for(
            lambda: (lambda d: d if all(t in d for t in (*cams, T.SCAN, T.SIM_STATUS, T.SERVO_PWM)) else None)(
                dict(probe.node.get_topic_names_and_types())), 10.0, "the bridge's topics"))
        for t in cams:
            assert names[t] == ["sensor_msgs/msg/Image"]
        assert names[T.SCAN] == ["sensor_msgs/msg/LaserScan"]
        assert names[T.SIM_STATUS] == ["std_msgs/msg/String"]
        assert names[T.SERVO_PWM] == ["sensor_msgs/msg/JointState"]  # the bridge listens for the motors

        probe.clear()
        t0 = time.monotonic()
        time.sleep(4.0)
        span = time.monotonic() - t0
        rates = {t: len(probe.get(t)) / span for t in (*cams, T.SCAN, T.SIM_STATUS)}
        print(f"rates ({'stereo' if bridge['stereo'] else 'mono'}): "
              + ", ".join(f"{t} {r:.1f} Hz" for t, r in rates.items()))
        for t in cams:
            assert 15 * 0.7 <= rates[t] <= 15 * 1.3, rates
        assert 10 * 0.7 <= rates[T.SCAN] <= 10 * 1.3, rates
        assert 2 * 0.5 <= rates[T.SIM_STATUS] <= 2 * 1.5, rates
        stamps = [m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for _, m in probe.get(cams[0])]
        assert all(b > a for a, b in zip(stamps, stamps[1:]))  # stamped now, each frame anew
        st = status_of(probe)
        assert st["laps"] == 0 and st["speed"] == 0.0 and st["status"] != "complete"  # no PWM yet: stopped


    def test_bridge_drives_from_pwm_and_stops(self, bridge):
        """PWM pulse widths through the inverted calibration move the sim car; neutral stops it."""
        from rclpy.qos import QoSProfile
        from sensor_msgs.msg import JointState

        from car.calibration import Calibration

        probe = bridge["probe"]
        cal = Calibration()
        pub = probe.node.create_publisher(JointState, T.SERVO_PWM, QoSProfile(depth=1))

        def send(steering: float, throttle: float) -> None:
            msg = JointState(name=["steering", "throttle"],
                             position=[float(cal.steering.to_pulse(steering)), float(cal.throttle.to_pulse(throttle))])
            msg.header.stamp = probe.node.get_clock().now().to_msg()
            pub.publish(msg)

        try:
            x0 = status_of(probe)["pose"]
            st_sim = status_of(probe)["sim_time"]
            end, moving = time.monotonic() + 10.0, None
            while time.monotonic() < end and moving is None:  # until the bridge has matched our publisher
                send(0.0, 0.25)  # 1 m/s at the default 4 m/s top speed
                time.sleep(0.05)
                st = status_of(probe)
                if st["speed"] > 0.5 and st["sim_time"] > st_sim + 0.5:
                    moving = st
                elif st["speed"] == 0.0:
                    st_sim = st["sim_time"]
            assert moving is not None, "the car never moved"
            assert moving["speed"] == pytest.approx(1.0, abs=0.05)
            assert abs(moving["command"][0]) < 1e-6 and moving["command"][1] == pytest.approx(1.0, abs=1e-6)
            assert np.hypot(moving["pose"][0] - x0[0], moving["pose"][1] - x0[1]) > 0.3
            send(0.0, 0.0)
            probe.wait_for(lambda: (s := status_of(probe)) and s["speed"] == 0.0, 3.0, "the car stopped")
            send(0.0, -1.0)  # reverse throttle: the bridge only drives forwards
            time.sleep(0.6)
            assert status_of(probe)["speed"] == 0.0
        finally:
            send(0.0, 0.0)
            probe.node.destroy_publisher(pub)


# ---- the full graph ---------------------------------------------------------------------------
def racer_car(*args: str, timeout: float = 180.0) -> subprocess.CompletedProcess:
    """`racer car ...` (the click group, as the lead registers it in racer.cli) in a subprocess."""
    code = "import sys; from racer.commands.car import car; sys.exit(car.main(prog_name='racer car'))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@needs_bundle
def test_full_graph_laps_the_oval(tmp_path):
    """(c) camera -> inference -> navigation -> control -> PWM -> sim: 3 clean laps of the oval."""
    t0 = time.monotonic()
    r = racer_car("up", str(CAR_SIM), "--model", str(BUNDLE), "--arg", "max_speed=1.0", "--arg",
                  "autonomous=true", "--arg", "laps=3", "--arg", "track=oval", "--run-dir", str(tmp_path),
                  "--domain-id", str(fresh_domain()), "--duration", "150")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads((tmp_path / "results.json").read_text())
    print(f"full graph: {took:.1f} s wall, lap times {res['lap_times']}, resets {res['resets']}")
    assert res["status"] == "complete", res
    assert res["laps_done"] == 3 and res["completion"] == 100.0
    assert [lap["completion"] for lap in res["laps"]] == [100.0] * 3
    assert "laps complete" in (tmp_path / "sim_bridge.log").read_text()
    for name in ("sim_bridge", "inference", "navigation", "control"):
        assert f"{name}" in r.stdout


def pwm_throttle(msg) -> float:
    return float(dict(zip(msg.name, msg.position))["throttle"])


@needs_bundle
def test_killing_inference_stops_the_car(tmp_path):
    """(d) SIGKILL the inference node mid-run: neutral throttle within 2 control periods."""
    from geometry_msgs.msg import TwistStamped
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from car.calibration import Calibration

    neutral = float(Calibration().throttle.to_pulse(0.0))
    nodes = parse_launch(CAR_SIM, {"model": str(BUNDLE), "track": "oval", "laps": "3", "max_speed": "1.0",
                                   "autonomous": "true", "run_dir": str(tmp_path)})
    domain = fresh_domain()
    probe = Probe({T.SERVO_CMD: TwistStamped, T.SERVO_PWM: JointState, T.SIM_STATUS: String}, domain)
    launch = start(nodes, tmp_path, domain_id=domain)
    try:
        probe.wait_for(lambda: (s := status_of(probe)) and s["speed"] > 0.3, 60.0, "the car driving", launch)
        # this probe hears the commands and the driving PWM for a while (discovery can lag under load)
        probe.wait_for(lambda: sum(abs(m.twist.linear.x) > 1e-6 for _, m in probe.get(T.SERVO_CMD)) >= 15 and
                       sum(abs(pwm_throttle(m) - neutral) > 1 for _, m in probe.get(T.SERVO_PWM)) >= 15,
                       20.0, "driving commands and PWM at the probe", launch)
        os.kill(launch.pid("inference"), signal.SIGKILL)
        killed = time.monotonic()
        probe.wait_for(lambda: launch.proc("inference").popen.poll() is not None, 5.0, "inference gone")
        time.sleep(2.0)
        launch.check(ignore=("inference",))
        cmds = [(t, m) for t, m in probe.get(T.SERVO_CMD) if abs(m.twist.linear.x) > 1e-6]
        pwms = probe.get(T.SERVO_PWM)
        assert cmds and pwms
        last_cmd = cmds[-1][0]
        assert any(abs(pwm_throttle(m) - neutral) > 1 for t, m in pwms if t < killed), \
            f"never drove: {[(round(t - killed, 3), pwm_throttle(m)) for t, m in pwms][:20]} neutral {neutral}"
        first_neutral = next(t for t, m in pwms if t > last_cmd and abs(pwm_throttle(m) - neutral) <= 1)
        after = [m for t, m in pwms if t >= first_neutral]
        gap = first_neutral - last_cmd
        print(f"watchdog: neutral PWM {gap * 1000:.0f} ms after the last command "
              f"({(first_neutral - killed) * 1000:.0f} ms after SIGKILL)")
        # the deadline is two control periods after the last command, which came before the kill;
        # 30 ms allows for DDS delivery to this probe on a loaded machine
        assert gap <= 2 * PERIOD + 0.03
        assert first_neutral - killed <= 2 * PERIOD + 0.03
        assert all(abs(pwm_throttle(m) - neutral) <= 1 for m in after)  # and it stays neutral
        probe.wait_for(lambda: (s := status_of(probe)) and s["speed"] == 0.0, 2.0, "the sim car standing")
    finally:
        probe.close()
        launch.stop()


@needs_bundle
def test_corrupt_bundle_is_refused_and_the_car_stays_still(tmp_path):
    """(e) A damaged model: `racer car up` refuses it by name; started anyway, nothing moves."""
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from car.calibration import Calibration

    bad = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bad)
    weights = bad / "model.bin"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    domain = fresh_domain()
    probe = Probe({T.SERVO_PWM: JointState, T.SIM_STATUS: String}, domain)
    try:
        r = racer_car("up", str(CAR_SIM), "--model", str(bad), "--arg", "max_speed=1.0", "--arg",
                      "autonomous=true", "--arg", "track=oval", "--run-dir", str(tmp_path / "run"),
                      "--domain-id", str(domain), "--duration", "5", timeout=60)
        out = r.stdout + r.stderr
        assert r.returncode != 0, out
        assert "refusing" in out and "model.bin" in out, out
        assert not list((tmp_path / "run").glob("*.log"))  # no node was started

        # the inference node's own refusal, when the graph is started without that check
        neutral = float(Calibration().throttle.to_pulse(0.0))
        nodes = parse_launch(CAR_SIM, {"model": str(bad), "track": "oval", "max_speed": "1.0",
                                       "autonomous": "true", "run_dir": str(tmp_path / "direct")})
        launch = start(nodes, tmp_path / "direct", domain_id=domain)
        try:
            probe.wait_for(lambda: status_of(probe), 30.0, "the sim bridge's status")
            time.sleep(4.0)
        finally:
            launch.stop()
        moving = [m for _, m in probe.get(T.SERVO_PWM) if abs(pwm_throttle(m) - neutral) > 1]
        assert not moving, f"non-neutral throttle with a corrupt model: {pwm_throttle(moving[0])}"
        assert all(json.loads(m.data)["speed"] == 0.0 for _, m in probe.get(T.SIM_STATUS))
        log = (tmp_path / "direct" / "inference.log").read_text()
        assert "model.bin" in log, log
    finally:
        probe.close()


@needs_bundle
@pytest.mark.slow
def test_full_graph_runs_an_object_avoidance_race(tmp_path):
    """The bridge runs any race: the time-trial oval model meets a box through the ROS 2 graph.  It was
    never trained to avoid one, so it hits it; the crash is counted and the car is put back behind it."""
    race_yaml = tmp_path / "race.yaml"
    race_yaml.write_text("OBJECT_POSITIONS: '0.3,1'\n")
    r = racer_car("up", str(CAR_SIM), "--model", str(BUNDLE), "--arg", "max_speed=1.0", "--arg",
                  "autonomous=true", "--arg", "laps=1", "--arg", "track=oval", "--arg", "race=object-avoidance",
                  "--arg", f"race_config={race_yaml}", "--run-dir", str(tmp_path / "run"),
                  "--domain-id", str(fresh_domain()), "--duration", "25")
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    print(f"object avoidance through the graph: completion {res['completion']:.0f} %, crashed {res['crashed']}")
    assert res["race"] == "object-avoidance" and res["crashed"] >= 1 and res["completion"] > 10.0
