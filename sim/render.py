"""Fast camera images: the floor seen through a pinhole in numpy, plus boxes in one compiled call.

Every pixel's ray is fixed in the car frame, so the floor point each pixel sees is computed
once; a frame is then one 2x3 transform of those points and a look-up into a 1 cm/px
raster of the painted floor.  Boxes (obstacles, other cars) are culled against the view
frustum and projected; a box then costs only the pixels of its screen rectangle: its silhouette
is filled row by row, far boxes first, and where that cannot decide (a camera inside a box,
boxes that intersect) the rectangle's rays are slab-tested against a depth buffer
(`kernels.draw_boxes`).  Either way a pixel shows what the ray through its centre meets first.
PyBullet stays the collision engine; `world.World.reference_image` renders the same scene with
PyBullet's TinyRenderer for checking.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
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
_CLIP = 0.01  # m: boxes are clipped at this depth before they are projected


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
        # every camera's rays x, y, z and floor distances as (C, H, W) planes, for slab tests of boxes
        rx, ry, rz = (np.stack([r[..., i] for r in self.rays]) for i in range(3))
        self._rays = np.stack([rx, ry, rz, np.where(rz < 0, cam.z / np.maximum(-rz, 1e-12), np.inf)])
        self._wall_gray = grayscale(np.asarray(paint.WALL, dtype=np.uint8))
        self._screen = _Screen(cam, np.array(self.origins))
        self._boxes: tuple[tuple[Box, ...], tuple[np.ndarray, ...]] = ((), _box_table(()))  # the last boxes drawn

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

    def render(self, x: float, y: float, yaw: float, boxes: Sequence[Box] = (), rgb: bool = False) -> np.ndarray:
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

    def _draw_boxes(self, out: np.ndarray, boxes: Sequence[Box], x: float, y: float, yaw: float, rgb: bool) -> None:
        """Paint the boxes into `out`, each pixel showing the nearest thing its ray meets (`kernels.draw_boxes`)."""
        key = tuple(boxes)
        if key != self._boxes[0]:  # obstacles stand still: most steps draw the boxes of the last one
            self._boxes = key, _box_table(key)
        table, gray, colours = self._boxes[1]
        s = self._screen
        kernels.draw_boxes(out.reshape(*out.shape[:3], -1), table, colours if rgb else gray, float(x), float(y),
                           float(yaw), s.to_planes, s.to_cameras, s.origins, self._rays, s.close, FAR, _CLIP)


def _box_table(boxes: tuple[Box, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The boxes as `kernels.draw_boxes` takes them: (B, 6) centres x, y, yaws and sizes, and their gray (B, 1)
    and RGB (B, 3) colours."""
    return (np.array([b[:6] for b in boxes], dtype=float).reshape(-1, 6),
            np.array([[_gray(tuple(b.color))] for b in boxes], dtype=np.uint8).reshape(-1, 1),
            np.array([b.color for b in boxes], dtype=np.uint8).reshape(-1, 3))


@lru_cache(maxsize=64)
def _gray(color: tuple[int, int, int]) -> np.uint8:
    return grayscale(np.asarray(color, dtype=np.uint8))


class _Screen:
    """The maps that place boxes on the screens of a rig's cameras, as `kernels.box_views` takes them."""

    def __init__(self, cam: CameraConfig, origins: np.ndarray):
        self.origins = origins  # (C, 3) in the car frame
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
        self.to_cameras = np.ascontiguousarray(np.array(cols).T)  # (4, 8C + 2), acting on homogeneous row vectors
        # the same five planes with unit normals: signed distances, for culling bounding spheres
        unit = [r / np.linalg.norm(r) for r in rows[3:]]
        self.to_planes = np.ascontiguousarray(np.array([np.append(u, -u @ o) for u in unit for o in origins]
                                                       + cols[-2:]).T)  # (4, 5C + 2)
