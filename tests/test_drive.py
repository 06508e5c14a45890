"""`racer drive`: the scripted expert laps every bundled track cleanly."""
import pytest
from click.testing import CliRunner

from racer.cli import main
from racer.driving import drive_expert, drive_race
from sim.track import bundled_names, load


@pytest.mark.parametrize("track", bundled_names())
def test_expert_laps_every_bundled_track(track):
    laps = drive_expert(track, laps=3, max_speed=1.0)
    assert [lap.status for lap in laps] == ["lap_complete"] * 3
    assert all(lap.completion == 100.0 and lap.off_track == 0 and lap.resets == 0 for lap in laps)
    # at <= 1 m/s a lap cannot take less than length / 1 m/s
    length = load(track).length
    assert all(length / 1.0 - 0.2 <= lap.time_s <= length / 1.0 * 1.3 for lap in laps)


def test_expert_laps_reversed():
    laps = drive_expert("reinvent-like", laps=1, max_speed=2.0, reverse=True)
    assert laps[0].status == "lap_complete" and laps[0].off_track == 0


def test_cli_prints_lap_table():
    result = CliRunner().invoke(main, ["drive", "--track", "oval", "--laps", "2"])
    assert result.exit_code == 0, result.output
    assert "lap_complete" in result.output and "2/2 laps complete" in result.output


def test_expert_races_scripted_opponents_head_to_model():
    """Two scripted copies start on the grid behind the expert and race on: the expert's laps are clean,
    every car completes a lap, and the standings order them as the race's rules do (laps, then time)."""
    laps, standings = drive_race("oval", laps=2, race="head-to-model", opponents=2)
    assert [lap.clean for lap in laps] == [True, True]
    assert sorted(s.car for s in standings) == ["expert", "opponent 1", "opponent 2"]
    assert all(s.laps >= 1 for s in standings)
    order = [(-s.laps, s.time_s) for s in standings]
    assert order == sorted(order)


def test_cli_drive_head_to_model_prints_the_race():
    result = CliRunner().invoke(main, ["drive", "--track", "oval", "--laps", "1", "--race", "head-to-model"])
    assert result.exit_code == 0, result.output
    assert "opponent 1" in result.output and "expert" in result.output and "place" in result.output
    result = CliRunner().invoke(main, ["drive", "--track", "oval", "--opponents", "2"])
    assert result.exit_code == 2 and "head-to-model" in result.output
