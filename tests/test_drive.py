"""`racer drive`: the scripted expert laps every bundled track cleanly."""
import pytest
from click.testing import CliRunner

from racer.cli import main
from racer.driving import drive_expert
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
