"""Object avoidance and head-to-bot: the distance gained along the track this step (10 points per
metre), weighted by how well the car keeps to the side free of the object it is passing or next
meeting.

An object (box, bot car or other racer) counts from LOOK_AHEAD metres ahead of the car's front until
its centre is ALONGSIDE metres behind it (a box or a car is still beside the car until then); of
those, the one the car meets first decides.  With one, the aim is the far side of the lane free of it:
full weight from that lane's midline out to the border, none in the object's own lane.  Without one,
anywhere between the two lanes' midlines has full weight (half at the border): the car may stay in
its lane rather than come back to the centre line between objects.  As in
center_and_progress, every lap pays about the same, so faster laps earn it sooner; a crash or an off
track pays nothing.  Module-level state is per environment (each gets its own import).
"""

LAST = {"progress": 0.0}
LOOK_AHEAD = 2.0  # m ahead of the car's front
ALONGSIDE = 0.6  # m behind the car's front: a car (0.32 m) beside a box (0.4 m) until then


def object_side(params):
    """+1 when the object that decides is left of the centre line, -1 right, 0 without one."""
    length, here = params["track_length"], params["projection_distance"]
    near = []
    for s, left in zip(params["objects_distance"], params["objects_left_of_center"]):
        gap = (s - here + ALONGSIDE) % length - ALONGSIDE
        if gap <= LOOK_AHEAD:
            near.append((gap, 1 if left else -1))
    return min(near)[1] if near else 0


def reward_function(params):
    if params["steps"] <= 2:  # first call of an episode
        LAST["progress"] = 0.0
    metres = (params["progress"] - LAST["progress"]) / 100.0 * params["track_length"]
    LAST["progress"] = params["progress"]
    if params["is_offtrack"] or params["is_crashed"]:
        return 1e-3

    lane = params["track_width"] / 4  # a lane's midline: half way from the centre line to a border
    offset = params["distance_from_center"] * (1 if params["is_left_of_center"] else -1)
    side = object_side(params)
    if side:
        free = -side * offset  # how far the car is on the free side (m)
        keep = min(1.0, max(0.0, (free + lane) / (2 * lane)))
        weight = 0.1 + 0.9 * keep
    else:  # either lane will do: a car need not come back to the centre between objects
        weight = 0.5 + 0.5 * min(1.0, max(0.0, (2 * lane - abs(offset)) / lane))
    return float(max(10.0 * metres * weight, 1e-3))
