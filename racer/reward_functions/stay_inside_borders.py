def reward_function(params):
    """Stay inside the two borders: reward every step with all wheels on the track."""
    all_wheels_on_track = params["all_wheels_on_track"]
    distance_from_center = params["distance_from_center"]
    track_width = params["track_width"]

    reward = 1e-3
    # a small margin inside the border
    if all_wheels_on_track and (0.5 * track_width - distance_from_center) >= 0.05:
        reward = 1.0

    return float(reward)
