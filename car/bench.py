"""The car stack's latency benchmark: sensor message -> PWM command through the ROS 2 graph,
driven by the simulator (figures, not tests)."""
from __future__ import annotations

import random
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from car import topics as T
from car.launcher import find_launch_file, parse_launch, start
from car.nodes.common import make_executor, stamp_ns
from car.rosenv import apply_safe_ros_env


def bench_car_latency(bundle_dir, seconds: float = 10.0, track: str = "oval", max_speed: float = 1.0,
                      warmup: float = 2.0) -> dict:
    """Sensor-to-motor latency of the car stack against the simulator: p50/p99 (ms) from a sensor
    message's header stamp (the sim bridge stamps each camera frame when it publishes it; the
    stamp is copied along inference -> navigation -> control) to the SERVO_PWM message carrying
    it reaching a subscriber here.  Each sensor stamp counts once (its first PWM message); PWM
    messages with other stamps (the watchdog's neutral, start-up) are not counted.

    Starts nodes: call it inside a private network namespace with only loopback (as the car
    tests do); the graph and this process use a localhost-only ROS environment.
    """
    domain = random.randint(1, 101)
    apply_safe_ros_env(domain_id=domain)
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image, JointState, LaserScan

    launch_file = find_launch_file("car_sim.launch.yaml")
    with tempfile.TemporaryDirectory(prefix="racer-bench-car-") as tmp:
        nodes = parse_launch(launch_file, {"model": str(Path(bundle_dir).resolve()), "track": track, "laps": "1000",
                                           "max_speed": repr(float(max_speed)), "autonomous": "true",
                                           "run_dir": tmp})
        ctx = rclpy.Context()
        rclpy.init(context=ctx, domain_id=domain)
        node = Node("bench_car_latency", context=ctx)
        seen: dict[int, float] = {}  # sensor stamp (ns) -> latency (s)
        sensor_stamps: set[int] = set()
        state = {"record": False}

        def on_sensor(msg) -> None:
            sensor_stamps.add(stamp_ns(msg.header.stamp))

        def on_pwm(msg) -> None:
            now = node.get_clock().now().nanoseconds
            stamp = stamp_ns(msg.header.stamp)
            if state["record"] and stamp in sensor_stamps and stamp not in seen:
                seen[stamp] = (now - stamp) * 1e-9

        qos = QoSProfile(depth=50)
        for topic in (*T.camera_topics(False), *T.camera_topics(True)):
            node.create_subscription(Image, topic, on_sensor, qos)
        node.create_subscription(LaserScan, T.SCAN, on_sensor, qos)
        node.create_subscription(JointState, T.SERVO_PWM, on_pwm, qos)
        executor = make_executor(ctx)  # as the nodes spin
        executor.add_node(node)
        spin = threading.Thread(target=lambda: _spin_until_shutdown(executor, ctx), daemon=True)
        spin.start()
        launch = start(nodes, tmp, domain_id=domain)
        try:
            t_end = time.monotonic() + 60.0
            while not seen and time.monotonic() < t_end:  # the graph is up when stamped PWM flows
                state["record"] = True
                launch.wait(0.2)
            if not seen:
                raise RuntimeError(f"no stamped SERVO_PWM within 60 s; logs in {tmp}")
            launch.wait(warmup)
            seen.clear()
            launch.wait(seconds)
            state["record"] = False
            lat = np.array(list(seen.values()))
        finally:
            launch.stop()
            executor.shutdown(timeout_sec=1.0)
            node.destroy_node()
            rclpy.try_shutdown(context=ctx)
            spin.join(2.0)
    if len(lat) == 0:
        raise RuntimeError("no stamped SERVO_PWM messages while measuring")
    return {"p50_ms": float(np.percentile(lat, 50) * 1e3), "p99_ms": float(np.percentile(lat, 99) * 1e3),
            "n": int(len(lat)), "rate_hz": len(lat) / seconds}


def _spin_until_shutdown(executor, ctx) -> None:
    try:
        while ctx.ok():
            executor.spin_once(timeout_sec=0.05)
    except Exception:  # the context was shut down under us
        pass
