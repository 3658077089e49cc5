"""Model bundles: complete, verified, atomic; every failure names the file at fault."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from nlp.generation.bundle import (
    BundleError,
    ChecksumError,
    load_bundle,
    read_metadata,
    save_bundle,
    store_part,
)


@pytest.fixture
def bundle_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(tiny_bundle, target)
    return target


def test_bundle_holds_everything_and_loads(tiny_bundle: Path) -> None:
    names = {p.name for p in tiny_bundle.iterdir()}
    assert {"config.json", "vocab.txt", "tokenizer", "model.weights.h5", "metadata.json"} <= names
    meta = read_metadata(tiny_bundle)
    assert meta["versions"]["tensorflow"] and meta["versions"]["keras"]
    assert meta["corpus"]["train"][0]["sha256"]
    assert "valid_loss" in meta["metrics"]
    bundle = load_bundle(tiny_bundle.parent)  # a run directory resolves to its model/
    assert bundle.path == tiny_bundle
    assert len(bundle.codec.vocab) == bundle.config.model.vocab_size


@pytest.mark.parametrize("name", ["vocab.txt", "model.weights.h5", "config.json"])
def test_missing_file_is_named(bundle_copy: Path, name: str) -> None:
    (bundle_copy / name).unlink()
    with pytest.raises(BundleError, match=f"{re.escape(name)}: missing"):
        load_bundle(bundle_copy)


def test_corrupt_file_is_named(bundle_copy: Path) -> None:
    with (bundle_copy / "vocab.txt").open("a", encoding="utf-8") as handle:
        handle.write("extra\n")
    with pytest.raises(BundleError, match=r"vocab.txt: corrupt"):
        load_bundle(bundle_copy)


def test_truncated_weights_are_named(bundle_copy: Path) -> None:
    weights = bundle_copy / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(BundleError, match=r"model.weights.h5: corrupt"):
        load_bundle(bundle_copy)


def test_other_bundle_format_is_refused(bundle_copy: Path) -> None:
    meta_path = bundle_copy / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["format"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="bundle format 99"):
        load_bundle(bundle_copy)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such model directory"):
        load_bundle(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"metadata\.json: missing"):
        load_bundle(tmp_path / "empty")


def test_failed_save_keeps_the_previous_bundle(tiny_bundle: Path, tmp_path: Path) -> None:
    good = load_bundle(tiny_bundle)
    target = tmp_path / "model"
    save_bundle(target, good.config, good.codec, good.model, {"note": "first"})

    class Exploding:
        def save_weights(self, path: Path) -> None:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_bundle(target, good.config, good.codec, Exploding(), {"note": "second"})
    assert read_metadata(target)["note"] == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary left behind


def test_a_kept_part_comes_with_its_checksums_and_a_corrupt_one_is_refused(
    bundle_copy: Path, tmp_path: Path
) -> None:
    def write(directory: Path) -> None:
        (directory / "deep").mkdir(parents=True)
        (directory / "deep" / "rows.txt").write_text("one\n", "utf-8")

    store_part(bundle_copy, "extra", write)
    good = load_bundle(bundle_copy)
    target = tmp_path / "next"
    save_bundle(target, good.config, good.codec, good.model, keep=("extra", "absent"),
                keep_from=bundle_copy)
    assert (target / "extra" / "deep" / "rows.txt").read_text("utf-8") == "one\n"
    assert read_metadata(target)["files"]["extra/deep/rows.txt"] == \
        good.metadata["files"]["extra/deep/rows.txt"]
    kept = bundle_copy / "extra" / "deep" / "rows.txt"
    kept.unlink()  # not written in place: the new bundle's link shares its data
    kept.write_text("two\n", "utf-8")
    with pytest.raises(ChecksumError, match=r"rows.txt: corrupt"):
        save_bundle(target, good.config, good.codec, good.model, keep=("extra",),
                    keep_from=bundle_copy)
    assert read_metadata(target)["files"]["extra/deep/rows.txt"]  # the bundle stays as it was
