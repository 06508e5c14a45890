"""--race and --race-config on drive, train and evaluate (issue 10, items 6 and 7)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from racer.cli import main
from racer.evaluate import evaluate
from test_train import LIDAR_CAR, REWARD


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_the_scripted_driver_laps_round_the_default_boxes_without_a_crash():
    r = _cli("drive", "--track", "reinvent-like", "--laps", "3", "--race", "object-avoidance")
    assert r.exit_code == 0, r.output
    assert "3/3 laps complete" in r.output
    rows = [line for line in r.output.splitlines() if "lap_complete" in line]
    assert len(rows) == 3 and all(line.split("│")[5].strip() == "0" for line in rows)  # the crashed column


def test_train_records_the_race_and_evaluate_races_it(tmp_path):
    car = tmp_path / "car.json"
    car.write_text(json.dumps(LIDAR_CAR))
    race_yaml = tmp_path / "race.yaml"
    race_yaml.write_text("NUMBER_OF_OBSTACLES: '3'\nRANDOMIZE_OBSTACLE_LOCATIONS: 'False'\n")
    run = tmp_path / "run"
    r = _cli("train", "--reward", str(REWARD), "--car", str(car), "--track", "oval", "--race", "object-avoidance",
             "--race-config", str(race_yaml), "--steps", "256", "--envs", "2", "--hyper", "n_steps=128",
             "--hyper", "batch_size=64", "--eval-every", "100000", "--run-dir", str(run))
    assert r.exit_code == 0, r.output
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["race"] == "object-avoidance" and config["race_config"]["NUMBER_OF_OBSTACLES"] == 3
    report = evaluate(run, laps=1, out_dir=tmp_path / "eval")
    data = json.loads(report.files["report"].read_text())
    assert data["race"] == "object-avoidance" and isinstance(data["crashes"], int)


def test_a_bad_race_config_is_refused_naming_the_key(tmp_path):
    race_yaml = tmp_path / "race.yaml"
    race_yaml.write_text("NUMBER_OF_OBSTACLES: 3\nNUMBER_OF_BOXES: 2\n")
    r = _cli("train", "--reward", str(REWARD), "--track", "oval", "--race", "object-avoidance",
             "--race-config", str(race_yaml), "--steps", "256", "--run-dir", str(tmp_path / "run"))
    assert r.exit_code == 2 and "NUMBER_OF_BOXES" in r.output and "race.yaml" in r.output, r.output
    assert not (tmp_path / "run").exists()


def test_reward_test_tries_an_object_reading_function_with_objects(tmp_path):
    path = tmp_path / "avoid.py"
    path.write_text("def reward_function(params):\n    _, ahead = params['closest_objects']\n"
                    "    same = params['is_left_of_center'] == params['objects_left_of_center'][ahead]\n"
                    "    return 0.5 if same else 1.0\n")
    r = _cli("reward", "test", str(path), "--plot", str(tmp_path / "p.png"))
    assert r.exit_code == 0 and "object-avoidance race" in r.output, r.output
    r = _cli("reward", "test", str(path), "--race", "time-trial", "--plot", str(tmp_path / "p.png"))
    assert r.exit_code == 1 and "IndexError" in r.output and "empty in a time trial" in r.output


@pytest.mark.parametrize("track", ["reinvent-like", "oval"])
def test_every_random_layout_is_drivable_by_the_scripted_driver(track):
    """Five random 6-box layouts per track: the expert laps each without a crash or an off track."""
    from racer.driving import drive_expert
    config = {"NUMBER_OF_OBSTACLES": 6, "RANDOMIZE_OBSTACLE_LOCATIONS": True}
    for seed in range(5):
        (lap,) = drive_expert(track, 1, seed=seed, race="object-avoidance", race_config=config)
        assert lap.complete and lap.crashed == 0 and lap.off_track == 0, (seed, lap)


def test_the_scripted_driver_passes_bots_that_change_lanes():
    """Three bots at 0.5 m/s changing lanes, six seeds of 3 laps: the expert drops back behind a bot that
    cuts into its lane instead of running into it (without that, four of these six seeds crash)."""
    from racer.driving import drive_expert
    config = {"NUMBER_OF_BOT_CARS": 3, "BOT_CAR_SPEED": 0.5, "IS_LANE_CHANGE": True}
    for seed in range(6):
        laps = drive_expert("reinvent-like", 3, seed=seed, race="head-to-bot", race_config=config)
        assert all(lap.complete and lap.resets == 0 for lap in laps), (seed, laps)


def test_train_against_an_opponent_bundle(tmp_path):
    car = tmp_path / "car.json"
    car.write_text(json.dumps(LIDAR_CAR))
    run = tmp_path / "run"
    common = ["train", "--reward", str(REWARD), "--car", str(car), "--track", "oval", "--steps", "256",
              "--envs", "2", "--hyper", "n_steps=128", "--hyper", "batch_size=64", "--eval-every", "100000"]
    r = _cli(*common, "--race", "head-to-model", "--run-dir", str(run))
    assert r.exit_code == 2 and "--opponent" in r.output and not run.exists()
    r = _cli(*common, "--race", "head-to-model", "--opponent", "tests/data/bundle-oval", "--run-dir", str(run))
    assert r.exit_code == 0, r.output
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["race"] == "head-to-model" and config["opponents"][0].endswith("bundle-oval")


def test_self_play_trains_against_its_own_checkpoints_and_evaluates(tmp_path):
    car = tmp_path / "car.json"
    car.write_text(json.dumps(LIDAR_CAR))
    run = tmp_path / "run"
    r = _cli("train", "--reward", str(REWARD), "--car", str(car), "--track", "oval", "--steps", "512",
             "--envs", "2", "--hyper", "n_steps=128", "--hyper", "batch_size=64", "--eval-every", "100000",
             "--race", "head-to-model", "--self-play", "1", "--run-dir", str(run))
    assert r.exit_code == 0, r.output
    assert json.loads((run / "config.json").read_text())["config"]["self_play"] == 1
    report = evaluate(run, laps=1, out_dir=tmp_path / "eval")
    assert json.loads(report.files["report"].read_text())["race"] == "head-to-model"
