"""The YAML launch files and their parser (no ROS traffic: nothing here starts a node)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from car.launcher import LaunchError, NodeSpec, infer_type, packaged_launch_files, param_text, parse_launch, start

ROOT = Path(__file__).resolve().parent.parent
CAR = packaged_launch_files()["car.launch.yaml"]
CAR_SIM = packaged_launch_files()["car_sim.launch.yaml"]


def by_name(nodes: list[NodeSpec]) -> dict[str, NodeSpec]:
    return {n.name: n for n in nodes}


def test_car_launch_nodes_and_defaults():
    nodes = by_name(parse_launch(CAR, {"model": "/models/m1"}))
    assert list(nodes) == ["camera", "lidar", "inference", "navigation", "control"]
    assert {n.exec for n in nodes.values()} == {"camera_node", "lidar_node", "inference_node",
                                               "navigation_node", "control_node"}
    assert all(n.pkg == "racer" for n in nodes.values())
    assert nodes["inference"].params["model_path"] == "/models/m1"
    assert nodes["camera"].params["stereo"] is False
    assert nodes["navigation"].params["max_speed"] == 0.0  # the car starts unable to move
    assert nodes["navigation"].params["autonomous"] is False
    assert nodes["control"].params["pwm_root"] == "/sys/class/pwm"  # the real hardware


def test_car_sim_launch_substitution_and_types():
    args = {"model": "/b", "track": "oval", "laps": "2", "max_speed": "1.0", "autonomous": "true",
            "run_dir": "/tmp/run7"}
    nodes = by_name(parse_launch(CAR_SIM, args))
    assert list(nodes) == ["sim_bridge", "inference", "navigation", "control"]
    bridge = nodes["sim_bridge"]
    assert bridge.exec == "sim_bridge_node" and bridge.module == "car.nodes.sim_bridge_node"
    assert bridge.params["track"] == "oval" and bridge.params["laps"] == 2
    assert bridge.params["model_path"] == "/b"
    assert bridge.params["results_file"] == "/tmp/run7/results.json"  # a default built from another arg
    assert nodes["control"].params["pwm_root"] == "/tmp/run7/pwm"
    assert nodes["navigation"].params["max_speed"] == 1.0
    assert nodes["navigation"].params["autonomous"] is True
    defaults = by_name(parse_launch(CAR_SIM, {"model": "/b"}))
    assert defaults["navigation"].params["max_speed"] == 0.0
    assert defaults["navigation"].params["autonomous"] is False
    assert defaults["sim_bridge"].params["laps"] == 3


def test_node_command_line():
    nodes = by_name(parse_launch(CAR_SIM, {"model": "/b", "track": "oval"}))
    cmd = nodes["sim_bridge"].command("python3")
    assert cmd[:6] == ["python3", "-m", "car.nodes.sim_bridge_node", "--ros-args", "-r", "__node:=sim_bridge"]
    assert "track:=\"oval\"" in cmd and "laps:=3" in cmd and "top_speed:=4.0" in cmd
    assert "calibration_file:=\"\"" in cmd  # an empty string stays a string


def test_infer_type_like_ros_launch():
    assert infer_type("3") == 3 and infer_type("1.0") == 1.0 and infer_type("true") is True
    assert infer_type("") == "" and infer_type("/a/b") == "/a/b" and infer_type("oval") == "oval"
    assert infer_type("[LIDAR, FRONT_FACING_CAMERA]") == ["LIDAR", "FRONT_FACING_CAMERA"]
    assert infer_type("a: b") == "a: b"  # a mapping is not a parameter type: kept as text
    assert param_text("x y") == '"x y"' and param_text(["A"]) == '["A"]' and param_text(False) == "false"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "t.launch.yaml"
    p.write_text(text)
    return p


def test_remap_ros_args_and_lists(tmp_path):
    p = write(tmp_path, """
launch:
- arg: {name: s, default: LIDAR}
- node:
    pkg: racer
    exec: sim_bridge_node
    name: b
    param:
    - {name: sensors, value: [$(var s), FRONT_FACING_CAMERA]}
    remap:
    - {from: /scan, to: /scan2}
    ros_args: --log-level debug
""")
    n = parse_launch(p, {})[0]
    assert n.params["sensors"] == ["LIDAR", "FRONT_FACING_CAMERA"]
    assert n.remaps == [("/scan", "/scan2")]
    cmd = n.command("py")
    assert cmd[cmd.index("/scan:=/scan2") - 1] == "-r"
    assert cmd[-2:] == ["--log-level", "debug"]
    assert 'sensors:=["LIDAR", "FRONT_FACING_CAMERA"]' in cmd


@pytest.mark.parametrize("text, words", [
    ("launch:\n- node: {pkg: racer, exec: x_node, colour: red}\n", ["'colour'", "node"]),
    ("launch:\n- arg: {name: a, defualt: '1'}\n", ["'defualt'", "arg"]),
    ("launch:\n- group: {}\n", ["'group'"]),
    ("launch:\n- node: {pkg: racer, exec: x_node, param: [{name: a, valeu: 1}]}\n", ["'valeu'", "param"]),
    ("launch:\n- node: {pkg: racer, exec: x_node, remap: [{from: a, too: b}]}\n", ["'too'", "remap"]),
    ("nodes: []\n", ["'launch'"]),
])
def test_unknown_keys_are_named_with_the_file(tmp_path, text, words):
    p = write(tmp_path, text)
    with pytest.raises(LaunchError) as e:
        parse_launch(p, {})
    msg = str(e.value)
    assert str(p) in msg
    for w in words:
        assert w in msg


def test_argument_errors(tmp_path):
    p = write(tmp_path, "launch:\n- arg: {name: model}\n- node: {pkg: racer, exec: a_node, "
                        "param: [{name: m, value: $(var model)}]}\n")
    with pytest.raises(LaunchError, match="'model' is required"):
        parse_launch(p, {})
    with pytest.raises(LaunchError, match="unknown launch argument 'modle'"):
        parse_launch(p, {"model": "x", "modle": "y"})
    q = write(tmp_path, "launch:\n- node: {pkg: racer, exec: a_node, param: [{name: m, value: $(var nope)}]}\n")
    with pytest.raises(LaunchError, match=r"\$\(var nope\)"):
        parse_launch(q, {})
    r = write(tmp_path, "launch:\n- node: {pkg: racer, exec: a_node, param: [{name: m, value: $(env HOME)}]}\n")
    with pytest.raises(LaunchError, match="unsupported substitution"):
        parse_launch(r, {})
    s = write(tmp_path, "launch:\n- node: {pkg: other, exec: a_node}\n")
    with pytest.raises(LaunchError, match="only 'racer'"):
        parse_launch(s, {})
    with pytest.raises(LaunchError, match="cannot read"):
        parse_launch(tmp_path / "missing.yaml", {})


def test_start_refuses_a_missing_executable(tmp_path):
    with pytest.raises(LaunchError, match="no module car.nodes.no_such_node"):
        start([NodeSpec("racer", "no_such_node", "x")], tmp_path, python=sys.executable)


def _proc(tmp_path: Path, name: str, code: str):
    import subprocess

    from car.launcher import Proc
    log = tmp_path / f"{name}.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    return Proc(NodeSpec("racer", name, name), popen, log)


def test_early_exit_is_reported_with_code_and_log(tmp_path):
    from car.launcher import Launch, NodeExited
    crash = _proc(tmp_path, "crasher", "import sys, time; print('loading the model'); "
                                       "print('bundle.json: broken', flush=True); sys.exit(3)")
    ok = _proc(tmp_path, "sleeper", "import time; time.sleep(60)")
    launch = Launch([ok, crash], tmp_path, {"ROS_DOMAIN_ID": "5"})
    try:
        with pytest.raises(NodeExited) as e:
            launch.wait(10.0)
        assert e.value.name == "crasher" and e.value.code == 3
        assert "bundle.json: broken" in str(e.value) and "crasher" in str(e.value)
    finally:
        codes = launch.stop()
    assert codes["crasher"] == 3 and codes["sleeper"] is not None


def test_stop_escalates_past_a_node_that_ignores_sigint(tmp_path):
    import time

    from car.launcher import Launch
    stubborn = _proc(tmp_path, "stubborn", "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                                           "print('ready', flush=True); time.sleep(60)")
    for _ in range(100):
        if "ready" in stubborn.log.read_text():
            break
        time.sleep(0.05)
    t0 = time.monotonic()
    codes = Launch([stubborn], tmp_path, {"ROS_DOMAIN_ID": "5"}).stop(timeout=0.5)
    assert codes["stubborn"] == -15  # SIGTERM after the SIGINT timeout
    assert time.monotonic() - t0 < 3.0


@pytest.mark.parametrize("launch_file", [CAR, CAR_SIM], ids=["car", "car_sim"])
def test_launch_params_are_the_nodes_params(launch_file):
    """Every parameter a launch file sets is one its node declares, with a value of its type."""
    import importlib

    pytest.importorskip("rclpy", reason="rclpy (the car extra) is not installed")
    from car.nodes.common import validate
    for node in parse_launch(launch_file, {"model": "/b"}):
        module = importlib.import_module(node.module)  # imports only: starts nothing
        assert callable(getattr(module, "main", None)), f"{node.module} has no main()"
        specs = {p.name: p for p in module.PARAMS}
        for name, value in node.params.items():
            assert name in specs, f"{launch_file.name}: {node.name} sets {name!r}, {node.module} has {sorted(specs)}"
            validate(specs[name], value)  # raises if the launch file's value would be refused


def test_car_up_refuses_before_starting_anything(tmp_path):
    """`racer car up`: a bad --arg or a missing model stops it before any node starts."""
    from click.testing import CliRunner

    from racer.commands.car import car
    run = tmp_path / "run"
    r = CliRunner().invoke(car, ["up", str(CAR_SIM), "--model", str(tmp_path / "nope"), "--run-dir", str(run)])
    assert r.exit_code == 2 and "refusing to start the car" in r.output and "bundle.json: missing" in r.output
    r = CliRunner().invoke(car, ["up", str(CAR_SIM), "--model", str(tmp_path / "nope"), "--arg", "lapz=2",
                                 "--run-dir", str(run)])
    assert r.exit_code == 2 and "unknown launch argument 'lapz'" in r.output
    r = CliRunner().invoke(car, ["up", str(CAR_SIM), "--model", str(tmp_path / "nope"), "--arg", "laps"])
    assert r.exit_code == 2 and "expected name=value" in r.output
    assert not run.exists() or not list(run.glob("*.log"))


def test_launch_files_are_found_by_path_or_packaged_name(tmp_path, monkeypatch):
    from car.launcher import find_launch_file
    monkeypatch.chdir(tmp_path)
    assert find_launch_file("car_sim.launch.yaml") == CAR_SIM
    assert find_launch_file("car") == CAR
    own = tmp_path / "car_sim.launch.yaml"  # a user's own file of the same name wins
    own.write_text("launch: []\n")
    assert find_launch_file("car_sim.launch.yaml") == Path("car_sim.launch.yaml")
    with pytest.raises(LaunchError, match=r"nope.yaml: no such launch file.*packaged: car.launch.yaml, "
                                          r"car_sim.launch.yaml"):
        find_launch_file("nope.yaml")
    with pytest.raises(LaunchError, match="no such launch file"):
        find_launch_file("elsewhere/car.launch.yaml")  # a path that is not there is not a packaged name
