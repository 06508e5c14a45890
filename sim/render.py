"""Fast camera images: the floor seen through a pinhole, plus boxes, in numpy.

Every pixel's ray is fixed in the car frame, so the floor point each pixel sees is computed
once; a frame is then one 2x3 transform of those points and a look-up into a 1 cm/px
raster of the painted floor.  Boxes (obstacles, other cars) are ray-box intersections.
PyBullet stays the physics, collision and LIDAR engine; `world.World.reference_image` renders
the same scene with PyBullet's TinyRenderer for checking.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from sim import paint
from sim.observation import CameraConfig, grayscale
from sim.track import Track

TEXTURE_RES = 0.01  # m per texture pixel
FAR = 30.0  # m: floor beyond this forward distance shows the room's wall colour
_MARGIN = 1.0  # m of plain floor round the painted area


@dataclass(frozen=True)
class Box:
    """An axis-aligned-in-z box on the floor: centre x, y (m), yaw (rad), size (m), colour."""

    x: float
    y: float
    yaw: float
    length: float
    width: float
    height: float
    color: tuple[int, int, int]


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
        self._t_floor = [np.where(rr[..., 2] < 0, o[2] / np.maximum(-rr[..., 2], 1e-12), np.inf)
                         for rr, o in zip(self.rays, self.origins)]
        self._wall_gray = grayscale(np.asarray(paint.WALL, dtype=np.uint8))

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
        for box in boxes:
            self._draw_box(out, box, x, y, yaw, rgb)
        return out.transpose(2, 0, 1, 3) if rgb else out

    def _draw_box(self, out: np.ndarray, box: Box, x: float, y: float, yaw: float, rgb: bool) -> None:
        """Paint one box into `out` where it is nearer than the floor (slab test per pixel)."""
        c, s = math.cos(yaw), math.sin(yaw)
        dx, dy = box.x - x, box.y - y
        bx, by = c * dx + s * dy, -s * dx + c * dy  # box centre in the car frame
        if bx < -0.5 or math.hypot(bx, by) > FAR:
            return
        rel = box.yaw - yaw
        cr, sr = math.cos(rel), math.sin(rel)
        half = np.array([box.length / 2, box.width / 2, box.height / 2])
        centre = np.array([bx, by, box.height / 2])
        for k, (rays, o) in enumerate(zip(self.rays, self.origins)):
            d = np.stack([cr * rays[..., 0] + sr * rays[..., 1], -sr * rays[..., 0] + cr * rays[..., 1],
                          rays[..., 2]], axis=-1)
            oc = o - centre
            ob = np.array([cr * oc[0] + sr * oc[1], -sr * oc[0] + cr * oc[1], oc[2]])
            with np.errstate(divide="ignore", invalid="ignore"):
                t1 = (-half - ob) / d
                t2 = (half - ob) / d
            tnear = np.minimum(t1, t2)
            tfar = np.maximum(t1, t2)
            t_in = np.nanmax(tnear, axis=-1)
            t_out = np.nanmin(tfar, axis=-1)
            hit = (t_out >= np.maximum(t_in, 0)) & (t_in < self._t_floor[k])
            if not hit.any():
                continue
            colour = np.asarray(box.color, dtype=np.uint8)  # flat, as PyBullet's ambient-lit view
            out[:, :, k][hit] = colour if rgb else grayscale(colour)
