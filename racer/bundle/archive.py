"""Bundle archives (.tar.gz) and putting finished bundle folders in place, without torch."""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from racer.bundle.format import BUNDLE_FILE, BundleError
from racer.bundle.runtime import BundlePolicy


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
    """A tar archive holding a bundle.json."""
    try:
        with tarfile.open(path, "r:*") as tar:
            return any(PurePosixPath(m.name).name == BUNDLE_FILE for m in tar.getmembers())
    except (tarfile.TarError, OSError, EOFError):
        return False


def move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished folder to `out`; an old `out` is moved aside first, then deleted."""
    umask = os.umask(0)
    os.umask(umask)
    for p in (tmp, *tmp.rglob("*")):  # mkdtemp/mkstemp make 0700/0600: give the usual modes
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
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
    fd, tmp = tempfile.mkstemp(prefix=f".{archive.name}.", suffix=".tmp", dir=archive.parent)
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


def _safe_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for m in members:
        p = PurePosixPath(m.name)
        if p.is_absolute() or m.name.startswith(("/", "\\")) or ".." in p.parts or ":" in m.name.split("/")[0]:
            raise BundleError(f"{archive}: refused: entry {m.name!r} points outside the bundle")
        if not (m.isfile() or m.isdir()):
            raise BundleError(f"{archive}: refused: entry {m.name!r} is a link or special file")
    return members


def import_bundle(archive: str | Path, out_dir: str | Path, sensors=None, overwrite: bool = False) -> Path:
    """Unpack a bundle archive safely into `out_dir` after the runtime loader accepts it."""
    archive, out = Path(archive), Path(out_dir)
    check_out_path(out, overwrite, sources=(archive,))
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        reason = str(exc).splitlines()[0].rstrip(":") if str(exc) else type(exc).__name__
        raise BundleError(f"{archive}: not a readable .tar.gz/.tar archive ({reason})") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        with tar:
            members = _safe_members(tar, archive)
            try:
                tar.extractall(tmp, members=members, filter="data")
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise BundleError(f"{archive}: damaged archive ({exc})") from None
        roots = [p.parent for p in tmp.rglob(BUNDLE_FILE)]
        if len(roots) != 1:
            raise BundleError(f"{archive}: expected one {BUNDLE_FILE} in the archive, found {len(roots)}")
        try:
            BundlePolicy.load(roots[0], sensors=sensors)  # refuses an invalid bundle with the reason
        except BundleError as exc:
            inside = roots[0].relative_to(tmp).as_posix()
            where = f"{archive}" + (f"!{inside}" if inside != "." else "!")
            raise BundleError(str(exc).replace(str(roots[0]), where)) from None
        if roots[0] != tmp:
            staged = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
            staged.rmdir()
            os.replace(roots[0], staged)
            shutil.rmtree(tmp)
            tmp = staged
        move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
