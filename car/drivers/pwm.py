"""PWM outputs for the steering servo and the motor's ESC, through Linux sysfs PWM.

    /sys/class/pwm/pwmchip<N>/export                 write the channel number to create pwm<C>/
    /sys/class/pwm/pwmchip<N>/pwm<C>/period          ns (20 ms = the 50 Hz servo frame)
    /sys/class/pwm/pwmchip<N>/pwm<C>/duty_cycle      ns (the pulse width the servo reads)
    /sys/class/pwm/pwmchip<N>/pwm<C>/enable          1 = output on

`SysfsPwm` works under any root directory, so the FAKE device is just a temporary directory
laid out like sysfs (`FakePwmDir.create`); reading `duty_cycle` back gives what the car would
output.  What "neutral" is belongs to the calibration, so the caller sets it (control_node).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

DEFAULT_ROOT = "/sys/class/pwm"
SERVO_PERIOD_NS = 20_000_000


class PwmError(OSError):
    """A PWM file that cannot be written or read; the message names it."""


@runtime_checkable
class PwmChannel(Protocol):
    def set_pulse_ns(self, ns: int) -> None:
        """Output pulses `ns` wide, every period."""

    def close(self) -> None:
        """Release the channel (its last pulse width stays, as the hardware keeps it)."""


def _write(path: Path, value, atomic: bool = False) -> None:
    data = str(value).encode()
    if atomic:  # a fake tree: replace the file whole, so that readers never see it half written
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:
            raise PwmError(exc.errno, f"{path}: cannot write {value!r} ({exc.strerror or exc})") from None
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)  # as `echo v > file` does, sysfs too
        try:
            os.write(fd, data)  # one write() per value: what sysfs attributes expect
        finally:
            os.close(fd)
    except OSError as exc:
        raise PwmError(exc.errno, f"{path}: cannot write {value!r} ({exc.strerror or exc})") from None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise PwmError(exc.errno, f"{path}: cannot read ({exc.strerror or exc})") from None


def chip_path(chip: int | str | Path, root: str | Path = DEFAULT_ROOT) -> Path:
    """pwmchip<N> under `root` for a number, else the given directory."""
    if isinstance(chip, int):
        return Path(root) / f"pwmchip{chip}"
    return Path(chip)


class SysfsPwm:
    """One sysfs PWM channel: exported on open, enabled on the first pulse width."""

    def __init__(self, chip_dir: int | str | Path, channel: int, period_ns: int = SERVO_PERIOD_NS,
                 root: str | Path = DEFAULT_ROOT, export_timeout: float = 1.0):
        self.chip = chip_path(chip_dir, root)
        self.channel = int(channel)
        self.period_ns = int(period_ns)
        self.dir = self.chip / f"pwm{self.channel}"
        self.fake = not is_sysfs(self.chip)
        if not self.chip.is_dir():
            raise PwmError(2, f"{self.chip}: no such PWM chip (is the PWM overlay loaded? "
                              f"chips here: {sorted(p.name for p in self.chip.parent.glob('pwmchip*')) or 'none'})")
        if not self.dir.is_dir():
            _write(self.chip / "export", self.channel)
            end = time.monotonic() + export_timeout  # udev creates the files (and fixes modes) a bit later
            while not os.access(self.dir / "duty_cycle", os.W_OK):
                if time.monotonic() > end:
                    raise PwmError(2, f"{self.dir}: did not appear after exporting channel {self.channel}")
                time.sleep(0.01)
        self.enabled = _read(self.dir / "enable") == "1" if (self.dir / "enable").exists() else False
        current = int(_read(self.dir / "period") or 0)
        if current != self.period_ns:
            duty = int(_read(self.dir / "duty_cycle") or 0)
            if duty > self.period_ns:  # the kernel refuses a period shorter than the duty cycle
                _write(self.dir / "duty_cycle", 0, self.fake)
            _write(self.dir / "period", self.period_ns, self.fake)

    def set_pulse_ns(self, ns: int) -> None:
        ns = int(ns)
        if not 0 <= ns <= self.period_ns:
            raise ValueError(f"{self.dir}: pulse width {ns} ns is outside 0..{self.period_ns} ns")
        _write(self.dir / "duty_cycle", ns, self.fake)
        if not self.enabled:
            _write(self.dir / "enable", 1, self.fake)
            self.enabled = True

    def pulse_ns(self) -> int:
        """The duty cycle the channel outputs now (read back from the file)."""
        return int(_read(self.dir / "duty_cycle"))

    def close(self) -> None:
        pass  # keep outputting the last (neutral) pulse: a servo without pulses may drift

    def __repr__(self) -> str:
        return f"SysfsPwm({str(self.dir)!r})"


class FakePwmDir:
    """A directory laid out like /sys/class/pwm, for tests and the simulator bridge."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def create(cls, root: str | Path, chip: int = 0, channels: int = 2) -> FakePwmDir:
        """Make root/pwmchip<chip>/{export,unexport,npwm} and pwm0..pwm<channels-1>/ (kept if present)."""
        chip_dir = Path(root) / f"pwmchip{chip}"
        chip_dir.mkdir(parents=True, exist_ok=True)
        for name, value in (("export", ""), ("unexport", ""), ("npwm", channels)):
            if not (chip_dir / name).exists():
                (chip_dir / name).write_text(f"{value}\n" if value != "" else "")
        for c in range(channels):
            d = chip_dir / f"pwm{c}"
            d.mkdir(exist_ok=True)
            for name in ("period", "duty_cycle", "enable"):
                if not (d / name).exists():
                    (d / name).write_text("0\n")
            if not (d / "polarity").exists():
                (d / "polarity").write_text("normal\n")
        return cls(root)

    def channel_dir(self, channel: int, chip: int = 0) -> Path:
        return self.root / f"pwmchip{chip}" / f"pwm{channel}"

    def duty_cycle(self, channel: int, chip: int = 0) -> int:
        return int(_read(self.channel_dir(channel, chip) / "duty_cycle"))

    def period(self, channel: int, chip: int = 0) -> int:
        return int(_read(self.channel_dir(channel, chip) / "period"))

    def enabled(self, channel: int, chip: int = 0) -> bool:
        return _read(self.channel_dir(channel, chip) / "enable") == "1"


def is_sysfs(path: str | Path) -> bool:
    """Whether `path` lies in the kernel's sysfs (not in a fake tree)."""
    return Path(path).resolve().parts[:2] == ("/", "sys")
