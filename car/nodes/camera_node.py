"""camera_node: the car's camera(s) -> sensor_msgs/Image rgb8 at 15 Hz.

Parameters: stereo (false: one camera on CAMERA_MONO; true: left on CAMERA_LEFT, right on
CAMERA_RIGHT, both frames of a tick with ONE stamp, so inference can pair them), device,
right_device (V4L2 devices), width, height (capture size), rate_hz.
"""
from __future__ import annotations

from rclpy.node import Node
from sensor_msgs.msg import Image

from car import topics as T
from car.drivers.camera import Camera, CameraError, V4L2Camera
from car.nodes.common import (Param, StartupError, ThrottledLog, best_effort, declare_params, in_range, rgb_to_image,
                              run_node)

PARAMS = [
    Param("stereo", False, "two cameras (STEREO_CAMERAS): left = device, right = right_device"),
    Param("device", "/dev/video0", "V4L2 device of the (left) camera"),
    Param("right_device", "/dev/video1", "V4L2 device of the right camera (stereo)"),
    Param("width", 640, "capture width (px)", lambda v: None if v > 0 else "must be > 0"),
    Param("height", 480, "capture height (px)", lambda v: None if v > 0 else "must be > 0"),
    Param("rate_hz", T.CONTROL_HZ, "frames per second", in_range(0.1, 120.0)),
]


class CameraNode(Node):
    """Publishes the camera frame(s) every 1/rate_hz s.  `cameras`: drivers to use instead of
    opening the devices (left first), for tests and bridges."""

    def __init__(self, cameras: list[Camera] | None = None, **kwargs):
        super().__init__("camera", **kwargs)
        p = declare_params(self, PARAMS)
        self.stereo = bool(p["stereo"])
        self.topics = T.camera_topics(self.stereo)
        if cameras is None:
            devices = [p["device"], p["right_device"]] if self.stereo else [p["device"]]
            cameras = []
            try:
                for dev in devices:
                    cameras.append(V4L2Camera(dev, p["width"], p["height"], p["rate_hz"]))
            except CameraError as exc:
                for cam in cameras:
                    cam.close()
                raise StartupError(str(exc)) from None
        if len(cameras) != len(self.topics):
            raise StartupError(f"{'stereo' if self.stereo else 'mono'}: {len(self.topics)} camera(s) needed, "
                               f"got {len(cameras)}")
        self.cameras = list(cameras)
        self.frame_ids = ("camera_left", "camera_right") if self.stereo else ("camera",)
        self.pubs = [self.create_publisher(Image, t, T.SENSOR_QOS) for t in self.topics]
        self.frames = 0
        self.errors = 0
        self.log = ThrottledLog(self.get_logger())
        self.timer = self.create_timer(1.0 / p["rate_hz"], self._tick)
        self.get_logger().info(f"camera: {len(self.cameras)} camera(s) -> {', '.join(self.topics)} at "
                               f"{p['rate_hz']:g} Hz")

    def _tick(self) -> None:
        try:
            frames = [cam.read() for cam in self.cameras]
        except CameraError as exc:
            self.errors += 1
            self.log.error("read", f"camera read failed ({self.errors} so far): {exc}")
            return
        stamp = self.get_clock().now().to_msg()  # one stamp for both frames of a stereo tick
        for pub, frame, fid in zip(self.pubs, frames, self.frame_ids):
            pub.publish(rgb_to_image(frame, stamp, fid))
        self.frames += 1

    def shutdown(self) -> None:
        for cam in self.cameras:
            best_effort(self, "closing a camera", cam.close)


def main(args=None) -> None:
    run_node(CameraNode, args, name="camera")


if __name__ == "__main__":
    main()
