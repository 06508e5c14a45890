"""Start a ROS 2 YAML launch file's nodes without a ROS install: `racer car up` uses this.

The subset of the YAML launch format (https://docs.ros.org/en/rolling/How-To-Guides/
Launch-file-different-formats.html) that the car's launch files use:

    launch:
    - arg: {name: model, default: '', description: ...}
    - node:
        pkg: racer
        exec: inference_node          # -> python -m car.nodes.inference_node
        name: inference
        param: [{name: model_path, value: $(var model)}]
        remap: [{from: /a, to: /b}]   # optional
        ros_args: '--log-level debug' # optional

`$(var name)` is substituted in every string (arg defaults too). Parameter values are typed
as ROS 2 launch types them: the substituted string read as YAML ('3' -> int, '1.0' -> float,
'true' -> bool, anything else a string). Every process gets the localhost-only ROS
environment of car.rosenv, and one shared domain id.
"""
from __future__ import annotations

import importlib.resources
import importlib.util
import json
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from car.rosenv import safe_ros_env
from sim.errors import InputError

PKG = "racer"
NODE_MODULE = "car.nodes.{exec}"
ARG_KEYS = {"name", "default", "description"}
NODE_KEYS = {"pkg", "exec", "name", "namespace", "param", "remap", "ros_args", "args", "output"}
_VAR = re.compile(r"\$\(\s*var\s+([A-Za-z_][A-Za-z0-9_]*)\s*\)")
_SUBST = re.compile(r"\$\(([^)]*)\)")


class LaunchError(InputError, ValueError):
    """A launch file that cannot be used; the message names the file and the problem."""


class NodeExited(RuntimeError):
    """A node ended while the launch was meant to be running."""

    def __init__(self, name: str, code: int | None, log_tail: str):
        self.name, self.code, self.log_tail = name, code, log_tail
        tail = "\n".join("    " + line for line in log_tail.splitlines())
        super().__init__(f"node {name!r} exited early with code {code}; the end of its log:\n{tail}")


@dataclass
class NodeSpec:
    """One node of a launch file, substitutions done."""

    pkg: str
    exec: str
    name: str
    params: dict = field(default_factory=dict)  # name -> typed value
    remaps: list[tuple[str, str]] = field(default_factory=list)
    ros_args: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    namespace: str = ""

    @property
    def module(self) -> str:
        return NODE_MODULE.format(exec=self.exec)

    def command(self, python: str = sys.executable) -> list[str]:
        """`python -m car.nodes.<exec> [args] --ros-args -r __node:=<name> -p k:=v ...`."""
        cmd = [python, "-m", self.module, *self.args, "--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            cmd += ["-r", f"__ns:={self.namespace}"]
        for src, dst in self.remaps:
            cmd += ["-r", f"{src}:={dst}"]
        for key, value in self.params.items():
            cmd += ["-p", f"{key}:={param_text(value)}"]
        return cmd + list(self.ros_args)


def infer_type(text: str):
    """A parameter string typed as ROS 2 launch does: YAML scalars (and lists), else the string."""
    if not isinstance(text, str):
        return text
    if text == "":
        return ""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list) and value and all(isinstance(v, (bool, int, float, str)) for v in value) \
            and len({type(v) for v in value}) == 1:
        return value
    return text


def param_text(value) -> str:
    """A typed value as the YAML text of a `-p name:=value` argument (JSON is YAML)."""
    if isinstance(value, (bool, int, float, str)) or isinstance(value, list):
        return json.dumps(value)
    raise TypeError(f"unsupported parameter value {value!r}")


# ---- parsing --------------------------------------------------------------------------------
def _subst(value, variables: dict, where: str):
    """`$(var x)` in strings (recursively in lists); any other substitution is an error."""
    if isinstance(value, list):
        return [_subst(v, variables, where) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        vm = _VAR.fullmatch(m.group(0))
        if not vm:
            raise LaunchError(f"{where}: unsupported substitution {m.group(0)!r} (only $(var NAME))")
        name = vm.group(1)
        if name not in variables:
            raise LaunchError(f"{where}: $(var {name}): no launch argument {name!r} "
                              f"(declared: {', '.join(variables) or 'none'})")
        return str(variables[name])

    return _SUBST.sub(one, value)


def _pairs(body: dict, what: str, pair: tuple[str, str], where: str) -> list[tuple]:
    """A node's `param` or `remap` list: each item a mapping with exactly the two `pair` keys."""
    items = body.get(what, []) or []
    if not isinstance(items, list):
        raise LaunchError(f"{where}: '{what}' must be a list of {{{', '.join(pair)}}}")
    out = []
    for j, item in enumerate(items):
        iw = f"{where} {what}[{j}]"
        _keys(item, set(pair), what, iw)
        if any(k not in item for k in pair):
            raise LaunchError(f"{iw}: {what} needs '{pair[0]}' and '{pair[1]}'")
        out.append((item[pair[0]], item[pair[1]]))
    return out


def _keys(item, allowed: set, what: str, where: str) -> dict:
    if not isinstance(item, dict):
        raise LaunchError(f"{where}: {what} must be a mapping, got {type(item).__name__}")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise LaunchError(f"{where}: unknown key {unknown[0]!r} in {what} (allowed: {', '.join(sorted(allowed))})")
    return item


def packaged_launch_files() -> dict[str, Path]:
    """The launch files shipped in the package (car/launch): file name -> path."""
    folder = Path(str(importlib.resources.files("car") / "launch"))
    return {p.name: p for p in sorted(folder.glob("*.launch.yaml"))}


def find_launch_file(name: str | Path) -> Path:
    """A launch file: `name` itself when that file exists, else the packaged launch file of that name
    (`car_sim.launch.yaml`, or just `car_sim`); LaunchError lists the packaged ones."""
    path = Path(name)
    if path.is_file():
        return path
    packaged = packaged_launch_files()
    if path.parent == Path("."):
        for candidate in (path.name, f"{path.name}.launch.yaml"):
            if candidate in packaged:
                return packaged[candidate]
    raise LaunchError(f"{name}: no such launch file, nor a packaged one of that name "
                      f"(packaged: {', '.join(packaged)})")


def declared_args(path: str | Path) -> dict[str, str | None]:
    """The launch file's arguments and their defaults (unsubstituted; None = required)."""
    return {a["name"]: a.get("default") for a in _entries(Path(path), "arg")}


def _load(path: Path) -> list:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LaunchError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise LaunchError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or set(data) != {"launch"} or not isinstance(data["launch"], list):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise LaunchError(f"{path}: expected one top-level key 'launch' holding a list, got {keys}")
    return data["launch"]


def _entries(path: Path, kind: str) -> list[dict]:
    out = []
    for i, entry in enumerate(_load(path)):
        where = f"{path}: launch[{i}]"
        if not isinstance(entry, dict) or len(entry) != 1:
            raise LaunchError(f"{where}: each entry must be one of 'arg: ...' or 'node: ...'")
        (key, body), = entry.items()
        if key not in ("arg", "node"):
            raise LaunchError(f"{where}: unknown key {key!r} (supported: arg, node)")
        if key == kind:
            out.append(_keys(body, ARG_KEYS if key == "arg" else NODE_KEYS, key, where))
    return out


def parse_launch(path: str | Path, args: dict | None = None) -> list[NodeSpec]:
    """The nodes of a YAML launch file with `args` (name -> value) over the declared defaults."""
    path = Path(path)
    args = {k: str(v) for k, v in (args or {}).items()}
    entries = _load(path)
    variables: dict[str, str] = {}
    nodes: list[NodeSpec] = []
    declared: list[str] = []
    for i, entry in enumerate(entries):
        where = f"{path}: launch[{i}]"
        if not isinstance(entry, dict) or len(entry) != 1:
            raise LaunchError(f"{where}: each entry must be one of 'arg: ...' or 'node: ...'")
        (key, body), = entry.items()
        if key == "arg":
            _keys(body, ARG_KEYS, "arg", where)
            name = body.get("name")
            if not isinstance(name, str) or not name:
                raise LaunchError(f"{where}: arg needs a 'name'")
            declared.append(name)
            if name in args:
                variables[name] = args[name]
            elif "default" in body and body["default"] is not None:
                variables[name] = _subst(str(body["default"]), variables, f"{where} (arg {name})")
            else:
                raise LaunchError(f"{path}: launch argument {name!r} is required (give {name}=VALUE)")
        elif key == "node":
            nodes.append(_node(body, variables, where))
        else:
            raise LaunchError(f"{where}: unknown key {key!r} (supported: arg, node)")
    unknown = sorted(set(args) - set(declared))
    if unknown:
        raise LaunchError(f"{path}: unknown launch argument {unknown[0]!r} (declared: {', '.join(declared)})")
    names = [n.name for n in nodes]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise LaunchError(f"{path}: two nodes are named {dup[0]!r}")
    return nodes


def _node(body, variables: dict, where: str) -> NodeSpec:
    _keys(body, NODE_KEYS, "node", where)
    s = lambda v, what: _subst(v, variables, f"{where} ({what})")  # noqa: E731
    for req in ("pkg", "exec"):
        if not isinstance(body.get(req), str) or not body[req]:
            raise LaunchError(f"{where}: node needs '{req}'")
    pkg, exe = s(body["pkg"], "pkg"), s(body["exec"], "exec")
    if pkg != PKG:
        raise LaunchError(f"{where}: pkg {pkg!r}: only {PKG!r} nodes can be started here")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", exe):
        raise LaunchError(f"{where}: exec {exe!r} is not a node executable name")
    name = s(body.get("name", exe), "name")
    params: dict = {}
    for key, value in _pairs(body, "param", ("name", "value"), f"{where} node {name}"):
        value = s(value, f"param {key}")
        params[str(key)] = [infer_type(v) for v in value] if isinstance(value, list) else infer_type(value)
    remaps = [(s(a, "remap"), s(b, "remap"))
              for a, b in _pairs(body, "remap", ("from", "to"), f"{where} node {name}")]
    ros_args = shlex.split(s(str(body.get("ros_args", "")), "ros_args"))
    extra = shlex.split(s(str(body.get("args", "")), "args"))
    return NodeSpec(pkg, exe, name, params, remaps, ros_args, extra, s(body.get("namespace", ""), "namespace"))


# ---- running ----------------------------------------------------------------------------------
@dataclass
class Proc:
    spec: NodeSpec
    popen: subprocess.Popen
    log: Path

    @property
    def name(self) -> str:
        return self.spec.name


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"


class Launch:
    """The running nodes of a launch: `wait`, `check`, `stop`; a context manager (stop on exit)."""

    def __init__(self, procs: list[Proc], run_dir: Path, env: dict):
        self.procs, self.run_dir, self.env = procs, run_dir, env
        self.domain_id = int(env["ROS_DOMAIN_ID"])

    def __enter__(self) -> Launch:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def proc(self, name: str) -> Proc:
        for p in self.procs:
            if p.name == name:
                return p
        raise KeyError(f"no node {name!r} (nodes: {', '.join(p.name for p in self.procs)})")

    def pid(self, name: str) -> int:
        return self.proc(name).popen.pid

    def exited(self) -> list[Proc]:
        """The nodes that have ended."""
        return [p for p in self.procs if p.popen.poll() is not None]

    def check(self, ignore: tuple[str, ...] = ()) -> None:
        """Raise NodeExited for the first node that ended (other than `ignore`)."""
        for p in self.exited():
            if p.name not in ignore:
                raise NodeExited(p.name, p.popen.returncode, log_tail(p.log))

    def wait(self, duration: float | None = None, poll: float = 0.1, ignore: tuple[str, ...] = ()) -> None:
        """Run for `duration` seconds (None: until a node ends or Ctrl-C); NodeExited if one ends."""
        end = None if duration is None else time.monotonic() + duration
        while end is None or time.monotonic() < end:
            self.check(ignore)
            time.sleep(poll if end is None else max(0.0, min(poll, end - time.monotonic())))
        self.check(ignore)

    def stop(self, timeout: float = 5.0) -> dict[str, int | None]:
        """SIGINT every node, then SIGTERM and SIGKILL the ones that outlive `timeout`; exit codes."""
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            alive = [p for p in self.procs if p.popen.poll() is None]
            if not alive:
                break
            for p in alive:
                try:
                    p.popen.send_signal(sig)
                except ProcessLookupError:
                    pass
            end = time.monotonic() + wait
            for p in alive:
                try:
                    p.popen.wait(max(0.0, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        for p in self.procs:
            if p.popen.stdout:
                p.popen.stdout.close()
        return {p.name: p.popen.returncode for p in self.procs}


def start(nodes: list[NodeSpec], run_dir: str | Path, domain_id: int | None = None,
          python: str = sys.executable) -> Launch:
    """Start every node as `python -m car.nodes.<exec> --ros-args ...`, logs in run_dir/<name>.log."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    missing = [n.exec for n in nodes if importlib.util.find_spec(n.module) is None]
    if missing:
        raise LaunchError(f"node executable {missing[0]!r}: no module {NODE_MODULE.format(exec=missing[0])}")
    env = safe_ros_env(domain_id=domain_id, log_dir=run_dir / "ros-logs")
    env.setdefault("PYTHONUNBUFFERED", "1")
    procs: list[Proc] = []
    try:
        for spec in nodes:
            log = run_dir / f"{spec.name}.log"
            out = open(log, "wb")
            try:
                popen = subprocess.Popen(spec.command(python), stdout=out, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            finally:
                out.close()
            procs.append(Proc(spec, popen, log))
    except BaseException:
        Launch(procs, run_dir, env).stop(timeout=2.0)
        raise
    (run_dir / "launch.json").write_text(json.dumps(
        {"domain_id": int(env["ROS_DOMAIN_ID"]),
         "nodes": [{"name": p.name, "pid": p.popen.pid, "command": p.spec.command(python)} for p in procs]},
        indent=2) + "\n")
    return Launch(procs, run_dir, env)
