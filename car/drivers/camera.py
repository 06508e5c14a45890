"""Cameras: `read()` -> one RGB uint8 frame (H, W, 3).

`V4L2Camera` reads a USB/CSI camera through OpenCV's V4L2 backend (the DeepRacer's cameras
are UVC devices at /dev/video0 and /dev/video1); `FrameSourceCamera` wraps any callable, for
tests and bridges.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np


class CameraError(RuntimeError):
    """A camera that cannot be opened or read; the message names the device."""


@runtime_checkable
class Camera(Protocol):
    def read(self) -> np.ndarray:
        """The next frame: (H, W, 3) uint8 RGB."""

    def close(self) -> None:
        """Release the device."""


def check_frame(frame, where: str) -> np.ndarray:
    """An (H, W, 3) uint8 array, or CameraError naming `where`."""
    a = np.asarray(frame)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or a.shape[0] == 0 or a.shape[1] == 0:
        raise CameraError(f"{where}: expected an (H, W, 3) uint8 RGB frame, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


class FrameSourceCamera:
    """A camera whose frames come from `source()` (an (H, W, 3) uint8 RGB array each call)."""

    def __init__(self, source: Callable[[], np.ndarray], name: str = "frame source"):
        self.source, self.name = source, name

    def read(self) -> np.ndarray:
        return check_frame(self.source(), self.name)

    def close(self) -> None:
        pass


class V4L2Camera:
    """A V4L2 device read with OpenCV (pip package opencv-python-headless)."""

    def __init__(self, device: str | int = "/dev/video0", width: int = 640, height: int = 480, fps: float = 15.0):
        try:
            import cv2
        except ImportError:
            raise CameraError(f"{device}: V4L2Camera needs OpenCV, and the Python package 'opencv-python-headless' "
                              "(import cv2) is not installed; pip install opencv-python-headless") from None
        self._cv2 = cv2
        self.device = device
        dev = int(device) if isinstance(device, str) and device.isdigit() else device
        self.cap = cv2.VideoCapture(dev, cv2.CAP_V4L2)
        if not self.cap.isOpened():
            raise CameraError(f"{device}: cannot open the camera (is it plugged in, and readable by this user?)")
        self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.cap.set(cv2.CAP_PROP_FPS, fps)
        self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones

    def read(self) -> np.ndarray:
        ok, bgr = self.cap.read()
        if not ok or bgr is None:
            raise CameraError(f"{self.device}: no frame (the camera stopped delivering)")
        if bgr.ndim == 2:
            bgr = self._cv2.cvtColor(bgr, self._cv2.COLOR_GRAY2BGR)
        return check_frame(bgr[..., ::-1], str(self.device))

    def close(self) -> None:
        self.cap.release()
