"""Model bundles: one directory holding everything needed to use or retrain a model.

Layout: `config.json`, `vocab.txt`, `tokenizer/`, `model.weights.h5`, `decoding.json` (the
recommended decode options, see `nlp.generation.decode_settings`; absent in older bundles),
`companions.json` (optional: the LM / reverse bundles MMI re-ranking uses, `store_companions`),
`metadata.json` (bundle format, library versions, corpus hashes, metrics, and the sha256 of
every file). Written atomically, also when only the decoding settings or the companions change
(`store_decoding`, `store_companions`); loading
verifies the checksums so a truncated copy or a hand-edited vocabulary is caught with the name
of the file instead of producing garbage replies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from nlp import __version__
from nlp.generation.codec import TextCodec
from nlp.generation.decode_settings import DECODING_FILE, DecodeSettings
from nlp.generation.retrieved_fit import RETRIEVED_FIT
from nlp.util.config import ConfigError, ExperimentConfig
from nlp.util.fsutil import atomic_directory, link_or_copy, link_or_copy_tree, recover

BUNDLE_FORMAT = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
COMPANIONS_FILE = "companions.json"
COMPANION_KINDS = ("lm", "reverse")  # which kinds of companion a chat bundle can name
MODEL_SUBDIR = "model"  # a training run directory keeps its best bundle here
_LIBRARIES = ("tensorflow", "keras", "numpy", "jieba", "sentencepiece")

log = logging.getLogger(__name__)


class BundleError(ValueError):
    """A bundle that is missing, incomplete, corrupt or from an incompatible version."""


class BundleNotFoundError(BundleError):
    """No bundle at the path: no such directory, or one without `metadata.json`."""


class ChecksumError(BundleError):
    """A file the bundle lists is missing or its sha256 differs from `metadata.json`'s: a
    truncated copy or a hand edit."""


@dataclass
class Bundle:
    config: ExperimentConfig
    codec: TextCodec
    model: Any  # nlp.model.Seq2Seq; typed loosely so importing this module stays light
    metadata: dict[str, Any]
    path: Path
    decoding: DecodeSettings | None = None  # the bundle's recommended decode options
    companions: dict[str, Path] = field(default_factory=dict)  # kind -> companion bundle

    def part(self, name: str) -> Path | None:
        """The bundle's file or sub-directory `name` (its retrieval index, its dual encoder)
        if the bundle lists it, else None."""
        return bundle_part(self.path, self.metadata, name)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "s2s": __version__}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            if name == "tensorflow":
                versions[name] = importlib_metadata.version("tensorflow-cpu")
    return versions


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(directory: Path, known: dict[str, str]) -> dict[str, str]:
    """The sha256 of every file in `directory` but metadata.json, taken from `known` for
    the files it names (linked from a verified bundle), computed for the others."""
    manifest = {}
    for path in sorted(directory.rglob("*")):
        name = str(path.relative_to(directory))
        if path.is_file() and path.name != METADATA_FILE:
            manifest[name] = known[name] if name in known else file_sha256(path)
    return manifest


def save_bundle(
    directory: Path,
    config: ExperimentConfig,
    codec: TextCodec,
    model: Any,
    extra: dict[str, Any] | None = None,
    decoding: DecodeSettings | None = None,
    keep: Collection[str] = (),
    keep_from: Path | None = None,
) -> None:
    """Write the bundle into a temporary sibling and rename it into place.

    `keep`: the parts (`Bundle.part`) of the bundle at `keep_from` (default: the one at
    `directory`, which the new one replaces) that the new bundle holds as they are, so that
    what a bundle gained after training (its index, a tuned decoding.json) outlives each
    better epoch's weights. Their files are linked, not copied (`link_or_copy`), and keep
    the checksums they are verified against: a corrupt part is refused, not given fresh
    checksums, and the rest of that bundle (its weights) is not read. A kept decoding.json
    stands instead of `decoding`."""
    source, kept = _kept_files(keep_from or directory, keep)
    with atomic_directory(directory) as tmp:
        for name in kept:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(source / name, tmp / name)
        config.save(tmp / CONFIG_FILE)
        codec.save(tmp)
        model.save_weights(tmp / WEIGHTS_FILE)
        if decoding is not None and not (tmp / DECODING_FILE).exists():
            (tmp / DECODING_FILE).write_text(decoding.to_json(), "utf-8")
        meta = {
            "format": BUNDLE_FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": library_versions(),
            **(extra or {}),
        }
        _write_metadata(tmp, meta, kept)


def _kept_files(directory: Path, names: Collection[str]) -> tuple[Path, dict[str, str]]:
    """The bundle at `directory` and the files (with their verified sha256) of its parts
    `names`; none without a bundle there (a run whose first better epoch is yet to come)."""
    directory = recover(Path(directory))
    if not names or not directory.is_dir():
        return directory, {}
    meta = read_metadata(directory, only=names)
    return directory, part_files(meta, names)


def _write_metadata(
    directory: Path, meta: dict[str, Any], known: dict[str, str] | None = None
) -> None:
    """metadata.json with the sha256 of every other file now in `directory` (`_manifest`)."""
    meta = {**meta, "files": _manifest(directory, known or {})}
    (directory / METADATA_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), "utf-8")


def store_decoding(path: Path, settings: DecodeSettings) -> Path:
    """Replace the bundle's recommended decode options, atomically; returns the bundle dir.
    The bundle's own retrieved-or-generated gate (`details[RETRIEVED_FIT]`, from rated
    sheets) stays unless `settings` bring one: no decoding choice (the tuner's, an index's
    defaults) decides it."""
    directory = resolve(Path(path))
    before = read_decoding(directory, read_metadata(directory))
    if before is not None and RETRIEVED_FIT in before.details \
            and RETRIEVED_FIT not in settings.details:
        settings = dataclasses.replace(
            settings, details={**settings.details, RETRIEVED_FIT: before.details[RETRIEVED_FIT]})
    return _replace_file(directory, DECODING_FILE, settings.to_json())


def store_companions(path: Path, companions: dict[str, Path]) -> Path:
    """Name the bundle's MMI companions (kind "lm" / "reverse" -> bundle), atomically.

    Why in the bundle: `--rerank mmi-antilm` is useless without its LM, and a tuned default
    that re-ranks must find it wherever the chat bundle is served from. Paths are stored
    relative to the chat bundle when they can be (a run directory copied with its companions
    keeps working), absolute otherwise; existing entries of other kinds are kept.
    """
    directory = resolve(Path(path))
    unknown = set(companions) - set(COMPANION_KINDS)
    if unknown:
        raise ValueError(f"unknown companion kinds {sorted(unknown)}; known: {COMPANION_KINDS}")
    named = {kind: str(p) for kind, p in read_companions(directory, read_metadata(directory),
                                                         absolute=False).items()}
    for kind, companion in companions.items():
        target = resolve(Path(companion)).resolve()
        try:
            named[kind] = os.path.relpath(target, directory.resolve())
        except ValueError:  # another drive (Windows)
            named[kind] = str(target)
    return _replace_file(directory, COMPANIONS_FILE, json.dumps(named, indent=2) + "\n")


def read_companions(
    directory: Path, meta: dict[str, Any], *, absolute: bool = True
) -> dict[str, Path]:
    """The companions the verified bundle names (`meta` from `read_metadata`); {} if none.
    Relative paths are taken from the bundle directory unless `absolute` is False."""
    if COMPANIONS_FILE not in meta.get("files", {}):
        return {}
    file = directory / COMPANIONS_FILE
    try:
        raw = json.loads(file.read_text("utf-8"))
        if not isinstance(raw, dict) or not set(raw) <= set(COMPANION_KINDS):
            raise ValueError(f"expected an object with keys among {COMPANION_KINDS}")
        named = {str(kind): Path(str(value)) for kind, value in raw.items()}
    except (json.JSONDecodeError, ValueError) as exc:
        raise BundleError(f"{file}: unusable companions: {exc}") from exc
    if not absolute:
        return named
    return {kind: p if p.is_absolute() else directory / p for kind, p in named.items()}


def _replace_file(path: Path, name: str, text: str) -> Path:
    """Replace one small file of a bundle, atomically; returns the bundle dir."""

    def write(target: Path) -> None:
        target.write_text(text, "utf-8")

    return store_part(path, name, write)


def store_part(path: Path, name: str, write: Callable[[Path], None]) -> Path:
    """Replace (or add) the file or sub-directory `name` of a bundle, atomically: `write`
    is given the path to create. Returns the bundle dir.

    The bundle is verified, linked into a temporary sibling (no data copied) with the new
    part, the new part's checksums and the verified ones of the other files (not hashed
    again), and renamed into place: a crash leaves the old bundle or the new one, never one
    whose checksums disagree with its files. What a chat model adds after training (its
    retrieval index, its dual encoder) goes in this way.
    """
    directory = resolve(Path(path))
    meta = read_metadata(directory)
    replaced = part_files(meta, (name,))
    verified = {file: sha for file, sha in meta["files"].items() if file not in replaced}
    with atomic_directory(directory) as tmp:
        link_or_copy_tree(directory, tmp, skip=(name, METADATA_FILE))
        write(tmp / name)
        _write_metadata(tmp, {key: value for key, value in meta.items() if key != "files"},
                        verified)
    return directory


def bundle_part(directory: Path, meta: dict[str, Any], name: str) -> Path | None:
    """`directory / name` if the verified bundle (`meta` from `read_metadata`) lists it as a
    file or as a sub-directory holding files; None otherwise."""
    return directory / name if part_files(meta, (name,)) else None


def part_files(meta: dict[str, Any], names: Collection[str]) -> dict[str, str]:
    """The files (name -> sha256) the metadata lists for the parts `names`: a part is a
    file or a sub-directory of files."""
    return {
        key: sha for key, sha in meta.get("files", {}).items()
        if any(key == name or key.startswith(f"{name}/") for name in names)
    }


def read_decoding(directory: Path, meta: dict[str, Any]) -> DecodeSettings | None:
    """The verified bundle's decoding settings (`meta` from `read_metadata`), None if absent."""
    file = directory / DECODING_FILE
    if DECODING_FILE not in meta.get("files", {}):
        return None
    try:
        return DecodeSettings.from_json(file.read_text("utf-8"), str(file))
    except ValueError as exc:
        raise BundleError(str(exc)) from exc


def resolve(path: Path) -> Path:
    """Accept a bundle directory or a training run directory (which holds `model/`)."""
    path = recover(Path(path))
    if not (path / CONFIG_FILE).exists() and (recover(path / MODEL_SUBDIR) / CONFIG_FILE).exists():
        return recover(path / MODEL_SUBDIR)
    return path


def read_metadata(directory: Path, only: Collection[str] | None = None) -> dict[str, Any]:
    """Metadata after checking presence, format and every file's checksum (of the parts
    `only` names, when given: the rest of the bundle is not about to be used)."""
    if not directory.is_dir():
        raise BundleNotFoundError(f"{directory}: no such model directory")
    meta_path = directory / METADATA_FILE
    if not meta_path.exists():
        raise BundleNotFoundError(f"{meta_path}: missing (is {directory} a model bundle?)")
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{meta_path}: corrupt: {exc}") from exc
    if meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(
            f"{meta_path}: bundle format {meta.get('format')!r}, this version reads {BUNDLE_FORMAT}"
        )
    listed = meta.get("files", {}) if only is None else part_files(meta, only)
    for name, expected in listed.items():
        file = directory / name
        if not file.exists():
            raise ChecksumError(f"{file}: missing from the bundle")
        if file_sha256(file) != expected:
            raise ChecksumError(f"{file}: corrupt (sha256 differs from {METADATA_FILE})")
    for required in (CONFIG_FILE, WEIGHTS_FILE):
        if required not in meta.get("files", {}):
            raise BundleError(f"{directory / required}: not listed in {METADATA_FILE}")
    for name, tool in ((DECODING_FILE, "s2s tune-decoding"), (COMPANIONS_FILE, "s2s companion")):
        if (directory / name).exists() and name not in meta.get("files", {}):
            raise BundleError(
                f"{directory / name}: not listed in {METADATA_FILE} (store it with `{tool}`, "
                "not by hand)"
            )
    _warn_versions(meta_path, meta.get("versions", {}))
    return meta


def _warn_versions(meta_path: Path, saved: dict[str, str]) -> None:
    current = library_versions()
    for name in ("tensorflow", "keras"):
        old, new = saved.get(name, "?"), current.get(name, "?")
        if old.split(".")[:2] != new.split(".")[:2]:
            log.warning("%s: saved with %s %s, running %s %s", meta_path, name, old, name, new)


@dataclass(frozen=True)
class BundleFiles:
    """A bundle verified on disk, before any of it is loaded: where it is, its metadata and
    its small files. TensorFlow-free, so a bad path or a corrupt copy fails before
    TensorFlow loads, and a caller that needs only the settings (the Beam launcher) stops
    here."""

    path: Path
    metadata: dict[str, Any]
    config: ExperimentConfig
    decoding: DecodeSettings | None
    companions: dict[str, Path]


def open_bundle(path: Path) -> BundleFiles:
    """The bundle at `path` (or in the training run `path`'s `model/`), every checksum
    verified once; every failure names the file at fault."""
    directory = resolve(Path(path))
    meta = read_metadata(directory)
    try:
        config = ExperimentConfig.load(directory / CONFIG_FILE)
    except ConfigError as exc:
        raise BundleError(str(exc)) from exc
    return BundleFiles(
        directory, meta, config, read_decoding(directory, meta), read_companions(directory, meta)
    )


def load_bundle(path: Path | BundleFiles) -> Bundle:
    """Load a bundle (verified by `open_bundle` unless given its result) with its model."""
    files = path if isinstance(path, BundleFiles) else open_bundle(path)
    directory, config = files.path, files.config
    try:
        codec = TextCodec.load(config, directory)
    except (OSError, ValueError) as exc:
        raise BundleError(f"{directory}: tokenizer or vocabulary: {exc}") from exc
    if len(codec.vocab) != config.model.vocab_size:
        raise BundleError(
            f"{directory / 'vocab.txt'}: {len(codec.vocab)} entries, but {CONFIG_FILE} says "
            f"model.vocab_size = {config.model.vocab_size}"
        )
    from nlp.model import Seq2Seq  # heavy import only when a model is really loaded

    model = Seq2Seq(config.model)
    try:
        model.load_weights(directory / WEIGHTS_FILE)
    except (OSError, ValueError, KeyError) as exc:
        raise BundleError(f"{directory / WEIGHTS_FILE}: cannot load weights: {exc}") from exc
    return Bundle(config, codec, model, files.metadata, directory, files.decoding,
                  files.companions)
