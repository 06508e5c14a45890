"""The multi-car race core: cars stepped together, crashes judged by who is behind, evaluation resets
behind an obstacle in the free lane."""
from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim  # noqa: F401  (registers the env)
from sim import kernels, rules as R
from sim.car import CarSpec
from sim.observation import SensorSuite
from sim.race import Race
from sim.race_config import parse_race_config

SPEC = CarSpec()


def _race(track, mode: str = "training", cars: int = 1) -> Race:
    race = Race(track, R.RaceRules(mode=mode, laps=1))
    for _ in range(cars):
        race.add_car(SPEC, SensorSuite(("LIDAR",)), lambda params: 1.0, np.random.default_rng(0))
    return race


def test_of_two_touching_cars_only_the_one_behind_crashed(stadium):
    race = _race(stadium, cars=2)
    try:
        # car 0 on the bottom straight (driving +x), car 1 just ahead: their bodies overlap by 2 cm
        race.reset(stadium, [(6.0, 0.0, 0.0), (6.0 + SPEC.length - 0.02, 0.0, 0.0)])
        results = race.step([(0.0, 0.1, 0.0), (0.0, 0.1, 0.0)])
        statuses = [car.status for car in race.cars]
        assert statuses == [R.Status.CRASHED, R.Status.IN_PROGRESS]
        assert results[0].terminated and not results[1].terminated
        assert race.cars[0].params["is_crashed"] and not race.cars[1].params["is_crashed"]
        assert race.cars[0].params["objects_location"] == [[pytest.approx(race.cars[1].state.x),
                                                            pytest.approx(0.0)]]
    finally:
        race.close()


def test_cars_far_apart_do_not_crash(stadium):
    race = _race(stadium, cars=2)
    try:
        race.reset(stadium, [(6.0, 0.0, 0.0), (8.0, 0.0, 0.0)])
        race.step([(0.0, 1.0, None), (0.0, 1.0, None)])
        assert [car.status for car in race.cars] == [R.Status.IN_PROGRESS] * 2
    finally:
        race.close()


def test_evaluation_reset_after_an_obstacle_is_behind_it_in_the_free_lane(stadium):
    box_s = 2.5  # m from waypoint 0 at (5, 0): the box stands at x = 7.5 on the bottom straight
    config = parse_race_config("object-avoidance", {"OBJECT_POSITIONS": [f"{box_s / stadium.length},1"]})
    race = Race(stadium, R.RaceRules(mode="evaluation", laps=1), config)
    race.add_car(SPEC, SensorSuite(("LIDAR",)), lambda params: 1.0, np.random.default_rng(0))
    try:
        race.reset(stadium, [(6.0, 0.25, 0.0)])  # in the box's lane, 1.5 m before it
        box = race.world.objects[0].box
        assert (box.x, box.y) == (pytest.approx(7.5), pytest.approx(0.25))  # inner (left) lane midline
        car = race.cars[0]
        for _ in range(30):
            race.step([(0.0, 1.0, None)])
            if car.status == R.Status.CRASHED:
                break
        assert car.status == R.Status.CRASHED and car.lap.counts[R.Status.CRASHED] == 1
        assert car.params["is_crashed"] and car.params["objects_location"] == [[pytest.approx(7.5),
                                                                               pytest.approx(0.25)]]
        assert car.state.x == pytest.approx(7.5 - config.reset_behind_dist, abs=1e-6)
        assert car.state.y == pytest.approx(-0.25, abs=1e-6)  # the outer (right) lane's midline
        assert car.state.speed == 0.0 and car.lap.pause_left == pytest.approx(5.0)
        assert car.lap.distance < car.lap.best_distance  # put back behind where it got to
    finally:
        race.close()


def test_a_training_start_next_to_a_box_is_in_the_free_lane(stadium):
    config = parse_race_config("object-avoidance", {"OBJECT_POSITIONS": [f"{3.0 / stadium.length},1"]})
    race = Race(stadium, R.RaceRules(), config)
    race.add_car(SPEC, SensorSuite(("LIDAR",)), None, np.random.default_rng(0))
    try:
        race.reset(stadium, [2.5])  # 0.5 m before the box, which is in the inner lane
        assert race.cars[0].state.y == pytest.approx(-0.25, abs=1e-6)
        race.reset(stadium, [0.5])  # 2.5 m before it: the centre line
        assert race.cars[0].state.y == pytest.approx(0.0, abs=1e-9)
    finally:
        race.close()


def test_object_avoidance_env_places_boxes_and_fills_every_object_param(stadium):
    """Two boxes by OBJECT_POSITIONS on the stadium (waypoint 0 at (5, 0), bottom straight driven +x,
    inner = left = +y): the params computed by hand."""
    L = stadium.length
    env = gymnasium.make("racer/DeepRacer-v0", track=stadium, sensors=["LIDAR"], race="object-avoidance",
                         race_config={"OBJECT_POSITIONS": f"{3.0 / L},1;{4.5 / L},-1"})
    try:
        _, info = env.reset(seed=0, options={"start": 0.0})
        p = info["params"]
        assert p["objects_location"] == [[pytest.approx(8.0), pytest.approx(0.25)],
                                         [pytest.approx(9.5), pytest.approx(-0.25)]]
        assert p["objects_distance"] == [pytest.approx(3.0), pytest.approx(4.5)]  # from the start line
        assert p["objects_distance_from_center"] == [pytest.approx(0.25), pytest.approx(0.25)]
        assert p["objects_left_of_center"] == [True, False]
        assert p["objects_heading"] == [0.0, 0.0] and p["objects_speed"] == [0.0, 0.0]
        assert p["closest_objects"] == [1, 0]  # behind the car (round the loop): box 1; ahead: box 0
        assert p["object_in_camera"] is True and p["is_crashed"] is False
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


def test_randomised_layouts_are_seeded_and_new_each_episode():
    def layouts(seed: int) -> list:
        env = gymnasium.make("racer/DeepRacer-v0", track="reinvent-like", sensors=["LIDAR"], race="object-avoidance",
                             race_config={"NUMBER_OF_OBSTACLES": 6, "RANDOMIZE_OBSTACLE_LOCATIONS": True})
        try:
            out = [env.reset(seed=seed)[1]["params"]["objects_location"]]
            out.append(env.reset()[1]["params"]["objects_location"])
            return out
        finally:
            env.close()
    first, again, other = layouts(3), layouts(3), layouts(4)
    assert first == again and len(first[0]) == 6
    assert first[0] != first[1] and first[0] != other[0]


def test_head_to_bot_bots_drive_their_lanes_at_the_configured_speed():
    env = gymnasium.make("racer/DeepRacer-v0", track="reinvent-like", sensors=["LIDAR"], race="head-to-bot",
                         race_config={"NUMBER_OF_BOT_CARS": 3, "BOT_CAR_SPEED": 0.5})
    try:
        _, info = env.reset(seed=0)
        before = info["params"]["objects_distance"]
        assert len(before) == 3 and info["params"]["objects_speed"] == [0.5] * 3
        for _ in range(15):  # one simulated second
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            if terminated or truncated:
                break
        after = info["params"]["objects_distance"]
        L = env.unwrapped.track.length
        moved = [(a - b) % L for a, b in zip(after, before)]
        assert moved == [pytest.approx(0.5, abs=0.02)] * 3
        heading = info["params"]["objects_heading"]
        assert all(-math.pi <= h <= math.pi for h in heading)  # radians
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


def _grown(footprints: np.ndarray, margin: float) -> np.ndarray:
    """World.footprints with every body's half length and width grown by `margin` (m)."""
    out = footprints.copy()
    out[:, 3:5] += margin
    return out


def _face_gaps(footprints: np.ndarray, x: float, y: float) -> np.ndarray:
    """How far (x, y) is from each footprint's outline: + outside it, - inside."""
    fx, fy, yaw, hl, hw = footprints[:, :5].T
    c, s = np.cos(yaw), np.sin(yaw)
    px, py = np.abs(c * (x - fx) + s * (y - fy)) - hl, np.abs(-s * (x - fx) + c * (y - fy)) - hw
    return np.where((px < 0) & (py < 0), np.maximum(px, py), np.hypot(np.maximum(px, 0.0), np.maximum(py, 0.0)))


def test_lidar_rays_are_pybullets_to_within_a_millimetre(stadium):
    """World.cast_rays against PyBullet's rayTestBatch on random scenes of boxes (one lower than the scan
    plane), another car and the room walls: PyBullet's distance lies between the casts against the footprints
    grown and shrunk by 1 mm (so hits agree but where a ray grazes an edge, within that band, and the
    distances agree to about a millimetre), from outside every body and from inside one (unseen, as
    PyBullet); origins within 1 cm of a face are left out (PyBullet's ray test has margins there)."""
    import pybullet as p
    from sim.world import World
    rng = np.random.default_rng(0)
    reach, z, counts = 1.0, 0.08, {"hits": 0, "walls": 0, "inside": 0}
    for _ in range(12):
        w = World(stadium)
        try:
            me = w.add_car(SPEC)
            w.set_car_pose(w.add_car(SPEC), rng.uniform(4, 11), rng.uniform(-1, 2), rng.uniform(-3.2, 3.2))
            for height in [0.05] + [0.25] * 7:
                w.add_box(rng.uniform(4, 11), rng.uniform(-1, 2), rng.uniform(-3.2, 3.2), *rng.uniform(0.1, 0.6, 2),
                          height)
            x0, y0, x1, y1 = w.room
            for _ in range(150):
                near_wall = rng.random() < 0.2
                x = rng.uniform(x0, x0 + 1.2) if near_wall else rng.uniform(3.5, 11.5)
                y = rng.uniform(y0, y1) if near_wall else rng.uniform(-1.5, 2.5)
                w.set_car_pose(me, x, y, 0.0)
                row = w.cars[me].row
                gaps = _face_gaps(np.delete(w.footprints, row, axis=0), x, y)
                if np.min(np.abs(gaps)) < 0.01:
                    continue
                angles = np.linspace(0.0, 2 * math.pi, 64, endpoint=False) + rng.uniform(-4, 4)
                d = w.cast_rays(me, (x, y, z), angles, reach, 12.0)
                w._sync()
                ends = np.stack([x + reach * np.cos(angles), y + reach * np.sin(angles), np.full(64, z)], axis=1)
                hits = p.rayTestBatch(np.broadcast_to([x, y, z], ends.shape), ends, physicsClientId=w.client,
                                      collisionFilterMask=0x7FFFFFFF & ~w.cars[me].group)
                want = np.array([h[2] * reach if h[0] >= 0 else 12.0 for h in hits], dtype=np.float32)
                early = kernels.cast_rays(x, y, z, angles, _grown(w.footprints, 1e-3), row, reach, 12.0)
                late = kernels.cast_rays(x, y, z, angles, _grown(w.footprints, -1e-3), row, reach, 12.0)
                assert np.all((early <= want + 1e-6) & (want <= late + 1e-6)), (x, y)
                assert np.all((early <= d) & (d <= late))
                counts["hits"] += int(np.sum(d < 12.0))
                counts["walls"] += int(np.sum(d < 12.0)) if near_wall else 0
                counts["inside"] += int(np.any(gaps < 0))
        finally:
            w.close()
    assert counts["hits"] > 10000 and counts["walls"] > 3000 and counts["inside"] > 20, counts


def test_crashes_are_pybullets_contacts(stadium):
    """World.crashed_into asks PyBullet only about the bodies whose footprints no edge direction separates from the
    car's by more than APART (`kernels.rectangles_near`): on random scenes of a car among boxes and bot-sized cars
    near it, what it finds is every body PyBullet finds in contact, though many bodies near enough for their
    bounding circles to meet are not asked about."""
    import pybullet as p
    from sim.world import APART, World
    rng = np.random.default_rng(1)
    counts = {"contacts": 0, "asked": 0, "near": 0}
    w = World(stadium)
    try:
        me = w.add_car(SPEC)
        others = [w.add_car(CarSpec(length=0.32352, width=0.1961)) for _ in range(3)]
        for _ in range(3):
            w.add_box(1e3, 1e3, 0.0, *rng.uniform(0.1, 0.6, 2), 0.25)
        for _ in range(2000):
            x, y = rng.uniform(5, 8), rng.uniform(-1, 1)
            w.set_car_pose(me, x, y, rng.uniform(-4, 4))
            for i in others:
                w.set_car_pose(i, x + rng.uniform(-0.5, 0.5), y + rng.uniform(-0.5, 0.5), rng.uniform(-4, 4))
            for j in range(len(w.objects)):
                w.set_object_pose(j, x + rng.uniform(-0.7, 0.7), y + rng.uniform(-0.7, 0.7), rng.uniform(-4, 4))
            found = w.crashed_into(me)
            w._sync()  # (PyBullet may not have been asked, nor given the poses)
            body = w.cars[me]
            contacts = [b.uid for b in w.objects + w.cars if b is not body
                        and p.getClosestPoints(body.uid, b.uid, 0.0, physicsClientId=w.client)]
            assert sorted(found) == sorted(contacts)
            near = kernels.touching_circles(w.footprints, body.row, 4)
            counts["contacts"] += len(contacts)
            counts["asked"] += len(kernels.rectangles_near(w.footprints, body.row, near, APART))
            counts["near"] += len(near)
    finally:
        w.close()
    assert counts["contacts"] > 1000 and counts["near"] - counts["asked"] > 1000, counts


def test_a_box_added_after_the_reset_is_in_the_params_at_once():
    env = gymnasium.make("racer/DeepRacer-v0", track="reinvent-like", sensors=["LIDAR"])
    try:
        env.reset(seed=0)
        env.unwrapped.world.add_box(1.5, 0.0, 0.0)
        _, _, _, _, info = env.step(0)
        assert info["params"]["objects_location"] == [[1.5, 0.0]]
        assert info["params"]["objects_distance"][0] == pytest.approx(
            float(env.unwrapped.track.project(np.array([[1.5, 0.0]])).s[0]))
    finally:
        env.close()


@pytest.mark.parametrize("mercy", [False, True])
def test_mercy_reset_puts_the_car_ahead_of_a_box_it_keeps_hitting(stadium, mercy):
    """A driver that keeps aiming at the box's lane: put back behind the box each time, or, with
    ENABLE_MERCY_RESET, ahead of it at the MAX_RESETS_AFTER_CRASH-th reset there."""
    box_x = 8.0  # inner (left) lane of the bottom straight: y = 0.25
    config = parse_race_config("object-avoidance", {"OBJECT_POSITIONS": [f"{(box_x - 5.0) / stadium.length},1"],
                                                    "ENABLE_MERCY_RESET": mercy, "MAX_RESETS_AFTER_CRASH": 2})
    race = Race(stadium, R.RaceRules(mode="evaluation", laps=1, collision_penalty=0.2), config)
    race.add_car(SPEC, SensorSuite(("LIDAR",)), None, np.random.default_rng(0))
    car = race.cars[0]
    try:
        race.reset(stadium, [(5.5, 0.25, 0.0)])
        crashes = []
        for _ in range(400):
            steer = float(np.clip(100 * (0.25 - car.state.y) - 60 * car.state.yaw, -30, 30))
            race.step([(steer, 0.6, None)])
            if car.status == R.Status.CRASHED:
                crashes.append(car.state.x)
            if len(crashes) == 3 or car.state.x > box_x + 0.5:
                break
        behind = pytest.approx(box_x - config.reset_behind_dist, abs=0.01)
        if mercy:
            assert crashes == [behind, pytest.approx(box_x + config.reset_ahead_dist, abs=0.01)]
        else:
            assert crashes == [behind] * 3
    finally:
        race.close()


def test_box_params_follow_a_box_moved_between_steps(stadium):
    """The boxes' object params are made once per layout, and again when a box moves: they equal the
    params of the boxes where they stand."""
    from sim.params import OBJECT_KEYS, ObjectInfo, object_columns
    race = Race(stadium, R.RaceRules(), parse_race_config("object-avoidance", {"NUMBER_OF_OBSTACLES": 3}))
    race.add_car(SPEC, SensorSuite(("LIDAR",)), lambda params: 1.0, np.random.default_rng(0))
    try:
        race.reset(stadium, [(6.0, 0.0, 0.0)], np.random.default_rng(0))
        before = race.cars[0].params["objects_location"]
        race.world.set_object_pose(1, 7.5, 0.2, 0.3)
        race.step([(0.0, 0.1, None)])
        params = race.cars[0].params
        want = object_columns(stadium, [ObjectInfo(b.box.x, b.box.y) for b in race.world.objects])
        assert params["objects_location"] == [list(v) for v in want["objects_location"]] != before
        for key in (k for k in OBJECT_KEYS if k != "objects_location"):  # (locations: lists in the params)
            assert params[key] == want[key], key
        assert params["closest_objects"][1] == 1  # the moved box is the next one ahead of the car
    finally:
        race.close()


def test_pybullet_sees_bodies_where_they_were_last_put(stadium):
    """Poses reach PyBullet before its next query (a contact or a ray cast), not at every move."""
    race = _race(stadium)
    try:
        race.reset(stadium, [(6.0, 0.0, 0.0)])
        w = race.world
        w.add_box(1e3, 1e3, 0.0, 0.3, 0.3, 0.3)
        w.set_object_pose(0, 6.0, 0.5, 0.0)  # 0.5 m to the car's left: its LIDAR's beam at +90 deg meets it
        angles = np.array([math.pi / 2, -math.pi / 2])
        np.testing.assert_allclose(w.cast_rays(0, (6.0, 0.0, 0.08), angles, 1.0, 12.0), [0.35, 12.0], atol=1e-6)
        assert w.crashed_into(0) == []
        w.set_object_pose(0, 6.1, 0.1, 0.0)  # onto the car
        assert w.crashed_into(0) == [w.objects[0].uid]
        race.world.set_car_pose(0, 6.0, 3.0, 0.0)  # and the car away from it
        assert w.crashed_into(0) == []
    finally:
        race.close()
