#!/usr/bin/env bash
# Trained models that race (issue 10, item 9): one car, 3 seeds, each trained for 15 minutes of wall
# time on reinvent-like in the race, then evaluated for 3 laps from 5 starts (each start its own
# layout) beside the scripted expert on the same layouts.  Each run first learns from the scripted expert
# for IMITATE steps (racer train --imitate-expert; 0 = PPO on the reward alone), inside the 15 minutes.
# Run from the repository root in the venv:
#   bench/race_training.sh object-avoidance      # or head-to-bot; MINUTES=5 for a quicker look
# Prints each seed's clean laps and lap times and the median over the seeds (bench/race_summary.py).
set -euo pipefail
race=${1:?usage: bench/race_training.sh object-avoidance|head-to-bot}
minutes=${MINUTES:-15}
imitate=${IMITATE:-32000}
racer garage new race-bench --force --sensors STEREO_CAMERAS,LIDAR --lidar-clipping 2 --actions discrete10 \
  --max-speed 1.0 --network RACER_POOLED_SHALLOW
reports=()
for seed in 0 1 2; do
  run="runs/bench-$race-$seed"
  racer train --reward lane_and_progress --car race-bench --track reinvent-like --race "$race" \
    --race-config "bench/$race.yaml" --minutes "$minutes" --seed "$seed" --eval-every 10000 \
    --hyper ent_coef=0.001 --imitate-expert "$imitate" --run-dir "$run"
  racer evaluate "$run" --laps 3 --starts 5 --compare-expert
  reports+=("$run/evaluation/evaluation.json")
done
python3 bench/race_summary.py "${reports[@]}"
