"""Bundle archives (.tar.gz) and putting finished bundle folders in place, without torch.

An archive from a stranger is unpacked with caps on its entries and unpacked size, checked from
each tar header as it is read (before the entry's data), and only bundle files are kept.
Temporary folders and files next to an output are named `.{name}.{pid}.{random}.tmp`, so that the
next export or import to that output can delete those a killed process left behind.
"""
from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from racer.bundle.format import BUNDLE_FILE, TRACKS_DIR, BundleError, is_bundle_file
from racer.bundle.runtime import BundlePolicy

MAX_BYTES = 1 << 30  # unpacked; real bundles are a few MB to a few hundred MB
MAX_MEMBERS = 64  # archive entries; real bundles have fewer than 10


def check_out_path(out: Path, overwrite: bool, sources: tuple[Path, ...] = ()) -> None:
    """Refuse to write a bundle (folder or archive) at `out` when that would lose something: an existing
    `out` needs `overwrite` (--force), and even then may only be a bundle folder (with bundle.json), a
    bundle archive or an empty folder, and never one of `sources` (what is being exported or imported)
    nor a folder holding one."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not overwrite:
        raise BundleError(f"{out} exists; pass --force to replace it")
    for source in sources:
        if source.resolve() == out.resolve() or out.resolve() in source.resolve().parents:
            raise BundleError(f"refusing to replace {out}: it holds {source}, which is being read")
    if out.is_dir() and not (out / BUNDLE_FILE).is_file():
        raise BundleError(f"refusing to replace {out}: it is not a bundle (no {BUNDLE_FILE}); --force only "
                          f"replaces an earlier bundle")
    if out.is_file() and not is_bundle_archive(out):
        raise BundleError(f"refusing to replace {out}: it is not a bundle archive; --force only replaces an "
                          f"earlier bundle")


def is_bundle_archive(path: Path) -> bool:
    """A tar archive holding a bundle.json (read no further than the caps allow)."""
    try:
        with tarfile.open(path, "r:*") as tar:
            return any(PurePosixPath(m.name).name == BUNDLE_FILE for m in capped_members(tar, path))
    except (tarfile.TarError, OSError, EOFError, zlib.error, BundleError):
        return False


def tmp_prefix(out: Path) -> str:
    """The name prefix of this process's temporary files and folders next to `out` (suffix .tmp)."""
    return f".{out.name}.{os.getpid()}."


def clean_leftovers(out: Path) -> list[Path]:
    """Delete the temporary files and folders (`.{name}.{pid}.{random}.tmp`) next to `out` that a killed
    export or import left behind: only those whose process is gone; returns them."""
    ours = re.compile(rf"\.{re.escape(out.name)}\.(\d+)\.[^./]+\.tmp")
    removed = []
    for p in out.parent.iterdir() if out.parent.is_dir() else ():
        m = ours.fullmatch(p.name)
        if m and not _alive(int(m.group(1))):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; not a pid
        return True
    return True


def move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished folder to `out`; an old `out` is moved aside first, then deleted."""
    umask = os.umask(0)
    os.umask(umask)
    for p in (tmp, *tmp.rglob("*")):  # mkdtemp/mkstemp make 0700/0600: give the usual modes
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)
    old = None
    if out.exists():
        old = out.with_name(f"{tmp_prefix(out)}old.tmp")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()


def archive_bundle(bundle_dir: str | Path, archive: str | Path) -> Path:
    """Write `archive` (.tar.gz) holding the bundle under one folder named after it."""
    bundle_dir, archive = Path(bundle_dir), Path(archive)
    if not (bundle_dir / BUNDLE_FILE).is_file():
        raise BundleError(f"{bundle_dir}: not a bundle (no {BUNDLE_FILE})")
    archive.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(archive)
    fd, tmp = tempfile.mkstemp(prefix=tmp_prefix(archive), suffix=".tmp", dir=archive.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=3) as tar:  # weights barely compress
            for f in sorted(p for p in bundle_dir.rglob("*") if p.is_file()):
                tar.add(f, arcname=f"{bundle_dir.name}/{f.relative_to(bundle_dir).as_posix()}", recursive=False)
        os.replace(tmp, archive)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return archive


def capped_members(tar: tarfile.TarFile, archive: Path, max_bytes: int = MAX_BYTES,
                   max_members: int = MAX_MEMBERS) -> Iterator[tarfile.TarInfo]:
    """The archive's entries as their headers are read, refusing the first one past `max_members` or
    taking the unpacked size past `max_bytes`, before its data is read."""
    total = 0
    for count, m in enumerate(tar, 1):
        if count > max_members:
            raise BundleError(f"{archive}: refused: more than {max_members} entries (a bundle has fewer than 10); "
                              f"--max-files raises the cap")
        total += max(m.size, 0)
        if total > max_bytes:
            raise BundleError(f"{archive}: refused: entry {m.name!r} ({_size(m.size)}) takes the unpacked size "
                              f"over the {_size(max_bytes)} cap; --max-size raises it")
        yield m


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _unpack(tar: tarfile.TarFile, archive: Path, dest: Path, max_bytes: int, max_members: int) -> tuple[str, list[str]]:
    """Write the bundle files under the archive's one top folder into `dest` (entries outside the archive,
    links and special files refused); returns the top folder and the entries skipped."""
    top, skipped = None, []
    for m in capped_members(tar, archive, max_bytes, max_members):
        parts = PurePosixPath(m.name).parts
        if PurePosixPath(m.name).is_absolute() or m.name.startswith(("/", "\\")) or ".." in parts \
                or ":" in m.name.split("/")[0]:
            raise BundleError(f"{archive}: refused: entry {m.name!r} points outside the bundle")
        if not (m.isfile() or m.isdir()):
            raise BundleError(f"{archive}: refused: entry {m.name!r} is a link or special file")
        top = top or (parts[0] if parts else None)
        rel = "/".join(parts[1:])
        if parts and parts[0] == top and (m.isdir() and rel in ("", TRACKS_DIR) or m.isfile() and is_bundle_file(rel)):
            if m.isfile():
                (dest / rel).parent.mkdir(exist_ok=True)
                with tar.extractfile(m) as src, open(dest / rel, "wb") as f:
                    shutil.copyfileobj(src, f)
        else:
            skipped.append(m.name)
    return top or "", skipped


def import_bundle(archive: str | Path, out_dir: str | Path, sensors=None, overwrite: bool = False,
                  max_bytes: int = MAX_BYTES, max_members: int = MAX_MEMBERS) -> Path:
    """Unpack a bundle archive into `out_dir` after the runtime loader accepts it.

    Caps: `max_members` entries and `max_bytes` unpacked, checked from each header before its data.
    Only the bundle files under the archive's one top folder are kept; the others are skipped and
    named in a warning."""
    archive, out = Path(archive), Path(out_dir)
    check_out_path(out, overwrite, sources=(archive,))
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        reason = str(exc).splitlines()[0].rstrip(":") if str(exc) else type(exc).__name__
        raise BundleError(f"{archive}: not a readable .tar.gz/.tar archive ({reason})") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out)
    tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix(out), suffix=".tmp", dir=out.parent))
    try:
        with tar:
            try:
                top, skipped = _unpack(tar, archive, tmp, max_bytes, max_members)
            except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                raise BundleError(f"{archive}: damaged archive ({exc})") from None
        if not (tmp / BUNDLE_FILE).is_file():
            raise BundleError(f"{archive}: no {BUNDLE_FILE} in the archive's top folder "
                              f"{top + '/' if top else ''}; not a bundle archive (racer export --format tar.gz)")
        try:
            BundlePolicy.load(tmp, sensors=sensors)  # refuses an invalid bundle with the reason
        except BundleError as exc:
            raise BundleError(str(exc).replace(str(tmp), f"{archive}!{top}")) from None
        move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if skipped:
        what = "entry that is not a bundle file" if len(skipped) == 1 else "entries that are not bundle files"
        warnings.warn(f"{archive}: skipped {len(skipped)} {what}: {', '.join(skipped)}", stacklevel=2)
    return out
