"""THE observation contract: raw sensor data -> network input, pure numpy.

The simulator and the car's ROS nodes both call these functions, so a camera frame or a
LIDAR scan of the same scene gives the same tensor in both places.  Change anything here
and bump CONTRACT_VERSION: exported models record the version they were trained with.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field, replace

import numpy as np

CONTRACT_VERSION = 1

CAMERA_SENSORS = ("FRONT_FACING_CAMERA", "STEREO_CAMERAS")
LIDAR_SENSORS = ("LIDAR", "SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR")
SENSORS = CAMERA_SENSORS + LIDAR_SENSORS

IMAGE_HEIGHT, IMAGE_WIDTH = 120, 160
GRAY_WEIGHTS = np.array([0.2989, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class LidarConfig:
    """Beam layout of the scan and its preprocessing (DeepRacer defaults).

    Angles are measured counter-clockwise from the car's REAR (the sensor faces backwards):
    beam i looks at `angle_min + i * (angle_max - angle_min) / (beams - 1)`.
    """

    beams: int = 64
    angle_min_deg: float = -150.0
    angle_max_deg: float = 150.0
    range_min: float = 0.15
    range_max: float = 12.0
    noise_std: float = 0.01
    rate_hz: float = 10.0
    clip_max: float = 1.0  # LIDAR observation clipping distance
    sector_threshold: float = 0.5  # SECTOR_LIDAR: a sector is 1 when a beam is closer
    num_sectors: int = 8
    num_values_per_sector: int = 8
    discretized_clip: float = 2.0  # DISCRETIZED_SECTOR_LIDAR distance range

    def beam_angles(self) -> np.ndarray:
        """Beam angles in the car frame (rad, 0 = straight ahead, CCW positive)."""
        rear = np.deg2rad(np.linspace(self.angle_min_deg, self.angle_max_deg, self.beams))
        return np.pi + rear

    def observed_range(self, sensor: str) -> float:
        """Distance beyond which a beam no longer changes the sensor's observation (m)."""
        far = {"LIDAR": self.clip_max, "SECTOR_LIDAR": self.sector_threshold,
               "DISCRETIZED_SECTOR_LIDAR": self.discretized_clip}[sensor]
        return far + 6 * self.noise_std  # noise cannot pull a farther hit inside

    @classmethod
    def from_overrides(cls, overrides: dict | None) -> LidarConfig:
        """The defaults with a DeepRacer `lidar_config` block applied (None or {} = the defaults)."""
        return cls().with_overrides(overrides) if overrides else cls()

    def with_overrides(self, overrides: dict) -> LidarConfig:
        """Apply a DeepRacer `lidar_config` block (clipping_dist, num_sectors, ...), every value checked.

        ValueError names the key as the block spells it: "lidar_config.num_sectors: must be ...".
        """
        kw, key_of = {}, {}
        for key, value in overrides.items():
            name = _LIDAR_ALIASES.get(key, key)
            if name not in _LIDAR_RULES:
                raise ValueError(f"lidar_config: unknown key {key!r}; known: "
                                 f"{', '.join([*_LIDAR_ALIASES, *_LIDAR_RULES])}")
            is_ok, wanted = _LIDAR_RULES[name]
            if not is_ok(value):
                raise ValueError(f"lidar_config.{key}: must be {wanted}, got {value!r}")
            kw[name] = value if self.__dataclass_fields__[name].type == "int" else float(value)
            key_of[name] = key
        if "clip_max" in kw and "discretized_clip" not in kw:
            kw["discretized_clip"] = kw["clip_max"]  # DeepRacer's clipping_dist sets both
        cfg = replace(self, **kw)
        for a, relation, b in _LIDAR_ORDER:
            if not _RELATIONS[relation](getattr(cfg, a), getattr(cfg, b)):
                raise ValueError(f"lidar_config.{key_of.get(a, a)}: {getattr(cfg, a):g} must be {relation} "
                                 f"{key_of.get(b, b)} {getattr(cfg, b):g}")
        return cfg


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


MAX_BEAMS = 2048
MAX_VALUES_PER_SECTOR = 64
_LIDAR_ALIASES = {"clipping_dist": "clip_max"}  # DeepRacer's key -> our field
# field: (test of a value, what the value must be)
_LIDAR_RULES = {
    "beams": (lambda v: _is_int(v) and 1 <= v <= MAX_BEAMS, f"a positive integer up to {MAX_BEAMS}"),
    "angle_min_deg": (lambda v: _is_number(v) and -180 <= v <= 180, "a number of degrees from -180 to 180"),
    "angle_max_deg": (lambda v: _is_number(v) and -180 <= v <= 180, "a number of degrees from -180 to 180"),
    "range_min": (lambda v: _is_number(v) and v >= 0, "a number of metres, 0 or more"),
    "range_max": (lambda v: _is_number(v) and v > 0, "a positive number of metres"),
    "noise_std": (lambda v: _is_number(v) and v >= 0, "a number of metres, 0 or more"),
    "rate_hz": (lambda v: _is_number(v) and v > 0, "a positive number of scans per second"),
    "clip_max": (lambda v: _is_number(v) and v > 0, "a positive number of metres"),
    "sector_threshold": (lambda v: _is_number(v) and v > 0, "a positive number of metres"),
    "num_sectors": (lambda v: _is_int(v) and 1 <= v <= MAX_BEAMS, f"a positive integer up to {MAX_BEAMS}"),
    "num_values_per_sector": (lambda v: _is_int(v) and 1 <= v <= MAX_VALUES_PER_SECTOR,
                              f"a positive integer up to {MAX_VALUES_PER_SECTOR}"),
    "discretized_clip": (lambda v: _is_number(v) and v > 0, "a positive number of metres"),
}
_RELATIONS = {"below": operator.lt, "above": operator.gt, "at most": operator.le}
# values that are each fine but must also fit together (a sector holds at least one beam)
_LIDAR_ORDER = (("angle_min_deg", "below", "angle_max_deg"), ("range_min", "below", "range_max"),
                ("clip_max", "above", "range_min"), ("num_sectors", "at most", "beams"))


@dataclass(frozen=True)
class CameraConfig:
    """A pinhole camera on the car (DeepRacer defaults); `y` is the lateral mount offset."""

    width: int = IMAGE_WIDTH
    height: int = IMAGE_HEIGHT
    hfov: float = 1.13  # rad
    x: float = 0.145  # m ahead of the car origin
    z: float = 0.13  # m above the floor
    pitch_deg: float = 15.0  # down
    stereo_baseline: float = 0.06  # m between the two stereo cameras
    rate_hz: float = 15.0

    def mounts(self, stereo: bool) -> tuple[float, ...]:
        """Lateral offsets of the cameras: (0,) or (left, right)."""
        b = self.stereo_baseline / 2
        return (b, -b) if stereo else (0.0,)


@dataclass(frozen=True)
class SensorSuite:
    """Which sensors a car carries, validated: exactly one camera, at most one lidar."""

    names: tuple[str, ...]
    camera: CameraConfig = field(default_factory=CameraConfig)
    lidar: LidarConfig = field(default_factory=LidarConfig)

    def __post_init__(self) -> None:
        unknown = [n for n in self.names if n not in SENSORS]
        if unknown:
            raise ValueError(f"sensor: unknown sensor {unknown[0]!r}; known: {', '.join(SENSORS)}")
        cams = [n for n in self.names if n in CAMERA_SENSORS]
        lidars = [n for n in self.names if n in LIDAR_SENSORS]
        if len(cams) > 1:
            raise ValueError(f"sensor: exactly one camera sensor is allowed, got {cams}")
        if len(lidars) > 1:
            raise ValueError(f"sensor: at most one lidar sensor is allowed, got {lidars}")
        if not self.names:
            raise ValueError("sensor: the list is empty; give a camera and/or a lidar sensor")

    @property
    def camera_name(self) -> str | None:
        return next((n for n in self.names if n in CAMERA_SENSORS), None)

    @property
    def lidar_name(self) -> str | None:
        return next((n for n in self.names if n in LIDAR_SENSORS), None)

    @property
    def stereo(self) -> bool:
        return self.camera_name == "STEREO_CAMERAS"


def observation_shapes(suite: SensorSuite) -> dict[str, tuple[tuple[int, ...], np.dtype, float, float]]:
    """Shape, dtype, low and high of each sensor's observation."""
    out = {}
    cam, lid = suite.camera, suite.lidar
    if suite.camera_name:
        channels = 2 if suite.stereo else 1
        out[suite.camera_name] = ((cam.height, cam.width, channels), np.dtype(np.uint8), 0, 255)
    name = suite.lidar_name
    if name == "LIDAR":
        out[name] = ((lid.beams,), np.dtype(np.float32), lid.range_min, lid.clip_max)
    elif name == "SECTOR_LIDAR":
        out[name] = ((lid.num_sectors,), np.dtype(np.float32), 0.0, 1.0)
    elif name == "DISCRETIZED_SECTOR_LIDAR":
        out[name] = ((lid.num_sectors * lid.num_values_per_sector,), np.dtype(np.float32), 0.0, 1.0)
    return out


# ---- cameras ---------------------------------------------------------------------------
def grayscale(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (...) uint8 luma, Y = 0.2989 R + 0.587 G + 0.114 B, rounded."""
    y = np.asarray(rgb, dtype=np.float32) @ GRAY_WEIGHTS
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def resize(gray: np.ndarray, height: int = IMAGE_HEIGHT, width: int = IMAGE_WIDTH) -> np.ndarray:
    """Downscale an (H, W) uint8 image: block mean for integer factors, else nearest pixel."""
    h, w = gray.shape
    if (h, w) == (height, width):
        return gray
    if h % height == 0 and w % width == 0:
        fy, fx = h // height, w // width
        blocks = gray.reshape(height, fy, width, fx).astype(np.float32).mean(axis=(1, 3))
        return np.clip(np.rint(blocks), 0, 255).astype(np.uint8)
    rows = (np.arange(height) * h // height)
    cols = (np.arange(width) * w // width)
    return gray[rows][:, cols]


def camera_observation(frames_rgb: list[np.ndarray], cam: CameraConfig = CameraConfig()) -> np.ndarray:
    """One RGB frame (mono) or [left, right] (stereo) -> (H, W, C) uint8, channel 0 = left."""
    chans = [resize(grayscale(f), cam.height, cam.width) for f in frames_rgb]
    return np.stack(chans, axis=-1)


# ---- lidar -----------------------------------------------------------------------------
def scan_to_beams(ranges: np.ndarray, angle_min: float, angle_increment: float,
                  cfg: LidarConfig = LidarConfig()) -> np.ndarray:
    """Pick, from a scan in the car frame (rad, 0 = ahead, CCW), the sample nearest each beam.

    Samples that are NaN, inf or outside the sensor range read as `range_max`.
    """
    r = np.asarray(ranges, dtype=np.float32)
    r = np.where(np.isfinite(r) & (r >= cfg.range_min) & (r <= cfg.range_max), r, cfg.range_max)
    n = len(r)
    d = (cfg.beam_angles() - angle_min) % (2 * np.pi)
    d = np.where(d > 2 * np.pi - angle_increment / 2, d - 2 * np.pi, d)  # a hair before angle_min is sample 0
    idx = np.rint(d / angle_increment).astype(int) % n
    return r[idx]


def lidar_observation(beams: np.ndarray, sensor: str, cfg: LidarConfig = LidarConfig()) -> np.ndarray:
    """The `beams` distances (m, in beam order) -> the named lidar sensor's observation."""
    b = np.asarray(beams, dtype=np.float32)
    if sensor == "LIDAR":
        return np.minimum(np.maximum(b, cfg.range_min), cfg.clip_max)  # np.clip's dispatch costs 3 us a call
    sectors = np.array_split(b, cfg.num_sectors)
    if sensor == "SECTOR_LIDAR":
        return np.array([float(np.any(s < cfg.sector_threshold)) for s in sectors], dtype=np.float32)
    if sensor == "DISCRETIZED_SECTOR_LIDAR":
        out = np.zeros((cfg.num_sectors, cfg.num_values_per_sector), dtype=np.float32)
        step = cfg.discretized_clip / cfg.num_values_per_sector
        for i, s in enumerate(sectors):
            d = float(np.min(s))
            if d < cfg.discretized_clip:
                out[i, min(int(d / step), cfg.num_values_per_sector - 1)] = 1.0
        return out.ravel()
    raise ValueError(f"not a lidar sensor: {sensor!r}")
