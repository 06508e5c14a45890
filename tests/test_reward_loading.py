"""Loading users' reward functions: fresh modules, clear errors, print to the log, strict mode, CLI."""
from __future__ import annotations

import csv
import io
import pickle
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from click.testing import CliRunner

import sim
from racer.commands.reward import reward
from racer.reward import RewardFunction, RewardFunctionError, RewardSourceWarning, example_rewards
from sim.env import RewardError

EXAMPLES = example_rewards()
TRACE_COLUMNS = ("episode,steps,X,Y,yaw,steer,throttle,action,reward,done,all_wheels_on_track,progress,"
                 "closest_waypoint,track_len,tstamp,episode_status,pause_duration,obstacle_crash_counter,"
                 "wall_clock").split(",")


def write(tmp_path: Path, source: str, name: str = "my_reward.py") -> Path:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return path


# ---- errors raised by the user's code ----------------------------------------------------
def test_exception_names_file_line_type_step_and_params(tmp_path, params):
    path = write(tmp_path, "def helper(p):\n    return p['no_such_key']\n\n"
                           "def reward_function(params):\n    return helper(params)\n")
    fn = RewardFunction(path)
    with pytest.raises(RewardFunctionError) as err:
        fn(params)
    msg = str(err.value)
    assert msg.startswith(f"{path}, line 2: `return p['no_such_key']`: KeyError: 'no_such_key'")
    assert "(step 7)" in msg
    assert f"'track_width': {params['track_width']}" in msg
    assert f"'waypoints': '<{len(params['waypoints'])} points>'" in msg  # abbreviated
    assert isinstance(err.value, RewardError) and isinstance(err.value.__cause__, KeyError)
    assert err.value.summary == "line 2: `return p['no_such_key']`: KeyError: 'no_such_key' (step 7)"


def test_index_error_on_empty_object_lists_gets_a_hint(tmp_path, params):
    path = write(tmp_path, "def reward_function(params):\n"
                           "    x, y = params['objects_location'][params['closest_objects'][1]]\n"
                           "    return 1.0\n")
    with pytest.raises(RewardFunctionError) as err:
        RewardFunction(path)(params)
    msg = str(err.value)
    assert f"{path}, line 2:" in msg and "IndexError: list index out of range" in msg
    assert "the object lists (objects_location, objects_distance, ...) are empty in a time trial" in msg


def test_other_index_errors_get_no_hint(tmp_path):
    path = write(tmp_path, "def reward_function(params):\n    return [][0]\n")
    with pytest.raises(RewardFunctionError) as err:
        RewardFunction(path)({"steps": 3, "objects_location": [[1, 2]]})
    assert "IndexError" in str(err.value) and "hint" not in str(err.value)


BAD_VALUES = ["float('nan')", "float('inf')", "-float('inf')", "1e6", "'abc'", "None", "[1.0]"]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_bad_return_value_names_the_return_line(tmp_path, params, value):
    path = write(tmp_path, "import math\n\ndef reward_function(params):\n"
                           "    if params['steps'] < 3:\n        return 1.0\n"
                           f"    bad = {value}\n    return bad\n")
    fn = RewardFunction(path)
    assert fn({**params, "steps": 2.0}) == 1.0
    tracer = sys.gettrace()
    with pytest.raises(RewardFunctionError) as err:
        fn(params)
    assert sys.gettrace() is tracer  # the re-run's tracer is removed again
    msg = str(err.value)
    shown = repr(eval(value))
    assert msg.startswith(f"{path}, line 7: `return bad`: the function returned {shown} (")
    assert "within [-1e5, 1e5]" in msg and "(step 7)" in msg and f"'x': {params['x']}" in msg


def test_bad_value_from_a_helper_names_the_return_in_reward_function(tmp_path, params):
    path = write(tmp_path, "def helper():\n    return float('nan')\n\n"
                           "def reward_function(params):\n    x = 1\n    return helper()\n")
    with pytest.raises(RewardFunctionError, match=r"line 6: `return helper\(\)`: the function returned nan"):
        RewardFunction(path)(params)


@pytest.mark.parametrize("second", ["raise ValueError('second')", "return 1.0"])
def test_line_unknown_when_the_rerun_differs(tmp_path, params, second):
    path = write(tmp_path, "calls = 0\n\ndef reward_function(params):\n    global calls\n    calls += 1\n"
                           f"    if calls == 1:\n        return float('nan')\n    {second}\n")
    with pytest.raises(RewardFunctionError, match="line unknown: the function returned nan"):
        RewardFunction(path)(params)


def test_valid_values_become_python_floats(tmp_path, params):
    path = write(tmp_path, "import numpy as np\n\ndef reward_function(params):\n"
                           "    return [1, True, np.float32(0.5), 100000][int(params['steps']) - 2]\n")
    fn = RewardFunction(path)
    got = [fn({**params, "steps": float(s)}) for s in (2, 3, 4, 5)]
    assert got == [1.0, 1.0, 0.5, 1e5] and all(type(r) is float for r in got)


# ---- loading ---------------------------------------------------------------------------------
def test_syntax_error_names_line_and_text(tmp_path):
    path = write(tmp_path, "def reward_function(params):\n    x = (1 +\n    return 1.0 x\n")
    with pytest.raises(RewardFunctionError) as err:
        RewardFunction(path)
    assert str(err.value).startswith(f"{path}, line 2: syntax error:")
    assert "x = (1 +" in str(err.value)


def test_missing_reward_function(tmp_path):
    path = write(tmp_path, "def reward(params):\n    return 1.0\n")
    with pytest.raises(RewardFunctionError, match=f"^{path}: no `reward_function` defined"):
        RewardFunction(path)


def test_error_at_import_names_line(tmp_path):
    path = write(tmp_path, "import math\nLIMIT = 1 / 0\n\ndef reward_function(params):\n    return 1.0\n")
    with pytest.raises(RewardFunctionError, match=r"line 2: `LIMIT = 1 / 0` while importing the file: "
                                                  r"ZeroDivisionError"):
        RewardFunction(path)


def test_compile_error_names_line(tmp_path):
    path = write(tmp_path, "x = 1\nreturn x\n\ndef reward_function(params):\n    return 1.0\n")
    with pytest.raises(RewardFunctionError, match=r"line 2: syntax error: 'return' outside function: return x$"):
        RewardFunction(path)


def test_missing_file(tmp_path):
    with pytest.raises(RewardFunctionError, match="nope.py: cannot read the reward function file"):
        RewardFunction(tmp_path / "nope.py")


def test_invisible_characters_are_stripped_with_a_warning(tmp_path, params):
    source = ("def reward_function(params):\n"
              "\u00a0\u00a0\u00a0\u00a0width = params['track_width']\u200b\n"
              "    return 0.5 if width > 0 else 0.0\ufeff\n")
    path = write(tmp_path, source)
    with pytest.warns(RewardSourceWarning) as record:
        fn = RewardFunction(path)
    assert len(record) == 1
    text = str(record[0].message)
    assert text.startswith(f"{path}: removed 6 invisible or non-breaking space character(s)")
    assert text.endswith("the first at line 2:1")
    assert fn(params) == 0.5


def test_print_goes_to_the_log_file(tmp_path, params):
    path = write(tmp_path, "print('loaded')\n\ndef reward_function(params):\n"
                           "    print('step', int(params['steps']), 'w', params['track_width'], sep='|')\n"
                           "    return 1.0\n")
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        fn = RewardFunction(path, log=log)
        fn(params)
    assert log_path.read_text() == f"loaded\nstep|7|w|{params['track_width']}\n"

    lines = []
    RewardFunction(path, log=lines.append)(params)
    assert lines == ["loaded\n", f"step|7|w|{params['track_width']}\n"]

    by_path = tmp_path / "by_path.log"
    fn = pickle.loads(pickle.dumps(RewardFunction(path, log=by_path)))
    fn(params)
    assert by_path.read_text() == "loaded\n" + f"loaded\nstep|7|w|{params['track_width']}\n"


def test_print_is_not_repeated_when_finding_the_return_line(tmp_path, params):
    path = write(tmp_path, "def reward_function(params):\n    print('once')\n    return float('nan')\n")
    out = io.StringIO()
    with pytest.raises(RewardFunctionError, match="line 3"):
        RewardFunction(path, log=out)(params)
    assert out.getvalue() == "once\n"


# ---- one module per instance -------------------------------------------------------------------
COUNTER = "calls = 0\n\ndef reward_function(params):\n    global calls\n    calls += 1\n    return float(calls)\n"


def test_module_globals_are_per_instance(tmp_path, params):
    path = write(tmp_path, COUNTER)
    fns = [RewardFunction(path) for _ in range(4)]
    for k, fn in enumerate(fns):
        for _ in range(k + 1):
            last = fn(params)
        assert last == k + 1
    assert [fn(params) for fn in fns] == [2.0, 3.0, 4.0, 5.0]
    assert not any(name.startswith("_racer_reward_") for name in sys.modules)


def test_module_globals_are_per_instance_after_pickling(tmp_path, params):
    path = write(tmp_path, COUNTER)
    original = RewardFunction(path)
    original(params)
    copies = [pickle.loads(pickle.dumps(original)) for _ in range(4)]  # as a subprocess env gets it
    for k, fn in enumerate(copies):
        for _ in range(k + 1):
            last = fn(params)
        assert last == k + 1  # a fresh import: the original's count is not carried over
    assert original(params) == 2.0


def test_pickling_with_a_file_object_log_is_refused(tmp_path):
    fn = RewardFunction(write(tmp_path, COUNTER), log=io.StringIO())
    with pytest.raises(TypeError, match="give the log as a file path instead"):
        pickle.dumps(fn)


# ---- strict mode (the AWS console validator) ----------------------------------------------------
@pytest.mark.parametrize("source, expected", [
    ("def reward_function(params, extra=None):\n    return 1.0\n",
     "line 1: strict mode: reward_function must take exactly one parameter (params), it takes (params, extra)"),
    ("def reward_function(*args):\n    return 1.0\n", "it takes (args)"),
    ("import math\nimport os\n\ndef reward_function(params):\n    return 1.0\n",
     "line 2: strict mode: `import os` is not allowed; imports may only come from math, random, numpy"),
    ("from subprocess import run\n\ndef reward_function(params):\n    return 1.0\n",
     "line 1: strict mode: `import subprocess` is not allowed"),
    ("def reward_function(params):\n    import json\n    return 1.0\n", "line 2: strict mode: `import json`"),
    ("def reward_function(params):\n    with open('x') as f:\n        pass\n    return 1.0\n",
     "line 2: strict mode: `open` is not allowed (none of open, exec, eval, compile, input)"),
    ("def reward_function(params):\n    return eval('1.0')\n", "line 2: strict mode: `eval` is not allowed"),
])
def test_strict_static_refusals(tmp_path, source, expected):
    path = write(tmp_path, source)
    with pytest.raises(RewardFunctionError) as err:
        RewardFunction(path, strict=True)
    assert str(err.value).startswith(f"{path}, ")
    assert expected in str(err.value)
    RewardFunction(path)  # the same file loads outside strict mode


def test_strict_accepts_the_allowed_imports(tmp_path, params):
    path = write(tmp_path, "import math\nimport numpy as np\nfrom scipy import spatial\nimport random\n\n"
                           "def reward_function(params):\n    return float(np.clip(math.sqrt(4.0), 0, 1))\n")
    assert RewardFunction(path, strict=True)(params) == 1.0


@pytest.mark.parametrize("value, type_name", [("1", "int"), ("True", "bool"), ("np.float64(1.0)", "float64")])
def test_strict_refuses_non_float_returns(tmp_path, params, value, type_name):
    path = write(tmp_path, f"import numpy as np\n\ndef reward_function(params):\n    r = {value}\n    return r\n")
    with pytest.raises(RewardFunctionError) as err:
        RewardFunction(path, strict=True)(params)
    assert str(err.value).startswith(f"{path}, line 5: `return r`: strict mode: the function must return a float, "
                                     f"it returned {eval(value, {'np': np})!r} ({type_name})")
    assert RewardFunction(path)(params) == 1.0  # accepted outside strict mode


def test_strict_time_limit(tmp_path, params):
    # strict mode allows no `time` import: burn the time in a loop (~0.2 s, the limit is 0.05 s)
    slow = write(tmp_path, "def reward_function(params):\n    x = 0.0\n"
                           "    while x < 3e6 * (params['steps'] > 2):\n        x += 1\n    return 1.0\n")
    fn = RewardFunction(slow, strict=True, time_limit=0.05)
    assert fn({**params, "steps": 2.0}) == 1.0
    with pytest.raises(RewardFunctionError, match=r", line [34]: .*: the call was stopped at its time limit of "
                                                  r"0.05 s \(step 7\)"):
        fn(params)
    assert RewardFunction(slow)(params) == 1.0  # outside strict mode the limit is TIME_LIMIT (60 s)


# ---- in the real env ----------------------------------------------------------------------------
def test_env_step_raises_naming_the_step(tmp_path):
    path = write(tmp_path, "def reward_function(params):\n    if params['steps'] == 5:\n"
                           "        raise RuntimeError('boom at five')\n    return 1.0\n")
    env = gym.make(sim.ENV_ID, track="reinvent-like", sensors=["LIDAR"], reward_fn=RewardFunction(path))
    env.reset(seed=0)
    try:
        for _ in range(3):  # steps 2, 3, 4
            assert env.step(2)[1] == 1.0
        with pytest.raises(RewardFunctionError) as err:
            env.step(2)
    finally:
        env.close()
    msg = str(err.value)
    assert msg.startswith(f"{path}, line 3: `raise RuntimeError('boom at five')`: RuntimeError: boom at five (step 5)")
    assert "'steps': 5.0" in msg


# ---- racer reward test ---------------------------------------------------------------------------
def test_cli_follow_center(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(reward, ["test", str(EXAMPLES["follow_center"]), "--track", "oval"])
    assert result.exit_code == 0, result.output
    for case in ("forward: centre", "forward: left border", "forward: off track right", "reverse: start line",
                 "reverse: before the finish", "centre line, every"):
        assert case in result.output
    assert (tmp_path / "reward_plot.png").stat().st_size > 10_000


def test_cli_crashing_function_exits_1(tmp_path):
    path = write(tmp_path, "def reward_function(params):\n    if params['is_offtrack']:\n"
                           "        return params['nope']\n    return 1.0\n", name="crash.py")
    plot = tmp_path / "plot.png"
    result = CliRunner().invoke(reward, ["test", str(path), "--track", "oval", "--plot", str(plot)])
    assert result.exit_code == 1
    assert "4 call(s) failed; the first:" in result.output  # off track left/right, both directions
    assert f"{path}, line 3: `return params['nope']`: KeyError: 'nope'" in result.output
    assert plot.exists()


def test_cli_strict_refusal(tmp_path):
    path = write(tmp_path, "import os\n\ndef reward_function(params):\n    return 1.0\n")
    result = CliRunner().invoke(reward, ["test", str(path), "--strict", "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 2 and "line 1: strict mode: `import os` is not allowed" in result.output


def _trace(tmp_path: Path, steps: int = 30) -> Path:
    """A DeepRacer trace CSV of a short drive (reward = 10 x the centre distance)."""
    env = gym.make(sim.ENV_ID, track="oval", sensors=["LIDAR"],
                   reward_fn=lambda p: 10 * p["distance_from_center"])
    _, info = env.reset(seed=0)
    path = tmp_path / "trace.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TRACE_COLUMNS)
        reward_value, status = 0.0, "prepare"
        for i in range(steps):
            p = info["params"]
            writer.writerow([0, p["steps"], p["x"], p["y"], p["heading"], p["steering_angle"], p["speed"], 1,
                             reward_value, False, p["all_wheels_on_track"], p["progress"], p["closest_waypoints"][1],
                             p["track_length"], p["sim_time"], status, 0, 0, 0])
            _, reward_value, *_, info = env.step(1 if i % 2 else 3)
            status = info["status"]
    env.close()
    return path


def test_cli_trace_replays_the_logged_states(tmp_path):
    trace = _trace(tmp_path)
    path = write(tmp_path, "def reward_function(params):\n    print(params['steps'], params['steering_angle'])\n"
                           "    return 10 * params['distance_from_center']\n")
    result = CliRunner().invoke(reward, ["test", str(path), "--track", "oval", "--trace", str(trace),
                                         "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert "trace trace.csv" in result.output and "29 states" in result.output  # the prepare row is left out
    assert "differ from the logged ones" not in result.output  # same states, same rewards
    # print() goes to the log (stderr here); the logged steps and steering (synthetic states steer 0)
    assert "\n2.0 15.0\n3.0 -15.0\n" in result.stderr

    changed = write(tmp_path, "def reward_function(params):\n    return 10 * params['distance_from_center'] + 1\n",
                    name="other.py")
    result = CliRunner().invoke(reward, ["test", str(changed), "--track", "oval", "--trace", str(trace),
                                         "--plot", str(tmp_path / "p.png")])
    assert "29 of 29 trace rewards differ from the logged ones" in result.output


def test_cli_trace_without_columns(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("episode,steps,X,Y\n0,2,1.0,2.0\n")
    result = CliRunner().invoke(reward, ["test", str(EXAMPLES["follow_center"]), "--track", "oval",
                                         "--trace", str(trace), "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 2
    assert f"{trace}: the trace has no column yaw, steer, throttle" in result.output


def test_reward_files_are_found_by_path_or_example_name(tmp_path, monkeypatch):
    from racer.reward import find_reward_file
    monkeypatch.chdir(tmp_path)
    assert find_reward_file("follow_center") == EXAMPLES["follow_center"]
    assert find_reward_file("follow_center.py") == EXAMPLES["follow_center"]
    (tmp_path / "follow_center.py").write_text("def reward_function(params):\n    return 1.0\n")
    assert find_reward_file("follow_center.py") == Path("follow_center.py")  # the user's own file wins
    with pytest.raises(FileNotFoundError, match=r"mine.py: no such reward function file.*examples: center_and_prog"):
        find_reward_file("mine.py")
