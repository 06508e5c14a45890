"""The car's calibration and its hardware drivers with fake devices (no ROS graph, no network):
pulse mapping, the file and its refusals, sysfs PWM, the RPLIDAR protocol, cameras, messages."""
from __future__ import annotations

import json

import numpy as np
import pytest

from car.calibration import Calibration, CalibrationError, Channel, load, save
from car.drivers.camera import CameraError, FrameSourceCamera, V4L2Camera
from car.drivers.lidar import (SCAN_DESCRIPTOR, FakeLidar, LidarError, ScanParser, SerialLidar, encode_packet,
                               parse_packet, revolution_to_scan)
from car.drivers.pwm import FakePwmDir, PwmError, SysfsPwm, is_sysfs


# ---- calibration ------------------------------------------------------------------------------
def test_defaults_are_deepracers():
    c = Calibration()
    assert (c.steering.min_ns, c.steering.mid_ns, c.steering.max_ns, c.steering.polarity) == \
        (1_200_000, 1_450_000, 1_700_000, 1)
    assert (c.throttle.min_ns, c.throttle.mid_ns, c.throttle.max_ns, c.throttle.polarity) == \
        (1_311_000, 1_446_000, 1_603_500, -1)
    assert c.neutral() == (1_450_000, 1_446_000)


def test_to_pulse_is_piecewise_linear_through_mid_with_polarity_and_clipping():
    s, t = Calibration().steering, Calibration().throttle
    assert [s.to_pulse(v) for v in (-1, -0.5, 0, 0.5, 1)] == [1_200_000, 1_325_000, 1_450_000, 1_575_000, 1_700_000]
    assert s.to_pulse(7) == 1_700_000 and s.to_pulse(-7) == 1_200_000 and s.to_pulse(float("nan")) == 1_450_000
    # polarity -1: forward throttle is the SHORT pulse, and each half has its own span
    assert t.to_pulse(1.0) == 1_311_000 and t.to_pulse(-1.0) == 1_603_500 and t.to_pulse(0.0) == 1_446_000
    assert t.to_pulse(0.5) == 1_446_000 - 67_500 and t.to_pulse(-0.5) == 1_446_000 + 78_750
    assert isinstance(t.to_pulse(0.3), int)


def test_from_pulse_inverts_to_pulse():
    for ch in (Calibration().steering, Calibration().throttle, Channel(1_000_000, 1_100_000, 2_000_000, -1)):
        for v in np.linspace(-1, 1, 41):
            assert ch.from_pulse(ch.to_pulse(v)) == pytest.approx(v, abs=1e-5)
        assert ch.from_pulse(ch.mid_ns) == 0.0
        assert ch.from_pulse(100) == pytest.approx(-ch.polarity) and ch.from_pulse(10**8) == pytest.approx(ch.polarity)


def test_save_load_round_trip(tmp_path):
    cal = Calibration(Channel(1_100_000, 1_500_000, 1_900_000, -1), Channel(1_300_000, 1_450_000, 1_600_000, 1))
    save(cal, tmp_path / "cal.json")
    assert load(tmp_path / "cal.json") == cal
    assert Calibration.load(tmp_path / "cal.json") == cal
    cal.save(tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text())["steering"] == \
        {"min_ns": 1_100_000, "mid_ns": 1_500_000, "max_ns": 1_900_000, "polarity": -1}
    (tmp_path / "partial.json").write_text('{"steering": {"mid_ns": 1460000.0}}')
    part = load(tmp_path / "partial.json")  # missing keys and channels take the defaults
    assert part.steering.mid_ns == 1_460_000 and part.throttle == Calibration().throttle


@pytest.mark.parametrize("data, key, words", [
    ({"steering": {"min_ns": 1_500_000}}, "steering.mid_ns", "above min_ns"),
    ({"throttle": {"max_ns": 1_400_000}}, "throttle.max_ns", "above mid_ns"),
    ({"steering": {"polarity": 0}}, "steering.polarity", "1 or -1"),
    ({"steering": {"polarity": True}}, "steering.polarity", "1 or -1"),
    ({"throttle": {"min_ns": 400_000}}, "throttle.min_ns", "outside 500000..2500000"),
    ({"throttle": {"max_ns": 2_600_000}}, "throttle.max_ns", "outside"),
    ({"steering": {"mid_ns": 1_450_000.5}}, "steering.mid_ns", "integer"),
    ({"steering": {"mid_ns": "1450000"}}, "steering.mid_ns", "integer"),
    ({"steering": {"centre": 1}}, "steering.centre", "unknown key"),
    ({"brake": {}}, "'brake'", "unknown key"),
    ({"steering": [1, 2, 3]}, "steering", "expected an object"),
    ([1], "", "expected an object"),
])
def test_load_refuses_bad_values_naming_file_and_key(tmp_path, data, key, words):
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError) as err:
        load(path)
    msg = str(err.value)
    assert msg.startswith(str(path)) and key in msg and words in msg, msg


def test_load_refuses_missing_and_broken_files(tmp_path):
    with pytest.raises(CalibrationError, match="no such calibration file"):
        load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text('{"steering": ')
    with pytest.raises(CalibrationError, match=r"bad\.json: invalid JSON at line 1"):
        load(tmp_path / "bad.json")
    with pytest.raises(CalibrationError, match="polarity"):
        Channel(1_200_000, 1_450_000, 1_700_000, 2)


# ---- PWM --------------------------------------------------------------------------------------
def test_sysfs_pwm_on_a_fake_tree(tmp_path):
    fake = FakePwmDir.create(tmp_path, chip=0, channels=2)
    assert not is_sysfs(tmp_path) and is_sysfs("/sys/class/pwm")
    pwm = SysfsPwm(0, 1, root=tmp_path)
    assert fake.period(1) == 20_000_000 and not fake.enabled(1)  # enabled by the first pulse only
    pwm.set_pulse_ns(1_446_000)
    assert fake.duty_cycle(1) == 1_446_000 and fake.enabled(1) and pwm.pulse_ns() == 1_446_000
    pwm.set_pulse_ns(1_311_000)
    assert fake.duty_cycle(1) == 1_311_000 and fake.duty_cycle(0) == 0
    with pytest.raises(ValueError, match="outside"):
        pwm.set_pulse_ns(30_000_000)
    SysfsPwm(tmp_path / "pwmchip0", 0)  # a chip directory works too
    with pytest.raises(PwmError, match="pwmchip3: no such PWM chip"):
        SysfsPwm(3, 0, root=tmp_path)
    with pytest.raises(PwmError, match="did not appear after exporting channel 5"):
        SysfsPwm(0, 5, root=tmp_path, export_timeout=0.05)  # a fake tree has no kernel to export
    assert (tmp_path / "pwmchip0" / "export").read_text() == "5"


# ---- cameras ----------------------------------------------------------------------------------
def test_frame_source_camera_checks_frames():
    frame = np.zeros((4, 6, 3), np.uint8)
    assert FrameSourceCamera(lambda: frame).read().shape == (4, 6, 3)
    with pytest.raises(CameraError, match=r"expected an \(H, W, 3\) uint8"):
        FrameSourceCamera(lambda: np.zeros((4, 6), np.uint8), "cam").read()


def test_v4l2_camera_without_opencv_names_the_package(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_cv2(name, *a, **k):
        if name == "cv2":
            raise ImportError("no cv2")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_cv2)
    with pytest.raises(CameraError, match="opencv-python-headless"):
        V4L2Camera("/dev/video0")


# ---- RPLIDAR ----------------------------------------------------------------------------------
def test_packet_encoding_round_trip_and_check_bits():
    pkt = encode_packet(True, 47, 123.453125, 2.5)
    assert parse_packet(pkt) == (True, 47, 123.453125, 2.5)
    assert parse_packet(encode_packet(False, 15, 359.984375, 0.0)) == (False, 15, 359.984375, 0.0)
    assert parse_packet(bytes([pkt[0] ^ 0b01, *pkt[1:]])) is None  # S == !S
    assert parse_packet(bytes([pkt[0], pkt[1] & 0xFE, *pkt[2:]])) is None  # C bit clear


def revolution(n=360, dist=lambda a: 1.0 + a / 360.0, quality=40):
    return b"".join(encode_packet(i == 0, quality, a, dist(a)) for i, a in enumerate(np.arange(n) * 360.0 / n))


def test_parser_splits_revolutions_and_resyncs():
    parser = ScanParser()
    data = revolution(100)[7:] + b"\x00\x13" + revolution(100) + revolution(100)[:5]  # partial, junk, full, start
    revs = []
    for i in range(0, len(data), 37):  # arbitrary chunking
        revs += parser.feed(data[i:i + 37])
    assert len(revs) == 1 and len(revs[0]) == 100  # the leading partial revolution is dropped
    assert revs[0][0] == (40, 0.0, 1.0) and parser.dropped > 0


def test_revolution_to_scan_in_the_car_frame():
    # the sensor's 0 deg points backwards (mount 180), its angles run clockwise
    points = [(40, 0.0, 2.0), (40, 90.0, 3.0), (40, 270.0, 4.0), (0, 45.0, 5.0), (40, 180.0, 0.0)]
    ranges, amin, inc = revolution_to_scan(points, bins=360, mount_yaw_deg=180.0)
    assert len(ranges) == 360 and amin == pytest.approx(-np.pi) and inc == pytest.approx(np.pi / 180)

    def at(deg):  # range in the car-frame direction `deg` (CCW from ahead)
        return ranges[int(round((np.deg2rad(deg) - amin) / inc)) % 360]

    assert at(180) == 2.0  # straight behind
    assert at(90) == 3.0  # sensor 90 deg clockwise from the rear = the car's left
    assert at(-90) == 4.0
    assert np.isinf(at(135)) and np.isinf(at(0))  # quality 0 and distance 0 are no return
    assert np.isfinite(ranges).sum() == 3


class FakeSerial:
    """A pyserial stand-in that answers SCAN with the descriptor and then `stream`."""

    def __init__(self, stream: bytes, descriptor: bytes = SCAN_DESCRIPTOR):
        self.written, self.out, self.stream, self.descriptor = [], bytearray(), stream, descriptor
        self.dtr, self.closed = True, False

    def write(self, b):
        self.written.append(bytes(b))
        if bytes(b) == b"\xa5\x20":
            self.out += self.descriptor + self.stream

    @property
    def in_waiting(self):
        return len(self.out)

    def read(self, n):
        chunk = bytes(self.out[:n])
        del self.out[:n]
        return chunk

    def reset_input_buffer(self):
        self.out.clear()

    def close(self):
        self.closed = True


def test_serial_lidar_reads_a_revolution():
    ser = FakeSerial(revolution(720, dist=lambda a: 0.5 + a / 100.0) + revolution(720)[:5])
    lidar = SerialLidar("/dev/fake", serial_port=ser, timeout=0.2)
    assert ser.written[:2] == [b"\xa5\x25", b"\xa5\x20"] and ser.dtr is False  # stop, scan; motor on
    ranges, amin, inc = lidar.read()
    assert len(ranges) == 360
    behind = int(round((np.pi - amin) / inc)) % 360
    assert ranges[behind] == pytest.approx(0.5)  # sensor 0 deg = the car's rear
    with pytest.raises(LidarError, match="no complete revolution"):
        lidar.read()
    lidar.close()
    assert ser.written[-1] == b"\xa5\x25" and ser.closed and ser.dtr is True


def test_serial_lidar_refuses_a_wrong_answer():
    with pytest.raises(LidarError, match="unexpected answer to the SCAN request: a5 5a 03"):
        SerialLidar("/dev/fake", serial_port=FakeSerial(b"", bytes([0xA5, 0x5A, 3, 0, 0, 0, 6])), timeout=0.1)


def test_serial_lidar_without_pyserial_names_the_package(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_serial(name, *a, **k):
        if name == "serial":
            raise ImportError("no serial")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_serial)
    with pytest.raises(LidarError, match="pyserial"):
        SerialLidar("/dev/ttyUSB0")


def test_fake_lidar():
    ranges, amin, inc = FakeLidar(lambda: ([1, 2, 3], -1.0, 0.5)).read()
    assert ranges.dtype == np.float32 and list(ranges) == [1, 2, 3] and (amin, inc) == (-1.0, 0.5)
    with pytest.raises(LidarError):
        FakeLidar(lambda: ([], 0.0, 0.1)).read()


# ---- message conversions (message classes only; no ROS graph) --------------------------------
def test_image_and_scan_messages_round_trip():
    pytest.importorskip("sensor_msgs", reason="the car extra (ROS 2 messages) is not installed")
    from builtin_interfaces.msg import Time

    from car.nodes.common import image_to_rgb, rgb_to_image, scan_from_msg, scan_to_msg
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    msg = rgb_to_image(rgb, Time(sec=3, nanosec=7), "camera")
    assert msg.encoding == "rgb8" and msg.step == 21 and msg.header.stamp.nanosec == 7
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)
    msg.encoding, msg.data = "bgr8", rgb[..., ::-1].tobytes()
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)
    padded = np.zeros((5, 24), np.uint8)  # rows padded to step 24
    padded[:, :21] = rgb.reshape(5, 21)
    msg.encoding, msg.step, msg.data = "rgb8", 24, padded.tobytes()
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)
    msg.encoding = "yuv422"
    with pytest.raises(ValueError, match="yuv422"):
        image_to_rgb(msg)

    scan = scan_to_msg([1.0, np.inf, 2.5], -0.5, 0.25, Time(sec=1))
    assert scan.angle_max == pytest.approx(0.0)
    r, amin, inc = scan_from_msg(scan)
    assert r.dtype == np.float32 and np.isinf(r[1]) and (amin, inc) == (-0.5, 0.25)
