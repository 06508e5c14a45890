"""One error path for the command line: bad input ends in a one-line message naming the cause, exit code
2, no traceback unless --debug (issue 9, item 10)."""
from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "tests" / "data" / "bundle-oval"


def racer(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "racer.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    (tmp / "empty.npy").write_bytes(b"")
    (tmp / "text.npy").write_text("0,0\n1,1\n")
    (tmp / "file").write_text("x")
    with open(BUNDLE / "model.bin", "rb") as f:
        (tmp / "cut.tar.gz").write_bytes(gzip.compress(f.read())[:5000])
    return {
        "unknown track": (["tracks", "show", "no-such-track"], "no track named 'no-such-track'"),
        "empty .npy": (["tracks", "show", str(tmp / "empty.npy")], "empty.npy"),
        "text .npy": (["drive", "--track", str(tmp / "text.npy"), "--laps", "1"], "text.npy"),
        "truncated archive": (["import", str(tmp / "cut.tar.gz"), "--out", str(tmp / "b")], "cut.tar.gz"),
        "unwritable --out": (["evaluate", str(BUNDLE), "--laps", "1", "--out", str(tmp / "file" / "eval")],
                             str(tmp / "file" / "eval")),
        "bad car": (["garage", "show", "no-such-car"], "no-such-car"),
    }


@pytest.mark.parametrize("case", ["unknown track", "empty .npy", "text .npy", "truncated archive",
                                  "unwritable --out", "bad car"])
def test_bad_input_ends_in_one_message_and_exit_code_2(tmp_path, case):
    args, names = _bad_inputs(tmp_path)[case]
    r = racer(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "Aborted!" not in r.stderr and "allow_pickle" not in r.stderr
    message = [line for line in r.stderr.splitlines() if line.startswith("Error: ")]
    assert len(message) == 1 and names in message[0], r.stderr


def test_debug_shows_the_traceback(tmp_path):
    r = racer("--debug", "tracks", "show", "no-such-track")
    assert r.returncode != 0 and "Traceback" in r.stderr and "TrackError" in r.stderr
