"""Loading a user's reward function file: one fresh module per instance, clear errors.

`RewardFunction(path)` is the callable an environment gets.  Every instance executes its
own copy of the file (module globals are per environment, as in DeepRacer's per-worker
import), `print()` goes to the run log, and anything DeepRacer would stop the job for
(an exception, `sys.exit()` included, a value `float()` rejects, NaN, inf, |r| > 1e5) raises
`RewardFunctionError` naming the file, the line, the step and the params.  `strict=True` adds
the AWS console validator's rules.

Limits, so that reward code can neither hang nor flood the run silently:

- Time: importing the file and each call may take `time_limit` seconds (STRICT_TIME_LIMIT, 5 s,
  in strict mode and in `racer reward test`; TIME_LIMIT, 60 s, otherwise: DeepRacer sets none,
  but a hung call must end).  Then the call is stopped (SIGALRM, in the main thread; in another
  thread the time is checked when the call returns) and the error names the line it was
  executing.  While a call runs past `warn_after` seconds (WARN_AFTER, 10 s), a warning naming
  the file and the line it is executing goes to the log and stderr, again every `warn_after` s.
- Printing: once a log file holds `log_cap` bytes (LOG_CAP, 50 MB), `print()` in the reward
  code writes one line saying so and its further output is dropped (the log's other lines still
  go in).  Logs that are not regular files (a terminal, a pipe, a callable) are not capped.
"""
from __future__ import annotations

import ast
import copy
import importlib.resources
import importlib.util
import inspect
import itertools
import os
import stat
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, Any

from racer.time_limits import CallLimits, CallTimeout, innermost_line
from sim.params import copy_params
from sim.reward_check import RewardError, abbreviated, check_reward

FUNCTION_NAME = "reward_function"
# invisible characters that web pages put into copied code: removed, or replaced by a space
INVISIBLE = {"\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "", "\u180e": "",
             "\u00a0": " ", "\u202f": " ", "\u2007": " "}
STRICT_MODULES = ("math", "random", "numpy", "scipy", "shapely")
STRICT_FORBIDDEN = ("open", "exec", "eval", "compile", "input")
STRICT_TIME_LIMIT = 5.0  # s per call (and import) in strict mode and `racer reward test`
TIME_LIMIT = 60.0  # s per call (and import) otherwise
WARN_AFTER = 10.0  # s: a call running longer is reported (file, line) to the log and stderr, again every 10 s
LOG_CAP = 50_000_000  # bytes: print() in reward code stops once its log file is this big
_OBJECT_KEYS = ("objects_location", "objects_distance", "objects_distance_from_center",
                "objects_heading", "objects_left_of_center", "objects_speed")
_module_ids = itertools.count()
_full_logs: set[tuple[int, int]] = set()  # (device, inode) of the log files reward printing has filled

Log = IO[str] | Callable[[str], Any] | str | Path | None


def example_rewards() -> dict[str, Path]:
    """The example reward functions shipped with racer: name (file stem) -> file."""
    folder = Path(str(importlib.resources.files("racer.reward_functions")))
    return {p.stem: p for p in sorted(folder.glob("*.py")) if p.stem != "__init__"}


def find_reward_file(name: str | Path) -> Path:
    """A reward file: `name` itself when that file exists, else the shipped example called `name`
    (with or without `.py`); FileNotFoundError lists the examples."""
    path = Path(name)
    if path.is_file():
        return path
    examples = example_rewards()
    stem = path.name[:-3] if path.name.endswith(".py") else path.name
    if stem in examples and path.parent == Path("."):
        return examples[stem]
    raise FileNotFoundError(f"{name}: no such reward function file, nor an example of that name "
                            f"(examples: {', '.join(examples)})")


class RewardFunctionError(RewardError):
    """The user's reward function failed; the message names file, line, step and params.

    `summary` is the message without the file and the params (for tables).
    """

    def __init__(self, message: str, summary: str | None = None):
        super().__init__(message)
        self.summary = summary or message


class RewardTimeoutError(RewardFunctionError):
    """The user's reward function (or its import) ran past its time limit and was stopped."""


class RewardSourceWarning(UserWarning):
    """The reward file held invisible characters, which were removed."""


def clean_source(text: str, where: str) -> str:
    """Remove zero-width characters and turn non-breaking spaces into spaces, with a warning."""
    count = sum(text.count(ch) for ch in INVISIBLE)
    if not count:
        return text
    first = min(i for i in (text.find(ch) for ch in INVISIBLE) if i >= 0)
    line = text.count("\n", 0, first) + 1
    col = first - (text.rfind("\n", 0, first) + 1) + 1
    warnings.warn(f"{where}: removed {count} invisible or non-breaking space character(s) "
                  f"(U+200B, U+00A0, U+FEFF, ...), the first at line {line}:{col}",
                  RewardSourceWarning, stacklevel=3)
    return text.translate(str.maketrans(INVISIBLE))


def strict_check(tree: ast.Module, where: str) -> None:
    """The AWS console validator's static rules: one parameter, allowed imports, no open/eval/..."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = ["." * node.level + (node.module or "")]
        else:
            modules = []
        for name in modules:
            if name.split(".")[0] not in STRICT_MODULES:
                raise RewardFunctionError(f"{where}, line {node.lineno}: strict mode: `import {name}` is "
                                          f"not allowed; imports may only come from {', '.join(STRICT_MODULES)}")
        if isinstance(node, ast.Name) and node.id in STRICT_FORBIDDEN:
            raise RewardFunctionError(f"{where}, line {node.lineno}: strict mode: `{node.id}` is not "
                                      f"allowed (none of {', '.join(STRICT_FORBIDDEN)})")
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == FUNCTION_NAME]
    if defs:
        a = defs[-1].args
        params = [*a.posonlyargs, *a.args, *a.kwonlyargs] + [v for v in (a.vararg, a.kwarg) if v]
        if len(params) != 1 or a.kwonlyargs or a.vararg or a.kwarg:
            names = ", ".join(p.arg for p in params)
            raise RewardFunctionError(f"{where}, line {defs[-1].lineno}: strict mode: {FUNCTION_NAME} must "
                                      f"take exactly one parameter (params), it takes ({names})")


class RewardFunction:
    """A user's `reward_function(params)` from a file, imported fresh for this instance.

    Args:
        path: the Python file defining `reward_function(params)`.
        strict: apply the AWS console validator's rules (see `strict_check`, float returns).
        log: where `print()` in the user's module writes: a text file object, a callable
            taking a str, or a path (appended to); None = sys.stderr.
        time_limit: seconds the import and each call may take; None = STRICT_TIME_LIMIT in
            strict mode, else TIME_LIMIT.
        warn_after: seconds after which a call still running is reported to the log and stderr.
        log_cap: bytes a log file may hold before print() in the reward code stops writing to it.

    Pickles as its path and options; the copy imports the file again on its first call.
    """

    def __init__(self, path: str | Path, strict: bool = False, log: Log = None, time_limit: float | None = None,
                 warn_after: float = WARN_AFTER, log_cap: int = LOG_CAP):
        self.path = Path(path).resolve()
        self.strict, self.log, self.warn_after, self.log_cap = strict, log, warn_after, log_cap
        self.time_limit = time_limit if time_limit is not None else STRICT_TIME_LIMIT if strict else TIME_LIMIT
        self._unloaded()
        self._load()

    def _unloaded(self) -> None:
        """The state that is not pickled: no module yet, no log file open, limits of its own."""
        self._fn: Callable | None = None
        self._log_file: IO[str] | None = None
        self._quiet = False  # True while a call is re-run to find its return line
        self._limits = CallLimits(self.time_limit, self.warn_after, self._report_slow)

    # ---- pickling ---------------------------------------------------------------------
    def __getstate__(self) -> dict:
        if self.log is not None and not isinstance(self.log, (str, Path)):
            raise TypeError(f"{self.path.name}: a RewardFunction whose log is {self.log!r} cannot be "
                            f"pickled (for a subprocess env); give the log as a file path instead")
        return {"path": self.path, "strict": self.strict, "log": self.log, "time_limit": self.time_limit,
                "warn_after": self.warn_after, "log_cap": self.log_cap}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._unloaded()

    def __repr__(self) -> str:
        return f"RewardFunction({str(self.path)!r}, strict={self.strict})"

    # ---- loading ----------------------------------------------------------------------
    @property
    def where(self) -> str:
        return str(self.path)

    def _load(self) -> Callable:
        """Execute a fresh copy of the file as a module of its own; return its reward_function."""
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise RewardFunctionError(f"{self.where}: cannot read the reward function file ({exc})") from None
        source = clean_source(text, self.where)  # read_text has made every line end "\n"
        self._lines = source.split("\n")
        try:
            tree = ast.parse(source, filename=self.where)
            code = compile(tree, self.where, "exec")  # catches what parsing lets through ('return' outside a def)
        except SyntaxError as exc:
            text = (exc.text or "").strip()
            raise RewardFunctionError(f"{self.where}, line {exc.lineno}: syntax error: {exc.msg}: {text}") from None
        if self.strict:
            strict_check(tree, self.where)
        spec = importlib.util.spec_from_file_location(f"_racer_reward_{next(_module_ids)}", self.path)
        module = importlib.util.module_from_spec(spec)  # not put in sys.modules: private to us
        module.print = self._print
        try:
            with self._limits(None):
                exec(code, module.__dict__)
        except KeyboardInterrupt:
            raise
        except CallTimeout as stop:
            raise RewardTimeoutError(f"{self.where}, {self._stopped_at(stop)} while importing the file: stopped "
                                     f"at the time limit of {self.time_limit:g} s") from None
        except BaseException as exc:  # sys.exit() too: user code may not end the process
            raise RewardFunctionError(f"{self.where}, {self._raised_at(exc)} while importing the file: "
                                      f"{type(exc).__name__}: {exc}") from exc
        fn = getattr(module, FUNCTION_NAME, None)
        if fn is None:
            raise RewardFunctionError(f"{self.where}: no `{FUNCTION_NAME}` defined; the file must define "
                                      f"`def {FUNCTION_NAME}(params):` returning a float")
        if not callable(fn):
            raise RewardFunctionError(f"{self.where}: `{FUNCTION_NAME}` is a {type(fn).__name__}, not a function")
        self._check_arguments(fn)
        self._fn = fn
        return fn

    def _check_arguments(self, fn: Callable) -> None:
        """Refuse a function that cannot be called with one argument, naming its `def` line."""
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):  # no signature to read (a builtin): the first call will tell
            return
        try:
            signature.bind(None)
        except TypeError:
            code = getattr(fn, "__code__", None)
            line = code.co_firstlineno if code is not None and code.co_filename == self.where else None
            names = ", ".join(map(str, signature.parameters.values()))
            raise RewardFunctionError(f"{self.where}, {self._line(line)}: {FUNCTION_NAME} must take exactly one "
                                      f"argument (params), it takes ({names})") from None

    # ---- the log ----------------------------------------------------------------------
    def _print(self, *args: Any, sep: str | None = " ", end: str | None = "\n", file: IO[str] | None = None,
               flush: bool = False) -> None:
        """The user's `print`: to the run log (up to `log_cap`), unless a file is named."""
        if self._quiet:
            return
        if file is not None:
            print(*args, sep=sep, end=end, file=file, flush=flush)
            return
        text = (" " if sep is None else sep).join(map(str, args)) + ("\n" if end is None else end)
        log = self._log_target()
        if not hasattr(log, "write"):
            log(text)
        elif text := self._capped(log, text):
            log.write(text)
            if flush:
                log.flush()

    def _log_target(self) -> IO[str] | Callable[[str], Any]:
        """The log as a stream or a callable; a path is opened (for appending) on first use."""
        if isinstance(self.log, (str, Path)):
            if self._log_file is None:
                self._log_file = open(self.log, "a", encoding="utf-8", buffering=1)
            return self._log_file
        return sys.stderr if self.log is None else self.log

    def _capped(self, log: IO[str], text: str) -> str:
        """`text`; or, when it would take the log file past `log_cap` bytes, one line saying that
        printing stops there; then "" (for every instance writing to that file)."""
        try:
            info = os.stat(log.fileno())
        except (AttributeError, OSError, ValueError):  # not a file (io.UnsupportedOperation is both)
            return text
        if not stat.S_ISREG(info.st_mode):
            return text
        key = (info.st_dev, info.st_ino)
        if key in _full_logs:
            return ""
        if info.st_size + len(text.encode("utf-8", "replace")) <= self.log_cap:
            return text
        _full_logs.add(key)
        return (f"racer: {self.path.name}: print() output stops here: this log reached the {self.log_cap / 1e6:g} MB "
                f"cap on reward printing; the rest is dropped (print less, e.g. every 100 steps)\n")

    # ---- time limits ------------------------------------------------------------------
    def _report_slow(self, elapsed: float, frame: FrameType | None, params: dict | None) -> None:
        """The watchdog's warning about a call (params None: the import) still running: to stderr
        and the log."""
        line = self._line(innermost_line(frame, self.where))
        what = "importing the file" if params is None else f"step {_step(params)}"
        text = (f"racer: warning: {self.where}, {line}: still running after {elapsed:.1f} s ({what}); "
                f"its time limit is {self.time_limit:g} s\n")
        sys.stderr.write(text)
        if self.log is None:
            return
        log = self._log_target()
        try:
            if hasattr(log, "write"):
                log.write(text)
            else:
                log(text)
        except (OSError, ValueError):  # the log was closed meanwhile: stderr has the warning
            pass

    def _stopped_at(self, stop: CallTimeout) -> str:
        """'line N: `code`' of the user's line that was executing when the time limit stopped it."""
        return self._line(innermost_line(stop.frame, self.where))

    # ---- calling ----------------------------------------------------------------------
    def __call__(self, params: dict) -> float:
        fn = self._fn or self._load()
        before = _snapshot(params)
        start = time.perf_counter()
        try:
            with self._limits(before):
                value = fn(params)
        except KeyboardInterrupt:
            raise
        except CallTimeout as stop:
            raise self._error(f"{self._stopped_at(stop)}: the call was stopped at its time limit of "
                              f"{self.time_limit:g} s", before, RewardTimeoutError) from None
        except BaseException as exc:  # sys.exit() too: user code may not end the process
            raise self._error(f"{self._raised_at(exc)}: {type(exc).__name__}: {exc}{_hint(exc, before)}",
                              before) from exc
        took = time.perf_counter() - start
        if took > self.time_limit:  # outside the main thread, nothing stops it: it is refused afterwards
            raise self._error(f"the call took {took:.2f} s, over its time limit of {self.time_limit:g} s", before,
                              RewardTimeoutError)
        if self.strict and type(value) is not float:
            line = self._return_line(fn, before, lambda v: type(v) is not float)
            raise self._error(f"{line}: strict mode: the function must return a "
                              f"float, it returned {value!r} ({type(value).__name__})", before)
        try:
            return check_reward(value, params.get("steps"), before)
        except RewardError:
            line = self._return_line(fn, before, _refused)
            raise self._error(f"{line}: the function returned {value!r} "
                              f"({type(value).__name__}); a reward must be a number float() accepts, "
                              f"finite, within [-1e5, 1e5]", before) from None

    def _error(self, what: str, params: dict, kind: type[RewardFunctionError] = RewardFunctionError
               ) -> RewardFunctionError:
        summary = f"{what} (step {_step(params)})"
        return kind(f"{self.where}, {summary}; params: {abbreviated(params)}", summary)

    def _raised_at(self, exc: BaseException) -> str:
        """'line N: `code`' of the last traceback frame in the user's file."""
        line = None
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self.where:
                line = tb.tb_lineno
            tb = tb.tb_next
        return self._line(line)

    def _return_line(self, fn: Callable, params: dict, bad: Callable[[Any], bool]) -> str:
        """'line N: `code`' of the `return` that produced a bad value, found by re-running the call
        once under sys.settrace on a copy of the params (within the time limit); unknown unless the
        re-run is `bad` too."""
        found: list[int] = []
        top: list = []

        def trace(frame, event, arg):
            if event == "call" and not top and frame.f_code.co_filename == self.where:
                top.append(frame)
                return local
            return None

        def local(frame, event, arg):
            if event == "return" and frame is top[0]:
                found.append(frame.f_lineno)
            return local

        old = sys.gettrace()
        sys.settrace(trace)
        self._quiet = True
        try:
            with self._limits(params):
                value = fn(_snapshot(params))
            if not bad(value):
                found.clear()
        except KeyboardInterrupt:
            raise
        except BaseException:
            found.clear()
        finally:
            sys.settrace(old)
            self._quiet = False
        return self._line(found[0] if found else None)

    def _line(self, line: int | None) -> str:
        if line is None:
            return "line unknown"
        code = self._lines[line - 1].strip() if 0 < line <= len(self._lines) else ""
        return f"line {line}: `{code}`" if code else f"line {line}"


def _refused(value: Any) -> bool:
    try:
        check_reward(value, 0, {})
    except RewardError:
        return True
    return False


def _snapshot(params: dict) -> dict:
    """A copy of the params as they were before the call (the function may mutate them)."""
    try:
        return copy_params(params)
    except (KeyError, TypeError):  # not a full DeepRacer params dict
        return copy.deepcopy(params)


def _step(params: dict) -> str:
    step = params.get("steps")
    return f"{step:g}" if isinstance(step, (int, float)) else "unknown"


def _hint(exc: BaseException, params: dict) -> str:
    """A hint for an exit, and for the classic object-avoidance mistake in a time trial."""
    if isinstance(exc, SystemExit):
        return " (a reward function may not end the process: return a reward instead)"
    if isinstance(exc, IndexError) and any(params.get(k) == [] for k in _OBJECT_KEYS):
        return (" (hint: the object lists (objects_location, objects_distance, ...) are empty in a "
                "time trial; check len(params['objects_location']) before indexing them)")
    return ""
