"""Servo and motor calibration: command values in [-1, 1] <-> PWM pulse widths (ns).

Each channel has a min, mid and max pulse width and a polarity (DeepRacer's calibration,
contract section 11).  A value maps piecewise linearly through `mid`: 0 -> mid, +1 -> max,
-1 -> min; polarity -1 flips the value's sign first (the DeepRacer motor: forward throttle
gives a SHORTER pulse).  The file is JSON::

    {"steering": {"min_ns": 1200000, "mid_ns": 1450000, "max_ns": 1700000, "polarity": 1},
     "throttle": {"min_ns": 1311000, "mid_ns": 1446000, "max_ns": 1603500, "polarity": -1}}

A missing channel takes the DeepRacer default; an unknown key, a non-integer pulse, a pulse
outside 0.5..2.5 ms, min/mid/max out of order or a polarity other than +-1 is refused with
the file and the key named.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from racer.bundle.files import atomic_write_text, read_json
from sim.errors import InputError

PULSE_MIN_NS, PULSE_MAX_NS = 500_000, 2_500_000  # what any hobby servo or ESC accepts
CHANNELS = ("steering", "throttle")
KEYS = ("min_ns", "mid_ns", "max_ns", "polarity")


class CalibrationError(InputError, ValueError):
    """A calibration that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Channel:
    """One PWM output: pulse widths (ns) for -1, 0, +1 (before polarity) and the polarity."""

    min_ns: int
    mid_ns: int
    max_ns: int
    polarity: int = 1

    def __post_init__(self) -> None:
        reason = channel_problem(asdict(self))
        if reason:
            raise CalibrationError(reason)

    def to_pulse(self, value: float) -> int:
        """A command in [-1, 1] (clipped; NaN = neutral) -> pulse width in ns."""
        v = float(value)
        if math.isnan(v):
            v = 0.0
        v = min(1.0, max(-1.0, v)) * self.polarity
        span = (self.max_ns - self.mid_ns) if v >= 0 else (self.mid_ns - self.min_ns)
        return int(round(self.mid_ns + v * span))

    def from_pulse(self, ns: float) -> float:
        """A pulse width in ns -> the command in [-1, 1] that gives it (clipped to the range)."""
        p = min(float(self.max_ns), max(float(self.min_ns), float(ns)))
        if p >= self.mid_ns:
            v = (p - self.mid_ns) / (self.max_ns - self.mid_ns)
        else:
            v = (p - self.mid_ns) / (self.mid_ns - self.min_ns)
        return v * self.polarity


def channel_problem(values: dict, where: str = "") -> str | None:
    """Why a channel's values are invalid (None if fine); `where` prefixes the key names."""
    for key in ("min_ns", "mid_ns", "max_ns"):
        v = values[key]
        if isinstance(v, bool) or not isinstance(v, int):
            return f"{where}{key}: expected an integer number of ns, got {v!r}"
        if not PULSE_MIN_NS <= v <= PULSE_MAX_NS:
            return f"{where}{key}: {v} ns is outside {PULSE_MIN_NS}..{PULSE_MAX_NS} ns"
    lo, mid, hi = values["min_ns"], values["mid_ns"], values["max_ns"]
    if not lo < mid:
        return f"{where}mid_ns: {mid} must be above min_ns {lo} (min_ns < mid_ns < max_ns)"
    if not mid < hi:
        return f"{where}max_ns: {hi} must be above mid_ns {mid} (min_ns < mid_ns < max_ns)"
    pol = values["polarity"]
    if isinstance(pol, bool) or pol not in (1, -1):
        return f"{where}polarity: expected 1 or -1, got {pol!r}"
    return None


def default_steering() -> Channel:
    return Channel(1_200_000, 1_450_000, 1_700_000, 1)


def default_throttle() -> Channel:
    return Channel(1_311_000, 1_446_000, 1_603_500, -1)


@dataclass(frozen=True)
class Calibration:
    """The car's two PWM channels; the defaults are DeepRacer's."""

    steering: Channel = field(default_factory=default_steering)
    throttle: Channel = field(default_factory=default_throttle)

    def neutral(self) -> tuple[int, int]:
        """(steering, throttle) pulse widths that hold the wheels straight and the motor still."""
        return self.steering.mid_ns, self.throttle.mid_ns

    def to_dict(self) -> dict:
        return {"steering": asdict(self.steering), "throttle": asdict(self.throttle)}

    @classmethod
    def from_dict(cls, data, where: str = "calibration") -> Calibration:
        """Validate a calibration mapping; errors start with `where` (the file) and name the key."""
        if not isinstance(data, dict):
            raise CalibrationError(f"{where}: expected an object with 'steering' and 'throttle', "
                                   f"got {type(data).__name__}")
        unknown = sorted(set(data) - set(CHANNELS))
        if unknown:
            raise CalibrationError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(CHANNELS)})")
        defaults = cls()
        channels = {}
        for name in CHANNELS:
            if name not in data:
                channels[name] = getattr(defaults, name)
                continue
            channels[name] = _channel(data[name], getattr(defaults, name), f"{where}: {name}.")
        return cls(**channels)

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        return load(path)

    def save(self, path: str | Path) -> None:
        save(self, path)


def _channel(body, default: Channel, where: str) -> Channel:
    if not isinstance(body, dict):
        raise CalibrationError(f"{where[:-1]}: expected an object with {', '.join(KEYS)}, got {body!r}")
    unknown = sorted(set(body) - set(KEYS))
    if unknown:
        raise CalibrationError(f"{where}{unknown[0]}: unknown key (allowed: {', '.join(KEYS)})")
    values = {}
    for key in KEYS:
        v = body.get(key, getattr(default, key))
        if isinstance(v, float) and v.is_integer():
            v = int(v)  # 1450000.0 is an integer number of ns
        values[key] = v
    reason = channel_problem(values, where)
    if reason:
        raise CalibrationError(reason)
    return Channel(**values)


def load(path: str | Path) -> Calibration:
    """Read and validate a calibration file; CalibrationError names the file and the key."""
    return Calibration.from_dict(read_json(path, CalibrationError, "calibration file"), str(path))


def save(cal: Calibration, path: str | Path) -> None:
    """Write a calibration file atomically."""
    atomic_write_text(path, json.dumps(cal.to_dict(), indent=2) + "\n")
