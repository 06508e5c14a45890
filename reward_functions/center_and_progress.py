"""Stay near the centre line and make progress: 10 points per metre driven along the track.

The plain centre-line reward laps but settles on the slowest action; the progress term makes
the fast actions pay.  Module-level state is per environment (each gets its own import).
"""

LAST = {"progress": 0.0}


def reward_function(params):
    if params["steps"] <= 2:  # first call of an episode
        LAST["progress"] = 0.0
    if params["is_offtrack"] or params["is_crashed"]:
        return 1e-3

    half_width = 0.5 * params["track_width"]
    centre = max(0.0, 1.0 - params["distance_from_center"] / half_width)

    metres = (params["progress"] - LAST["progress"]) / 100.0 * params["track_length"]
    LAST["progress"] = params["progress"]

    return float(centre + 10.0 * max(metres, 0.0))
