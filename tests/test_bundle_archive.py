"""`racer import` against archive bombs (caps checked from the tar headers as they are read), unknown
members, and the leftovers of a killed export or import (issue 9, item 4 and "Also")."""
from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from bundle_copies import ORIGINAL
from click.testing import CliRunner

import racer.bundle.runtime
from racer.bundle.archive import archive_bundle, check_out_path, import_bundle
from racer.bundle.format import BundleError
from racer.cli import main

GIB = 1 << 30


@pytest.fixture(autouse=True)
def ov_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("RACER_OV_CACHE", str(tmp_path_factory.getbasetemp() / "ov-cache"))
    monkeypatch.setattr(racer.bundle.runtime, "_CORE", None)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """A tar.gz of ~2 MB holding one 2 GiB member of zeros (gzip members of compressed zeros, concatenated)."""
    path = tmp_path_factory.mktemp("bombs") / "bomb.tar.gz"
    info = tarfile.TarInfo("m/model.bin")
    info.size = 2 * GIB
    chunk = 64 << 20
    zeros = gzip.compress(bytes(chunk), compresslevel=9, mtime=0)
    with open(path, "wb") as f:
        f.write(gzip.compress(info.tobuf(tarfile.GNU_FORMAT), mtime=0))
        for _ in range(info.size // chunk):
            f.write(zeros)
        f.write(gzip.compress(bytes(2 * tarfile.BLOCKSIZE), mtime=0))  # end of archive
    assert path.stat().st_size < 4 << 20
    with tarfile.open(path, "r:gz") as tar:
        assert tar.next().size == 2 * GIB
    return path


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    """A tar.gz of 20,000 one-byte files."""
    path = tmp_path_factory.mktemp("bombs") / "many.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for i in range(20_000):
            info = tarfile.TarInfo(f"m/junk{i:05d}")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    return path


@pytest.fixture(scope="module")
def oval_archive(tmp_path_factory) -> Path:
    return archive_bundle(ORIGINAL, tmp_path_factory.mktemp("archives") / "oval.tar.gz")


def test_a_2_gib_member_is_refused_from_its_header(bomb, tmp_path):
    start = time.monotonic()
    with pytest.raises(BundleError, match=r"bomb\.tar\.gz: refused: entry 'm/model\.bin' \(2\.0 GiB\) takes the "
                                          r"unpacked size over the 1\.0 GiB cap.*--max-size"):
        import_bundle(bomb, tmp_path / "out")
    assert time.monotonic() - start < 5
    assert list(tmp_path.iterdir()) == []  # no .tmp folder left


def test_20000_files_are_refused_at_the_member_cap(many, tmp_path):
    start = time.monotonic()
    with pytest.raises(BundleError, match=r"many\.tar\.gz: refused: more than 64 entries.*--max-files"):
        import_bundle(many, tmp_path / "out")
    assert time.monotonic() - start < 5
    assert list(tmp_path.iterdir()) == []


def test_force_does_not_unpack_a_bomb_to_see_if_it_is_a_bundle(bomb):
    start = time.monotonic()
    with pytest.raises(BundleError, match="it is not a bundle archive"):
        check_out_path(bomb, overwrite=True)
    assert time.monotonic() - start < 5


def test_the_caps_are_configurable(oval_archive, tmp_path):
    with pytest.raises(BundleError, match=r"over the 1000 bytes cap"):
        import_bundle(oval_archive, tmp_path / "a", max_bytes=1000)
    with pytest.raises(BundleError, match="more than 3 entries"):
        import_bundle(oval_archive, tmp_path / "a", max_members=3)
    assert import_bundle(oval_archive, tmp_path / "a", max_bytes=4 << 20, max_members=5) == tmp_path / "a"
    cli, runner = main, CliRunner()
    r = runner.invoke(cli, ["import", str(oval_archive), "--out", str(tmp_path / "b"), "--max-size", "1MB"])
    assert r.exit_code != 0 and "over the 976.6 KiB cap" in r.output and not (tmp_path / "b").exists(), r.output
    r = runner.invoke(cli, ["import", str(oval_archive), "--out", str(tmp_path / "b"), "--max-files", "2"])
    assert r.exit_code != 0 and "more than 2 entries" in r.output, r.output
    r = runner.invoke(cli, ["import", str(oval_archive), "--out", str(tmp_path / "b"), "--max-size", "lots"])
    assert r.exit_code == 2 and "'lots' is not a size" in r.output, r.output
    r = runner.invoke(cli, ["import", str(oval_archive), "--out", str(tmp_path / "b"), "--max-size", "2GiB",
                            "--max-files", "10"])
    assert r.exit_code == 0 and (tmp_path / "b" / "model.xml").is_file(), r.output


@pytest.mark.parametrize("text, size", [("2GiB", 2 * GIB), ("500MB", 500_000_000), ("123", 123),
                                        ("1.5 KiB", 1536), ("10kb", 10_000), ("7 B", 7)])
def test_sizes_are_parsed_with_their_unit(text, size):
    from racer.commands.model import parse_size
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "", "-1GiB", "1.5", "2 GiBs", "nan"])
def test_a_size_without_a_number_and_unit_is_refused(text):
    from racer.commands.model import parse_size
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


def test_unknown_members_are_skipped_and_named(tmp_path):
    archive = tmp_path / "extra.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for f in sorted(ORIGINAL.iterdir()):
            tar.add(f, arcname=f"oval/{f.name}")
        for name in ("oval/notes.txt", "other/x.py", "oval/sub/model.xml"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.warns(UserWarning, match=r"extra\.tar\.gz: skipped 3 entries that are not bundle files: "
                                         r"oval/notes\.txt, other/x\.py, oval/sub/model\.xml"):
        out = import_bundle(archive, tmp_path / "models" / "oval")
    assert sorted(p.name for p in out.iterdir()) == ["bundle.json", "model.bin", "model.xml", "model_metadata.json"]
    assert os.listdir(tmp_path / "models") == ["oval"]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_leftovers_of_a_killed_import_or_export_are_cleaned(oval_archive, tmp_path):
    dead = _dead_pid()
    mine = [f".out.{dead}.k1ll3d.tmp", f".m.tar.gz.{dead}.k1ll3d.tmp", f".out.{dead}.old.tmp"]
    kept = [f".out.{os.getpid()}.inflight.tmp",  # a live process's
            f".other.{dead}.k1ll3d.tmp", ".out.notapid.tmp", f".out.{dead}.tmpx", "notes.txt"]
    for name in mine + kept:
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.bin").write_bytes(b"x")
    (tmp_path / f".out.{dead}.file.tmp").write_bytes(b"x")  # an archive's temporary file
    mine.append(f".out.{dead}.file.tmp")
    import_bundle(oval_archive, tmp_path / "out")
    archive_bundle(tmp_path / "out", tmp_path / "m.tar.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["out", "m.tar.gz"])
