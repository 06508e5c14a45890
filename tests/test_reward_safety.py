"""Reward code that exits, hangs, takes two arguments, mutates its params or floods the log
(issue 9, item 6 and the reward parts of item 10): always an error naming file, line and step."""
from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import gymnasium as gym
import pytest
from click.testing import CliRunner

import sim
from racer.cli import main
from racer.reward import RewardFunction, RewardFunctionError
from test_reward_loading import write
from test_train import LIDAR_CAR



def reward_test(path: Path, tmp_path: Path, *options: str):
    return CliRunner().invoke(main, ["reward", "test", str(path), "--track", "oval",
                                     "--plot", str(tmp_path / "plot.png"), *options])


# ---- item 6: exits ---------------------------------------------------------------------------------
@pytest.mark.parametrize("statement, shown", [("sys.exit(0)", "SystemExit: 0"), ("sys.exit('bye')", "SystemExit: bye"),
                                              ("raise BaseException('odd')", "BaseException: odd")])
def test_an_exit_in_reward_function_is_a_reward_error(tmp_path, params, statement, shown):
    path = write(tmp_path, "import sys\n\ndef reward_function(params):\n    if params['steps'] > 5:\n"
                           f"        {statement}\n    return 1.0\n")
    fn = RewardFunction(path)
    assert fn({**params, "steps": 2.0}) == 1.0
    with pytest.raises(RewardFunctionError) as err:
        fn(params)
    msg = str(err.value)
    assert msg.startswith(f"{path}, line 5: `{statement}`: {shown}")
    assert "(step 7)" in msg and f"'x': {params['x']}" in msg


def test_keyboard_interrupt_is_not_swallowed(tmp_path, params):
    path = write(tmp_path, "def reward_function(params):\n    raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        RewardFunction(path)(params)


def test_an_exit_at_import_is_a_reward_error(tmp_path):
    path = write(tmp_path, "import sys\nsys.exit(0)\n\ndef reward_function(params):\n    return 1.0\n")
    with pytest.raises(RewardFunctionError, match=r"line 2: `sys.exit\(0\)` while importing the file: SystemExit: 0"):
        RewardFunction(path)


def test_cli_reward_test_reports_an_exit_at_import(tmp_path):
    path = write(tmp_path, "import sys\nsys.exit(0)\n\ndef reward_function(params):\n    return 1.0\n")
    result = reward_test(path, tmp_path)
    assert result.exit_code != 0
    assert f"{path}, line 2: `sys.exit(0)` while importing the file: SystemExit: 0" in result.output


def test_train_stops_on_sys_exit_with_the_error_and_keeps_the_last_checkpoint(tmp_path):
    """Each env's module exits at its 1100th call: after the checkpoint at 2048 steps (2 envs)."""
    path = write(tmp_path, "import sys\nCALLS = 0\n\ndef reward_function(params):\n    global CALLS\n"
                           "    CALLS += 1\n    if CALLS == 1100:\n        sys.exit(0)\n    return 1.0\n",
                 name="exits.py")
    car = tmp_path / "car.json"
    car.write_text(json.dumps(LIDAR_CAR))
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--reward", str(path), "--car", str(car), "--track", "oval",
                                       "--envs", "2", "--steps", "4096", "--hyper", "n_steps=128",
                                       "--hyper", "batch_size=128", "--hyper", "n_epochs=1", "--run-dir", str(run)])
    assert result.exit_code != 0, result.output
    assert f"{path.name}, line 8: `sys.exit(0)`: SystemExit: 0" in result.output.replace("\n", "")
    assert "racer train --resume" in result.output
    assert (run / "checkpoints" / "last.zip").is_file() and (run / "checkpoints" / "best.zip").is_file()
    assert json.loads((run / "checkpoints" / "state.json").read_text())["steps"] >= 2048
    assert "stopped by an error" in (run / "log.txt").read_text() and "SystemExit" in (run / "log.txt").read_text()


# ---- item 6: hangs --------------------------------------------------------------------------------
@pytest.mark.parametrize("loop", ["while True: pass", "while True: x += 1"])
def test_time_limit_stops_an_endless_loop(tmp_path, params, loop):
    path = write(tmp_path, f"def reward_function(params):\n    x = 0\n    {loop}\n")
    start = time.monotonic()
    with pytest.raises(RewardFunctionError) as err:
        RewardFunction(path, strict=True, time_limit=0.5)(params)
    assert time.monotonic() - start < 3
    assert str(err.value).startswith(f"{path}, line 3: `{loop}`: the call was stopped at its "
                                      f"time limit of 0.5 s (step 7)")


def test_time_limit_stops_a_sleep(tmp_path, params):
    path = write(tmp_path, "import time\n\ndef reward_function(params):\n    time.sleep(100)\n    return 1.0\n")
    start = time.monotonic()
    with pytest.raises(RewardFunctionError, match=r"line 4: `time.sleep\(100\)`: the call was stopped at its time "
                                                  r"limit of 0.5 s \(step 7\)"):
        RewardFunction(path, time_limit=0.5)(params)
    assert time.monotonic() - start < 3


def test_time_limit_at_import(tmp_path):
    path = write(tmp_path, "import time\nwhile True:\n    time.sleep(0.01)\n\ndef reward_function(params):\n"
                           "    return 1.0\n")
    with pytest.raises(RewardFunctionError, match=r"line 3: `time.sleep\(0.01\)` while importing the file: "
                                                  r"stopped at the time limit of 0.5 s"):
        RewardFunction(path, time_limit=0.5)


def test_time_limit_comes_again_when_the_code_catches_it(tmp_path, params):
    path = write(tmp_path, "def reward_function(params):\n    x = 0\n    try:\n        while True:\n"
                           "            x += 1\n    except BaseException:\n        pass\n    while True:\n"
                           "        x -= 1\n")
    start = time.monotonic()
    with pytest.raises(RewardFunctionError, match=r"line (8: `while True:`|9: `x -= 1`): the call was stopped"):
        RewardFunction(path, time_limit=0.3)(params)
    assert 1.2 < time.monotonic() - start < 3  # stopped at 0.3 s, caught, stopped again 1 s later


def test_time_limit_outside_the_main_thread_is_checked_after_the_call(tmp_path, params):
    path = write(tmp_path, "import time\n\ndef reward_function(params):\n    time.sleep(0.4)\n    return 1.0\n")
    fn = RewardFunction(path, time_limit=0.1)
    errors = []

    def call():
        try:
            fn(params)
        except RewardFunctionError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert str(errors[0]).startswith(f"{path}, the call took 0.4")
    assert "s, over its time limit of 0.1 s (step 7)" in str(errors[0])


def test_the_limits_leave_sigalrm_as_they_found_it(tmp_path, params):
    import signal
    before = signal.getsignal(signal.SIGALRM)
    RewardFunction(write(tmp_path, "def reward_function(params):\n    return 1.0\n"), time_limit=0.5)(params)
    assert signal.getsignal(signal.SIGALRM) is before and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_cli_reward_test_stops_an_endless_loop(tmp_path):
    path = write(tmp_path, "def reward_function(params):\n    while True:\n        pass\n")
    start = time.monotonic()
    result = reward_test(path, tmp_path)
    assert time.monotonic() - start < 30  # the 5 s limit, once: the other states are not tried
    assert result.exit_code != 0
    output = result.output.replace("\n", "")
    assert re.search(rf"{re.escape(str(path))}, line (2: `while True:`|3: `pass`): the call was stopped at its time "
                     rf"limit of 5 s \(step \d+\)", output), output


def test_watchdog_reports_a_long_call_with_its_file_and_line(tmp_path, params, capfd):
    path = write(tmp_path, "import time\n\ndef reward_function(params):\n    for _ in range(90):\n"
                           "        time.sleep(0.01)\n    return 1.0\n")
    log = tmp_path / "log.txt"
    fn = RewardFunction(path, log=log, warn_after=0.2, time_limit=10)
    assert fn(params) == 1.0  # slow, but under the hard limit
    logged = log.read_text().splitlines()
    assert 2 <= len(logged) <= 5  # at 0.2, 0.4, 0.6, 0.8 s
    assert logged[0].startswith(f"racer: warning: {path}, line 5: `time.sleep(0.01)`: still running after 0.")
    assert logged[0].endswith(" s (step 7); its time limit is 10 s")
    assert capfd.readouterr().err.splitlines() == logged


def test_watchdog_then_hard_limit_in_training_env(tmp_path):
    path = write(tmp_path, "def reward_function(params):\n    while params['steps'] == 5:\n        pass\n"
                           "    return 1.0\n")
    log = tmp_path / "log.txt"
    fn = RewardFunction(path, log=log, warn_after=0.1, time_limit=0.5)
    env = gym.make(sim.ENV_ID, track="oval", sensors=["LIDAR"], reward_fn=fn)
    env.reset(seed=0)
    try:
        for _ in range(3):  # steps 2, 3, 4
            env.step(2)
        with pytest.raises(RewardFunctionError, match=r"line [23]: `(while params\['steps'\] == 5:|pass)`: the "
                                                      r"call was stopped at its time limit of 0.5 s \(step 5\)"):
            env.step(2)
    finally:
        env.close()
    warnings = log.read_text().splitlines()
    assert 2 <= len(warnings) <= 5 and all(w.startswith(f"racer: warning: {path}, line ") for w in warnings)
    assert warnings[0].endswith(" s (step 5); its time limit is 0.5 s")


# ---- item 10: two arguments, mutated params, flooding the log -------------------------------------
def test_two_arguments_name_the_def_line(tmp_path):
    path = write(tmp_path, "import math\n\ndef reward_function(params, extra):\n    return 1.0\n")
    with pytest.raises(RewardFunctionError) as err:
        RewardFunction(path)
    assert str(err.value) == (f"{path}, line 3: `def reward_function(params, extra):`: reward_function must take "
                              f"exactly one argument (params), it takes (params, extra)")


def test_an_optional_second_argument_is_fine(tmp_path, params):
    path = write(tmp_path, "def reward_function(params, scale=2.0):\n    return scale\n")
    assert RewardFunction(path)(params) == 2.0


def test_cli_reward_test_gives_each_call_its_own_params(tmp_path):
    path = write(tmp_path, "def reward_function(params):\n    r = 1.0 - params['distance_from_center']\n"
                           "    params.clear()\n    return r\n")
    result = reward_test(path, tmp_path)
    assert result.exit_code == 0, result.output
    assert "forward: centre" in result.output and "centre line, every" in result.output


def test_print_to_a_log_file_is_capped(tmp_path, params):
    path = write(tmp_path, "def reward_function(params):\n    print('x' * 999)\n    return 1.0\n")
    log = tmp_path / "log.txt"
    fns = [RewardFunction(path, log=log, log_cap=20_000) for _ in range(2)]  # two envs, one log
    for _ in range(30):
        for fn in fns:
            assert fn(params) == 1.0
    text = log.read_text()
    notes = [line for line in text.splitlines() if not line.startswith("x")]
    assert len(notes) == 1
    assert notes[0].startswith(f"racer: {path.name}: print() output stops here: this log reached the 0.02 MB cap")
    assert 19_000 <= log.stat().st_size <= 20_000 + len(notes[0]) + 1
    assert text.endswith(notes[0] + "\n")  # nothing after the note


def test_print_cap_applies_to_an_open_log_file(tmp_path, params):
    """As training passes it: the run's log.txt, open for appending, holding other lines."""
    path = write(tmp_path, "def reward_function(params):\n    print('y' * 99_999)\n    return 1.0\n")
    with open(tmp_path / "log.txt", "a", buffering=1) as log:
        log.write("resumed from somewhere\n")
        fn = RewardFunction(path, log=log, log_cap=1_000_000)
        for _ in range(50):
            fn(params)
        log.write("stopped (step budget)\n")
    lines = (tmp_path / "log.txt").read_text().splitlines()
    assert len(lines) == 1 + 9 + 1 + 1 and lines[0] == "resumed from somewhere"
    assert "print() output stops here" in lines[10] and lines[11] == "stopped (step budget)"
