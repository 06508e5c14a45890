"""Summarise `racer evaluate ... --laps 3 --compare-expert` reports (evaluation.json) of several seeds: per
seed the share of the laps asked for (starts x 3) that were clean (finished, no crash, no off track), the
model's mean clean lap time and the expert's mean lap time on the same layouts; then the median over the
seeds.  Usage: python3 bench/race_summary.py RUN/evaluation/evaluation.json ..."""
from __future__ import annotations

import json
import statistics
import sys


LAPS = 3  # asked for from each start: a start that never finished its laps counts the missing ones as not clean


def summary(path: str) -> dict:
    """Clean-lap share and mean lap times (s) of one evaluation report."""
    report = json.load(open(path))
    asked = LAPS * len(report["laps"])
    laps = [lap for start in report["laps"] for lap in start]
    clean = [lap for lap in laps if lap["status"] == "lap_complete" and lap["resets"] == 0]
    expert = [lap for start in report["expert_laps"] or [] for lap in start if lap["status"] == "lap_complete"]
    return {"clean": len(clean) / asked, "laps": asked, "model_s": _mean([lap["time_s"] for lap in clean]),
            "expert_s": _mean([lap["time_s"] for lap in expert])}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def main(paths: list[str]) -> None:
    rows = [summary(p) for p in paths]
    for path, r in zip(paths, rows):
        print(f"{path}: clean laps {r['clean']:.0%} of {r['laps']}, clean lap mean {r['model_s']:.2f} s, "
              f"expert {r['expert_s']:.2f} s")
    print(f"median over {len(rows)}: clean laps {statistics.median(r['clean'] for r in rows):.0%}, "
          f"clean lap mean {statistics.median(r['model_s'] for r in rows):.2f} s, "
          f"expert {statistics.median(r['expert_s'] for r in rows):.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
