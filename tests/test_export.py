"""Export to OpenVINO bundles: parity with torch, bundle.json, refusals, evaluation, archives, no torch."""
from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from bundle_copies import rehash
from click.testing import CliRunner

import racer.bundle.runtime
from racer.bundle.archive import archive_bundle, import_bundle
from racer.bundle.format import BundleError
from racer.bundle.hashes import sha256_file
from racer.bundle.runtime import BundlePolicy
from racer.cli import main
from racer.evaluate import evaluate
from racer.export import ExportError, export_run, record_observations, torch_outputs
from racer.garage import metadata_to_dict, new_metadata
from racer.reward import example_rewards
from racer.runs import Run, TrainConfig
from racer.train import train
from sim.observation import CONTRACT_VERSION

ROOT = Path(__file__).parent.parent
REWARD = example_rewards()["center_and_progress"]
SENSORS = ["FRONT_FACING_CAMERA", "LIDAR"]


def tiny_config(sensors, preset, steps=1024) -> TrainConfig:
    md = metadata_to_dict(new_metadata(tuple(sensors), preset, 1.0, "RACER_POOLED_SHALLOW"))
    return TrainConfig(reward=str(REWARD), metadata=md, track="oval", steps=steps, minutes=None, envs=2,
                       eval_every=10**9, checkpoint_every=512,
                       hyper={"n_steps": 128, "batch_size": 64, "n_epochs": 1})


@pytest.fixture(scope="module", autouse=True)
def ov_cache(tmp_path_factory):
    """A private compiled-model cache, and a fresh OpenVINO core that uses it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RACER_OV_CACHE", str(tmp_path_factory.mktemp("ov-cache")))
        mp.setattr(racer.bundle.runtime, "_CORE", None)
        yield


@pytest.fixture(scope="module")
def disc_run(tmp_path_factory) -> Run:
    run, _, _ = train(tmp_path_factory.mktemp("runs") / "disc", tiny_config(SENSORS, "discrete5"))
    return run


@pytest.fixture(scope="module")
def cont_run(tmp_path_factory) -> Run:
    run, _, _ = train(tmp_path_factory.mktemp("runs") / "cont",
                      tiny_config(["FRONT_FACING_CAMERA"], "continuous", steps=256))
    return run


@pytest.fixture(scope="module")
def disc_bundle(disc_run, tmp_path_factory) -> Path:
    return export_run(disc_run.path, tmp_path_factory.mktemp("models") / "disc")


def test_export_writes_a_verified_bundle(disc_run, disc_bundle):
    for f in ("model.xml", "model.bin", "model_metadata.json", "bundle.json", "checkpoint.zip"):
        assert (disc_bundle / f).is_file(), f
    assert not [p for p in disc_bundle.parent.iterdir() if p.name.startswith(".")]  # no temp dir left
    b = json.loads((disc_bundle / "bundle.json").read_text())
    cfg = json.loads((disc_run.path / "config.json").read_text())
    assert b["format"] == "racer-bundle" and b["bundle_version"] == 2 and b["contract_version"] == CONTRACT_VERSION
    assert b["files"] == {f: sha256_file(disc_bundle / f) for f in ("checkpoint.zip", "model.bin", "model.xml",
                                                                    "model_metadata.json")}
    assert b["sensors"] == SENSORS and b["output"] == "action"
    assert b["inputs"] == {"FRONT_FACING_CAMERA": [-1, 120, 160, 1], "LIDAR": [-1, 64]}
    assert b["action_space_type"] == "discrete" and len(b["action_space"]) == 5
    assert b["neural_network"] == "RACER_POOLED_SHALLOW" and b["track"] == "oval" and b["race"] == "time-trial"
    assert b["reward_sha256"] == cfg["reward_sha256"] and b["training_steps"] >= 1024
    assert b["precision"] == "FP32"
    assert set(b["versions"]) >= {"openvino", "torch", "stable_baselines3", "racer", "python"}
    assert b["parity"]["samples"] == 300 and b["parity"]["mismatches"] == 0
    assert b["parity"]["max_abs_diff"] < 1e-4 and b["created"]
    assert (disc_bundle / "checkpoint.zip").read_bytes() == disc_run.model_path("best").read_bytes()
    assert json.loads((disc_bundle / "model_metadata.json").read_text()) == \
        json.loads((disc_run.path / "model_metadata.json").read_text())


def test_ir_equals_torch_on_fresh_observations(disc_run, disc_bundle):
    from stable_baselines3 import PPO

    from racer.train import predict_batch
    model = PPO.load(disc_run.model_path("best"), device="cpu")
    cfg = disc_run.load_config()
    obs = record_observations(cfg, cfg.car(), predict_batch(model), 40, starts=3, seed=11)
    ref = torch_outputs(model.policy, obs, discrete=True)
    policy = BundlePolicy.load(disc_bundle, sensors=["LIDAR", "FRONT_FACING_CAMERA"])
    for o, r in zip(obs, ref):
        out = policy.outputs(o)
        assert out.shape == (5,) and np.max(np.abs(out - r)) < 1e-4
        assert policy.action(o) == int(np.argmax(out))
        steer, speed = policy.command(o)
        assert (steer, speed) == cfg.car().action_space.actions[policy.action(o)]
    np.testing.assert_allclose(policy.outputs_batch(obs), ref, atol=1e-4)


def test_continuous_and_fp16_exports(cont_run, disc_run, tmp_path):
    fp32 = export_run(cont_run.path, tmp_path / "cont32", samples=60)
    fp16 = export_run(cont_run.path, tmp_path / "cont16", precision="FP16", samples=60)
    b16 = json.loads((fp16 / "bundle.json").read_text())
    assert b16["precision"] == "FP16" and b16["parity"]["mismatches"] == 0
    assert b16["inputs"] == {"FRONT_FACING_CAMERA": [-1, 120, 160, 1]}
    assert (fp16 / "model.bin").stat().st_size < 0.6 * (fp32 / "model.bin").stat().st_size
    policy = BundlePolicy.load(fp32)
    obs = {"FRONT_FACING_CAMERA": np.full((120, 160, 1), 255, np.uint8)}
    assert policy.outputs(obs).shape == (2,)
    a = policy.action(obs)
    assert a.shape == (2,) and np.all(np.abs(a) <= 1.0)
    steer, speed = policy.command(obs)
    assert -30.0 <= steer <= 30.0 and 0.5 <= speed <= 1.0
    d16 = export_run(disc_run.path, tmp_path / "disc16", precision="FP16", samples=60)
    assert json.loads((d16 / "bundle.json").read_text())["parity"]["mismatches"] == 0


def test_compress_int8_keeps_each_output_within_its_rounding_bound():
    """int8 weights with a per-output scale: |y - x W^T| <= scale_j / 2 * sum|x| for every output j;
    small MatMuls are left alone."""
    import openvino as ov
    from openvino import opset13 as ops

    from racer.export import compress_int8
    rng = np.random.default_rng(0)
    big, small = rng.normal(size=(300, 400)).astype(np.float32), rng.normal(size=(8, 300)).astype(np.float32)
    big[7] *= 50.0  # one loud output channel must not coarsen the others
    x = ops.parameter([1, 400], np.float32)
    y = ops.matmul(ops.matmul(x, ops.constant(big), False, True), ops.constant(small), False, True)
    model = ov.Model([ops.matmul(x, ops.constant(big), False, True), y], [x])
    assert compress_int8(model) == 2  # the big weight feeds both MatMuls; `small` has 2,400 elements
    assert sum(n.get_type_name() == "Constant" and n.get_output_element_type(0) == ov.Type.i8
               for n in model.get_ordered_ops()) == 2
    xs = rng.normal(size=(1, 400)).astype(np.float32)
    got = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})({0: xs})[0][0]
    want = xs[0] @ big.T
    bound = np.abs(big).max(axis=1) / 127 / 2 * np.abs(xs).sum() + 1e-4
    assert np.all(np.abs(got - want) <= bound)
    assert np.abs(got - want).max() > 0  # it did quantize


def test_int8_weights_export_is_verified_smaller_and_loads(disc_run, disc_bundle, tmp_path):
    cli = main
    r = CliRunner().invoke(cli, ["export", str(disc_run.path), "--out", str(tmp_path / "i8"), "--int8-weights",
                                 "--samples", "100"])
    assert r.exit_code == 0, r.output
    b = json.loads((tmp_path / "i8" / "bundle.json").read_text())
    assert b["precision"] == "INT8W" and b["parity"]["mismatches"] == 0 and b["parity"]["samples"] == 100
    assert (tmp_path / "i8" / "model.bin").stat().st_size < 0.5 * (disc_bundle / "model.bin").stat().st_size
    fp32, int8 = BundlePolicy.load(disc_bundle), BundlePolicy.load(tmp_path / "i8")
    obs = {"FRONT_FACING_CAMERA": np.full((120, 160, 1), 90, np.uint8), "LIDAR": np.full(64, 0.5, np.float32)}
    np.testing.assert_allclose(int8.outputs(obs), fp32.outputs(obs), atol=2e-2)


def _copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "copy"))


def test_corrupt_model_bin_is_refused(disc_bundle, tmp_path):
    b = _copy(disc_bundle, tmp_path)
    data = (b / "model.bin").read_bytes()
    (b / "model.bin").write_bytes(data[:len(data) // 2])
    with pytest.raises(BundleError, match=r"model\.bin: sha256 differs from bundle\.json's; the file was damaged"):
        BundlePolicy.load(b)
    rehash(b)  # a consistent forgery reaches OpenVINO, which names the file
    with pytest.raises(BundleError, match=r"model\.bin: OpenVINO cannot read the model: .*weights"):
        BundlePolicy.load(b)


def test_wrong_contract_version_is_refused(disc_bundle, tmp_path):
    b = _copy(disc_bundle, tmp_path)
    info = json.loads((b / "bundle.json").read_text())
    info["contract_version"] = CONTRACT_VERSION + 98
    (b / "bundle.json").write_text(json.dumps(info))
    with pytest.raises(BundleError, match=rf"contract v{CONTRACT_VERSION + 98}, this racer speaks v{CONTRACT_VERSION}"):
        BundlePolicy.load(b)


def test_missing_model_xml_and_bad_json_are_refused(disc_bundle, tmp_path):
    b = _copy(disc_bundle, tmp_path)
    (b / "model.xml").unlink()
    with pytest.raises(BundleError, match=r"model\.xml: missing"):
        BundlePolicy.load(b)
    (b / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"bundle\.json: invalid JSON at line 1"):
        BundlePolicy.load(b)


def test_sensor_mismatch_is_refused(disc_bundle):
    with pytest.raises(BundleError) as exc:
        BundlePolicy.load(disc_bundle, sensors=["STEREO_CAMERAS"])
    assert "STEREO_CAMERAS" in str(exc.value) and "'FRONT_FACING_CAMERA', 'LIDAR'" in str(exc.value)


def test_ir_inputs_must_match_bundle_json(disc_bundle, tmp_path):
    b = _copy(disc_bundle, tmp_path)
    info = json.loads((b / "bundle.json").read_text())
    info["inputs"]["LIDAR"] = [-1, 8]
    (b / "bundle.json").write_text(json.dumps(info))
    with pytest.raises(BundleError, match=r"model\.xml inputs .* do not match bundle\.json inputs"):
        BundlePolicy.load(b)


def test_parity_failure_leaves_no_bundle(disc_run, tmp_path, monkeypatch):
    import racer.export as ex
    real = ex.policy_module

    def shifted_module(policy, sensors, discrete):
        import torch

        class Shifted(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = real(policy, sensors, discrete)

            def forward(self, *inputs):
                return torch.roll(self.inner(*inputs), 1, dims=1)  # argmax always moves
        return Shifted().eval()

    monkeypatch.setattr(ex, "policy_module", shifted_module)
    with pytest.raises(ExportError, match=r"\d+ of 50 samples \(argmax differs\); worst sample #\d+"):
        export_run(disc_run.path, tmp_path / "models" / "bad", samples=50)
    assert list((tmp_path / "models").iterdir()) == []


def test_export_deletes_what_a_killed_export_left(disc_run, tmp_path):
    import subprocess
    proc = subprocess.Popen(["true"])
    proc.wait()
    (tmp_path / f".m.{proc.pid}.k1ll3d.tmp").mkdir()  # a killed export's folder: its process is gone
    (tmp_path / f".m.{proc.pid}.k1ll3d.tmp" / "model.bin").write_bytes(b"half")
    export_run(disc_run.path, tmp_path / "m", samples=10)
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_evaluating_the_bundle_gives_the_runs_laps(disc_run, disc_bundle, tmp_path):
    a = evaluate(disc_run.path, laps=1, starts=2, out_dir=tmp_path / "run-eval", seed=3)
    b = evaluate(disc_bundle, laps=1, starts=2, out_dir=tmp_path / "bundle-eval", seed=3)
    key = [[(l.time_s, l.status, l.completion, l.resets) for l in r] for r in a.laps]
    assert key == [[(l.time_s, l.status, l.completion, l.resets) for l in r] for r in b.laps]
    assert all(r for r in a.laps)


def test_tar_gz_export_then_import_round_trip(disc_run, disc_bundle, tmp_path):
    cli = main
    runner = CliRunner()
    r = runner.invoke(cli, ["export", str(disc_run.path), "--out", str(tmp_path / "m"), "--format", "tar.gz",
                            "--samples", "50"])
    assert r.exit_code == 0, r.output
    archive = tmp_path / "m.tar.gz"
    assert archive.is_file() and not (tmp_path / "m").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m.tar.gz"]
    r = runner.invoke(cli, ["import", str(archive), "--out", str(tmp_path / "imported")])
    assert r.exit_code == 0, r.output
    policy = BundlePolicy.load(tmp_path / "imported")
    obs = {"FRONT_FACING_CAMERA": np.zeros((120, 160, 1), np.uint8), "LIDAR": np.ones(64, np.float32)}
    np.testing.assert_allclose(policy.outputs(obs), BundlePolicy.load(disc_bundle).outputs(obs), atol=1e-6)
    r = runner.invoke(cli, ["import", str(archive), "--out", str(tmp_path / "car"), "--sensors", "STEREO_CAMERAS"])
    assert r.exit_code == 2 and "STEREO_CAMERAS" in r.output and not (tmp_path / "car").exists()


def test_force_replaces_only_a_bundle_and_never_the_source(disc_run, disc_bundle, tmp_path):
    runs = tmp_path / "runs"
    run = shutil.copytree(disc_run.path, runs / "a")
    before = sorted(p.relative_to(runs) for p in runs.rglob("*"))
    for out in (run, runs):  # the run itself, and the folder of runs
        with pytest.raises(ExportError, match=rf"refusing to replace {out}: it holds {run}, which is being read"):
            export_run(run, out, samples=10, overwrite=True)
    notes = tmp_path / "notes"
    (notes / "mine.txt").parent.mkdir()
    (notes / "mine.txt").write_text("keep me")
    with pytest.raises(ExportError, match=rf"refusing to replace {notes}: it is not a bundle"):
        export_run(run, notes, samples=10, overwrite=True)
    assert sorted(p.relative_to(runs) for p in runs.rglob("*")) == before and (notes / "mine.txt").is_file()
    bundle = shutil.copytree(disc_bundle, tmp_path / "models" / "m")
    assert export_run(run, bundle, samples=10, overwrite=True) == bundle  # an earlier bundle is replaced

    archive = archive_bundle(bundle, bundle / "m.tar.gz")  # the archive inside the bundle it would replace
    with pytest.raises(BundleError, match="it holds .*m.tar.gz, which is being read"):
        import_bundle(archive, bundle, overwrite=True)
    with pytest.raises(BundleError, match=rf"refusing to replace {notes}: it is not a bundle"):
        import_bundle(archive, notes, overwrite=True)
    cli = main
    (tmp_path / "paper.tar.gz").write_bytes(b"not a bundle archive")
    r = CliRunner().invoke(cli, ["export", str(run), "--out", str(tmp_path / "paper.tar.gz"), "--format", "tar.gz",
                                 "--force"])
    assert r.exit_code == 2 and "it is not a bundle archive" in r.output, r.output
    assert (tmp_path / "paper.tar.gz").read_bytes() == b"not a bundle archive"


def _tar(path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize("name,kind", [("../evil.txt", "file"), ("/tmp/evil.txt", "file"),
                                       ("m/link", "symlink")])
def test_import_refuses_unsafe_archives(tmp_path, name, kind):
    info = tarfile.TarInfo(name)
    if kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        data = None
    else:
        data = b"x"
        info.size = 1
    archive = _tar(tmp_path / "a.tar.gz", [(info, data)])
    with pytest.raises(BundleError, match="refused"):
        import_bundle(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz"]


def test_import_refuses_an_invalid_bundle_with_the_reason(disc_bundle, tmp_path):
    b = _copy(disc_bundle, tmp_path)
    info = json.loads((b / "bundle.json").read_text())
    info["contract_version"] = CONTRACT_VERSION + 1
    (b / "bundle.json").write_text(json.dumps(info))
    (b / "checkpoint.zip").unlink()  # not needed to load; keeps the archive small
    archive = archive_bundle(b, tmp_path / "old.tar.gz")
    with pytest.raises(BundleError, match=r"old\.tar\.gz!copy/bundle\.json: .*this racer speaks"):
        import_bundle(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bench_policy_latency(disc_bundle):
    import os

    from racer.bench import bench_policy_latency
    before = os.sched_getaffinity(0)
    r = bench_policy_latency(disc_bundle, n=200)
    assert 0 < r["p50_ms"] <= r["p99_ms"] < 1000
    assert os.sched_getaffinity(0) == before
