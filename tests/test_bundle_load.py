"""BundlePolicy.load, the one loader of evaluate, import, the car and the league: every file hashed,
only known files, one action space, a track inside the bundle, and nothing unpickled (issue 9,
items 3 and 5).  Runs on copies of tests/data/bundle-oval: no training."""
from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path

import pytest
from bundle_copies import ORIGINAL, copy_bundle, read_json, rehash, write_json

import racer.bundle.runtime
from racer.bundle.archive import archive_bundle, import_bundle
from racer.bundle.format import BundleError
from racer.bundle.hashes import sha256_file
from racer.bundle.runtime import BundlePolicy
from racer.evaluate import evaluate, load_policy

KNOWN = {"bundle.json", "model.xml", "model.bin", "model_metadata.json"}


@pytest.fixture(autouse=True)
def ov_cache(tmp_path_factory, monkeypatch):
    """A private compiled-model cache, and a fresh OpenVINO core that uses it."""
    monkeypatch.setenv("RACER_OV_CACHE", str(tmp_path_factory.getbasetemp() / "ov-cache"))
    monkeypatch.setattr(racer.bundle.runtime, "_CORE", None)


@pytest.fixture
def bundle(tmp_path) -> Path:
    return copy_bundle(tmp_path / "oval")


# ---- item 3: every file hashed, only known files ------------------------------------------------

def test_the_test_bundle_hashes_every_file():
    info = read_json(ORIGINAL / "bundle.json")
    assert info["bundle_version"] == 2
    files = {p.name for p in ORIGINAL.iterdir()}
    assert files == KNOWN  # the car-test bundle carries no checkpoint (scripts/make_test_bundle.sh strips it)
    assert {n: sha256_file(ORIGINAL / n) for n in files - {"bundle.json"}}.items() <= info["files"].items()
    assert set(info["files"]) <= files | {"checkpoint.zip"}
    BundlePolicy.load(ORIGINAL)


def test_a_version_1_bundle_is_refused_with_what_to_do(bundle):
    rehash(bundle, bundle_version=1)
    with pytest.raises(BundleError, match=r"bundle\.json: bundle_version 1 .*re-export it with `racer export"):
        BundlePolicy.load(bundle)


@pytest.mark.parametrize("extra", ["notes.txt", "payload.py", "tracks/oval.npy", "sub/model.xml", ".hidden"])
def test_an_unknown_file_is_refused_naming_it(bundle, extra):
    (bundle / extra).parent.mkdir(exist_ok=True)
    (bundle / extra).write_bytes(b"anything")
    rehash(bundle)  # even listed with its hash
    with pytest.raises(BundleError, match=rf"{bundle / extra}: not a bundle file"):
        BundlePolicy.load(bundle)


def test_a_link_is_refused(bundle, tmp_path):
    (tmp_path / "elsewhere.bin").write_bytes((bundle / "model.bin").read_bytes())
    (bundle / "model.bin").unlink()
    (bundle / "model.bin").symlink_to(tmp_path / "elsewhere.bin")
    rehash(bundle)
    with pytest.raises(BundleError, match=rf"{bundle / 'model.bin'}: a link"):
        BundlePolicy.load(bundle)


def test_a_changed_or_unlisted_file_is_refused_naming_it(bundle):
    (bundle / "model_metadata.json").write_text((bundle / "model_metadata.json").read_text() + " ")
    with pytest.raises(BundleError, match=rf"{bundle / 'model_metadata.json'}: sha256 differs from bundle\.json"):
        BundlePolicy.load(bundle)
    rehash(bundle)
    BundlePolicy.load(bundle)
    (bundle / "checkpoint.zip").write_bytes(b"PK")  # present but not listed
    with pytest.raises(BundleError, match=rf"{bundle / 'checkpoint.zip'}: not listed in bundle\.json"):
        BundlePolicy.load(bundle)
    info = rehash(bundle)
    BundlePolicy.load(bundle)  # a listed checkpoint that matches
    (bundle / "checkpoint.zip").write_bytes(b"PK!")
    with pytest.raises(BundleError, match=r"checkpoint\.zip: sha256 differs"):
        BundlePolicy.load(bundle)
    (bundle / "checkpoint.zip").unlink()  # listed but stripped (as the car-test bundle is): fine
    BundlePolicy.load(bundle)
    (bundle / "model_metadata.json").unlink()
    write_json(bundle / "bundle.json", {**info, "files": {k: v for k, v in info["files"].items()
                                                          if k != "model_metadata.json"}})
    with pytest.raises(BundleError, match=rf"{bundle / 'model_metadata.json'}: missing"):
        BundlePolicy.load(bundle)


def test_a_bundle_json_without_file_hashes_is_refused(bundle):
    info = rehash(bundle)
    del info["files"]["model.bin"]
    write_json(bundle / "bundle.json", info)
    with pytest.raises(BundleError, match=rf"{bundle / 'model.bin'}: not listed in bundle\.json"):
        BundlePolicy.load(bundle)


class _Payload:
    """Unpickling this creates the marker file: what a stranger's checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def _malicious_checkpoint(path: Path, marker: Path) -> Path:
    """An SB3-style checkpoint whose "data" holds a cloudpickled payload, as PPO.load would read it."""
    import cloudpickle
    blob = base64.b64encode(cloudpickle.dumps(_Payload(marker))).decode()
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data", json.dumps({"policy_class": {":type:": "x", ":serialized:": blob}}))
    return path


def test_the_malicious_checkpoint_does_run_code_when_unpickled(tmp_path):
    """The payload the next test relies on is live: stable-baselines3's loader runs it."""
    from stable_baselines3.common.save_util import load_from_zip_file
    marker = tmp_path / "pwned"
    load_from_zip_file(_malicious_checkpoint(tmp_path / "c.zip", marker))
    assert marker.exists()


def test_nothing_of_a_bundle_is_unpickled_by_load_evaluate_or_import(bundle, tmp_path):
    marker = tmp_path / "pwned"
    _malicious_checkpoint(bundle / "checkpoint.zip", marker)
    rehash(bundle)  # a consistent bundle: accepted, and its checkpoint never opened
    BundlePolicy.load(bundle)
    report = evaluate(bundle, laps=1, out_dir=tmp_path / "eval")
    assert report.laps and not marker.exists()
    imported = import_bundle(archive_bundle(bundle, tmp_path / "b.tar.gz"), tmp_path / "imported")
    assert (imported / "checkpoint.zip").is_file() and not marker.exists()
    (bundle / "checkpoint.zip").write_bytes((bundle / "checkpoint.zip").read_bytes() + b"\0")  # mismatching
    with pytest.raises(BundleError, match="checkpoint.zip: sha256 differs"):
        load_policy(bundle)
    with pytest.raises(BundleError, match="checkpoint.zip: sha256 differs"):
        import_bundle(archive_bundle(bundle, tmp_path / "c.tar.gz"), tmp_path / "imported2")
    assert not marker.exists()


# ---- item 5: one action space ------------------------------------------------------------------

def _edit_metadata(bundle: Path, **changes) -> None:
    write_json(bundle / "model_metadata.json", {**read_json(bundle / "model_metadata.json"), **changes})


def test_an_edited_metadata_is_refused_by_its_hash(bundle):
    md = read_json(bundle / "model_metadata.json")
    _edit_metadata(bundle, action_space=[{**a, "speed": 4.0} for a in md["action_space"]])
    for load in (BundlePolicy.load, load_policy):
        with pytest.raises(BundleError, match=r"model_metadata\.json: sha256 differs"):
            load(bundle)


def test_the_metadata_must_agree_with_bundle_json(bundle):
    three = [{"steering_angle": s, "speed": 1.0} for s in (-30.0, 0.0, 30.0)]
    _edit_metadata(bundle, action_space=three)
    rehash(bundle)  # consistent hashes: the disagreement itself is refused, naming both values
    with pytest.raises(BundleError) as exc:
        load_policy(bundle)
    msg = str(exc.value)
    assert "model_metadata.json: action_space" in msg and "bundle.json" in msg
    assert "3 actions" in msg and "10 actions" in msg
    copy = copy_bundle(bundle.parent / "lidar")
    _edit_metadata(copy, sensor=["LIDAR"])
    rehash(copy)
    with pytest.raises(BundleError, match=r"model_metadata\.json: sensor \['LIDAR'\] .*bundle\.json.*FRONT_FACING"):
        BundlePolicy.load(copy)
    copy = copy_bundle(bundle.parent / "cont")
    _edit_metadata(copy, action_space_type="continuous", action_space={"steering_angle": {"low": -30, "high": 30},
                                                                       "speed": {"low": 0.5, "high": 1.0}})
    rehash(copy)
    with pytest.raises(BundleError, match=r"action_space_type 'continuous' .*bundle\.json.*'discrete'"):
        BundlePolicy.load(copy)


def test_a_three_action_bundle_for_a_ten_output_network_is_refused(bundle):
    three = [{"steering_angle": s, "speed": 1.0} for s in (-30.0, 0.0, 30.0)]
    _edit_metadata(bundle, action_space=three)
    rehash(bundle, action_space=three)  # both files agree, consistently hashed: the IR does not
    with pytest.raises(BundleError, match="model.xml output has 10 values, the discrete action space needs 3"):
        BundlePolicy.load(bundle)


def test_evaluate_drives_with_the_bundles_action_space(bundle):
    predict, car, _ = load_policy(bundle)
    assert car.action_space == predict.__self__.actions  # the policy's own, from bundle.json


# ---- a bundle's track stays inside it ----------------------------------------------------------

@pytest.mark.parametrize("track", ["/etc/passwd", "../oval.npy", "tracks/../../x.npy", "/tmp/t.npy", "sub/t.npy",
                                   "tracks/missing.npy", "..", ""])
def test_a_track_outside_the_bundle_is_refused(bundle, track):
    rehash(bundle, track=track)
    with pytest.raises(BundleError, match=r"bundle\.json: track"):
        BundlePolicy.load(bundle)


def test_a_bundled_track_file_is_used(bundle):
    from sim.track import TRACK_DIR
    (bundle / "tracks").mkdir()
    (bundle / "tracks" / "mine.npy").write_bytes((TRACK_DIR / "oval.npy").read_bytes())
    rehash(bundle, track="tracks/mine.npy")
    _, _, cfg = load_policy(bundle)
    assert cfg.track == str(bundle / "tracks" / "mine.npy")


# ---- the compiled-model cache ------------------------------------------------------------------

def test_racer_cache_dir_moves_the_openvino_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("RACER_OV_CACHE")
    monkeypatch.setenv("RACER_CACHE_DIR", str(tmp_path / "cache"))
    BundlePolicy.load(ORIGINAL)
    [ov_dir] = (tmp_path / "cache").iterdir()
    assert ov_dir.name.startswith("ov-") and any(ov_dir.iterdir())  # compiled blobs are there
    monkeypatch.setenv("RACER_OV_CACHE", "")  # off
    assert racer.bundle.runtime.cache_dir() is None
    monkeypatch.setenv("RACER_OV_CACHE", str(tmp_path / "ov"))
    assert racer.bundle.runtime.cache_dir() == tmp_path / "ov"
