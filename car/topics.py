"""The car stack's ROS 2 interface: topic names, message types, QoS. Standard messages only,
so `ros2 topic list/echo/hz` and any rclpy subscriber can inspect the running graph.

    camera_node / sim_bridge ─ /camera/image_raw (mono) or /camera/left|right/image_raw ─┐
    lidar_node  / sim_bridge ─ /scan ────────────────────────────────────────────────────┤
    inference_node ─ /inference/action ─> navigation_node ─ /servo/cmd ─> control_node ─ /servo/pwm ─> sim_bridge
"""
from __future__ import annotations

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

CAMERA_MONO = "/camera/image_raw"  # sensor_msgs/Image, rgb8, as the camera driver delivers it
CAMERA_LEFT = "/camera/left/image_raw"
CAMERA_RIGHT = "/camera/right/image_raw"
SCAN = "/scan"  # sensor_msgs/LaserScan, car frame: 0 rad = straight ahead, counter-clockwise
ACTION = "/inference/action"  # sensor_msgs/JointState: the model's output row in `position`,
#                               names action_0..N-1 (probabilities) or steering, speed (continuous);
#                               header.stamp = the camera frame's stamp; empty = no model (stop)
SERVO_CMD = "/servo/cmd"  # geometry_msgs/TwistStamped: angular.z steering, linear.x throttle, both [-1, 1]
SERVO_PWM = "/servo/pwm"  # sensor_msgs/JointState: names steering, throttle; position = pulse widths (ns)
SIM_STATUS = "/sim/status"  # std_msgs/String, JSON: laps, lap_times, progress, resets (sim bridge only)

# perception: never work through stale frames
SENSOR_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
COMMAND_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)

CONTROL_HZ = 15.0  # one command per camera frame
WATCHDOG_PERIODS = 2  # control stops the car when no fresh command came within this many periods


def graph_topics(execs: set[str], sensors: list[str]) -> list[tuple[str, str]]:
    """The topics (name, type) a graph of these node executables uses for a car with `sensors`."""
    sim = "sim_bridge_node" in execs
    out = []
    if sim or "camera_node" in execs:
        out += [(t, "sensor_msgs/msg/Image") for t in camera_topics("STEREO_CAMERAS" in sensors)]
    if sim or "lidar_node" in execs:
        out.append((SCAN, "sensor_msgs/msg/LaserScan"))
    for exe, topic, kind in (("inference_node", ACTION, "sensor_msgs/msg/JointState"),
                             ("navigation_node", SERVO_CMD, "geometry_msgs/msg/TwistStamped"),
                             ("control_node", SERVO_PWM, "sensor_msgs/msg/JointState"),
                             ("sim_bridge_node", SIM_STATUS, "std_msgs/msg/String")):
        if exe in execs:
            out.append((topic, kind))
    return out


def camera_topics(stereo: bool) -> tuple[str, ...]:
    """The image topics of a mono or stereo car, left first."""
    return (CAMERA_LEFT, CAMERA_RIGHT) if stereo else (CAMERA_MONO,)
