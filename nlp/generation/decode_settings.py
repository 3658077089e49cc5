"""Recommended decoding settings: task defaults, and the copy stored inside a model bundle.

Why they travel with the model: the same checkpoint scores very differently with and without
n-gram blocking or a length penalty (a headline model below the lead baseline with the plain
defaults beat it once tuned), and users never see flags a benchmark used. So training writes
the task's defaults into the bundle (`decoding.json`), `s2s tune-decoding` replaces them with
tuned ones, and every generating command starts from them; an explicit flag still wins
(`nlp.generation.decode_args`).

`decoding.json`: `{"options": {DecodeOptions fields}, "origin": "...", "details": {...}}`.
It is listed with its sha256 in `metadata.json` like every bundle file, so a hand-edited or
truncated copy is caught on load.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nlp.decoding.options import DecodeOptions

DECODING_FILE = "decoding.json"
# `details` key: per weighted re-ranking, the weights `s2s tune-decoding` chose by Hits@1
RERANK_WEIGHTS = "rerank_weights"
# `details` key: per ranker (`DecodeOptions.rerank`), its score calibrated on validation
# posts as the probability of the fitting reply (`nlp.generation.confidence`)
CALIBRATION = "calibration"
# The weights a re-ranking uses until validation Hits chose others: anti-LM on the first 5
# reply tokens at 0.3 (Li et al. penalise the reply's start: the LM penalty on later tokens
# rewards ungrammatical endings), bidi at 0.5; the dual encoder and BM25 with equal weight
# (each scaled to at most 1). Re-rankings not listed have no weights.
DEFAULT_RERANK_WEIGHTS: dict[str, dict[str, Any]] = {
    "mmi-antilm": {"mmi_lambda": 0.3, "mmi_gamma": 5},
    "mmi-bidi": {"mmi_lambda": 0.5, "mmi_gamma": 0},
    "dual-encoder+bm25": {"bm25_weight": 1.0},
}

# Per task, what differs from the decoder's own defaults. Headlines: n-gram blocking stops
# the stutter ("地方地方地方"), and a GNMT length penalty keeps beam search from preferring
# the shortest headline.
_TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    # beam search (5): raters found the model's beam replies sensible far more often than its
    # samples (docs/BENCHMARKS.md "Rated sense"), if rarely specific; a bundle with a
    # retrieval index adds people's replies where they fit (`RETRIEVED_OR_GENERATED`)
    "chat": {},
    # no word twice and a GNMT length penalty of 1: what `s2s tune-decoding` chose on the
    # validation pairs of all three headline benchmarks (LCSTS, Reuters, RSS news; README)
    "headline": {"no_repeat_ngram": 1, "length_penalty": 1.0},
    "lm": {},  # a companion for MMI re-ranking; it is not decoded from on its own
}


def default_decode_options(task: str) -> DecodeOptions:
    """The decode options a freshly trained model of `task` recommends."""
    try:
        changes = _TASK_DEFAULTS[task]
    except KeyError:
        raise ValueError(
            f"no decoding defaults for data.task={task!r}; known: {', '.join(_TASK_DEFAULTS)}"
        ) from None
    return DecodeOptions(**changes)


@dataclass(frozen=True)
class DecodeSettings:
    """Options plus where they came from (shown to users: "tuned", "defaults for headline")."""

    options: DecodeOptions
    origin: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        raw = {
            "options": dataclasses.asdict(self.options),
            "origin": self.origin,
            "details": self.details,
        }
        return json.dumps(raw, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> DecodeSettings:
        """Parse `decoding.json`; ValueError naming `where` and the bad field otherwise."""
        try:
            raw = json.loads(text)
            options = raw["options"]
            known = {f.name for f in dataclasses.fields(DecodeOptions)}
            unknown = set(options) - known
            if unknown:
                raise ValueError(f"unknown decode options {sorted(unknown)}")
            return cls(DecodeOptions(**options), str(raw.get("origin", "")), raw.get("details", {}))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: unusable decoding settings: {exc}") from exc

    def base_for(self, changes: Mapping[str, object]) -> DecodeOptions:
        """The options `changes` go on top of: these, or where the changes pick another
        re-ranking, these with the weights chosen for it (`rerank_options`: what Hits scored
        it with) rather than the decoder's defaults; weights the changes give still win."""
        rerank = changes.get("rerank")
        return self.rerank_options(rerank) if isinstance(rerank, str) else self.options

    def rerank_options(self, rerank: str) -> DecodeOptions:
        """Options that re-rank by `rerank` with the weights chosen for it: these options'
        own when they re-rank that way, else those `s2s tune-decoding` chose by Hits@1
        (`details["rerank_weights"]`, per reply token), else `DEFAULT_RERANK_WEIGHTS`."""
        if self.options.rerank == rerank:
            return self.options
        weights = rerank_weights(self.details.get(RERANK_WEIGHTS), rerank)
        return dataclasses.replace(self.options, rerank=rerank, mmi_per_token=True, **weights)


def recommended_options(settings: DecodeSettings | None) -> DecodeOptions:
    """What a bundle's stored settings recommend, or the decoder's own defaults for a bundle
    that stores none (one written before bundles stored them)."""
    return settings.options if settings else DecodeOptions()


def rerank_weights(chosen: Mapping[str, Mapping[str, Any]] | None, rerank: str) -> dict[str, Any]:
    """The weights `rerank` uses: those chosen for it, else `DEFAULT_RERANK_WEIGHTS` (none
    for a re-ranking without weights)."""
    return dict((chosen or {}).get(rerank) or DEFAULT_RERANK_WEIGHTS.get(rerank, {}))


# A chat bundle with a retrieval index: the replies of the 10 training posts BM25 finds
# nearest the message are sent where the best one's expected rating reaches the model's own
# reply's (fit 0.5), and the model's own beam reply elsewhere (`nlp.generation.retrieved_fit`);
# among those that fit, the one the sentence encoder finds closest to the message in its post
# and itself (rerank=sentence-encoder: on rated validation pools its picks rated as sensible
# and specific as the fittest post's in Chinese, more in English; docs/BENCHMARKS.md
# "Retrieved or generated").
RETRIEVED_OR_GENERATED: dict[str, Any] = {
    "retrieve": 10, "rerank": "sentence-encoder", "retrieved_threshold": 0.5,
}


def chat_defaults_with_index() -> DecodeSettings:
    """What a chat bundle recommends once it holds a retrieval index, until tuned."""
    return DecodeSettings(
        DecodeOptions(**{**_TASK_DEFAULTS["chat"], **RETRIEVED_OR_GENERATED}),
        "defaults for data.task=chat with a retrieval index",
    )


def task_defaults(task: str) -> DecodeSettings:
    """What training stores in a new bundle."""
    return DecodeSettings(default_decode_options(task), f"defaults for data.task={task}")
