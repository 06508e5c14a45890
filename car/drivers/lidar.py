"""LIDARs: `read()` -> (ranges m, angle_min rad, angle_increment rad), in the CAR frame
(0 rad = straight ahead, counter-clockwise), as sensor_msgs/LaserScan carries them.

`SerialLidar` speaks the RPLIDAR A1 serial protocol (pyserial): the SCAN request 0xA5 0x20,
the 7-byte response descriptor A5 5A 05 00 00 40 81, then 5-byte measurement packets

    byte 0   quality << 2 | !S << 1 | S      S = 1 on the first packet of a revolution
    byte 1   angle_q6[6:0] << 1 | C           C = 1 (check bit)
    byte 2   angle_q6[14:7]                   angle = angle_q6 / 64 degrees, CLOCKWISE
    byte 3-4 distance_q2 (little endian)      distance = distance_q2 / 4 mm (0 = no return)

One revolution is binned into `bins` equal angle steps round the car (nearest return per
bin; bins without a return read +inf, which the observation contract reads as "nothing").
`mount_yaw_deg` is where the sensor's 0 degrees points in the car frame: 180 = backwards,
as on the DeepRacer (contract section 4).  `FakeLidar` wraps a callable, for tests.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

SYNC, CMD_SCAN, CMD_STOP = 0xA5, 0x20, 0x25
SCAN_DESCRIPTOR = bytes([0xA5, 0x5A, 0x05, 0x00, 0x00, 0x40, 0x81])
PACKET = 5


class LidarError(RuntimeError):
    """A LIDAR that cannot be opened or read; the message names the port."""


@runtime_checkable
class Lidar(Protocol):
    def read(self) -> tuple[np.ndarray, float, float]:
        """The next full scan: (ranges m, angle_min rad, angle_increment rad), car frame."""

    def close(self) -> None:
        """Stop the sensor and release the port."""


class FakeLidar:
    """A LIDAR whose scans come from `source()` -> (ranges, angle_min, angle_increment)."""

    def __init__(self, source: Callable[[], tuple], name: str = "fake lidar"):
        self.source, self.name = source, name

    def read(self) -> tuple[np.ndarray, float, float]:
        ranges, amin, inc = self.source()
        r = np.asarray(ranges, dtype=np.float32).reshape(-1)
        if r.size == 0 or not inc > 0:
            raise LidarError(f"{self.name}: a scan needs ranges and a positive angle_increment")
        return r, float(amin), float(inc)

    def close(self) -> None:
        pass


# ---- the RPLIDAR protocol (pure) --------------------------------------------------------------
def parse_packet(pkt: bytes) -> tuple[bool, int, float, float] | None:
    """One 5-byte measurement -> (start, quality, angle deg clockwise, distance m); None if the
    check bits say it is not a packet boundary."""
    b0, b1, b2, b3, b4 = pkt[:PACKET]
    start, inv = b0 & 1, (b0 >> 1) & 1
    if start == inv or not (b1 & 1):
        return None
    angle_q6 = (b1 >> 1) | (b2 << 7)
    dist_q2 = b3 | (b4 << 8)
    return bool(start), b0 >> 2, angle_q6 / 64.0, dist_q2 / 4000.0


def encode_packet(start: bool, quality: int, angle_deg: float, distance_m: float) -> bytes:
    """The inverse of parse_packet (for tests and fake devices)."""
    q6 = int(round(angle_deg * 64.0)) & 0x7FFF
    d = min(0xFFFF, int(round(distance_m * 4000.0)))
    s = 1 if start else 0
    return bytes([((quality & 0x3F) << 2) | ((1 - s) << 1) | s, ((q6 & 0x7F) << 1) | 1, q6 >> 7, d & 0xFF, d >> 8])


class ScanParser:
    """Bytes in, complete revolutions out; resynchronises on damaged packets."""

    def __init__(self):
        self.buf = bytearray()
        self.current: list[tuple[int, float, float]] = []
        self.started = False  # the first S flag not seen yet: the partial revolution is dropped
        self.dropped = 0  # bytes skipped to resynchronise

    def feed(self, data: bytes) -> list[list[tuple[int, float, float]]]:
        """Append bytes; return the revolutions they completed, oldest first, each a list of
        (quality, angle deg clockwise, distance m)."""
        self.buf += data
        done = []
        i = 0
        n = len(self.buf)
        while n - i >= PACKET:
            m = parse_packet(self.buf[i:i + PACKET])
            if m is None:
                i += 1
                self.dropped += 1
                continue
            i += PACKET
            start, quality, angle, dist = m
            if start:
                if self.started and self.current:
                    done.append(self.current)
                self.current = []
                self.started = True
            if self.started:
                self.current.append((quality, angle, dist))
        del self.buf[:i]
        return done


def revolution_to_scan(points, bins: int = 360, mount_yaw_deg: float = 180.0,
                       range_min: float = 0.15, range_max: float = 12.0) -> tuple[np.ndarray, float, float]:
    """(quality, angle deg clockwise, distance m) samples -> ranges over `bins` equal steps from
    -pi, car frame; the nearest valid return per bin, +inf where none."""
    inc = 2 * math.pi / bins
    amin = -math.pi
    ranges = np.full(bins, np.inf, dtype=np.float32)
    if not points:
        return ranges, amin, inc
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    quality, angle, dist = p[:, 0], p[:, 1], p[:, 2]
    ok = (quality > 0) & (dist >= range_min) & (dist <= range_max)
    car = np.deg2rad(mount_yaw_deg - angle[ok])  # clockwise sensor angle -> CCW car angle
    idx = np.rint(((car - amin) % (2 * math.pi)) / inc).astype(int) % bins
    np.minimum.at(ranges, idx, dist[ok].astype(np.float32))
    return ranges, amin, inc


# ---- the serial device ------------------------------------------------------------------------
class SerialLidar:
    """An RPLIDAR A1 on a serial port (115200 baud).  `serial_port`: an open pyserial-like object
    (read, write, in_waiting, reset_input_buffer, close), for tests; default: open `port`."""

    def __init__(self, port: str = "/dev/ttyUSB0", baudrate: int = 115200, bins: int = 360,
                 mount_yaw_deg: float = 180.0, timeout: float = 1.0, serial_port=None):
        self.port, self.bins, self.mount_yaw_deg, self.timeout = port, int(bins), float(mount_yaw_deg), timeout
        if serial_port is None:
            try:
                import serial
            except ImportError:
                raise LidarError(f"{port}: SerialLidar needs the Python package 'pyserial' (import serial), "
                                 "which is not installed; pip install pyserial") from None
            try:
                serial_port = serial.Serial(port, baudrate, timeout=0.1)
            except (serial.SerialException, OSError) as exc:
                raise LidarError(f"{port}: cannot open the LIDAR's serial port ({exc})") from None
        self.ser = serial_port
        self.parser = ScanParser()
        self._start()

    def _send(self, cmd: int) -> None:
        self.ser.write(bytes([SYNC, cmd]))

    def _start(self) -> None:
        try:
            self.ser.dtr = False  # the A1's USB adapter: DTR low = motor on
        except (AttributeError, OSError):
            pass
        self._send(CMD_STOP)
        time.sleep(0.01)
        self.ser.reset_input_buffer()
        self._send(CMD_SCAN)
        desc = self._read_exact(len(SCAN_DESCRIPTOR))
        if desc != SCAN_DESCRIPTOR:
            raise LidarError(f"{self.port}: unexpected answer to the SCAN request: {desc.hex(' ') or 'nothing'} "
                             f"(expected {SCAN_DESCRIPTOR.hex(' ')}; is this an RPLIDAR at the right baud rate?)")

    def _read_exact(self, n: int) -> bytes:
        out = bytearray()
        end = time.monotonic() + self.timeout
        while len(out) < n and time.monotonic() < end:
            out += self.ser.read(n - len(out))
        return bytes(out)

    def read(self) -> tuple[np.ndarray, float, float]:
        """The newest complete revolution (waits for one, up to `timeout` s)."""
        end = time.monotonic() + self.timeout
        while True:
            try:
                waiting = getattr(self.ser, "in_waiting", 0) or 0
                data = self.ser.read(max(waiting, PACKET))
            except OSError as exc:  # pyserial's SerialException too: unplugged, ...
                raise LidarError(f"{self.port}: read failed ({exc})") from None
            revs = self.parser.feed(data)
            if revs:
                return revolution_to_scan(revs[-1], self.bins, self.mount_yaw_deg)
            if time.monotonic() > end:
                raise LidarError(f"{self.port}: no complete revolution within {self.timeout} s "
                                 f"(is the motor spinning?)")

    def close(self) -> None:
        try:
            self._send(CMD_STOP)
            self.ser.dtr = True  # motor off
        except (AttributeError, OSError):
            pass
        self.ser.close()
