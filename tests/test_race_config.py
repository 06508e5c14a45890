"""Race configuration: the users' DeepRacer/DRfC keys, the reference's defaults, errors at the edge."""
from __future__ import annotations

from dataclasses import fields

import pytest

from sim.errors import InputError
from sim.race_config import KEYS, RACE_TYPES, RaceConfig, RaceConfigError, parse_race_config


def test_defaults_are_the_reference_codes():
    assert parse_race_config("time-trial") == RaceConfig()
    oa = parse_race_config("object-avoidance", None)
    assert (oa.number_of_obstacles, oa.obstacle_type, oa.randomize_obstacle_locations, oa.object_positions,
            oa.min_distance_between_obstacles, oa.number_of_bot_cars) == (6, "box_obstacle", False, (), 2.0, 0)
    h2b = parse_race_config("head-to-bot", {})
    assert (h2b.number_of_bot_cars, h2b.bot_car_speed, h2b.min_distance_between_bot_cars,
            h2b.randomize_bot_car_locations, h2b.is_lane_change, h2b.lower_lane_change_time,
            h2b.upper_lane_change_time, h2b.lane_change_distance, h2b.penalty_seconds,
            h2b.number_of_obstacles) == (3, 0.2, 2.0, False, False, 3.0, 5.0, 1.0, 2.0, 0)
    h2m = parse_race_config("head-to-model")
    assert (h2m.number_of_obstacles, h2m.number_of_bot_cars, h2m.start_pos_offset) == (0, 0, 0.75)
    assert (h2m.reset_behind_dist, h2m.enable_mercy_reset, h2m.reset_ahead_dist, h2m.max_resets_after_crash) \
        == (1.0, False, 1.0, 3)
    assert (h2m.off_track_penalty, h2m.collision_penalty, h2m.number_of_resets) == (None, None, None)


def test_every_field_has_a_key():
    assert {spec.field for spec in KEYS.values()} == {f.name for f in fields(RaceConfig)} - {"race"}


def test_values_arrive_as_quoted_strings():
    cfg = parse_race_config("head-to-bot", {
        "NUMBER_OF_BOT_CARS": "6", "BOT_CAR_SPEED": "0.5", "IS_LANE_CHANGE": "True",
        "RANDOMIZE_BOT_CAR_LOCATIONS": "false", "LOWER_LANE_CHANGE_TIME": "2", "UPPER_LANE_CHANGE_TIME": 4,
        "NUMBER_OF_OBSTACLES": 2.0, "OFF_TRACK_PENALTY": "3", "NUMBER_OF_RESETS": "10", "ENABLE_MERCY_RESET": "TRUE",
        "start_pos_offset": "0.5",
    })
    assert (cfg.number_of_bot_cars, cfg.bot_car_speed, cfg.is_lane_change, cfg.randomize_bot_car_locations) \
        == (6, 0.5, True, False)
    assert (cfg.lower_lane_change_time, cfg.upper_lane_change_time, cfg.number_of_obstacles) == (2.0, 4.0, 2)
    assert (cfg.off_track_penalty, cfg.number_of_resets, cfg.enable_mercy_reset, cfg.start_pos_offset) \
        == (3.0, 10, True, 0.5)
    assert isinstance(cfg.number_of_bot_cars, int) and isinstance(cfg.bot_car_speed, float)


def test_drfc_run_env_names():
    cfg = parse_race_config("head-to-bot", {
        "DR_H2B_NUMBER_OF_BOT_CARS": "4", "DR_H2B_BOT_CAR_PENALTY": "5.0", "DR_H2B_IS_LANE_CHANGE": "True",
        "DR_OA_OBJECT_POSITIONS": "0.23,-1;0.46,1", "DR_EVAL_MAX_RESETS": "100",
        "DR_EVAL_COLLISION_PENALTY": "5.0", "DR_RACE_TYPE": "HEAD_TO_BOT",
    })
    assert (cfg.number_of_bot_cars, cfg.penalty_seconds, cfg.is_lane_change) == (4, 5.0, True)
    assert cfg.object_positions == ((0.23, -1), (0.46, 1)) and cfg.number_of_obstacles == 2
    assert (cfg.number_of_resets, cfg.collision_penalty) == (100, 5.0)


@pytest.mark.parametrize("positions", [
    ["0.23,-1", "0.46,1"], [" 0.23, -1 ", "0.46,1"], [[0.23, -1], [0.46, 1]], [("0.23", "-1"), (0.46, 1.0)],
    "0.23,-1;0.46,1", "0.23,-1; 0.46,1;",
])
def test_object_positions_forms(positions):
    cfg = parse_race_config("object-avoidance", {"OBJECT_POSITIONS": positions, "NUMBER_OF_OBSTACLES": 6,
                                                 "RANDOMIZE_OBSTACLE_LOCATIONS": True})
    assert cfg.object_positions == ((0.23, -1), (0.46, 1))
    assert cfg.number_of_obstacles == 2  # the positions override the count (reference)


def test_empty_object_positions_mean_none():
    assert parse_race_config("object-avoidance", {"DR_OA_OBJECT_POSITIONS": ""}).number_of_obstacles == 6
    assert parse_race_config("object-avoidance", {"OBJECT_POSITIONS": []}).object_positions == ()


def test_race_type_spellings():
    assert parse_race_config("OBJECT_AVOIDANCE").race == "object-avoidance"
    assert parse_race_config(" Head_To_Bot ").race == "head-to-bot"
    with pytest.raises(RaceConfigError) as err:
        parse_race_config("drag-race")
    assert str(err.value) == f"race: expected one of {', '.join(RACE_TYPES)}, got 'drag-race'"


@pytest.mark.parametrize("race, config, message", [
    ("head-to-bot", {"NUMBER_OF_BOT_CARS": "many"},
     "race_config.NUMBER_OF_BOT_CARS: expected an integer 0-12, got 'many'"),
    ("head-to-bot", {"NUMBER_OF_BOT_CARS": 13}, "race_config.NUMBER_OF_BOT_CARS: expected an integer 0-12, got 13"),
    ("object-avoidance", {"NUMBER_OF_OBSTACLES": "6.5"},
     "race_config.NUMBER_OF_OBSTACLES: expected an integer 0-30, got '6.5'"),
    ("object-avoidance", {"NUMBER_OF_OBSTACLES": True},
     "race_config.NUMBER_OF_OBSTACLES: expected an integer 0-30, got True"),
    ("object-avoidance", {"RANDOMIZE_OBSTACLE_LOCATIONS": "yes"},
     "race_config.RANDOMIZE_OBSTACLE_LOCATIONS: expected true or false, got 'yes'"),
    ("object-avoidance", {"OBSTACLE_TYPE": "cone"},
     "race_config.OBSTACLE_TYPE: expected one of box_obstacle, deepracer_box_obstacle, amazon_box_obstacle, "
     "got 'cone'"),
    ("object-avoidance", {"MIN_DISTANCE_BETWEEN_OBSTACLES": "-1"},
     "race_config.MIN_DISTANCE_BETWEEN_OBSTACLES: expected a number from 0 to 100 (a percent of the track "
     "length), got '-1'"),
    ("head-to-bot", {"BOT_CAR_SPEED": 0}, "race_config.BOT_CAR_SPEED: expected a number above 0 and at most 4 m/s, "
                                         "got 0"),
    ("head-to-bot", {"BOT_CAR_SPEED": "nan"}, "race_config.BOT_CAR_SPEED: expected a number above 0 and at most "
                                              "4 m/s, got 'nan'"),
    ("head-to-bot", {"LANE_CHANGE_DISTANCE": "0"}, "race_config.LANE_CHANGE_DISTANCE: expected a number above 0 m, "
                                                   "got '0'"),
    ("time-trial", {"START_POS_OFFSET": 1.5}, "race_config.START_POS_OFFSET: expected a number from 0 to 1 m, "
                                              "got 1.5"),
    ("time-trial", {"NUMBER_OF_RESETS": -1}, "race_config.NUMBER_OF_RESETS: expected an integer, at least 0, "
                                             "got -1"),
])
def test_bad_values_name_key_value_and_what_is_allowed(race, config, message):
    with pytest.raises(RaceConfigError) as err:
        parse_race_config(race, config)
    assert str(err.value) == message


@pytest.mark.parametrize("positions, entry", [
    (["0.5"], "entry 0 is '0.5'"), ([[0.5, 2]], "entry 0 is [0.5, 2]"), ("0.2,1;1.5,-1", "entry 1 is '1.5,-1'"),
    ([0.23, -1], "entry 0 is 0.23"), (["0.5,inner"], "entry 0 is '0.5,inner'"),
])
def test_bad_object_positions(positions, entry):
    with pytest.raises(RaceConfigError, match="OBJECT_POSITIONS") as err:
        parse_race_config("object-avoidance", {"OBJECT_POSITIONS": positions})
    assert entry in str(err.value) and "lane 1 (inner) or -1 (outer)" in str(err.value)


def test_unknown_key_lists_the_known_ones():
    with pytest.raises(RaceConfigError) as err:
        parse_race_config("object-avoidance", {"NUMBER_OF_BOXES": 6})
    msg = str(err.value)
    assert msg.startswith("race_config.NUMBER_OF_BOXES: unknown key; the known keys are NUMBER_OF_OBSTACLES, ")
    assert all(key in msg for key in KEYS)


@pytest.mark.parametrize("race, key, applies", [
    ("object-avoidance", "NUMBER_OF_BOT_CARS", "head-to-bot, head-to-model"),
    ("time-trial", "DR_OA_NUMBER_OF_OBSTACLES", "object-avoidance, head-to-bot, head-to-model"),
    ("object-avoidance", "PENALTY_SECONDS", "head-to-bot, head-to-model"),
])
def test_key_that_does_not_apply_to_the_race(race, key, applies):
    with pytest.raises(RaceConfigError) as err:
        parse_race_config(race, {key: 3})
    assert str(err.value) == f"race_config.{key}: does not apply to a {race} race; it applies to {applies}"


def test_inconsistent_config():
    with pytest.raises(RaceConfigError, match=r"race_config\.LOWER_LANE_CHANGE_TIME: 6 s is above "
                                              r"UPPER_LANE_CHANGE_TIME 5 s"):
        parse_race_config("head-to-bot", {"LOWER_LANE_CHANGE_TIME": 6})
    with pytest.raises(RaceConfigError, match=r"race_config\.DR_OA_NUMBER_OF_OBSTACLES: the same key as "
                                              r"'NUMBER_OF_OBSTACLES'; give it once"):
        parse_race_config("object-avoidance", {"NUMBER_OF_OBSTACLES": 3, "DR_OA_NUMBER_OF_OBSTACLES": 4})
    with pytest.raises(RaceConfigError, match=r"race_config\.RACE_TYPE: 'HEAD_TO_BOT' disagrees with the race "
                                              r"'object-avoidance'"):
        parse_race_config("object-avoidance", {"RACE_TYPE": "HEAD_TO_BOT"})
    with pytest.raises(RaceConfigError, match="expected a dict of keys"):
        parse_race_config("object-avoidance", [("NUMBER_OF_OBSTACLES", 3)])


def test_errors_are_input_errors():
    assert issubclass(RaceConfigError, InputError) and issubclass(RaceConfigError, ValueError)


def test_yaml_file(tmp_path):
    path = tmp_path / "race.yaml"
    path.write_text('# simapp style\nRACE_TYPE: "OBJECT_AVOIDANCE"\nNUMBER_OF_OBSTACLES: "4"\n'
                    'RANDOMIZE_OBSTACLE_LOCATIONS: "True"\nOBJECT_POSITIONS:\n  - "0.1,1"\n  - "0.6,-1"\n'
                    'OFF_TRACK_PENALTY: 5\n')
    cfg = parse_race_config("object-avoidance", path)
    assert cfg.object_positions == ((0.1, 1), (0.6, -1)) and cfg.off_track_penalty == 5.0
    assert parse_race_config("object-avoidance", str(path)) == cfg


@pytest.mark.parametrize("text, message", [
    ('NUMBER_OF_OBSTACLES: 4\nMIN_DISTANCE_BETWEEN_OBSTACLES: "far"\n',
     ":2: MIN_DISTANCE_BETWEEN_OBSTACLES: expected a number from 0 to 100"),
    ("\nNUMBER_OF_OBSTACLE: 4\n", ":2: NUMBER_OF_OBSTACLE: unknown key"),
    ("NUMBER_OF_OBSTACLES: [4\n", ":2: not valid YAML (expected ',' or ']'"),
    ("- NUMBER_OF_OBSTACLES\n", ": expected a mapping of keys such as NUMBER_OF_OBSTACLES: 6, got a list"),
])
def test_yaml_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "race.yaml"
    path.write_text(text)
    with pytest.raises(RaceConfigError) as err:
        parse_race_config("object-avoidance", path)
    assert str(err.value).startswith(f"{path}{message}")


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(RaceConfigError, match="cannot read the race config"):
        parse_race_config("object-avoidance", tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert parse_race_config("object-avoidance", tmp_path / "empty.yaml") == parse_race_config("object-avoidance")


@pytest.mark.parametrize("race, config", [
    ("time-trial", {"OFF_TRACK_PENALTY": 3.0}),
    ("object-avoidance", {"OBJECT_POSITIONS": "0.3,1;0.7,-1", "COLLISION_PENALTY": 2}),
    ("object-avoidance", {"RANDOMIZE_OBSTACLE_LOCATIONS": True, "MIN_DISTANCE_BETWEEN_OBSTACLES": 5}),
    ("head-to-bot", {"IS_LANE_CHANGE": True, "NUMBER_OF_BOT_CARS": 2, "NUMBER_OF_OBSTACLES": 1}),
    ("head-to-model", {"START_POS_OFFSET": 1.0, "NUMBER_OF_RESETS": 3}),
])
def test_as_dict_round_trips(race, config):
    cfg = parse_race_config(race, config)
    keys = cfg.as_dict()
    assert parse_race_config(race, keys) == cfg
    assert all(race in KEYS[k].races for k in keys)
