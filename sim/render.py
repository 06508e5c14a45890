"""Fast camera images: the floor seen through a pinhole, plus boxes, in numpy.

Every pixel's ray is fixed in the car frame, so the floor point each pixel sees is computed
once; a frame is then one 2x3 transform of those points and a look-up into a 1 cm/px
raster of the painted floor.  Boxes (obstacles, other cars) are culled against the view
frustum and projected; a box then costs only the pixels of its screen rectangle: its silhouette
is filled row by row, far boxes first, and where that cannot decide (a camera inside a box,
boxes that intersect) the rectangle's rays are slab-tested against a depth buffer.  Either way a
pixel shows what the ray through its centre meets first.  PyBullet stays the collision engine;
`world.World.reference_image` renders the same scene with PyBullet's TinyRenderer for checking.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from sim import kernels, paint
from sim.observation import CameraConfig, grayscale
from sim.track import Track

TEXTURE_RES = 0.01  # m per texture pixel
FAR = 30.0  # m: floor beyond this forward distance shows the room's wall colour
_MARGIN = 1.0  # m of plain floor round the painted area


class Box(NamedTuple):
    """An axis-aligned-in-z box on the floor: centre x, y (m), yaw (rad), size (m), colour (a tuple: a
    moving body gets a new one every step)."""

    x: float
    y: float
    yaw: float
    length: float
    width: float
    height: float
    color: tuple[int, int, int]

    def footprint(self) -> np.ndarray:
        """The (4, 2) corners of the box on the floor."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        half = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * (self.length / 2, self.width / 2)
        return half @ np.array([[c, s], [-s, c]]) + (self.x, self.y)


class FloorTexture:
    """The painted floor as RGB and contract-grayscale rasters at TEXTURE_RES."""

    def __init__(self, track: Track):
        xmin, ymin, xmax, ymax = track.bounds
        self.x0, self.y0 = xmin - _MARGIN, ymin - _MARGIN
        self.w = int(math.ceil((xmax - xmin + 2 * _MARGIN) / TEXTURE_RES))
        self.h = int(math.ceil((ymax - ymin + 2 * _MARGIN) / TEXTURE_RES))
        img = Image.new("RGB", (self.w, self.h), paint.FLOOR)
        draw = ImageDraw.Draw(img)
        origin = np.array([self.x0, self.y0])
        for layer in paint.layers(track):
            px = (layer.quads - origin) / TEXTURE_RES
            for quad in px:
                draw.polygon([tuple(p) for p in quad], fill=layer.color)
        self.rgb = np.asarray(img)  # row = (y - y0) / res, col = (x - x0) / res
        self.gray = grayscale(self.rgb)


@lru_cache(maxsize=8)
def texture_for(track: Track) -> FloorTexture:
    """One texture per track object, shared by every environment in the process."""
    return FloorTexture(track)


def _camera_rays(cam: CameraConfig, mount_y: float) -> tuple[np.ndarray, np.ndarray]:
    """Ray directions (H, W, 3) in the car frame and the camera position (3,)."""
    fx = (cam.width / 2) / math.tan(cam.hfov / 2)
    a = -(np.arange(cam.width) + 0.5 - cam.width / 2) / fx  # left
    b = -(np.arange(cam.height) + 0.5 - cam.height / 2) / fx  # up
    p = math.radians(cam.pitch_deg)
    fwd = np.array([math.cos(p), 0.0, -math.sin(p)])
    up = np.array([math.sin(p), 0.0, math.cos(p)])
    left = np.array([0.0, 1.0, 0.0])
    rays = fwd + a[None, :, None] * left + b[:, None, None] * up
    return rays, np.array([cam.x, mount_y, cam.z])


class CameraRig:
    """One or two identical cameras on a car, rendering the floor and boxes."""

    def __init__(self, track: Track, cam: CameraConfig, stereo: bool):
        self.texture = texture_for(track)
        self.cam = cam
        self.n = 2 if stereo else 1
        self.rays, self.origins = zip(*(_camera_rays(cam, y) for y in cam.mounts(stereo)))
        dz = self.rays[0][:, 0, 2]
        forward_dist = np.where(dz < 0, cam.z / np.maximum(-dz, 1e-9), np.inf)
        self.row0 = int(np.argmax(forward_dist <= FAR)) if np.any(forward_dist <= FAR) else cam.height
        # floor points of the ground rows, ordered (row, col, camera) so a gather is (H, W, C)
        pts = []
        for rays, o in zip(self.rays, self.origins):
            r = rays[self.row0:]
            t = o[2] / -r[..., 2]
            pts.append(o[:2] + r[..., :2] * t[..., None])
        g = (np.stack(pts, axis=2).reshape(-1, 2) / TEXTURE_RES).astype(np.float32)
        self._gx, self._gy = np.ascontiguousarray(g[:, 0]), np.ascontiguousarray(g[:, 1])
        self._u, self._v, self._tmp = (np.empty_like(self._gx) for _ in range(3))
        # every camera's rays and floor distances as (C, H, W) planes, so that one box is one
        # slab test over a screen rectangle of all cameras at once
        self._rx, self._ry, self._rz = (np.stack([r[..., i] for r in self.rays]) for i in range(3))
        self._t_floor = np.where(self._rz < 0, cam.z / np.maximum(-self._rz, 1e-12), np.inf)
        self._wall_gray = grayscale(np.asarray(paint.WALL, dtype=np.uint8))
        self._screen = _Screen(cam, np.array(self.origins))

    def _uv_index(self, x: float, y: float, yaw: float) -> np.ndarray:
        """Flat texture index of the floor point under every ground pixel (in-place buffers)."""
        c, s = math.cos(yaw), math.sin(yaw)
        tex = self.texture
        u, v, tmp, gx, gy = self._u, self._v, self._tmp, self._gx, self._gy
        np.multiply(gx, c, out=u)
        np.multiply(gy, s, out=tmp)
        np.subtract(u, tmp, out=u)
        np.add(u, (x - tex.x0) / TEXTURE_RES, out=u)
        np.multiply(gx, s, out=v)
        np.multiply(gy, c, out=tmp)
        np.add(v, tmp, out=v)
        np.add(v, (y - tex.y0) / TEXTURE_RES, out=v)
        np.clip(u, 0, tex.w - 1, out=u)
        np.clip(v, 0, tex.h - 1, out=v)
        return v.astype(np.int32) * tex.w + u.astype(np.int32)

    def render(self, x: float, y: float, yaw: float, boxes: list[Box] = (), rgb: bool = False) -> np.ndarray:
        """Images from the car pose: (H, W, C) uint8 gray, or (C, H, W, 3) RGB when `rgb`."""
        cam, tex = self.cam, self.texture
        idx = self._uv_index(x, y, yaw)
        if rgb:
            out = np.empty((cam.height, cam.width, self.n, 3), dtype=np.uint8)
            out[: self.row0] = paint.WALL
            out[self.row0:] = tex.rgb.reshape(-1, 3)[idx].reshape(-1, cam.width, self.n, 3)
        else:
            out = np.empty((cam.height, cam.width, self.n), dtype=np.uint8)
            out[: self.row0] = self._wall_gray
            out[self.row0:] = np.take(tex.gray.ravel(), idx).reshape(-1, cam.width, self.n)
        if boxes:
            self._draw_boxes(out, boxes, x, y, yaw, rgb)
        return out.transpose(2, 0, 1, 3) if rgb else out

    def _draw_boxes(self, out: np.ndarray, boxes: list[Box], x: float, y: float, yaw: float, rgb: bool) -> None:
        """Paint the boxes into `out`, each pixel showing the nearest thing its ray meets.

        A box alone on its patch of screen, or among boxes of a known depth order, is filled
        row by row between the edges of its silhouette (painted far to near); a group of boxes
        on overlapping rectangles with no such order for every camera (boxes that intersect),
        or with a box a camera is in or nearly touches, is slab-tested pixel by pixel against
        a depth buffer.
        """
        views = self._screen.project(boxes, x, y, yaw)
        depth = None
        for group in _overlap_groups(views):
            order = _back_to_front(group, self._screen.cameras_xy)
            if order is not None:
                for v in order:
                    self._fill(out, v, rgb)
                continue
            if depth is None:
                depth = self._t_floor.copy()
            for v in group:
                self._slab_test(out, depth, v, rgb)

    def _fill(self, out: np.ndarray, v: _BoxView, rgb: bool) -> None:
        """Paint the pixels whose centres lie in the box's silhouette (the hull of its segments)."""
        self._paint(out, v, kernels.silhouette(*v.segments, *v.rect), rgb)

    def _slab_test(self, out: np.ndarray, depth: np.ndarray, v: _BoxView, rgb: bool) -> None:
        """Slab-test the pixels of the box's screen rectangle; paint and record the pixels where it is
        nearer than `depth` (ray parameter = distance along the optical axis)."""
        box, rel = v.box, v.rel
        rect = (slice(None), slice(v.rect[0], v.rect[1]), slice(v.rect[2], v.rect[3]))
        cr, sr = math.cos(rel), math.sin(rel)
        rx, ry, rz = self._rx[rect], self._ry[rect], self._rz[rect]
        oc = (self._screen.origins - (v.x, v.y, box.height / 2))[:, None, None]  # (C, 1, 1, 3): each camera
        ob = (cr * oc[..., 0] + sr * oc[..., 1], -sr * oc[..., 0] + cr * oc[..., 1], oc[..., 2])  # from the box
        t_in = t_out = None
        for d, o, h in zip((cr * rx + sr * ry, -sr * rx + cr * ry, rz), ob,
                           (box.length / 2, box.width / 2, box.height / 2)):
            with np.errstate(divide="ignore", invalid="ignore"):
                t1 = (-h - o) / d
                t2 = (h - o) / d
            near, far = np.minimum(t1, t2), np.maximum(t1, t2)  # NaN: a ray in a face's plane, no bound
            t_in = near if t_in is None else np.fmax(t_in, near)
            t_out = far if t_out is None else np.fmin(t_out, far)
        hit = (t_out >= np.maximum(t_in, 0)) & (t_in < depth[rect])
        np.copyto(depth[rect], t_in, where=hit)
        self._paint(out, v, hit, rgb)

    def _paint(self, out: np.ndarray, v: _BoxView, mask: np.ndarray, rgb: bool) -> None:
        """Paint the box's flat colour (as PyBullet's ambient-lit view) where the (C, R, W) mask of
        its rectangle is set."""
        r0, r1, c0, c1 = v.rect
        colour = np.asarray(v.box.color, dtype=np.uint8) if rgb else _gray(tuple(v.box.color))
        for k in range(self.n):
            np.copyto(out[r0:r1, c0:c1, k], colour, where=mask[k, ..., None] if rgb else mask[k])


@lru_cache(maxsize=64)
def _gray(color: tuple[int, int, int]) -> np.uint8:
    return grayscale(np.asarray(color, dtype=np.uint8))


_CORNERS = np.array([(i, j, k) for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], dtype=float) / 2
_EDGES = np.array([(a, b) for a in range(8) for b in range(a + 1, 8)
                   if np.count_nonzero(_CORNERS[a] != _CORNERS[b]) == 1]).T  # (2, 12) corner indices
_PAIRS = np.array([(a, b) for a in range(12) for b in range(a + 1, 12)]).T  # (2, 66) edge pairs
_CLIP = 0.01  # m: boxes are clipped at this depth before they are projected


def _box_points(box: Box) -> np.ndarray:
    """(9, 4) homogeneous world points of a box: its 8 corners (_CORNERS order), then its centre."""
    return _points(box.x, box.y, box.yaw, box.length, box.width, box.height)


@lru_cache(maxsize=256)  # obstacles stand still: their corners are computed once
def _points(x: float, y: float, yaw: float, length: float, width: float, height: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    local = np.vstack([_CORNERS, np.zeros(3)]) * (length, width, height)
    return np.stack([x + c * local[:, 0] - s * local[:, 1], y + s * local[:, 0] + c * local[:, 1],
                     height / 2 + local[:, 2], np.ones(9)], axis=1)


_Segments = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _BoxView:
    """A box as the cameras see it: centre x, y and yaw `rel` in the car frame, the half-open pixel
    rectangle (r0, r1, c0, c1) it may cover, and segments on the screen whose hull is its silhouette:
    their first ends and their spans, (S, row/column, C, 1) arrays (pixel centres at integers,
    NaN: no segment), or None for a box a camera is in or nearly touches."""

    box: Box
    x: float
    y: float
    rel: float
    rect: tuple[int, int, int, int]
    segments: _Segments | None


class _Screen:
    """Where boxes land on the screen of a rig's cameras."""

    def __init__(self, cam: CameraConfig, origins: np.ndarray):
        self.origins = origins  # (C, 3) in the car frame
        self.cameras_xy = [(float(o[0]), float(o[1])) for o in origins]
        self.w, self.h = cam.width, cam.height
        f = (cam.width / 2) / math.tan(cam.hfov / 2)
        p = math.radians(cam.pitch_deg)
        fwd, left, up = np.array([math.cos(p), 0.0, -math.sin(p)]), np.array([0.0, 1.0, 0.0]), \
            np.array([math.sin(p), 0.0, math.cos(p)])
        a, b = (cam.width / 2) / f, (cam.height / 2) / f  # the frustum's half-angle tangents
        # a point of the frustum closer than _CLIP in depth is this close to the camera
        self.close = _CLIP * math.sqrt(1 + a * a + b * b) + 1e-6
        # linear functions of a car-frame point, each for every camera: depth along the optical axis,
        # row and column times depth (pixel centres at integers), then the values of the frustum's
        # planes, near (depth 0), left, right, top and bottom (>= 0 inside)
        rows = [fwd, (cam.height / 2 - 0.5) * fwd - f * up, (cam.width / 2 - 0.5) * fwd - f * left,
                fwd, a * fwd - left, a * fwd + left, b * fwd - up, b * fwd + up]
        cols = [np.append(r, -r @ o) for r in rows for o in origins]
        cols += [np.array([1.0, 0.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0, 0.0])]  # and the car-frame x, y
        self._to_cameras = np.array(cols).T  # (4, 8C + 2), acting on homogeneous row vectors
        # the same five planes with unit normals: signed distances, for culling bounding spheres
        unit = [r / np.linalg.norm(r) for r in rows[3:]]
        self._to_planes = np.array([np.append(u, -u @ o) for u in unit for o in origins]
                                   + cols[-2:]).T  # (4, 5C + 2)

    def project(self, boxes: list[Box], x: float, y: float, yaw: float) -> list[_BoxView]:
        """The boxes some camera may see from the car pose (x, y, yaw), centres within FAR: their bounding
        spheres culled first (most boxes of a race are behind or beside the car), then their corners
        (`kernels.box_screens`)."""
        c, s = math.cos(yaw), math.sin(yaw)
        to_car = np.array([[c, -s, 0.0, 0.0], [s, c, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
                           [-c * x - s * y, s * x - c * y, 0.0, 1.0]])
        cams = len(self.origins)
        sizes = np.array([(b.x, b.y, b.length, b.width, b.height) for b in boxes])
        boxes = [boxes[i] for i in np.flatnonzero(kernels.spheres_in_view(sizes, to_car @ self._to_planes, cams,
                                                                          FAR)).tolist()]
        if not boxes:
            return []
        m = (np.concatenate([_box_points(b) for b in boxes]) @ (to_car @ self._to_cameras)).reshape(len(boxes), 9, -1)
        keep, ahead, rects, starts, spans = kernels.box_screens(m, cams, FAR, _CLIP, _EDGES, self.w, self.h)
        views = []
        for j, i in enumerate(keep.tolist()):
            box = boxes[i]
            dx, dy = box.x - x, box.y - y
            bx, by = c * dx + s * dy, -s * dx + c * dy
            rel = box.yaw - yaw
            if ahead[j]:
                segments = starts[j], spans[j]
                rect = tuple(rects[j].tolist())
            elif self._touching(box, bx, by, rel):
                segments, rect = None, (0, self.h, 0, self.w)
            else:
                segments = _clipped_segments(m[i, :8, :cams], m[i, :8, cams:3 * cams].reshape(8, 2, cams))
                ext = np.concatenate([segments[0], segments[0] + segments[1]])
                (rmin, cmin), (rmax, cmax) = np.fmin.reduce(ext, axis=(0, 2, 3)), np.fmax.reduce(ext, axis=(0, 2, 3))
                rect = kernels.pixel_rect(float(rmin), float(rmax), float(cmin), float(cmax), self.w, self.h)
            if rect[0] < rect[1] and rect[2] < rect[3]:
                views.append(_BoxView(box, bx, by, rel, rect, segments))
        return views

    def _touching(self, box: Box, bx: float, by: float, rel: float) -> bool:
        """Whether a camera is within `close` of the box (in it, or nearly touching it): its view of
        the box is not the projection of the box clipped at _CLIP."""
        cr, sr = math.cos(rel), math.sin(rel)
        oc = self.origins - (bx, by, box.height / 2)
        ob = np.stack([cr * oc[:, 0] + sr * oc[:, 1], -sr * oc[:, 0] + cr * oc[:, 1], oc[:, 2]], axis=1)
        return bool(np.all(np.abs(ob) <= np.array([box.length, box.width, box.height]) / 2 + self.close,
                           axis=1).any())


def _clipped_segments(depth: np.ndarray, num: np.ndarray) -> _Segments:
    """Segments of a box crossing the plane at depth _CLIP whose hull is the projection of its part
    beyond it, from its corners' (8, C) depths and (8, row/col, C) rows and columns times depth: its
    edges cut at the plane, and every pair of the points where edges cross it (the clipped face)."""
    e0, e1 = _EDGES
    front = depth >= _CLIP
    crossing = front[e0] != front[e1]  # (12, C)
    d0, d1 = depth[e0], depth[e1]
    k = ((_CLIP - d0) / np.where(crossing, d1 - d0, 1.0))[:, None]
    cross = np.where(crossing[:, None], (num[e0] + k * (num[e1] - num[e0])) / _CLIP, np.nan)  # linear: exact
    with np.errstate(divide="ignore", invalid="ignore"):
        corner = np.where(front[:, None], num / depth[:, None], np.nan)
    a = np.concatenate([np.where(front[e0][:, None], corner[e0], cross), cross[_PAIRS[0]]])
    b = np.concatenate([np.where(front[e1][:, None], corner[e1], cross), cross[_PAIRS[1]]])
    return a[..., None], (b - a)[..., None]


def _overlap_groups(views: list[_BoxView]) -> list[list[_BoxView]]:
    """The views grouped so that boxes whose rectangles overlap (directly or through others) share a group."""
    groups: list[list[_BoxView]] = []
    for v in views:
        joined = [g for g in groups if any(_overlap(v.rect, u.rect) for u in g)]
        groups = [g for g in groups if g not in joined] + [[u for g in joined for u in g] + [v]]
    return groups


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def _back_to_front(group: list[_BoxView], cameras: list[tuple[float, float]]) -> list[_BoxView] | None:
    """The group's boxes in an order to paint them (farthest first), or None when there is none for
    every camera (boxes that intersect, a cycle) or a box has no silhouette (a camera touches it)."""
    if any(v.segments is None for v in group):
        return None
    if len(group) == 1:
        return group
    behind = {i: set() for i in range(len(group))}  # i: the boxes i hides
    for i in range(len(group)):
        for j in range(i + 1, len(group)):
            if not _overlap(group[i].rect, group[j].rect):
                continue
            nearer = _nearer(group[i], group[j], cameras)
            if nearer is None:
                return None
            front, back = (i, j) if nearer == 0 else (j, i)
            behind[front].add(back)
    order: list[int] = []
    while behind:
        ready = [i for i in behind if not behind[i] - set(order)]  # every box it hides is painted
        if not ready:
            return None
        order += ready
        for i in ready:
            del behind[i]
    return [group[i] for i in order]


def _nearer(a: _BoxView, b: _BoxView, cameras: list[tuple[float, float]]) -> int | None:
    """0 when box a is in front of box b for every camera where both are seen, 1 when b is, None when
    no vertical plane separates them with all cameras on one side (they intersect).

    The planes tried are those of the boxes' sides (the separating axes of two rectangles)."""
    for rel in (a.rel, b.rel):
        for ux, uy in ((math.cos(rel), math.sin(rel)), (-math.sin(rel), math.cos(rel))):
            a_lo, a_hi = _extent(a, ux, uy)
            b_lo, b_hi = _extent(b, ux, uy)
            cam = [x * ux + y * uy for x, y in cameras]
            if a_hi <= b_lo:  # a on the low side: in front for the cameras not beyond b's side
                if max(cam) <= b_lo:
                    return 0
                if min(cam) >= a_hi:
                    return 1
            elif b_hi <= a_lo:
                if max(cam) <= a_lo:
                    return 1
                if min(cam) >= b_hi:
                    return 0
    return None


def _extent(v: _BoxView, ux: float, uy: float) -> tuple[float, float]:
    """The interval the box's floor rectangle covers along the unit axis (ux, uy) of the car frame."""
    c, s = math.cos(v.rel), math.sin(v.rel)
    centre = v.x * ux + v.y * uy
    half = v.box.length / 2 * abs(c * ux + s * uy) + v.box.width / 2 * abs(-s * ux + c * uy)
    return centre - half, centre + half
