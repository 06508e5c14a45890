"""`racer export`, `racer import` and `racer bench policy`: trained runs as verified OpenVINO bundles."""
from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path

import click
from rich.console import Console

from racer.bundle.archive import MAX_BYTES, MAX_MEMBERS

console = Console()
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def _archive_path(out: str) -> Path:
    return Path(out) if out.endswith(".tar.gz") else Path(f"{out}.tar.gz")


def parse_size(text: str) -> int:
    """Bytes from '123', '500MB' (powers of 1000) or '2GiB' (powers of 1024); ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS or (not unit and "." in m.group(1)):
        raise ValueError(f"{text!r} is not a size: give bytes, or a number with a unit such as 500MB or 2GiB")
    size = int(float(m.group(1)) * _UNITS[unit])
    if size < 1:
        raise ValueError(f"{text!r}: a size cap must be at least 1 byte")
    return size


class ByteSize(click.ParamType):
    """A click option value parsed by parse_size."""

    name = "size"

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command("export")
@click.argument("run_dir", metavar="RUN", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(), help="The bundle folder to write.")
@click.option("--fp16", "precision", flag_value="FP16",
              help="Store the weights as FP16 (half the size); verified like FP32, at FP16 tolerances.")
@click.option("--int8-weights", "precision", flag_value="INT8W",
              help="Large fully connected layers' weights as int8 with f32 scales (f32 arithmetic): "
                   "the DeepRacer CNNs run several times faster on the car; verified at INT8W tolerances.")
@click.option("--format", "fmt", type=click.Choice(["dir", "tar.gz"]), default="dir", show_default=True,
              help="tar.gz: write OUT.tar.gz holding the bundle instead of the folder.")
@click.option("--samples", default=300, show_default=True, type=click.IntRange(1),
              help="Observations the IR is checked on against the torch policy.")
@click.option("--force", is_flag=True, help="Replace an existing OUT.")
def export(run_dir: str, out: str, precision: str | None, fmt: str, samples: int, force: bool) -> None:
    """Export RUN's best checkpoint to an OpenVINO bundle, verified against the torch policy."""
    from racer.bundle.archive import archive_bundle, check_out_path, tmp_prefix
    from racer.export import export_run
    if fmt == "dir":
        bundle = export_run(run_dir, out, precision=precision or "FP32", samples=samples, overwrite=force)
        target = bundle
    else:
        target = _archive_path(out)
        check_out_path(target, force, sources=(Path(run_dir),))
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=tmp_prefix(target), suffix=".tmp", dir=target.parent) as tmp:
            name = target.name[:-len(".tar.gz")]
            bundle = export_run(run_dir, Path(tmp) / name, precision=precision or "FP32", samples=samples)
            _report(bundle)
            archive_bundle(bundle, target)
        console.print(f"wrote {target}")
        console.print(f"next: racer import {target} --out models/{name}")
        return
    _report(bundle)
    console.print(f"wrote {target}")
    console.print(f"next: racer evaluate {target} --laps 3")


def _report(bundle: Path) -> None:
    import json
    info = json.loads((bundle / "bundle.json").read_text())
    p = info["parity"]
    console.print(f"{info['precision']} IR, inputs {', '.join(info['sensors'])}; parity on {p['samples']} "
                  f"observations: {p['mismatches']} mismatches, max abs difference {p['max_abs_diff']:.2e}",
                  soft_wrap=True)


@click.command("import")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(), help="The bundle folder to create.")
@click.option("--sensors", default=None,
              help="Comma-separated sensors this car has; refuse a bundle that needs others.")
@click.option("--force", is_flag=True, help="Replace an existing OUT.")
@click.option("--max-size", default=MAX_BYTES, show_default=f"{MAX_BYTES / (1 << 30):g}GiB", type=ByteSize(),
              help="Refuse an archive that unpacks to more (e.g. 500MB, 2GiB, or bytes).")
@click.option("--max-files", default=MAX_MEMBERS, show_default=True, type=click.IntRange(1),
              help="Refuse an archive with more entries.")
def import_(archive: str, out: str, sensors: str | None, force: bool, max_size: int, max_files: int) -> None:
    """Unpack and validate a bundle archive (.tar.gz) made by `racer export --format tar.gz`; only
    bundle files are kept (others are skipped and named)."""
    from racer.bundle.archive import import_bundle
    names = tuple(s.strip() for s in sensors.split(",") if s.strip()) if sensors else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = import_bundle(archive, out, sensors=names, overwrite=force, max_bytes=max_size,
                               max_members=max_files)
    for w in caught:
        console.print(f"warning: {w.message}", soft_wrap=True)
    console.print(f"ok: {bundle}")


@click.command("policy")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("-n", "n", default=2000, show_default=True, type=click.IntRange(100))
def bench_policy(bundle: str, n: int) -> None:
    """Latency of one OpenVINO policy call (raw observation -> output) on one core."""
    from racer.bench import bench_policy_latency
    r = bench_policy_latency(bundle, n=n)
    console.print(f"{bundle}: p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms ({n} calls, one core)")

