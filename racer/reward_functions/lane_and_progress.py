"""Object avoidance and head-to-bot: the distance gained along the track this step (10 points per
metre), weighted by how well the car keeps to the lane free of the next object.

With an object (box, bot car or other racer) less than 2 m ahead the aim is the midline of the
other lane; otherwise the centre line.  Full weight on the aim, half at a lane's width from it.
As in center_and_progress, every lap pays about the same, so faster laps earn it sooner; a crash
or an off track pays nothing.  Module-level state is per environment (each gets its own import).
"""

LAST = {"progress": 0.0}
LOOK_AHEAD = 2.0  # m


def reward_function(params):
    if params["steps"] <= 2:  # first call of an episode
        LAST["progress"] = 0.0
    metres = (params["progress"] - LAST["progress"]) / 100.0 * params["track_length"]
    LAST["progress"] = params["progress"]
    if params["is_offtrack"] or params["is_crashed"]:
        return 1e-3

    lane = params["track_width"] / 4  # a lane's midline: half way from the centre line to a border
    aim = 0.0
    if params["objects_location"]:
        _, ahead = params["closest_objects"]
        gap = (params["objects_distance"][ahead] - params["projection_distance"]) % params["track_length"]
        if gap < LOOK_AHEAD:
            aim = -lane if params["objects_left_of_center"][ahead] else lane
    offset = params["distance_from_center"] * (1 if params["is_left_of_center"] else -1)
    keep = max(0.0, 1.0 - abs(offset - aim) / (2 * lane))
    return float(max(10.0 * metres * (0.5 + 0.5 * keep), 1e-3))
