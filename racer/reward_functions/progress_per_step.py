import math


def reward_function(params):
    """Reward progress per step (fast laps), on the track and pointing along it."""
    if params["is_offtrack"] or params["is_crashed"]:
        return 1e-3

    progress = params["progress"]
    steps = params["steps"]
    # steps starts at 2 on the first call, so this never divides by zero
    reward = 100.0 * progress / steps

    waypoints = params["waypoints"]
    prev_wp, next_wp = params["closest_waypoints"]
    a, b = waypoints[prev_wp], waypoints[next_wp]
    track_direction = math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))
    direction_diff = abs(track_direction - params["heading"])
    if direction_diff > 180:
        direction_diff = 360 - direction_diff
    if direction_diff > 30:
        reward *= 0.5

    return float(max(reward, 1e-3))
