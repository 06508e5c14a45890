"""Sensors against hand-computed geometry: LIDAR distances and sectors, stereo disparity, the
camera observation contract, and the numpy renderer against PyBullet's TinyRenderer."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sim.env import contract_camera_observation
from sim.observation import CameraConfig, LidarConfig, camera_observation, grayscale, resize

ANGLES = LidarConfig().beam_angles()  # car frame, 0 = ahead, CCW
CAM = CameraConfig()
FX = (CAM.width / 2) / math.tan(CAM.hfov / 2)  # focal length in pixels
INFIELD = (5.0, 2.0)  # middle of the stadium's infield: plain floor, no wall within 3 m


def _aim(env, beam: int, distance: float, width: float, length: float = 0.2, seed: int = 0):
    """Turn the car at INFIELD so that `beam` points along +x, put a box whose near face is
    `distance` m ahead along that beam (face square to it), reset; returns (obs, yaw)."""
    yaw = -float(ANGLES[beam])
    x, y = INFIELD
    env.world.add_box(x + distance + length / 2, y, 0.0, length, width, 0.3)
    obs, _ = env.reset(seed=seed, options={"pose": (x, y, math.degrees(yaw))})
    return obs, yaw


# ---- LIDAR ------------------------------------------------------------------------------
def test_beam_angles_face_backwards():
    assert len(ANGLES) == 64
    assert math.degrees(ANGLES[0]) == pytest.approx(30.0)  # 180 - 150: front left
    assert math.degrees(ANGLES[-1]) == pytest.approx(330.0)  # front right
    assert math.degrees(ANGLES[31]) == pytest.approx(180 - 150 + 31 * 300 / 63)


def test_lidar_reads_box_distance(make_env, stadium):
    beam = 10  # 77.6 deg left of ahead
    env = make_env(stadium, sensors=["LIDAR"])
    obs, yaw = _aim(env, beam, 0.6, width=0.08)  # neighbours (4.76 deg) pass 5 cm off the axis: miss
    lidar = obs["LIDAR"]
    assert lidar.dtype == np.float32 and lidar.shape == (64,)
    assert lidar[beam] == pytest.approx(0.6, abs=0.035)  # one noisy (sigma 1 cm) reading
    others = np.delete(lidar, beam)
    assert np.all(others == 1.0)
    scans = np.array([env.lidar.scan(*INFIELD, yaw) for _ in range(30)])
    assert scans[:, beam].mean() == pytest.approx(0.6, abs=0.02)
    assert 0.003 < scans[:, beam].std() < 0.02  # the noise is there
    assert np.all(np.delete(scans, beam, axis=1) > LidarConfig().range_max - 0.06)  # no hit: max range


def test_lidar_exact_without_noise(make_env, stadium):
    env = make_env(stadium, sensors=["LIDAR"], lidar={"noise_std": 0.0})
    obs, yaw = _aim(env, 40, 0.45, width=0.5)
    d = env.lidar.scan(*INFIELD, yaw)
    off = ANGLES - ANGLES[40]
    hits = np.abs(0.45 * np.tan(off)) < 0.25  # beams that reach the face: distance / cos(angle)
    hits &= np.abs(off) < math.pi / 2
    assert hits.sum() == 13  # +-6 beams: 0.45 tan(28.6 deg) = 0.245 < 0.25 < 0.45 tan(33.3 deg)
    assert d[hits] == pytest.approx(0.45 / np.cos(off[hits]), abs=1e-3)
    assert np.all(obs["LIDAR"][hits] == pytest.approx(0.45 / np.cos(off[hits]), abs=1e-3))
    assert np.all(obs["LIDAR"][~hits] == 1.0)


def test_lidar_clips_near_and_far(make_env, stadium):
    near = make_env(stadium, sensors=["LIDAR"])
    obs, _ = _aim(near, 50, 0.08, width=0.08)
    assert obs["LIDAR"][50] == pytest.approx(0.15)  # range_min
    far = make_env(stadium, sensors=["LIDAR"])
    obs, _ = _aim(far, 50, 1.5, width=0.5)
    assert np.all(obs["LIDAR"] == 1.0)  # beyond the 1 m clip


def test_lidar_does_not_see_straight_ahead(make_env, stadium):
    env = make_env(stadium, sensors=["LIDAR"])
    x, y = INFIELD
    env.world.add_box(x + 0.6, y, 0.0, 0.2, 0.3, 0.3)  # dead ahead, 0.5 m: inside the unscanned 60 deg
    obs, _ = env.reset(seed=0, options={"pose": (x, y, 0.0)})
    assert np.all(obs["LIDAR"] == 1.0)
    obs, _ = env.reset(seed=0, options={"pose": (x, y, 180.0)})  # turned round: now it is seen
    assert obs["LIDAR"].min() < 0.55


def test_lidar_updates_at_10_hz(make_env, stadium):
    env = make_env(stadium, sensors=["LIDAR"], action_space=[{"steering_angle": 0.0, "speed": 0.1}])
    obs0, _ = _aim(env, 32, 0.5, width=0.08)
    seq = [obs0["LIDAR"][32]] + [env.step(0)[0]["LIDAR"][32] for _ in range(4)]
    # scans at t = 0, 0.133 (first step at or after 0.1), 0.2667 ...: steps 1 and 3 reuse the scan
    assert seq[1] == seq[0] and seq[3] == seq[2]
    assert seq[2] != seq[1] and seq[4] != seq[3]


def test_sector_lidar(make_env, stadium):
    env = make_env(stadium, sensors=["SECTOR_LIDAR"])
    obs, _ = _aim(env, 20, 0.3, width=0.08)  # beams 19-21 hit (sector 2 holds beams 16-23)
    assert obs["SECTOR_LIDAR"].dtype == np.float32 and obs["SECTOR_LIDAR"].shape == (8,)
    assert obs["SECTOR_LIDAR"].tolist() == [0, 0, 1, 0, 0, 0, 0, 0]
    env2 = make_env(stadium, sensors=["SECTOR_LIDAR"])
    obs, _ = _aim(env2, 20, 0.7, width=0.08)  # beyond the 0.5 m threshold
    assert obs["SECTOR_LIDAR"].tolist() == [0] * 8


@pytest.mark.parametrize("distance, index", [(0.3, 2 * 8 + 1), (1.1, 2 * 8 + 4), (1.6, 2 * 8 + 6)])
def test_discretized_sector_lidar(make_env, stadium, distance, index):
    env = make_env(stadium, sensors=["DISCRETIZED_SECTOR_LIDAR"])
    obs, _ = _aim(env, 20, distance, width=0.08)  # bins of 2 m / 8 = 0.25 m
    o = obs["DISCRETIZED_SECTOR_LIDAR"]
    assert o.dtype == np.float32 and o.shape == (64,)
    expected = np.zeros(64, dtype=np.float32)
    expected[index] = 1.0
    assert o.tolist() == expected.tolist()


# ---- cameras ----------------------------------------------------------------------------
def _box_columns(with_box: np.ndarray, without: np.ndarray, row: int, channel: int) -> tuple[int, int]:
    cols = np.flatnonzero(with_box[row, :, channel] != without[row, :, channel])
    assert len(cols) and cols[-1] - cols[0] + 1 == len(cols), (row, channel, cols)
    return int(cols[0]), int(cols[-1])


@pytest.mark.parametrize("ahead", [0.5, 1.0])
def test_stereo_disparity(make_env, stadium, ahead):
    env = make_env(stadium, sensors=["STEREO_CAMERAS"])
    x, y = INFIELD
    pose = {"pose": (x, y, 0.0)}
    without, _ = env.reset(options=pose)
    half_w, length = 0.15, 0.2
    # the box's face `ahead` m from the cameras
    env.world.add_box(x + CAM.x + ahead + length / 2, y, 0.0, length, 2 * half_w, 0.3)
    with_box, _ = env.reset(options=pose)
    img = with_box["STEREO_CAMERAS"]
    assert img.shape == (120, 160, 2) and img.dtype == np.uint8
    p = math.radians(CAM.pitch_deg)
    b_mount = CAM.stereo_baseline / 2
    rows = []
    for row in range(5, 60, 5):
        b = -(row + 0.5 - CAM.height / 2) / FX  # the row's ray: forward + b * up (camera frame)
        depth = ahead / (math.cos(p) + b * math.sin(p))  # along the optical axis, at the box face
        if CAM.z + depth * (b * math.cos(p) - math.sin(p)) > 0.01:  # meets the face above the floor
            rows.append((row, depth))
    assert len(rows) >= 8
    for row, depth in rows:
        edges = []
        for ch, m in ((0, b_mount), (1, -b_mount)):  # channel 0 = left camera (y = +0.03)
            lo, hi = _box_columns(with_box["STEREO_CAMERAS"], without["STEREO_CAMERAS"], row, ch)
            # pixel centre col + 0.5 sees lateral (80 - col - 0.5) / FX * depth from its camera
            assert lo == pytest.approx(CAM.width / 2 - FX * (half_w - m) / depth - 0.5, abs=1.0)
            assert hi == pytest.approx(CAM.width / 2 + FX * (half_w + m) / depth - 0.5, abs=1.0)
            edges.append((lo, hi))
        d = FX * CAM.stereo_baseline / depth
        (l_lo, l_hi), (r_lo, r_hi) = edges
        assert l_lo - r_lo == pytest.approx(d, abs=1.0)
        assert l_hi - r_hi == pytest.approx(d, abs=1.0)
        assert l_lo > r_lo and l_hi > r_hi  # the left camera sees the box further right


def _road_span(gray_row: np.ndarray) -> tuple[int, int]:
    floor = int(grayscale(np.array([70, 110, 60], dtype=np.uint8)))  # sim.paint.FLOOR
    cols = np.flatnonzero(gray_row != floor)
    return int(cols[0]), int(cols[-1])


def test_camera_sees_lateral_offset(make_env, stadium):
    env = make_env(stadium, sensors=["FRONT_FACING_CAMERA"])
    centre, _ = env.reset(options={"pose": (5.0, 0.0, 0.0)})
    left, _ = env.reset(options={"pose": (5.0, 0.15, 0.0)})
    a, b = centre["FRONT_FACING_CAMERA"][..., 0], left["FRONT_FACING_CAMERA"][..., 0]
    assert np.mean(np.abs(a.astype(int) - b.astype(int))) > 5.0
    # row 40 sees the floor t = z / (sin p - b cos p) = 1.18 m along its rays; a lateral offset
    # L shows at column 79.5 - FX * L / t.  The painted road (with its 5 cm border lines)
    # spans +-0.525 m round the centre line.
    row = 40
    p = math.radians(CAM.pitch_deg)
    bb = -(row + 0.5 - 60) / FX
    t = CAM.z / (math.sin(p) - bb * math.cos(p))
    for img, off in ((a, 0.0), (b, 0.15)):
        lo, hi = _road_span(img[row])
        assert lo == pytest.approx(79.5 - FX * (0.525 - off) / t, abs=1.5)
        assert hi == pytest.approx(79.5 + FX * (0.525 + off) / t, abs=1.5)
    shift = np.mean(_road_span(b[row])) - np.mean(_road_span(a[row]))
    assert shift == pytest.approx(FX * 0.15 / t, abs=1.5)  # ~16 px to the RIGHT when the car is left


@pytest.mark.parametrize("sensors, shapes", [
    (["FRONT_FACING_CAMERA"], {"FRONT_FACING_CAMERA": ((120, 160, 1), np.uint8)}),
    (["STEREO_CAMERAS", "LIDAR"], {"STEREO_CAMERAS": ((120, 160, 2), np.uint8), "LIDAR": ((64,), np.float32)}),
    (["FRONT_FACING_CAMERA", "SECTOR_LIDAR"], {"FRONT_FACING_CAMERA": ((120, 160, 1), np.uint8),
                                               "SECTOR_LIDAR": ((8,), np.float32)}),
    (["DISCRETIZED_SECTOR_LIDAR"], {"DISCRETIZED_SECTOR_LIDAR": ((64,), np.float32)}),
])
def test_observation_dtypes_and_shapes(make_env, sensors, shapes):
    env = make_env("reinvent-like", sensors=sensors)
    x, y = env.track.center[3]
    env.world.add_box(x, y, 0.3, 0.4, 0.5, 0.3)  # something near for the lidars
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(env.action_space.sample())
    assert set(obs) == set(shapes)
    for name, (shape, dtype) in shapes.items():
        assert obs[name].shape == shape and obs[name].dtype == dtype, name
        space = env.observation_space[name]
        assert space.shape == shape and space.dtype == dtype and space.contains(obs[name])
    if "LIDAR" in obs:
        assert obs["LIDAR"].min() >= 0.15 and obs["LIDAR"].max() <= 1.0 and obs["LIDAR"].min() < 1.0
        assert env.observation_space["LIDAR"].low.min() == pytest.approx(0.15)
        assert env.observation_space["LIDAR"].high.max() == pytest.approx(1.0)
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("camera", ["FRONT_FACING_CAMERA", "STEREO_CAMERAS"])
def test_contract_camera_observation_matches_env(make_env, camera):
    env = make_env("reinvent-like", sensors=[camera])
    (x, y), h = env.track.point_at(2.0)
    env.world.add_box(x + 0.8 * math.cos(h), y + 0.8 * math.sin(h), 0.4, 0.4, 0.5, 0.3, color=(30, 90, 250))
    obs, _ = env.reset(options={"start": 1.0 / env.track.length})
    for _ in range(4):
        assert np.array_equal(contract_camera_observation(env), obs[camera])
        obs, *_ = env.step(2)


def test_grayscale_weights():
    # 0.2989 * 255 + 0.114 * 20 = 78.4995 -> 78 (0.299 would give 78.525 -> 79)
    assert int(grayscale(np.array([255, 0, 20], dtype=np.uint8))) == 78
    # 0.2989 * 10 + 0.587 * 200 + 0.114 * 30 = 123.809 -> 124
    assert int(grayscale(np.array([10, 200, 30], dtype=np.uint8))) == 124
    img = np.zeros((2, 2, 3), dtype=np.uint8)
    img[1, 0] = (0, 255, 0)  # 149.685 -> 150
    g = grayscale(img)
    assert g.dtype == np.uint8 and g.shape == (2, 2) and g[1, 0] == 150 and g[0, 0] == 0


def test_resize_block_averages():
    rng = np.random.default_rng(3)
    big = rng.integers(0, 256, (480, 640), dtype=np.uint8)
    big[0:4, 0:4] = 10
    big[0, 0] = 26  # (15 * 10 + 26) / 16 = 11
    big[4:8, 4:8] = [[0, 1, 2, 3]] * 4  # mean 1.5 -> rint 2
    small = resize(big)
    assert small.shape == (120, 160) and small.dtype == np.uint8
    assert small[0, 0] == 11 and small[1, 1] == 2
    expected = np.rint(big.reshape(120, 4, 160, 4).mean(axis=(1, 3)))
    assert np.array_equal(small, expected.astype(np.uint8))
    # and through the contract: a raw 640x480 RGB frame -> (120, 160, 1)
    rgb = np.repeat(big[..., None], 3, axis=2)
    obs = camera_observation([rgb])
    assert obs.shape == (120, 160, 1) and np.array_equal(obs[..., 0], small)


@pytest.mark.parametrize("start, offset, turn", [(0.0, 0.0, 0.0), (0.37, 0.15, 10.0), (0.71, -0.2, -15.0)])
def test_numpy_renderer_matches_tinyrenderer(make_env, start, offset, turn):
    env = make_env("reinvent-like", sensors=["FRONT_FACING_CAMERA"])
    track = env.track
    (x, y), h = track.point_at(start * track.length, offset)
    env.reset(options={"pose": (float(x), float(y), math.degrees(h) + turn)})
    rig = env.camera_rig()
    ours = grayscale(rig.render(*env.state[:3], rgb=True)[0]).astype(int)
    ref = grayscale(env.world.reference_image(env.car_index, env.suite.camera, 0.0)).astype(int)
    rows = slice(rig.row0 + 10, None)
    close = np.abs(ours[rows] - ref[rows]) <= 12
    assert close.mean() >= 0.90, close.mean()
    # the scene is not blank: the road, its lines and the floor are all in view
    assert len(np.unique(ours[rows])) >= 3


def test_ego_car_invisible_but_a_box_is_seen(make_env, stadium):
    env = make_env(stadium, sensors=["FRONT_FACING_CAMERA"])
    pose = (5.0, 0.0, 0.0)
    obs, _ = env.reset(options={"pose": pose})
    img = obs["FRONT_FACING_CAMERA"][..., 0]
    rig = env.camera_rig()
    x, y, yaw = env.state[:3]
    assert np.array_equal(img, rig.render(x, y, yaw, [])[..., 0])  # nothing but the floor
    # its own body box would show in the bottom rows if it were drawn (front 2 cm ahead of the lens)
    ego = env.world.cars[env.car_index].box
    assert (ego.x, ego.y) == pytest.approx((x, y))
    assert np.count_nonzero(rig.render(x, y, yaw, [ego])[..., 0] != img) > 50
    env.world.add_box(6.0, 0.0, 0.0, 0.3, 0.3, 0.3)
    obs2, _ = env.reset(options={"pose": pose})
    changed = obs2["FRONT_FACING_CAMERA"][..., 0] != img
    assert changed.sum() > 500
    cols = np.flatnonzero(changed.any(axis=0))
    assert abs((cols[0] + cols[-1]) / 2 - 79.5) < 2  # straight ahead, centred


def test_scan_to_beams_picks_the_nearest_sample_of_a_partial_float32_scan():
    """A scan that starts exactly at the first beam, with angle_min rounded UP by float32 (as a
    LaserScan message carries it): every beam still reads the sample at its own angle."""
    from sim.observation import scan_to_beams
    cfg = LidarConfig()
    angles = cfg.beam_angles()
    inc = np.float32(np.radians(1.0))
    angle_min = np.float32(angles[0])
    assert float(angle_min) > angles[0]  # the case under test: the first beam is a hair before angle_min
    n = int(round((angles[-1] - angles[0]) / inc)) + 1
    sample_angles = angle_min + inc * np.arange(n)
    ranges = 0.2 + np.arange(n) * 0.01  # a distinct range per sample
    beams = scan_to_beams(ranges, float(angle_min), float(inc), cfg)
    picked = np.rint((beams - 0.2) / 0.01).astype(int)
    assert np.all(np.abs(sample_angles[picked] - angles) <= inc / 2 + 1e-6)


# ---- lidar_config validation (issue 9, item 10) ------------------------------------------
@pytest.mark.parametrize("overrides, expected", [
    ({"num_sectors": 0}, "lidar_config.num_sectors: must be a positive integer"),
    ({"num_sectors": 2.5}, "lidar_config.num_sectors: must be a positive integer"),
    ({"num_sectors": True}, "lidar_config.num_sectors: must be a positive integer"),
    ({"num_sectors": "8"}, "lidar_config.num_sectors: must be a positive integer"),
    ({"num_values_per_sector": -1}, "lidar_config.num_values_per_sector: must be a positive integer"),
    ({"beams": 0}, "lidar_config.beams: must be a positive integer"),
    ({"beams": 10**9}, "lidar_config.beams: must be a positive integer up to"),
    ({"clipping_dist": "far"}, "lidar_config.clipping_dist: must be a positive number"),
    ({"clipping_dist": -5}, "lidar_config.clipping_dist: must be a positive number"),
    ({"clipping_dist": None}, "lidar_config.clipping_dist: must be a positive number"),
    ({"noise_std": -0.1}, "lidar_config.noise_std: must be a number of metres, 0 or more"),
    ({"noise_std": float("nan")}, "lidar_config.noise_std: must be a number of metres, 0 or more"),
    ({"range_max": float("inf")}, "lidar_config.range_max: must be a positive number"),
    ({"rate_hz": 0}, "lidar_config.rate_hz: must be a positive number"),
    ({"sector_threshold": 0}, "lidar_config.sector_threshold: must be a positive number"),
    ({"angle_min_deg": -200}, "lidar_config.angle_min_deg: must be a number of degrees from -180 to 180"),
    ({"angle_min_deg": 10, "angle_max_deg": -10}, "lidar_config.angle_min_deg: 10 must be below angle_max_deg -10"),
    ({"range_min": 5, "range_max": 4}, "lidar_config.range_min: 5 must be below range_max 4"),
    ({"clipping_dist": 0.1}, "lidar_config.clipping_dist: 0.1 must be above range_min 0.15"),
    ({"num_sectors": 65}, "lidar_config.num_sectors: 65 must be at most beams 64"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_lidar_config_refuses_bad_values_naming_the_key(overrides, expected):
    with pytest.raises(ValueError) as err:
        LidarConfig.from_overrides(overrides)
    assert str(err.value).startswith(expected)


def test_lidar_config_accepts_deepracer_blocks():
    cfg = LidarConfig.from_overrides({"clipping_dist": 2, "num_sectors": 4, "num_values_per_sector": 2})
    assert (cfg.clip_max, cfg.discretized_clip, cfg.num_sectors, cfg.num_values_per_sector) == (2.0, 2.0, 4, 2)
    assert isinstance(cfg.clip_max, float)
    assert LidarConfig.from_overrides({"beams": 8, "num_sectors": 8, "noise_std": 0}).beams == 8
    with pytest.raises(ValueError, match="lidar_config: unknown key 'beam_count'"):
        LidarConfig.from_overrides({"beam_count": 3})


def test_env_refuses_a_bad_lidar_config(stadium):
    from sim.env import DeepRacerEnv
    with pytest.raises(ValueError, match="lidar_config.num_sectors: must be a positive integer"):
        DeepRacerEnv(stadium, sensors=["SECTOR_LIDAR"], lidar={"num_sectors": 0})
