"""The garage: model_metadata.json load/save/validate, presets, and the `racer garage` commands."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from racer.commands.garage import garage
from racer.garage import (NEURAL_NETWORKS, GarageError, ModelMetadata, car_dir, load_metadata, metadata_path,
                          metadata_to_dict, new_metadata, parse_metadata, preset_action_space, save_metadata)
from sim.observation import LidarConfig

FIVE = [{"steering_angle": a, "speed": 1.0} for a in (-30, -15, 0, 15, 30)]
# the contract's example, with its action list filled in
CONTRACT_EXAMPLE = {"action_space": FIVE, "sensor": ["STEREO_CAMERAS", "LIDAR"],
                    "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", "training_algorithm": "clipped_ppo",
                    "action_space_type": "discrete", "version": "5"}
CONTINUOUS = {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 2.0}}


def write(tmp_path, data, name="model_metadata.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path


# ---- loading what users have -------------------------------------------------------------
def test_contract_example_loads(tmp_path):
    md = load_metadata(write(tmp_path, CONTRACT_EXAMPLE))
    assert md.sensors == ("STEREO_CAMERAS", "LIDAR")
    assert md.action_space.kind == "discrete"
    assert md.action_space.actions == tuple((float(a), 1.0) for a in (-30, -15, 0, 15, 30))
    assert (md.neural_network, md.training_algorithm, md.version) == (NEURAL_NETWORKS[0], "clipped_ppo", "5")
    assert md.extras == {} and md.lidar_config is None


@pytest.mark.parametrize("version", ["3", "4"])
def test_old_versions_without_action_space_type_load(tmp_path, version):
    old = {"action_space": [{"steering_angle": -30, "speed": 0.8, "index": 0},
                            {"steering_angle": 0, "speed": 0.8, "index": 1}],
           "sensor": ["FRONT_FACING_CAMERA"], "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
           "version": version}
    md = load_metadata(write(tmp_path, old))
    assert md.action_space_type == "discrete" and md.version == version
    assert md.action_space.actions == ((-30.0, 0.8), (0.0, 0.8))


def test_missing_keys_get_deepracer_defaults():
    md = parse_metadata({"action_space": CONTINUOUS})
    assert md.action_space_type == "continuous"  # inferred from the form
    assert md.action_space.speed_range == (0.5, 2.0)
    assert md.sensors == ("FRONT_FACING_CAMERA",)
    assert (md.neural_network, md.training_algorithm, md.version) == \
        ("DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", "clipped_ppo", "5")


def test_sac_and_our_network_are_accepted():
    md = parse_metadata({**CONTRACT_EXAMPLE, "action_space": CONTINUOUS, "action_space_type": "continuous",
                         "training_algorithm": "sac", "neural_network": "RACER_POOLED_SHALLOW"})
    assert (md.training_algorithm, md.neural_network) == ("sac", "RACER_POOLED_SHALLOW")


# ---- refusals ------------------------------------------------------------------------------
@pytest.mark.parametrize("change, expected", [
    ({"sensor": ["FRONT_FACING_CAMERA", "RADAR"]},
     "sensor[1]: 'RADAR' is not a sensor; known: FRONT_FACING_CAMERA, STEREO_CAMERAS, LIDAR"),
    ({"sensor": ["FRONT_FACING_CAMERA", "STEREO_CAMERAS"]}, "sensor: exactly one camera sensor"),
    ({"sensor": ["FRONT_FACING_CAMERA", "LIDAR", "SECTOR_LIDAR"]}, "sensor: at most one lidar sensor"),
    ({"sensor": []}, "sensor: the list is empty"),
    ({"sensor": "LIDAR"}, "sensor: expected a list"),
    ({"action_space": []}, "action_space: a discrete action space is a non-empty list"),
    ({"action_space": [{"steering_angle": 0, "speed": 1}, {"steering_angle": 10}]}, "action_space[1].speed: missing"),
    ({"action_space": [{"steering_angle": 45, "speed": 1}]},
     "action_space[0].steering_angle: 45 is outside [-30.0, 30.0]"),
    ({"action_space": [{"steering_angle": 0, "speed": "fast"}]}, "action_space[0].speed: expected a number"),
    ({"action_space": [3]}, "action_space[0]: expected an object"),
    ({"action_space": {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 2, "high": 1}},
      "action_space_type": "continuous"}, "action_space.speed: low 2.0 must be below high 1.0"),
    ({"action_space": {"steering_angle": {"low": -30}, "speed": {"low": 1, "high": 2}},
      "action_space_type": "continuous"}, "action_space.steering_angle: expected"),
    ({"action_space_type": "continuous"},
     "action_space_type: 'continuous' does not match action_space, which is a list"),
    ({"action_space": CONTINUOUS, "action_space_type": "discrete"},
     "action_space_type: 'discrete' does not match action_space, which is an object of ranges"),
    ({"action_space_type": "hybrid"}, "action_space_type: 'hybrid' is not one of discrete, continuous"),
    ({"neural_network": "RESNET"}, "neural_network: 'RESNET' is not one of DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"),
    ({"training_algorithm": "dqn"}, "training_algorithm: 'dqn' is not one of clipped_ppo, sac"),
    ({"lidar_config": {"beam_count": 3}}, "lidar_config: unknown key 'beam_count'"),
    ({"lidar_config": [1]}, "lidar_config: expected an object"),
    ({"version": ["5"]}, "version: expected a string"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_refusals_name_the_file_and_key(tmp_path, change, expected):
    path = write(tmp_path, {**CONTRACT_EXAMPLE, **change})
    with pytest.raises(GarageError) as err:
        load_metadata(path)
    assert str(err.value).startswith(f"{path}: ")
    assert expected in str(err.value)


def test_not_an_object_is_refused():
    with pytest.raises(GarageError, match=r"^car\.json: expected a JSON object, got list"):
        parse_metadata([1], where="car.json")


def test_invalid_json_names_line_and_column(tmp_path):
    path = write(tmp_path, '{\n  "sensor": ["LIDAR"],\n  "version": "5",,\n}\n')
    with pytest.raises(GarageError) as err:
        load_metadata(path)
    assert str(err.value).startswith(f"{path}: invalid JSON at line 3, column 18: Expecting property name")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(GarageError, match="nope.json: cannot read"):
        load_metadata(tmp_path / "nope.json")


# ---- writing ---------------------------------------------------------------------------------
def test_round_trip_keeps_everything_and_extras(tmp_path):
    data = {**CONTRACT_EXAMPLE, "lidar_config": {"clipping_dist": 2.0},
            "racer": {"camera": {"width": 160}, "note": "ours"}, "future_key": [1, 2]}
    md = parse_metadata(data)
    assert md.extras == {"racer": {"camera": {"width": 160}, "note": "ours"}, "future_key": [1, 2]}
    path = tmp_path / "car" / "model_metadata.json"
    save_metadata(md, path)
    assert load_metadata(path) == md
    written = json.loads(path.read_text())
    assert written == {**CONTRACT_EXAMPLE, "action_space": [{"steering_angle": float(a["steering_angle"]),
                                                             "speed": 1.0} for a in FIVE],
                       "lidar_config": {"clipping_dist": 2.0}, "racer": data["racer"], "future_key": [1, 2]}
    assert list(written)[:6] == ["action_space", "sensor", "neural_network", "training_algorithm",
                                 "action_space_type", "version"]


def test_save_is_atomic(tmp_path):
    path = tmp_path / "model_metadata.json"
    good = parse_metadata(CONTRACT_EXAMPLE)
    save_metadata(good, path)
    before = path.read_text()
    bad = ModelMetadata(good.action_space, extras={"oops": object()})  # not JSON: the write fails
    with pytest.raises(TypeError):
        save_metadata(bad, path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model_metadata.json"]  # no temp file left


def test_metadata_to_dict_of_continuous():
    d = metadata_to_dict(parse_metadata({"action_space": CONTINUOUS, "sensor": ["LIDAR"]}))
    assert d["action_space"] == {"steering_angle": {"low": -30.0, "high": 30.0}, "speed": {"low": 0.5, "high": 2.0}}
    assert d["action_space_type"] == "continuous" and d["sensor"] == ["LIDAR"]


# ---- presets -----------------------------------------------------------------------------------
def test_presets():
    d5 = preset_action_space("discrete5", 1.2)
    assert d5.actions == tuple((a, 1.2) for a in (-30.0, -15.0, 0.0, 15.0, 30.0))
    d10 = preset_action_space("discrete10", 1.2)
    assert d10.n == 10 and {v for _, v in d10.actions} == {0.6, 1.2}
    c = preset_action_space("continuous", 2.0)
    assert (c.kind, c.steer_range, c.speed_range) == ("continuous", (-30.0, 30.0), (0.5, 2.0))


def test_preset_refusals():
    with pytest.raises(GarageError, match="max_speed: 0.55 is too low for the continuous preset"):
        preset_action_space("continuous", 0.55)
    with pytest.raises(GarageError, match=r"action_space\[0\].speed: 0.075 is outside"):
        preset_action_space("discrete10", 0.15)
    with pytest.raises(GarageError, match="actions: 'discrete7' is not one of"):
        preset_action_space("discrete7", 1.0)


# ---- CLI ---------------------------------------------------------------------------------------
def test_cli_new_show_validate(tmp_path):
    runner = CliRunner()
    args = ["new", "my-car", "--sensors", "STEREO_CAMERAS,LIDAR", "--actions", "discrete10",
            "--max-speed", "1.5", "--dir", str(tmp_path)]
    result = runner.invoke(garage, args)
    assert result.exit_code == 0, result.output
    path = tmp_path / "my-car" / "model_metadata.json"
    assert load_metadata(path) == new_metadata(("STEREO_CAMERAS", "LIDAR"), "discrete10", 1.5)

    again = runner.invoke(garage, args)
    assert again.exit_code == 2 and "exists; pass --force to overwrite it" in again.output
    forced = runner.invoke(garage, args[:-4] + ["--actions", "continuous", "--dir", str(tmp_path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert load_metadata(path).action_space.speed_range == (0.5, 1.0)

    for target in ("my-car", str(path), str(path.parent)):
        shown = runner.invoke(garage, ["show", target, "--dir", str(tmp_path)])
        assert shown.exit_code == 0, shown.output
        assert "STEREO_CAMERAS, LIDAR" in shown.output and "continuous" in shown.output

    ok = runner.invoke(garage, ["validate", str(path)])
    assert ok.exit_code == 0 and ok.output.startswith(f"ok: {path}")


def test_cli_new_lidar_clipping(tmp_path):
    runner = CliRunner()
    args = ["new", "oa-car", "--sensors", "STEREO_CAMERAS,LIDAR", "--lidar-clipping", "2", "--dir", str(tmp_path)]
    result = runner.invoke(garage, args)
    assert result.exit_code == 0, result.output
    md = load_metadata(tmp_path / "oa-car" / "model_metadata.json")
    assert md.lidar_config == {"clipping_dist": 2.0} and LidarConfig.from_overrides(md.lidar_config).clip_max == 2.0
    no_lidar = runner.invoke(garage, ["new", "cam", "--lidar-clipping", "2", "--dir", str(tmp_path)])
    assert no_lidar.exit_code == 2 and "no LIDAR" in no_lidar.output
    assert not (tmp_path / "cam").exists()


def test_cli_refusals(tmp_path):
    runner = CliRunner()
    bad = write(tmp_path, {**CONTRACT_EXAMPLE, "sensor": ["RADAR"]}, "bad.json")
    result = runner.invoke(garage, ["validate", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}: sensor[0]: 'RADAR' is not a sensor" in result.output
    new = runner.invoke(garage, ["new", "x", "--sensors", "FRONT_FACING_CAMERA,SONAR", "--dir", str(tmp_path)])
    assert new.exit_code == 2 and "sensor[1]: 'SONAR' is not a sensor" in new.output
    assert not (tmp_path / "x").exists()
    missing = runner.invoke(garage, ["show", "ghost", "--dir", str(tmp_path)])
    assert missing.exit_code == 2 and "ghost: no such file" in missing.output


# ---- car names (issue 9, item 9) ----------------------------------------------------------------
NOT_PLAIN = ["../../x", "../x", "..", ".", ".hidden", "a/b", "a\\b", "", " ", "my car", "car\n", "-rf",
             "x" * 65]


@pytest.mark.parametrize("name", NOT_PLAIN, ids=repr)
def test_car_dir_refuses_names_that_are_not_plain(tmp_path, name):
    with pytest.raises(GarageError, match=r"car name .*: use 1 to 64 letters, digits"):
        car_dir(name, tmp_path / "garage")


def test_car_dir_of_a_plain_name(tmp_path):
    for name in ("my-car", "Car_2", "v1.5", "x" * 64, "7"):
        assert car_dir(name, tmp_path) == tmp_path / name


@pytest.mark.parametrize("name", NOT_PLAIN, ids=repr)
def test_cli_new_writes_nothing_for_a_name_that_is_not_plain(tmp_path, name):
    garage_dir = tmp_path / "work" / "garage"
    result = CliRunner().invoke(garage, ["new", "--dir", str(garage_dir), "--force", "--", name])
    assert result.exit_code != 0
    assert "car name" in result.output
    assert list(tmp_path.rglob("*")) == []  # not garage/model_metadata.json, not ../x, nothing


def test_cli_new_force_never_overwrites_outside_the_garage(tmp_path):
    victim = tmp_path / "elsewhere" / "model_metadata.json"
    victim.parent.mkdir()
    victim.write_text("mine")
    for name in (str(victim.parent), "../elsewhere"):  # absolute, and relative to the garage
        result = CliRunner().invoke(garage, ["new", name, "--dir", str(tmp_path / "garage"), "--force"])
        assert result.exit_code != 0 and "car name" in result.output
    assert victim.read_text() == "mine"
    assert not (tmp_path / "garage").exists()


def test_show_looks_up_only_plain_names_in_the_garage(tmp_path, monkeypatch):
    outside = tmp_path / "outside" / "model_metadata.json"
    outside.parent.mkdir()
    save_metadata(parse_metadata(CONTRACT_EXAMPLE), outside)
    cwd = tmp_path / "work" / "sub"
    cwd.mkdir(parents=True)
    (tmp_path / "garage").mkdir()
    monkeypatch.chdir(cwd)
    with pytest.raises(GarageError, match="no such file"):
        metadata_path("../outside", tmp_path / "garage")  # garage/../outside is not a car in the garage
    assert metadata_path(str(outside.parent), tmp_path / "garage") == outside  # a path given as a path is fine


# ---- lidar_config values (issue 9, item 10) --------------------------------------------------
@pytest.mark.parametrize("lidar_config, expected", [
    ({"num_sectors": 0}, "lidar_config.num_sectors: must be a positive integer"),
    ({"clipping_dist": "far"}, "lidar_config.clipping_dist: must be a positive number"),
    ({"clipping_dist": -5}, "lidar_config.clipping_dist: must be a positive number"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_lidar_config_values_are_checked(tmp_path, lidar_config, expected):
    path = write(tmp_path, {**CONTRACT_EXAMPLE, "lidar_config": lidar_config})
    with pytest.raises(GarageError) as err:
        load_metadata(path)
    assert str(err.value).startswith(f"{path}: {expected}")
    result = CliRunner().invoke(garage, ["validate", str(path)])
    assert result.exit_code != 0 and f"{path}: {expected}" in result.output
