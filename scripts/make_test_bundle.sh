#!/usr/bin/env bash
# Rebuilds tests/data/bundle-oval: the small camera model the car-stack tests drive the
# simulated car with (CI does not train it).  Run from the repository root in the venv.
set -euo pipefail
racer garage new oval-car --force --sensors FRONT_FACING_CAMERA --actions discrete10 --max-speed 1.0 \
  --network RACER_POOLED_SHALLOW
racer train --reward center_and_progress --car oval-car --track oval --until-lapping \
  --minutes 10 --seed 0 --run-dir runs/oval-bundle
racer export runs/oval-bundle --out tests/data/bundle-oval --force
rm tests/data/bundle-oval/checkpoint.zip  # only for resuming training (bundle.json may list it absent)
