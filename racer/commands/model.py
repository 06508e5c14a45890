"""`racer export`, `racer import` and `racer bench policy`: trained runs as verified OpenVINO bundles."""
from __future__ import annotations

import tempfile
from pathlib import Path

import click
from rich.console import Console

console = Console()


def _archive_path(out: str) -> Path:
    return Path(out) if out.endswith(".tar.gz") else Path(f"{out}.tar.gz")


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
    from racer.bundle.archive import archive_bundle, check_out_path
    from racer.bundle.format import BundleError
    from racer.export import ExportError, export_run
    from racer.runs import TrainError
    try:
        if fmt == "dir":
            bundle = export_run(run_dir, out, precision=precision or "FP32", samples=samples, overwrite=force)
            target = bundle
        else:
            target = _archive_path(out)
            check_out_path(target, force, sources=(Path(run_dir),))
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".racer-export-", dir=target.parent) as tmp:
                name = target.name[:-len(".tar.gz")]
                bundle = export_run(run_dir, Path(tmp) / name, precision=precision or "FP32", samples=samples)
                _report(bundle)
                archive_bundle(bundle, target)
            console.print(f"wrote {target}")
            console.print(f"next: racer import {target} --out models/{name}")
            return
    except (ExportError, BundleError, TrainError) as exc:
        raise click.ClickException(str(exc)) from None
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
def import_(archive: str, out: str, sensors: str | None, force: bool) -> None:
    """Unpack and validate a bundle archive (.tar.gz) made by `racer export --format tar.gz`."""
    from racer.bundle.archive import import_bundle
    from racer.bundle.format import BundleError
    names = tuple(s.strip() for s in sensors.split(",") if s.strip()) if sensors else None
    try:
        bundle = import_bundle(archive, out, sensors=names, overwrite=force)
    except BundleError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"ok: {bundle}")


@click.command("policy")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("-n", "n", default=2000, show_default=True, type=click.IntRange(100))
def bench_policy(bundle: str, n: int) -> None:
    """Latency of one OpenVINO policy call (raw observation -> output) on one core."""
    from racer.bench import bench_policy_latency
    from racer.bundle.format import BundleError
    try:
        r = bench_policy_latency(bundle, n=n)
    except BundleError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"{bundle}: p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms ({n} calls, one core)")

