"""lidar_node: the car's LIDAR -> sensor_msgs/LaserScan on SCAN at 10 Hz, car frame
(0 rad = straight ahead, counter-clockwise).

Parameters: port (RPLIDAR A1 serial port), baudrate, bins (angle steps per revolution),
mount_yaw_deg (where the sensor's 0 degrees points in the car frame; 180 = backwards, as on
the DeepRacer), range_min, range_max, rate_hz.
"""
from __future__ import annotations

from rclpy.node import Node
from sensor_msgs.msg import LaserScan

from car import topics as T
from car.drivers.lidar import Lidar, LidarError, SerialLidar
from car.nodes.common import (Param, StartupError, ThrottledLog, best_effort, declare_params, in_range, run_node,
                              scan_to_msg)

PARAMS = [
    Param("port", "/dev/ttyUSB0", "serial port of the RPLIDAR"),
    Param("baudrate", 115200, "serial baud rate (RPLIDAR A1: 115200)", lambda v: None if v > 0 else "must be > 0"),
    Param("bins", 360, "angle steps per revolution in the published scan", in_range(8, 8192)),
    Param("mount_yaw_deg", 180.0, "direction of the sensor's 0 deg in the car frame (CCW from ahead)",
          in_range(-360.0, 360.0)),
    Param("range_min", 0.15, "m", in_range(0.0, 100.0)),
    Param("range_max", 12.0, "m", in_range(0.1, 100.0)),
    Param("rate_hz", 10.0, "scans per second", in_range(0.1, 100.0)),
]


class LidarNode(Node):
    """Publishes one scan per tick.  `lidar`: a driver to use instead of opening `port`."""

    def __init__(self, lidar: Lidar | None = None, **kwargs):
        super().__init__("lidar", **kwargs)
        p = declare_params(self, PARAMS)
        self.range_min, self.range_max, self.rate = p["range_min"], p["range_max"], p["rate_hz"]
        if lidar is None:
            try:
                lidar = SerialLidar(p["port"], p["baudrate"], p["bins"], p["mount_yaw_deg"])
            except LidarError as exc:
                raise StartupError(str(exc)) from None
        self.lidar = lidar
        self.pub = self.create_publisher(LaserScan, T.SCAN, T.SENSOR_QOS)
        self.scans = 0
        self.errors = 0
        self.log = ThrottledLog(self.get_logger())
        self.timer = self.create_timer(1.0 / self.rate, self._tick)
        self.get_logger().info(f"lidar: {type(lidar).__name__} -> {T.SCAN} at {self.rate:g} Hz")

    def _tick(self) -> None:
        try:
            ranges, amin, inc = self.lidar.read()
        except LidarError as exc:
            self.errors += 1
            self.log.error("read", f"lidar read failed ({self.errors} so far): {exc}")
            return
        stamp = self.get_clock().now().to_msg()
        self.pub.publish(scan_to_msg(ranges, amin, inc, stamp, "laser", self.range_min, self.range_max,
                                     1.0 / self.rate))
        self.scans += 1

    def shutdown(self) -> None:
        best_effort(self, "closing the lidar", self.lidar.close)


def main(args=None) -> None:
    run_node(LidarNode, args, name="lidar")


if __name__ == "__main__":
    main()
