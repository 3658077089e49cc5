"""The export's text recipe (assets/serving.json) states what the codec does: the end of a
long source it keeps, and truecasing with the truecaser it ships in assets/."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.generation.codec import TextCodec
from nlp.serving.export import ASSETS_FILE, ExportLimits, _write_assets
from nlp.text.truecase import TRUECASE_FILE
from nlp.util.config import ExperimentConfig

PAIRS = [Pair("a b c d e f g", "Yes, John."), Pair("h i j", "No, John.")]


def _recipe(tmp_path: Path, task: str) -> tuple[TextCodec, str]:
    """The recipe `s2s export` writes for a codec of `task` (sources cut at 3 tokens)."""
    config = ExperimentConfig().with_overrides(
        [f"data.task={task}", "train.max_source_length=3"]
    )
    codec = TextCodec.fit(config, PAIRS)
    bundle_dir = tmp_path / task / "bundle"
    codec.save(bundle_dir)
    config.save(bundle_dir / "config.json")
    bundle = SimpleNamespace(path=bundle_dir, config=config, codec=codec)
    assets = tmp_path / task / "assets"
    _write_assets(bundle, assets, ExportLimits(), DecodeOptions())  # type: ignore[arg-type]
    served = (assets / TRUECASE_FILE).read_text("utf-8")
    assert served == (bundle_dir / TRUECASE_FILE).read_text("utf-8")
    return codec, json.loads((assets / ASSETS_FILE).read_text("utf-8"))["recipe"]


def test_a_chat_recipe_keeps_the_last_tokens_like_the_codec(tmp_path: Path) -> None:
    codec, recipe = _recipe(tmp_path, "chat")
    assert codec.source("a b c d e f g").tokens == ["e", "f", "g"]
    assert "keep the last 3 tokens" in recipe and "keep the first" not in recipe


def test_a_headline_recipe_keeps_the_first_tokens_like_the_codec(tmp_path: Path) -> None:
    codec, recipe = _recipe(tmp_path, "headline")
    assert codec.source("a b c d e f g").tokens == ["a", "b", "c"]
    assert "keep the first 3 tokens" in recipe


def test_the_recipe_says_outputs_are_truecased_with_the_shipped_truecaser(
    tmp_path: Path,
) -> None:
    _, recipe = _recipe(tmp_path, "chat")
    assert f"truecase with assets/{TRUECASE_FILE}" in recipe
