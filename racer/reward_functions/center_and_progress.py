"""Fast laps near the centre line: the distance gained along the track this step (10 points
per metre), weighted by closeness to the centre (full weight on the line, half at the border).

Every lap pays about the same total, so the only way to earn more is to earn it sooner: with
PPO's discount the fast actions win, all the way to the finish line.  (A fixed bonus per step,
as in a plain centre-line reward, pays the car for taking longer: trained for 15 minutes with
`centre + 10 * metres`, the same car slowed from 21 s to 35 s laps.)  Module-level state is
per environment (each gets its own import).
"""

LAST = {"progress": 0.0}


def reward_function(params):
    if params["steps"] <= 2:  # first call of an episode
        LAST["progress"] = 0.0
    metres = (params["progress"] - LAST["progress"]) / 100.0 * params["track_length"]
    LAST["progress"] = params["progress"]
    if params["is_offtrack"] or params["is_crashed"]:
        return 1e-3

    centre = max(0.0, 1.0 - params["distance_from_center"] / (0.5 * params["track_width"]))
    return float(max(10.0 * metres * (0.5 + 0.5 * centre), 1e-3))
