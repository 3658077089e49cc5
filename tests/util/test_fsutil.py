"""The one atomic-write mechanism (`nlp.util.fsutil`): content reaches the disk (fsync) before the
rename publishes it, the rename is made durable (fsync of the directory), a failure leaves
the old version, and changing one file of a bundle copies none of the others."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.generation.bundle import WEIGHTS_FILE, read_metadata, save_bundle, store_decoding
from nlp.generation.codec import TextCodec
from nlp.generation.decode_settings import DECODING_FILE, DecodeSettings
from nlp.util import fsutil
from nlp.util.config import ExperimentConfig


def _record(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Calls to fsync (with the path synced) and replace, in order."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def replace(source: Any, destination: Any) -> None:
        events.append(("replace", str(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(fsutil.os, "fsync", fsync)
    monkeypatch.setattr(fsutil.os, "replace", replace)
    return events


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name descriptors")
def test_a_file_is_synced_then_renamed_then_its_directory_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _record(monkeypatch)
    target = tmp_path / "settings.json"
    fsutil.write_text_atomic(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync"]
    assert events[0][1].startswith(str(tmp_path / ".settings.json."))  # the temporary file
    assert events[1][1] == str(target)
    assert events[2][1] == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name descriptors")
def test_a_directory_is_synced_file_by_file_before_it_is_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _record(monkeypatch)
    target = tmp_path / "bundle"
    with fsutil.atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("a")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text("b")
    published = [i for i, (kind, path) in enumerate(events) if path == str(target)]
    assert len(published) == 1 and events[published[0]][0] == "replace"
    synced_before = {Path(path).name for kind, path in events[: published[0]] if kind == "fsync"}
    assert {"a.txt", "b.txt", "sub"} <= synced_before
    assert events[-1] == ("fsync", str(tmp_path))  # the rename itself made durable
    assert (target / "sub" / "b.txt").read_text() == "b"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "pairs.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), fsutil.atomic_file(target) as handle:
        handle.write("half of the new")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.jsonl"]


class _Weights:
    def save_weights(self, path: Path) -> None:
        Path(path).write_bytes(b"weights" * 1000)


def test_changing_one_file_of_a_bundle_copies_none_of_the_others(tmp_path: Path) -> None:
    """The weights of the new bundle are the old file's data (a hard link), and the old
    bundle's files were never written through the link."""
    config = ExperimentConfig()
    codec = TextCodec.fit(config, [Pair("hello there", "hi")])
    bundle = tmp_path / "model"
    save_bundle(bundle, config, codec, _Weights())
    weights = (bundle / WEIGHTS_FILE).stat()
    store_decoding(bundle, DecodeSettings(DecodeOptions(beam_size=3), "tuned"))
    assert (bundle / WEIGHTS_FILE).stat().st_ino == weights.st_ino
    assert '"beam_size": 3' in (bundle / DECODING_FILE).read_text()
    read_metadata(bundle)  # every checksum matches its file


def test_same_path_sees_one_file_under_two_names(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert fsutil.same_path("out.jsonl", "./out.jsonl")  # neither exists yet
    assert fsutil.same_path("out.jsonl", tmp_path / "sub" / ".." / "out.jsonl")
    assert not fsutil.same_path("out.jsonl", "valid.jsonl")
    (tmp_path / "out.jsonl").write_text("x", "utf-8")
    os.link(tmp_path / "out.jsonl", tmp_path / "hard.jsonl")
    (tmp_path / "soft.jsonl").symlink_to(tmp_path / "out.jsonl")
    assert fsutil.same_path("hard.jsonl", "out.jsonl")
    assert fsutil.same_path("soft.jsonl", "./out.jsonl")
    assert not fsutil.same_path("out.jsonl", "other.jsonl")
