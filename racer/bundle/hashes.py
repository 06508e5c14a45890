"""Content hashes of bundle files, and the check of a bundle folder against bundle.json's list."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from racer.bundle.format import (BUNDLE_FILE, KNOWN_FILES, METADATA_FILE, MODEL_BIN, MODEL_XML, OPTIONAL_FILES,
                                  BundleError, is_bundle_file, is_track_file)


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_hashes(bundle_dir: str | Path) -> dict[str, str]:
    """bundle.json's "files": every file of the bundle folder but bundle.json -> its sha256."""
    bundle_dir = Path(bundle_dir)
    return {p.relative_to(bundle_dir).as_posix(): sha256_file(p)
            for p in sorted(bundle_dir.rglob("*")) if p.is_file() and p.name != BUNDLE_FILE}


def check_files(bundle_dir: str | Path, bundle: dict) -> None:
    """Refuse, naming the file, anything in the folder that is not a bundle file (its track: only the one
    bundle.json names), a link or special file, a file bundle.json does not list or whose sha256
    differs, and a listed file that is missing (the checkpoint may be left out)."""
    bundle_dir = Path(bundle_dir)
    where = bundle_dir / BUNDLE_FILE
    listed: dict[str, str] = bundle["files"]
    track = bundle["track"] if is_track_file(bundle["track"]) else None
    for root, dirs, files in os.walk(bundle_dir):
        for name in sorted(dirs + files):
            path = Path(root, name)
            rel = path.relative_to(bundle_dir).as_posix()
            if path.is_symlink():
                raise BundleError(f"{path}: a link; a bundle holds plain files only")
            if path.is_dir():
                continue
            if not (is_bundle_file(rel) and (not is_track_file(rel) or rel == track)):
                raise BundleError(f"{path}: not a bundle file (a bundle holds {', '.join(KNOWN_FILES)} and the "
                                  f"track bundle.json names, nothing else)")
            if not path.is_file():
                raise BundleError(f"{path}: not a plain file")
            if rel == BUNDLE_FILE:
                continue
            if rel not in listed:
                raise BundleError(f"{path}: not listed in {BUNDLE_FILE}'s files; the bundle was changed after export")
            if sha256_file(path) != listed[rel]:
                raise BundleError(f"{path}: sha256 differs from {BUNDLE_FILE}'s; the file was damaged or changed "
                                  f"after export")
    for name in listed:
        if not is_bundle_file(name) or name == BUNDLE_FILE:
            raise BundleError(f"{where}: files: {name!r} is not a bundle file")
    for name in (MODEL_XML, MODEL_BIN, METADATA_FILE, *([track] if track else []), *listed):
        if not (bundle_dir / name).is_file() and name not in OPTIONAL_FILES:
            raise BundleError(f"{bundle_dir / name}: missing; the bundle is incomplete")
        if name not in listed:
            raise BundleError(f"{bundle_dir / name}: not listed in {BUNDLE_FILE}'s files; the bundle was "
                              f"changed after export")
