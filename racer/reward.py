"""Loading a user's reward function file: one fresh module per instance, clear errors.

`RewardFunction(path)` is the callable an environment gets.  Every instance executes its
own copy of the file (module globals are per environment, as in DeepRacer's per-worker
import), `print()` goes to the run log, and anything DeepRacer would stop the job for
(an exception, a value `float()` rejects, NaN, inf, |r| > 1e5) raises `RewardFunctionError`
naming the file, the line, the step and the params.  `strict=True` adds the AWS console
validator's rules.
"""
from __future__ import annotations

import ast
import copy
import importlib.resources
import importlib.util
import itertools
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sim.params import copy_params
from sim.reward_check import RewardError, abbreviated, check_reward

FUNCTION_NAME = "reward_function"
# invisible characters that web pages put into copied code: removed, or replaced by a space
INVISIBLE = {"\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "", "\u180e": "",
             "\u00a0": " ", "\u202f": " ", "\u2007": " "}
STRICT_MODULES = ("math", "random", "numpy", "scipy", "shapely")
STRICT_FORBIDDEN = ("open", "exec", "eval", "compile", "input")
STRICT_TIME_LIMIT = 5.0  # s per call
_OBJECT_KEYS = ("objects_location", "objects_distance", "objects_distance_from_center",
                "objects_heading", "objects_left_of_center", "objects_speed")
_module_ids = itertools.count()

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
        strict: apply the AWS console validator's rules (see `strict_check`, float returns,
            `time_limit` per call).
        log: where `print()` in the user's module writes: a text file object, a callable
            taking a str, or a path (appended to); None = sys.stderr.
        time_limit: seconds one call may take in strict mode.

    Pickles as its path and options; the copy imports the file again on its first call.
    """

    def __init__(self, path: str | Path, strict: bool = False, log: Log = None,
                 time_limit: float = STRICT_TIME_LIMIT):
        self.path = Path(path).resolve()
        self.strict, self.log, self.time_limit = strict, log, time_limit
        self._fn: Callable | None = None
        self._log_file: IO[str] | None = None
        self._quiet = False  # True while a call is re-run to find its return line
        self._load()

    # ---- pickling ---------------------------------------------------------------------
    def __getstate__(self) -> dict:
        if self.log is not None and not isinstance(self.log, (str, Path)):
            raise TypeError(f"{self.path.name}: a RewardFunction whose log is {self.log!r} cannot be "
                            f"pickled (for a subprocess env); give the log as a file path instead")
        return {"path": self.path, "strict": self.strict, "log": self.log, "time_limit": self.time_limit}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _fn=None, _log_file=None, _quiet=False)

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
            exec(code, module.__dict__)
        except Exception as exc:
            raise RewardFunctionError(f"{self.where}, {self._raised_at(exc)} while importing the file: "
                                      f"{type(exc).__name__}: {exc}") from exc
        fn = getattr(module, FUNCTION_NAME, None)
        if fn is None:
            raise RewardFunctionError(f"{self.where}: no `{FUNCTION_NAME}` defined; the file must define "
                                      f"`def {FUNCTION_NAME}(params):` returning a float")
        if not callable(fn):
            raise RewardFunctionError(f"{self.where}: `{FUNCTION_NAME}` is a {type(fn).__name__}, not a function")
        self._fn = fn
        return fn

    def _print(self, *args: Any, sep: str | None = " ", end: str | None = "\n", file: IO[str] | None = None,
               flush: bool = False) -> None:
        """The user's `print`: to the run log, unless a file is named."""
        if self._quiet:
            return
        if file is not None:
            print(*args, sep=sep, end=end, file=file, flush=flush)
            return
        text = (" " if sep is None else sep).join(map(str, args)) + ("\n" if end is None else end)
        log = self.log
        if isinstance(log, (str, Path)):
            if self._log_file is None:
                self._log_file = open(log, "a", encoding="utf-8", buffering=1)
            log = self._log_file
        log = sys.stderr if log is None else log
        if hasattr(log, "write"):
            log.write(text)
            if flush:
                log.flush()
        else:
            log(text)

    # ---- calling ----------------------------------------------------------------------
    def __call__(self, params: dict) -> float:
        fn = self._fn or self._load()
        before = _snapshot(params)
        start = time.perf_counter()
        try:
            value = fn(params)
        except Exception as exc:
            raise self._error(f"{self._raised_at(exc)}: {type(exc).__name__}: {exc}{_hint(exc, before)}",
                              before) from exc
        if self.strict:
            took = time.perf_counter() - start
            if took > self.time_limit:
                raise self._error(f"strict mode: the call took {took:.2f} s, over the {self.time_limit:g} s "
                                  f"limit", before)
            if type(value) is not float:
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

    def _error(self, what: str, params: dict) -> RewardFunctionError:
        step = params.get("steps")
        step = f"{step:g}" if isinstance(step, (int, float)) else "unknown"
        summary = f"{what} (step {step})"
        return RewardFunctionError(f"{self.where}, {summary}; params: {abbreviated(params)}", summary)

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
        once under sys.settrace on a copy of the params; unknown unless the re-run is `bad` too."""
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
            if not bad(fn(_snapshot(params))):
                found.clear()
        except Exception:
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


def _hint(exc: Exception, params: dict) -> str:
    """A hint for the classic object-avoidance mistake in a time trial."""
    if isinstance(exc, IndexError) and any(params.get(k) == [] for k in _OBJECT_KEYS):
        return (" (hint: the object lists (objects_location, objects_distance, ...) are empty in a "
                "time trial; check len(params['objects_location']) before indexing them)")
    return ""
