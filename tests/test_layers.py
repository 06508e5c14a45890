"""The layers hold on the import graph (lazy imports inside functions count too):

    car/           imports sim and the bundle package only
    racer/         the CLI reaches car/ through one thin command module (racer.commands.car)
    racer.bundle   torch-free: imports nothing else of racer
    sim/           a library: imports nothing of racer or car

and nothing reachable from the car's nodes or the bundle package imports torch, stable-baselines3
or pybullet (pybullet: the sim bridge only).  Nor does a module import another's `_private` name.
"""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).parent.parent
HEAVY = ("torch", "stable_baselines3", "pybullet")


@dataclass(frozen=True)
class Layers:
    """The package names the rules speak of (the real ones, or a test's stand-ins)."""

    sim: str = "sim"
    racer: str = "racer"
    car: str = "car"

    @property
    def bundle(self) -> str:
        return f"{self.racer}.bundle"

    @property
    def car_command(self) -> str:
        return f"{self.racer}.commands.car"

    @property
    def sim_bridge(self) -> str:
        return f"{self.car}.nodes.sim_bridge_node"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(graph: grimp.ImportGraph, layers: Layers = Layers()) -> list[str]:
    """Every broken rule, as 'importer -> imported: why' (a chain for the indirect ones)."""
    out = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            why = _edge_rule(importer, imported, layers)
            if why:
                out.append(f"{importer} -> {imported}: {why}")
    car_nodes = [m for m in graph.modules if _within(m, f"{layers.car}.nodes")]
    bundle = [m for m in graph.modules if _within(m, layers.bundle)]
    for source in sorted(car_nodes + bundle):
        for heavy in HEAVY:
            if heavy == "pybullet" and source == layers.sim_bridge:
                continue
            if heavy in graph.modules:
                chain = graph.find_shortest_chain(importer=source, imported=heavy)
                if chain:
                    out.append(f"{' -> '.join(chain)}: {source} must run without {heavy}")
    return out


def _edge_rule(importer: str, imported: str, layers: Layers) -> str | None:
    """Why the direct import `importer -> imported` breaks a layer (None when it is allowed)."""
    if _within(importer, layers.sim) and (_within(imported, layers.racer) or _within(imported, layers.car)):
        return f"{layers.sim} is a library and imports nothing of {layers.racer} or {layers.car}"
    if _within(importer, layers.car) and _within(imported, layers.racer) and not _within(imported, layers.bundle):
        return f"{layers.car} imports only {layers.sim} and {layers.bundle} of the project"
    if _within(importer, layers.bundle) and _within(imported, layers.racer) and not _within(imported, layers.bundle):
        return f"{layers.bundle} is torch-free and imports nothing else of {layers.racer}"
    if _within(importer, layers.racer) and _within(imported, layers.car) and importer != layers.car_command:
        return f"{layers.racer} reaches {layers.car} only through {layers.car_command}"
    return None


def private_imports(roots: list[Path], packages: tuple[str, ...]) -> list[str]:
    """`from <project module> import _name` anywhere under `roots`: a private name crossing a module."""
    out = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in packages:
                    for alias in node.names:
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            out.append(f"{path.relative_to(root.parent)}:{node.lineno}: "
                                       f"from {node.module} import {alias.name}")
    return out


def test_the_project_keeps_its_layers():
    graph = grimp.build_graph("sim", "racer", "car", include_external_packages=True, cache_dir=None)
    assert "car.nodes.inference_node" in graph.modules and "racer.bundle.runtime" in graph.modules
    broken = violations(graph)
    assert not broken, "layers broken:\n" + "\n".join(broken)


def test_no_private_name_is_imported_across_modules():
    found = private_imports([ROOT / "sim", ROOT / "racer", ROOT / "car", ROOT / "tests"], ("sim", "racer", "car"))
    assert not found, "private names imported across modules:\n" + "\n".join(found)


def _package(root: Path, name: str, modules: dict[str, str]) -> None:
    for module, source in modules.items():
        path = root / name / (module.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in [path.parent, *path.parent.parents]:
            if parent == root:
                break
            (parent / "__init__.py").touch()
        path.write_text(textwrap.dedent(source))


def test_back_edges_are_caught(tmp_path, monkeypatch):
    """The rules fail on a tree that breaks each of them (stand-in packages xsim, xracer, xcar)."""
    _package(tmp_path, "xsim", {"world": "import pybullet\n", "env": "def f():\n    from xracer import train\n"})
    _package(tmp_path, "xracer", {
        "train": "import torch\n",
        "bench": "def g():\n    import xcar.launcher\n",  # a second way from racer into car
        "commands.car": "import xcar.launcher\n",  # the one allowed
        "bundle.runtime": "from xracer import train\n",  # the bundle package reaching torch
    })
    _package(tmp_path, "xcar", {
        "launcher": "",
        "nodes.inference_node": "from xracer.bundle import runtime\n",
        "nodes.navigation_node": "def h():\n    import xsim.world\n",  # pybullet, lazily
        "nodes.sim_bridge_node": "import xsim.world\n",  # allowed: pybullet in the bridge
        "nodes.control_node": "from xracer import train\n",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("xsim", "xracer", "xcar", include_external_packages=True, cache_dir=None)
    found = "\n".join(violations(graph, Layers("xsim", "xracer", "xcar")))
    assert "xsim.env -> xracer.train: xsim is a library" in found
    assert "xracer.bench -> xcar.launcher: xracer reaches xcar only through xracer.commands.car" in found
    assert "xracer.commands.car -> xcar" not in found
    assert "xracer.bundle.runtime -> xracer.train: xracer.bundle is torch-free" in found
    assert "xcar.nodes.control_node -> xracer.train: xcar imports only" in found
    assert "xcar.nodes.inference_node -> xracer.bundle.runtime -> xracer.train -> torch" in found
    assert "xcar.nodes.navigation_node -> xsim.world -> pybullet" in found
    assert "xcar.nodes.sim_bridge_node -> xsim.world -> pybullet" not in found
    bad = tmp_path / "xcar" / "nodes" / "control_node.py"
    bad.write_text("from xracer.train import _secret\n")
    assert private_imports([tmp_path / "xcar"], ("xracer",)) == [
        "xcar/nodes/control_node.py:1: from xracer.train import _secret"]


@pytest.mark.parametrize("module", ["racer.bundle.archive", "racer.bundle.runtime", "car.nodes.inference_node",
                                    "car.nodes.navigation_node", "car.nodes.control_node"])
def test_car_side_modules_load_without_torch(module):
    """What the static graph says, checked once at run time: importing them loads no heavy library."""
    code = (f"import sys, {module}; bad = [m for m in {HEAVY!r} if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
