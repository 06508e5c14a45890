"""The numpy camera renderer's boxes against a per-pixel reference: the slab test of every pixel
of every frame (the renderer before boxes were culled and filled by their silhouettes, plus a
depth buffer so that the nearest box wins), and against PyBullet's TinyRenderer."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sim.car import CarSpec
from sim.observation import CameraConfig, grayscale
from sim import kernels, render
from sim.render import FAR, Box, CameraRig
from sim.track import Track, from_centerline
from sim.world import World

CAM = CameraConfig()
ORANGE, BLUE, RED = (250, 120, 30), (30, 90, 250), (200, 30, 30)


@pytest.fixture(scope="module")
def oval() -> Track:
    a = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    return from_centerline(np.stack([5 * np.cos(a), 3 * np.sin(a)], axis=1), 1.0, name="oval")


@pytest.fixture(scope="module")
def rigs(oval) -> dict[bool, CameraRig]:
    return {stereo: CameraRig(oval, CAM, stereo) for stereo in (False, True)}


def reference_render(rig: CameraRig, x: float, y: float, yaw: float, boxes: list[Box],
                     rgb: bool = False) -> np.ndarray:
    """The slow ground truth: every pixel's ray slab-tested against every box within FAR, the
    nearest hit in front of the floor painted flat (the renderer's per-pixel test, whole frames)."""
    floor = rig.render(x, y, yaw, [], rgb=rgb)
    out = floor.transpose(1, 2, 0, 3).copy() if rgb else floor.copy()  # (H, W, C[, 3])
    c, s = math.cos(yaw), math.sin(yaw)
    for k, (rays, o) in enumerate(zip(rig.rays, rig.origins)):
        depth = np.where(rays[..., 2] < 0, o[2] / np.maximum(-rays[..., 2], 1e-12), np.inf)
        for box in boxes:
            dx, dy = box.x - x, box.y - y
            bx, by = c * dx + s * dy, -s * dx + c * dy
            if math.hypot(bx, by) > FAR:
                continue
            rel = box.yaw - yaw
            cr, sr = math.cos(rel), math.sin(rel)
            half = np.array([box.length / 2, box.width / 2, box.height / 2])
            d = np.stack([cr * rays[..., 0] + sr * rays[..., 1], -sr * rays[..., 0] + cr * rays[..., 1],
                          rays[..., 2]], axis=-1)
            oc = o - np.array([bx, by, box.height / 2])
            ob = np.array([cr * oc[0] + sr * oc[1], -sr * oc[0] + cr * oc[1], oc[2]])
            with np.errstate(divide="ignore", invalid="ignore"):
                t1, t2 = (-half - ob) / d, (half - ob) / d
            t_in = np.nanmax(np.minimum(t1, t2), axis=-1)
            t_out = np.nanmin(np.maximum(t1, t2), axis=-1)
            hit = (t_out >= np.maximum(t_in, 0)) & (t_in < depth)
            depth[hit] = t_in[hit]
            colour = np.asarray(box.color, dtype=np.uint8)
            out[:, :, k][hit] = colour if rgb else grayscale(colour)
    return out.transpose(2, 0, 1, 3) if rgb else out


def _box_at(x: float, y: float, yaw: float, dist: float, bearing: float, size, turn: float, color=ORANGE) -> Box:
    """A box `dist` m from (x, y) at `bearing` rad from the heading `yaw`, turned by `turn`."""
    a = yaw + bearing
    return Box(x + dist * math.cos(a), y + dist * math.sin(a), yaw + turn, *size, color)


def _scene(rng: np.random.Generator, kind: str) -> tuple[tuple[float, float, float], list[Box]]:
    x, y, yaw = rng.uniform(-3, 3), rng.uniform(-2, 2), rng.uniform(-math.pi, math.pi)
    size = tuple(rng.uniform(0.05, 0.6, 3))
    color = tuple(int(v) for v in rng.integers(0, 256, 3))
    dist, bearing = {
        "ahead": (rng.uniform(0.3, 4.0), rng.uniform(-0.4, 0.4)),
        "frame edge": (rng.uniform(0.3, 3.0), rng.choice([-1, 1]) * rng.uniform(0.45, 0.75)),
        "behind": (rng.uniform(0.5, 3.0), math.pi + rng.uniform(-1.2, 1.2)),
        "very close": (rng.uniform(0.0, 0.5), rng.uniform(-math.pi, math.pi)),
    }[kind]
    return (x, y, yaw), [_box_at(x, y, yaw, dist, bearing, size, rng.uniform(-math.pi, math.pi), color)]


def _same(rig: CameraRig, pose, boxes: list[Box], rgb: bool = False) -> bool:
    return np.array_equal(rig.render(*pose, boxes, rgb=rgb), reference_render(rig, *pose, boxes, rgb=rgb))


@pytest.mark.parametrize("stereo", [False, True], ids=["mono", "stereo"])
@pytest.mark.parametrize("kind, min_seen", [("ahead", 0.9), ("frame edge", 0.5), ("behind", 0.0), ("very close", 0.3)])
def test_one_box_matches_the_per_pixel_reference(rigs, stereo, kind, min_seen):
    rig = rigs[stereo]
    rng = np.random.default_rng(sum(map(ord, kind)) + stereo)
    seen = 0
    for i in range(60):
        pose, boxes = _scene(rng, kind)
        new, ref = rig.render(*pose, boxes), reference_render(rig, *pose, boxes)
        assert np.array_equal(new, ref), (kind, i, pose, boxes, np.argwhere(new != ref)[:5])
        seen += not np.array_equal(ref, rig.render(*pose, []))
    assert seen >= min_seen * 60, seen  # the scenes show what they claim to
    pose, boxes = _scene(rng, kind)
    assert _same(rig, pose, boxes, rgb=True)


def test_frame_edges(rigs):
    """Boxes cut by each edge of the frame, and one filling a corner."""
    rig = rigs[True]
    pose = (0.0, 0.0, 0.3)
    for bearing, dist, size in [(0.62, 1.0, (0.3, 0.3, 0.3)), (-0.62, 1.0, (0.3, 0.3, 0.3)),  # left, right
                                (0.0, 0.4, (0.1, 0.3, 0.6)),  # through the top (taller than the camera)
                                (0.0, 0.25, (0.1, 0.4, 0.05)),  # low, under the bottom edge
                                (0.5, 0.5, (0.3, 0.3, 0.6))]:  # a corner
        boxes = [_box_at(*pose, dist, bearing, size, 0.2)]
        img = rig.render(*pose, boxes)
        assert not np.array_equal(img, rig.render(*pose, [])), (bearing, dist)
        assert np.array_equal(img, reference_render(rig, *pose, boxes)), (bearing, dist)


def test_box_behind_the_camera_is_not_drawn_but_a_long_one_reaching_ahead_is(rigs):
    rig = rigs[True]
    pose = (1.0, -0.5, 0.0)
    floor = rig.render(*pose, [])
    assert np.array_equal(rig.render(*pose, [Box(0.6, -0.5, 0.0, 0.3, 0.3, 0.3, ORANGE)]), floor)
    # centre 0.6 m behind the car, front end 0.8 m ahead of it: seen low in the middle
    long_box = [Box(0.4, -0.5, 0.0, 2.8, 0.3, 0.3, ORANGE)]
    img = rig.render(*pose, long_box)
    assert np.count_nonzero(img != floor) > 1000
    assert np.array_equal(img, reference_render(rig, *pose, long_box))


@pytest.mark.parametrize("stereo", [False, True], ids=["mono", "stereo"])
def test_camera_inside_or_touching_a_box(rigs, stereo):
    rig = rigs[stereo]
    x, y, yaw = 2.0, 1.0, 0.7
    cam = rig.origins[0]
    c, s = math.cos(yaw), math.sin(yaw)
    eye = (x + c * cam[0] - s * cam[1], y + s * cam[0] + c * cam[1])  # the (left) camera in the world
    inside = [Box(*eye, yaw + 0.3, 0.2, 0.2, 0.3, ORANGE)]
    img = rig.render(x, y, yaw, inside)
    assert np.all(img == grayscale(np.asarray(ORANGE, dtype=np.uint8)))  # it fills every pixel
    assert np.array_equal(img, reference_render(rig, x, y, yaw, inside))
    # a box whose back face is the lens plane; one 2 mm and one 2 cm ahead of the lens
    for gap in (0.0, 0.002, 0.02):
        ahead = 0.15 + gap
        box = [Box(eye[0] + c * ahead, eye[1] + s * ahead, yaw, 0.3, 0.4, 0.3, BLUE)]
        img = rig.render(x, y, yaw, box)
        assert np.array_equal(img, reference_render(rig, x, y, yaw, box)), gap
        assert np.count_nonzero(img == grayscale(np.asarray(BLUE, dtype=np.uint8))) > 0.5 * img.size


def test_boxes_crossing_the_lens_plane_beside_the_car(rigs):
    """A box beside the car, partly ahead of the cameras: seen at the frame's side, clipped."""
    rig = rigs[True]
    pose = (0.0, 0.0, 0.0)
    seen = 0
    for along in np.linspace(-0.2, 0.5, 15):
        for side in (0.15, 0.25, -0.2):
            boxes = [Box(CAM.x + along, side, 0.1, 0.5, 0.2, 0.3, BLUE)]
            ref = reference_render(rig, *pose, boxes)
            assert np.array_equal(rig.render(*pose, boxes), ref), (along, side)
            seen += not np.array_equal(ref, rig.render(*pose, []))
    assert seen >= 15


@pytest.mark.parametrize("stereo", [False, True], ids=["mono", "stereo"])
def test_overlapping_boxes_nearest_wins(rigs, stereo):
    rig = rigs[stereo]
    pose = (0.0, 0.0, 0.0)
    near = Box(1.2, 0.05, 0.2, 0.3, 0.3, 0.2, ORANGE)
    far = Box(2.5, -0.1, -0.4, 0.5, 0.6, 0.5, BLUE)
    a, b = rig.render(*pose, [near, far]), rig.render(*pose, [far, near])
    assert np.array_equal(a, b)  # the order in the list does not matter
    assert np.array_equal(a, reference_render(rig, *pose, [near, far]))
    gray = {c: grayscale(np.asarray(c, dtype=np.uint8)) for c in (ORANGE, BLUE)}
    near_only = rig.render(*pose, [near]) != rig.render(*pose, [])
    assert np.all(a[near_only] == gray[ORANGE])  # the near box is whole
    assert np.count_nonzero(a == gray[BLUE]) > 200  # the far one shows round it


def test_intersecting_boxes_and_a_line_between_the_stereo_cameras(rigs):
    rig = rigs[True]
    pose = (0.0, 0.0, 0.0)
    scenes = {
        # a car that drove into a box: no plane separates them
        "intersecting": [Box(1.0, 0.0, 0.0, 0.5, 0.4, 0.3, ORANGE), Box(1.3, 0.1, 0.6, 0.32, 0.2, 0.12, RED)],
        # side by side along the view, split by the plane y = 0 that runs between the two cameras:
        # each camera sees a different one in front
        "split": [Box(1.5, 0.25, 0.0, 1.2, 0.5, 0.3, ORANGE), Box(1.6, -0.25, 0.0, 1.2, 0.5, 0.3, BLUE)],
        # three in a row, given far to near and near to far
        "row": [Box(d, 0.1 * d, 0.3 * d, 0.3, 0.3, 0.3, c) for d, c in ((3.0, RED), (2.0, BLUE), (1.0, ORANGE))],
    }
    for name, boxes in scenes.items():
        for order in (boxes, boxes[::-1]):
            assert np.array_equal(rig.render(*pose, order), reference_render(rig, *pose, order)), name


def test_many_boxes_match_the_reference(rigs):
    """Random crowds of boxes round the car (some overlapping on screen, some intersecting)."""
    rng = np.random.default_rng(7)
    for stereo in (False, True):
        rig = rigs[stereo]
        for i in range(25):
            pose = (rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(-math.pi, math.pi))
            boxes = [_box_at(*pose, rng.uniform(0.2, 4.0), rng.uniform(-0.8, 0.8), tuple(rng.uniform(0.1, 0.6, 3)),
                             rng.uniform(-math.pi, math.pi), tuple(int(v) for v in rng.integers(0, 256, 3)))
                     for _ in range(6)]
            new, ref = rig.render(*pose, boxes), reference_render(rig, *pose, boxes)
            assert np.array_equal(new, ref), (stereo, i, np.argwhere(new != ref)[:5])


def test_boxes_anywhere_round_the_car_match_the_reference(rigs):
    """Boxes at any bearing, near the frustum's edges or out of it, small and tall: the renderer's first
    cull (bounding spheres against the frustum) never drops a box some pixel sees."""
    rng = np.random.default_rng(11)
    seen = 0
    for stereo in (False, True):
        rig = rigs[stereo]
        for _ in range(80):
            pose = (rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(-math.pi, math.pi))
            size = (rng.uniform(0.05, 0.8), rng.uniform(0.05, 0.8), rng.uniform(0.05, 1.5))
            box = _box_at(*pose, rng.uniform(0.1, 3.0), rng.uniform(-math.pi, math.pi), size,
                          rng.uniform(-math.pi, math.pi))
            assert _same(rig, pose, [box]), (stereo, pose, box)
            seen += not np.array_equal(rig.render(*pose, [box]), rig.render(*pose, []))
    assert 30 < seen < 130  # both seen and unseen boxes were tried


def test_other_cars_are_boxes(oval):
    """Three cars: car 0's cameras see the other two (a near one hiding part of a far one), not itself."""
    world = World(oval)
    try:
        for color in (RED, BLUE, ORANGE):
            world.add_car(CarSpec(), color)
        world.set_car_pose(0, 1.0, -2.0, 0.1)
        world.set_car_pose(1, 1.8, -1.95, 0.3)
        world.set_car_pose(2, 3.0, -1.85, -0.2)
        boxes = world.boxes_seen_by(0)
        assert [b.color for b in boxes] == [BLUE, ORANGE]
        rig = CameraRig(oval, CAM, stereo=True)
        pose = (1.0, -2.0, 0.1)
        img = rig.render(*pose, boxes)
        assert np.array_equal(img, reference_render(rig, *pose, boxes))
        gray = {c: grayscale(np.asarray(c, dtype=np.uint8)) for c in (BLUE, ORANGE, RED)}
        orange_alone = np.count_nonzero(rig.render(*pose, boxes[1:]) == gray[ORANGE])
        assert np.count_nonzero(img == gray[BLUE]) > 500
        assert 20 < np.count_nonzero(img == gray[ORANGE]) < orange_alone - 20  # partly hidden
        assert not np.any(img == gray[RED])  # its own body is not drawn
    finally:
        world.close()


def test_boxes_match_tinyrenderer(oval):
    """PyBullet's TinyRenderer draws the same boxes (an independent check of the geometry)."""
    world = World(oval)
    try:
        world.add_car(CarSpec())
        world.add_car(CarSpec(), BLUE)
        x, y, yaw = 0.0, -3.0, 0.0
        world.set_car_pose(0, x, y, yaw)
        world.set_car_pose(1, 1.3, -2.8, 0.4)
        world.add_box(0.9, -3.2, 0.3)
        world.add_box(2.2, -3.0, -0.2, color=RED)
        rig = CameraRig(oval, CAM, stereo=True)
        ours = rig.render(x, y, yaw, world.boxes_seen_by(0), rgb=True)
        for k, mount in enumerate(CAM.mounts(True)):
            ref = world.reference_image(0, CAM, mount).astype(int)
            mine = ours[k].astype(int)
            boxes = (mine != rig.render(x, y, yaw, [], rgb=True)[k]).any(axis=-1)
            assert boxes.sum() > 2000
            close = (np.abs(mine - ref) <= 12).all(axis=-1)
            assert close[boxes].mean() >= 0.95, close[boxes].mean()
    finally:
        world.close()


def test_boxes_beyond_far_are_not_drawn(rigs):
    """As the renderer always did: a box whose centre is more than FAR away is left out."""
    rig = rigs[False]
    pose = (0.0, 0.0, 0.0)
    tall = (2.0, 2.0, 3.0)
    near, far = [Box(FAR - 0.5, 0.0, 0.0, *tall, ORANGE)], [Box(FAR + 0.5, 0.0, 0.0, *tall, ORANGE)]
    assert not np.array_equal(rig.render(*pose, near), rig.render(*pose, []))
    assert np.array_equal(rig.render(*pose, near), reference_render(rig, *pose, near))
    assert np.array_equal(rig.render(*pose, far), rig.render(*pose, []))


def points_reference(box: Box) -> np.ndarray:
    """The numpy (9, 4) homogeneous world points of a box the kernel replaced: its 8 corners, then its centre."""
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    corners = [(i, j, k) for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)] + [(0, 0, 0)]
    local = np.array(corners, dtype=float) / 2 * (box.length, box.width, box.height)
    return np.stack([box.x + c * local[:, 0] - s * local[:, 1], box.y + s * local[:, 0] + c * local[:, 1],
                     box.height / 2 + local[:, 2], np.ones(9)], axis=1)


def touching_reference(screen, box: Box, bx: float, by: float, rel: float) -> bool:
    """The numpy test of a camera within `close` of a box the kernel replaced."""
    cr, sr = math.cos(rel), math.sin(rel)
    oc = screen.origins - (bx, by, box.height / 2)
    ob = np.stack([cr * oc[:, 0] + sr * oc[:, 1], -sr * oc[:, 0] + cr * oc[:, 1], oc[:, 2]], axis=1)
    return bool(np.all(np.abs(ob) <= np.array([box.length, box.width, box.height]) / 2 + screen.close,
                       axis=1).any())


def clipped_segments_reference(depth: np.ndarray, num: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The numpy segments of a box crossing the clip plane the kernel replaced, from its corners' (8, C) depths and
    (8, row/col, C) rows and columns times depth: its edges cut at the plane, and every pair of the points where
    edges cross it."""
    e0, e1 = kernels.BOX_EDGES
    pairs = np.array([(a, b) for a in range(12) for b in range(a + 1, 12)]).T
    front = depth >= render._CLIP
    crossing = front[e0] != front[e1]  # (12, C)
    d0, d1 = depth[e0], depth[e1]
    k = ((render._CLIP - d0) / np.where(crossing, d1 - d0, 1.0))[:, None]
    cross = np.where(crossing[:, None], (num[e0] + k * (num[e1] - num[e0])) / render._CLIP, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        corner = np.where(front[:, None], num / depth[:, None], np.nan)
    a = np.concatenate([np.where(front[e0][:, None], corner[e0], cross), cross[pairs[0]]])
    b = np.concatenate([np.where(front[e1][:, None], corner[e1], cross), cross[pairs[1]]])
    return a[..., None], (b - a)[..., None]


def project_reference(screen, boxes: list[Box], x: float, y: float, yaw: float) -> list:
    """The numpy projection that `kernels.box_views` replaced: (box, x, y, rel, rect, segments) of each view."""
    def rectangle(rmin, rmax, cmin, cmax):
        if math.isnan(rmin):
            return 0, 0, 0, 0
        big = max(CAM.width, CAM.height) + 2.0
        rmin, rmax, cmin, cmax = (min(max(v, -2.0), big) for v in (rmin, rmax, cmin, cmax))
        return (max(math.floor(rmin) - 1, 0), min(math.ceil(rmax) + 2, CAM.height),
                max(math.floor(cmin) - 1, 0), min(math.ceil(cmax) + 2, CAM.width))

    c, s = math.cos(yaw), math.sin(yaw)
    to_car = np.array([[c, -s, 0.0, 0.0], [s, c, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
                       [-c * x - s * y, s * x - c * y, 0.0, 1.0]])
    cams = len(screen.origins)
    m = np.array([(b.x, b.y, b.height / 2, 1.0) for b in boxes]) @ (to_car @ screen.to_planes)
    radius = np.array([math.sqrt(b.length ** 2 + b.width ** 2 + b.height ** 2) / 2 for b in boxes])
    seen = (m[:, :5 * cams].reshape(-1, 5, cams) >= -radius[:, None, None]).all(axis=1).any(axis=1)
    boxes = [boxes[i] for i in np.flatnonzero(seen & (np.hypot(m[:, -2], m[:, -1]) <= FAR)).tolist()]
    if not boxes:
        return []
    n = len(boxes)
    m = (np.concatenate([points_reference(b) for b in boxes]) @ (to_car @ screen.to_cameras)).reshape(n, 9, -1)
    margin = m[:, :8, 3 * cams:8 * cams].max(axis=1).reshape(n, 5, cams).min(axis=1).max(axis=1)
    keep = np.flatnonzero((margin >= 0) & (np.hypot(m[:, 8, -2], m[:, 8, -1]) <= FAR))
    depth = m[keep, :8, :cams]
    num = m[keep, :8, cams:3 * cams].reshape(len(keep), 8, 2, cams)
    ahead = (depth.min(axis=(1, 2)) >= render._CLIP).tolist()
    with np.errstate(divide="ignore", invalid="ignore"):
        rc = num / depth[:, :, None]
    lo, hi = rc.min(axis=(1, 3)).tolist(), rc.max(axis=(1, 3)).tolist()
    ends = rc[:, kernels.BOX_EDGES, ..., None]
    starts, spans = ends[:, 0], ends[:, 1] - ends[:, 0]
    views = []
    for j, i in enumerate(keep.tolist()):
        box = boxes[i]
        dx, dy = box.x - x, box.y - y
        bx, by = c * dx + s * dy, -s * dx + c * dy
        rel = box.yaw - yaw
        if ahead[j]:
            segments = starts[j], spans[j]
            rect = rectangle(lo[j][0], hi[j][0], lo[j][1], hi[j][1])
        elif touching_reference(screen, box, bx, by, rel):
            segments, rect = None, (0, CAM.height, 0, CAM.width)
        else:
            segments = clipped_segments_reference(depth[j], num[j])
            ext = np.concatenate([segments[0], segments[0] + segments[1]])
            (rmin, cmin), (rmax, cmax) = np.fmin.reduce(ext, axis=(0, 2, 3)), np.fmax.reduce(ext, axis=(0, 2, 3))
            rect = rectangle(float(rmin), float(rmax), float(cmin), float(cmax))
        if rect[0] < rect[1] and rect[2] < rect[3]:
            views.append((box, bx, by, rel, rect, segments))
    return views


@pytest.mark.parametrize("stereo", [False, True])
def test_projection_is_the_numpy_one(rigs, stereo):
    """`kernels.box_views` gives the numpy projection's views bit for bit: boxes round the car, near it (the
    lens plane crossing them, a camera in one), beside, behind and beyond FAR, of every size."""
    screen = rigs[stereo]._screen
    rng = np.random.default_rng(11)
    counts = {"views": 0, "clipped": 0, "touching": 0}
    for _ in range(400):
        x, y, yaw = *rng.uniform(-4, 4, 2), rng.uniform(-math.pi, math.pi)
        n = int(rng.integers(1, 9))
        reach = rng.choice([0.4, 3.0, 40.0], n)
        boxes = [Box(x + d * math.cos(a), y + d * math.sin(a), rng.uniform(-3.2, 3.2), *rng.uniform(0.05, 1.5, 2),
                     rng.uniform(0.05, 0.5), ORANGE)
                 for d, a in zip(rng.uniform(0, 1, n) * reach, rng.uniform(-math.pi, math.pi, n))]
        index, place, rects, starts, spans, count = kernels.box_views(
            np.array([b[:6] for b in boxes]), x, y, yaw, screen.to_planes, screen.to_cameras, screen.origins,
            screen.close, FAR, render._CLIP, CAM.width, CAM.height)
        want = project_reference(screen, boxes, x, y, yaw)
        assert len(index) == len(want)
        for j, w in enumerate(want):
            assert (boxes[index[j]], *place[j].tolist(), tuple(rects[j].tolist())) == w[:5]
            if w[5] is None:
                assert count[j] == 0
                counts["touching"] += 1
            else:
                np.testing.assert_array_equal(starts[j, :count[j], ..., None], w[5][0])
                np.testing.assert_array_equal(spans[j, :count[j], ..., None], w[5][1])
                counts["clipped"] += int(np.isnan(w[5][0]).any())
        counts["views"] += len(want)
    assert counts["views"] > 500 and counts["clipped"] > 10 and counts["touching"] > 5, counts
