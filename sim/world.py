"""The scene: upright boxes for cars, objects and room walls, in PyBullet and as floor footprints.

One PyBullet client per World (DIRECT mode, `physicsClientId` on every call), so many worlds
live in one process without seeing each other.  Car motion is kinematic (sim.dynamics); PyBullet
answers overlaps (crashes) of footprints that may touch and renders a reference camera view.  A body's
new pose reaches PyBullet before its next query, so that steps which ask it nothing cost no call, and
its render box is made when asked for.  Every body is an upright box standing on the floor, so a
horizontal ray (the LIDAR's) meets the first of their footprints that it crosses below their tops:
`kernels.cast_rays` casts them exactly in the plane, without PyBullet.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pybullet as p

from sim import kernels, paint
from sim.car import CarSpec
from sim.observation import CameraConfig
from sim.render import Box
from sim.track import Track

ROOM_MARGIN = 3.0  # m between the track and the room walls
WALL_HEIGHT = 1.0
_STATIC_GROUP = 1
_ALL = 0x7FFFFFFF
_PARKED = (0.0, 0.0, -100.0)
APART = 0.01  # m between footprints that PyBullet is not asked about: it finds no contact (tests/test_race.py)


class Body:
    """A PyBullet body mirrored as a render box and as row `row` of its world's `footprints`."""

    def __init__(self, uid: int, box: Box, group: int, row: int, pose: np.ndarray):
        self.uid, self.group, self.row = uid, group, row
        self.pose = pose  # x, y, yaw: a view of its footprint row (`World._add_body` points it at a new table)
        self.stale = False  # the pose moved since `box` was made
        self._box = box

    @property
    def box(self) -> Box:
        """The render box at the body's pose (made on first use after a move)."""
        if self.stale:
            b = self._box
            x, y, yaw = self.pose.tolist()
            self._box = Box(x, y, yaw, b.length, b.width, b.height, b.color)
            self.stale = False
        return self._box


def footprint(box: Box) -> tuple[float, ...]:
    """A box's row of `World.footprints`: centre x, y, yaw, half length, half width, height, and the
    radius of its bounding circle on the floor."""
    return (box.x, box.y, box.yaw, box.length / 2, box.width / 2, box.height, math.hypot(box.length, box.width) / 2)


class World:
    """The scene of one environment: track floor, room walls, cars and obstacle boxes."""

    def __init__(self, track: Track):
        self.track = track
        self.client = p.connect(p.DIRECT)
        self.cars: list[Body] = []
        self.objects: list[Body] = []
        self.objects_changed = 0  # counts the obstacles added or moved: a key for what is computed from them
        self.footprints = np.empty((0, 7))  # every body's `footprint`, by Body.row: the walls' rows first
        self._bodies: list[Body] = []  # by row
        self._groups: dict[tuple[int, ...], tuple[list[Body], np.ndarray]] = {}  # `_car_group`s
        self._moved: dict[int, Body] = {}  # bodies whose new pose PyBullet gets before its next query (`_sync`)
        self._floor_visuals = False
        xmin, ymin, xmax, ymax = track.bounds
        cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
        hx, hy = (xmax - xmin) / 2 + ROOM_MARGIN, (ymax - ymin) / 2 + ROOM_MARGIN
        self.room = (cx - hx + 0.1, cy - hy + 0.1, cx + hx - 0.1, cy + hy - 0.1)  # inner wall faces
        for x, y, lx, ly in ((cx + hx, cy, 0.1, hy), (cx - hx, cy, 0.1, hy),
                             (cx, cy + hy, hx, 0.1), (cx, cy - hy, hx, 0.1)):
            self._add_body(Box(x, y, 0.0, 2 * lx, 2 * ly, WALL_HEIGHT, paint.WALL), _STATIC_GROUP)
        self._n_walls = len(self._bodies)  # the first rows: the walls

    def close(self) -> None:
        if self.client >= 0:
            p.disconnect(physicsClientId=self.client)
            self.client = -1

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: pybullet may already be gone
            pass

    # ---- bodies -----------------------------------------------------------------------
    def _add_body(self, box: Box, group: int) -> Body:
        """A PyBullet body standing on the floor where `box` is, and its footprint row."""
        half = [box.length / 2, box.width / 2, box.height / 2]
        cid = self.client
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=cid)
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=[c / 255 for c in box.color] + [1],
                                  physicsClientId=cid)
        uid = p.createMultiBody(0, col, vis, [box.x, box.y, box.height / 2], p.getQuaternionFromEuler([0, 0, box.yaw]),
                                physicsClientId=cid)
        p.setCollisionFilterGroupMask(uid, -1, group, _ALL, physicsClientId=cid)
        self.footprints = np.vstack([self.footprints, footprint(box)])
        body = Body(uid, box, group, len(self._bodies), self.footprints[-1, :3])
        for other in self._bodies:  # the table is a new array
            other.pose = self.footprints[other.row, :3]
        self._bodies.append(body)
        return body

    def add_car(self, spec: CarSpec, color: tuple[int, int, int] = (200, 30, 30)) -> int:
        """Add a car body; returns its index in `cars`."""
        group = 1 << (len(self.cars) + 1)
        self.cars.append(self._add_body(Box(*_PARKED[:2], 0.0, spec.length, spec.width, spec.height, color), group))
        return len(self.cars) - 1

    def add_box(self, x: float, y: float, yaw: float, length: float = 0.5, width: float = 0.4,
                height: float = 0.3, color: tuple[int, int, int] = (250, 120, 30)) -> int:
        """Add a static obstacle box; returns its index in `objects`."""
        self.objects.append(self._add_body(Box(x, y, yaw, length, width, height, color), _STATIC_GROUP))
        self.objects_changed += 1
        return len(self.objects) - 1

    def set_car_pose(self, index: int, x: float, y: float, yaw: float) -> None:
        self._set_pose(self.cars[index], x, y, yaw)

    def set_car_poses(self, indices: Sequence[int], poses: np.ndarray) -> None:
        """Move several cars at once: car `indices[i]` to the x, y, yaw of row i of `poses` (its first columns)."""
        bodies, rows = self._car_group(indices)
        kernels.set_poses(self.footprints, rows, poses)
        for body in bodies:
            body.stale = True
            self._moved[body.uid] = body

    def _car_group(self, indices: Sequence[int]) -> tuple[list[Body], np.ndarray]:
        """The bodies of cars `indices` and their footprint rows (kept: a race moves the same bots every step)."""
        key = tuple(indices)
        if key not in self._groups:
            bodies = [self.cars[i] for i in key]
            self._groups[key] = bodies, np.array([body.row for body in bodies], dtype=np.intp)
        return self._groups[key]

    def set_object_pose(self, index: int, x: float, y: float, yaw: float) -> None:
        """Move an obstacle box (a new layout at a reset)."""
        self._set_pose(self.objects[index], x, y, yaw)
        self.objects_changed += 1

    def _set_pose(self, body: Body, x: float, y: float, yaw: float) -> None:
        pose = body.pose
        pose[0], pose[1], pose[2] = x, y, yaw
        body.stale = True
        self._moved[body.uid] = body

    def _sync(self) -> None:
        """Give PyBullet the poses set since its last query (most steps ask it nothing)."""
        for uid, body in self._moved.items():
            b = body.box
            p.resetBasePositionAndOrientation(uid, [b.x, b.y, b.height / 2],
                                              [0.0, 0.0, math.sin(b.yaw / 2), math.cos(b.yaw / 2)],
                                              physicsClientId=self.client)
        self._moved.clear()

    def boxes_seen_by(self, car: int) -> list[Box]:
        """Boxes a car's cameras can see: every object and every other car."""
        return [body.box for body in self._others(car)]

    def _others(self, car: int) -> list[Body]:
        """Every body but the car's own: the obstacles, then the other cars."""
        return self.objects + [c for i, c in enumerate(self.cars) if i != car]

    # ---- queries ----------------------------------------------------------------------
    def cast_rays(self, car: int, origin: tuple[float, float, float], angles: np.ndarray,
                  reach: float, max_range: float) -> np.ndarray:
        """Distances (float32) along horizontal rays from `origin` at world `angles` (rad), cast exactly
        against the bodies' footprints (`kernels.cast_rays`).

        Rays are cast `reach` metres; a ray that hits nothing that far reads `max_range`.
        The car's own body is invisible to its rays, and so is a body the origin is inside.
        """
        return kernels.cast_rays(*origin, angles, self.footprints, self.cars[car].row, reach, max_range)

    def crashed_into(self, car: int) -> list[int]:
        """PyBullet ids of the bodies (objects and other cars) the car's body overlaps."""
        me = self.cars[car]
        near = kernels.touching_circles(self.footprints, me.row, self._n_walls)  # PyBullet: only those that may touch
        if len(near):
            near = kernels.rectangles_near(self.footprints, me.row, near, APART)
        if not len(near):
            return []
        self._sync()
        uids = [self._bodies[row].uid for row in near]
        return [uid for uid in uids if p.getClosestPoints(me.uid, uid, 0.0, physicsClientId=self.client)]

    # ---- PyBullet reference view ------------------------------------------------------
    def _add_floor_visuals(self) -> None:
        """Visual-only meshes of the painted floor (built on first use: only for checking)."""
        cid = self.client
        xmin, ymin, xmax, ymax = self.track.bounds
        big = max(xmax - xmin, ymax - ymin) + 4 * ROOM_MARGIN
        floor = p.createVisualShape(p.GEOM_BOX, halfExtents=[big, big, 0.0005],
                                    rgbaColor=[c / 255 for c in paint.FLOOR] + [1], physicsClientId=cid)
        p.createMultiBody(0, -1, floor, [(xmin + xmax) / 2, (ymin + ymax) / 2, -0.0005], physicsClientId=cid)
        for level, layer in enumerate(paint.layers(self.track), start=1):
            quads = layer.quads
            z = 0.0005 * level
            verts = np.concatenate([quads.reshape(-1, 2), np.full((quads.size // 2, 1), z)], axis=1)
            base = np.arange(len(quads))[:, None] * 4
            # both windings: TinyRenderer culls back faces
            tri = np.concatenate([base + [0, 1, 2], base + [0, 2, 3], base + [0, 2, 1], base + [0, 3, 2]],
                                 axis=1).reshape(-1)
            for chunk in range(0, len(quads), 2000):  # keep each mesh small
                sl = slice(chunk * 4, (chunk + 2000) * 4)
                idx = tri[chunk * 12:(chunk + 2000) * 12] - chunk * 4
                vis = p.createVisualShape(p.GEOM_MESH, vertices=verts[sl].tolist(), indices=idx.tolist(),
                                          rgbaColor=[c / 255 for c in layer.color] + [1], physicsClientId=cid)
                p.createMultiBody(0, -1, vis, [0, 0, 0], physicsClientId=cid)
        self._floor_visuals = True

    def reference_image(self, car: int, cam: CameraConfig, mount_y: float = 0.0) -> np.ndarray:
        """RGB (H, W, 3) from one of the car's cameras, rendered by PyBullet's TinyRenderer.

        Slow (milliseconds); for checking the numpy renderer, not for training.
        """
        if not self._floor_visuals:
            self._add_floor_visuals()
        body = self.cars[car]
        x, y, yaw = body.box.x, body.box.y, body.box.yaw
        c, s = math.cos(yaw), math.sin(yaw)
        eye = [x + c * cam.x - s * mount_y, y + s * cam.x + c * mount_y, cam.z]
        pitch = math.radians(cam.pitch_deg)
        fwd = [c * math.cos(pitch), s * math.cos(pitch), -math.sin(pitch)]
        up = [c * math.sin(pitch), s * math.sin(pitch), math.cos(pitch)]
        target = [eye[i] + fwd[i] for i in range(3)]
        vfov = math.degrees(2 * math.atan(math.tan(cam.hfov / 2) * cam.height / cam.width))
        view = p.computeViewMatrix(eye, target, up, physicsClientId=self.client)
        proj = p.computeProjectionMatrixFOV(vfov, cam.width / cam.height, 0.02, 60.0, physicsClientId=self.client)
        self._sync()
        p.resetBasePositionAndOrientation(body.uid, _PARKED, [0, 0, 0, 1], physicsClientId=self.client)
        try:
            _, _, rgba, _, _ = p.getCameraImage(cam.width, cam.height, view, proj, shadow=0,
                                                lightAmbientCoeff=1.0, lightDiffuseCoeff=0.0,
                                                lightSpecularCoeff=0.0, renderer=p.ER_TINY_RENDERER,
                                                physicsClientId=self.client)
        finally:
            self.set_car_pose(car, x, y, yaw)
        return np.asarray(rgba, dtype=np.uint8).reshape(cam.height, cam.width, 4)[..., :3]
