"""Time limits for calls into a user's code: stop one that runs too long, report one that runs long.

`CallLimits(seconds, after, report)` is the context manager for the calls of one caller.  In
the main thread a call is stopped by `CallTimeout`, raised inside it once it has run `seconds`
(SIGALRM; the handler and timer found are put back after each call).  In another thread nothing
can stop it: the caller checks the time when it returns.  A shared watchdog thread calls
`report(elapsed, frame, what)` while a call runs past `after`, 2 x `after`, ... seconds, with
the frame it is executing then.  About 3 µs a call.
"""
from __future__ import annotations

import _signal  # signal.signal without its enum conversions (5 µs a call, 0.5 µs here)
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from types import FrameType

AGAIN = 1.0  # s: when the code catches CallTimeout and runs on, it is raised again this often
MAX_TICK = 1.0  # s: the watchdog looks at least this often while any CallLimits exists
_MAIN = threading.main_thread().ident

Report = Callable[[float, "FrameType | None", object], None]


class CallTimeout(BaseException):
    """Raised in code that ran past its time limit; `frame` is the frame it was executing.

    A BaseException, so that the user's `except Exception:` does not swallow it.
    """

    def __init__(self, seconds: float, frame: FrameType | None):
        super().__init__(f"stopped after {seconds:g} s")
        self.seconds, self.frame = seconds, frame


def innermost_line(frame: FrameType | None, filename: str) -> int | None:
    """The line executed in `filename`: that of the innermost frame of that file from `frame` out."""
    while frame is not None:
        if frame.f_code.co_filename == filename:
            return frame.f_lineno
        frame = frame.f_back
    return None


class CallLimits:
    """`with limits(what):` runs one call watched (reported after `after` s, `what` passed on to
    `report`) and, in the main thread, stopped by CallTimeout after `seconds` (again every AGAIN
    s should the code catch it).  Not reentrant: one call at a time."""

    def __init__(self, seconds: float, after: float, report: Report):
        self.seconds, self.after, self.report = seconds, after, report
        self._what: object = None
        self._call: tuple[int, float, object] | None = None  # thread id, start, what
        self._reported = (0.0, 0)  # start of the call, reports made (written by the watchdog only)
        self._armed = False
        self._previous: object = None  # the SIGALRM handler and timer found on entry
        self._outer = 0.0
        _watchdog.add(self)

    def __call__(self, what: object) -> CallLimits:
        self._what = what
        return self

    def __enter__(self) -> CallLimits:
        ident = threading.get_ident()
        self._call = (ident, time.monotonic(), self._what)
        if ident == _MAIN:
            self._previous = _signal.signal(signal.SIGALRM, self._stop)
            self._outer = signal.setitimer(signal.ITIMER_REAL, self.seconds)[0]
            self._armed = True
        return self

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, AGAIN)
            raise CallTimeout(self.seconds, frame)

    def __exit__(self, *exc_info: object) -> None:
        ident, start, _ = self._call
        try:
            if ident == _MAIN:
                try:
                    self._armed = False  # a CallTimeout raised before this still ends the call, via here
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    _signal.signal(signal.SIGALRM, signal.SIG_DFL if self._previous is None else self._previous)
                    if self._outer:
                        signal.setitimer(signal.ITIMER_REAL, max(self._outer - (time.monotonic() - start), 1e-3))
        finally:
            self._call = None

    def check(self, now: float) -> None:
        """Report the call in progress if it is due (called by the watchdog thread)."""
        call = self._call
        if call is None:
            return
        ident, start, what = call
        done = self._reported[1] if self._reported[0] == start else 0
        elapsed = now - start
        if elapsed >= self.after * (done + 1):
            self._reported = (start, done + 1)
            self.report(elapsed, sys._current_frames().get(ident), what)


class _Watchdog:
    """One daemon thread for every CallLimits while any exists; it polls them (no cost per call)."""

    def __init__(self):
        self.watched: weakref.WeakSet[CallLimits] = weakref.WeakSet()
        self.lock = threading.Lock()
        self.wake = threading.Event()  # set by add: a new CallLimits may need a shorter tick
        self.thread: threading.Thread | None = None

    def add(self, limits: CallLimits) -> None:
        with self.lock:
            self.watched.add(limits)
            self.wake.set()
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="racer-watchdog", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        try:
            while (tick := self._tick()) is not None:
                self.wake.wait(tick)  # holding no CallLimits: they may be collected meanwhile
                self.wake.clear()
                self._check()
        finally:  # a report that raised (shown by threading.excepthook): the next add starts a new thread
            with self.lock:
                if self.thread is threading.current_thread():
                    self.thread = None

    def _tick(self) -> float | None:
        """How long to sleep before the next look; None (and the thread ends) when none is left."""
        with self.lock:
            if not self.watched:
                self.thread = None
                return None
            return min([MAX_TICK, *(limits.after / 4 for limits in self.watched)])

    def _check(self) -> None:
        with self.lock:
            watched = list(self.watched)
        now = time.monotonic()
        for limits in watched:
            limits.check(now)


_watchdog = _Watchdog()
