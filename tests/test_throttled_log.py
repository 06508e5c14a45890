"""The car nodes' one throttled log: each kind of repeated message at most once per period."""
from __future__ import annotations

import car.nodes.common as common
from car.nodes.common import ThrottledLog


class Recorder:
    """Stands in for rclpy's logger (the thing under test is the throttling)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def warning(self, text: str) -> None:
        self.lines.append(("warning", text))

    def error(self, text: str) -> None:
        self.lines.append(("error", text))


def test_each_key_is_logged_once_per_period(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: now[0])
    rec = Recorder()
    log = ThrottledLog(rec, period=2.0)
    for i in range(5):  # five frames in 0.4 s: once per key
        log.warning("scan", f"old scan {i}")
        log.error("pwm", f"pwm {i}")
        now[0] += 0.1
    assert rec.lines == [("warning", "old scan 0"), ("error", "pwm 0")]
    now[0] = 102.05  # 2.05 s after the first: due again
    log.warning("scan", "old scan 5")
    log.warning("image", "bad image")
    assert rec.lines[2:] == [("warning", "old scan 5"), ("warning", "bad image")]
