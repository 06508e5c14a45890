"""Copies of tests/data/bundle-oval for the bundle tests (no training), edited and re-hashed."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from racer.bundle.format import BUNDLE_VERSION

ORIGINAL = Path(__file__).parent / "data" / "bundle-oval"


def copy_bundle(dest: Path) -> Path:
    """A private copy of the oval test bundle at `dest`."""
    return Path(shutil.copytree(ORIGINAL, dest))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def rehash(bundle: Path, **changes) -> dict:
    """Make bundle.json list every other file of `bundle` with its sha256 (as a consistent forger
    would), at this racer's bundle version, with `changes` applied to its keys; returns it."""
    info = {**read_json(bundle / "bundle.json"), "bundle_version": BUNDLE_VERSION, **changes}
    info["files"] = {p.relative_to(bundle).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                     for p in sorted(bundle.rglob("*")) if p.is_file() and p.name != "bundle.json"}
    write_json(bundle / "bundle.json", info)
    return info
