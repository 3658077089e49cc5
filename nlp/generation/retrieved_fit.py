"""Whether a retrieved reply or the chat model's own is the better one to send: the gate
between the replies people wrote to training posts and the model's.

Why a gate: a retrieved reply is what a person wrote, specific and fluent, and it fits
when the post it answered says what the message says; when the post only shares a keyword
it answers something else ("do you have a favorite player?" -> a reply about a sitcom).
The model's own reply is rarely specific but often makes sense. So a retrieved reply is
sent only where it probably rates better, and the model's own elsewhere
(`DecodeOptions.retrieved_threshold`, `nlp.chat.responder.choose_reply`).

One scale, the expected rating (SSA: the mean of sensible and specific, Adiwardana et al.
2020). A retrieved reply's is P(sensible | signal) x (1 + P(specific | sensible)) / 2, where
the signal (`SIGNALS`) is the similarity of the message and the post the reply answered and
P(sensible | signal) its Platt calibration; the model's own reply's is its rated SSA. The
signal: a pretrained sentence encoder's cosine (`nlp.ranking.sentence_encoder`), or the
tf-idf cosine (`ReplyIndex.post_similarity`: 1 for the same words). Why the encoder's: on
the rated validation replies of both languages it told sensible retrieved replies from the
rest better than the tf-idf cosine, and specific ones better than every signal tried (the
chat model's likelihood of the reply told sensible ones about as well in English, specific
ones far worse; `python -m benchmarks.sense_sheet signals`, docs/BENCHMARKS.md "Retrieved or
generated"): a post that says what the message says in other words matches, one that
shares a keyword in another sense does not.

A retrieved reply's `fit` is its share of the two, E_r / (E_r + E_g): 0.5 where they
are equal, so one threshold (0.5) serves languages whose models and corpora rate apart.
Each language's numbers were rated on validation posts (`benchmarks/sense_sheet.py gate`);
a bundle may carry its own (`DecodeSettings.details["retrieved_fit"]`).

What competes under the gate (`competing`) is defined here once: the chat chooses among it
(`nlp.chat.responder.choose_reply`), the generator puts it first in every n-best list
(`gate_first`), and reads it to leave the decoder out for a message whose retrieved replies
already decide (`decides_before_decoding`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from nlp.decoding import DecodeOptions
from nlp.decoding.options import POST_RANKERS, SENTENCE_ENCODER
from nlp.generation.text_generator import Generation
from nlp.metrics.calibration import Calibration
from nlp.text.cleaning import clean_message
from nlp.text.scripts import script_languages

# `DecodeSettings.details` key: per language, the bundle's own `RatedGate`
RETRIEVED_FIT = "retrieved_fit"
# What a gate's calibration reads: the similarity of the message and the retrieved reply's post
TF_IDF = "tf-idf"
SIGNALS = (TF_IDF, SENTENCE_ENCODER)


@dataclass(frozen=True)
class RatedGate:
    """What the rated validation posts of one language say: P(sensible | cosine) of the
    retrieved reply sent (`sensible`), P(specific | sensible) of retrieved replies, and the
    rated SSA of the model's own replies; `signal` (`SIGNALS`) is the similarity the
    calibration reads."""

    sensible: Calibration
    specific_if_sensible: float
    generated_ssa: float
    signal: str = TF_IDF  # a gate stored before there was a choice read tf-idf

    def __post_init__(self) -> None:
        if self.signal not in SIGNALS:
            raise ValueError(f"a gate's signal must be one of {', '.join(SIGNALS)}, "
                             f"got {self.signal!r}")

    def fit(self, similarity: float) -> float:
        """The retrieved reply's share of the two expected ratings (see the module)."""
        expected = float(self.sensible.probability(similarity)) * (
            1 + self.specific_if_sensible) / 2
        total = expected + self.generated_ssa
        return expected / total if total > 0 else 0.5

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "sensible": self.sensible.to_json()}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RatedGate:
        return cls(Calibration.from_json(raw["sensible"]), float(raw["specific_if_sensible"]),
                   float(raw["generated_ssa"]), str(raw.get("signal", TF_IDF)))


# Rated on 200 validation posts of each README chat recipe, two sheets of 100 (docs/BENCHMARKS.md
# "Retrieved or generated", with the commands): the reply the retrieval's order puts first
# against the sentence encoder's cosine of its post and the message (both sheets: it depends
# on the index, not the model), and the recipe's model's beam replies (the newer sheet; in
# English an earlier recipe's model with its ranking loss, on three sheets of 100). A
# language without one here (or in the bundle) sends no retrieved reply under the gate.
DEFAULT_FIT: dict[str, RatedGate] = {
    # chat-en: 97 of 200 retrieved replies sensible, 72 specific; beam replies SSA 0.2967
    # (174 of 300 sensible, 4 specific). The recipe's model since (the ranking loss from 70%
    # of the budget) rates higher, but a gate expecting that sent it more posts and rated no
    # better (docs/BENCHMARKS.md, "The ranking loss from 70% of the budget"): the generated
    # SSA stays where the gate rates best.
    "en": RatedGate(Calibration(slope=3.3947, intercept=-2.1341, pairs=200, positives=97),
                    specific_if_sensible=0.7423, generated_ssa=0.2967, signal=SENTENCE_ENCODER),
    # chat-zh: 96 of 200 sensible, 49 specific; beam replies SSA 0.38
    "zh": RatedGate(Calibration(slope=3.3028, intercept=-1.6276, pairs=200, positives=96),
                    specific_if_sensible=0.5104, generated_ssa=0.38, signal=SENTENCE_ENCODER),
}


def message_language(text: str) -> str:
    """"zh" for a message with Han characters, else "en": the gates' languages."""
    return "zh" if "zh" in script_languages(text) else "en"


def gate_for(
    text: str, details: Mapping[str, Any] | None = None
) -> RatedGate | None:
    """The gate for a message in `text`'s language: the bundle's (`details`, its decoding
    settings' details), else the default; None where neither has one."""
    language = message_language(text)
    stored = ((details or {}).get(RETRIEVED_FIT) or {}).get(language)
    if stored:
        return RatedGate.from_json(stored)
    return DEFAULT_FIT.get(language)


def retrieved_fit(similarity: float, gate: RatedGate | None) -> float:
    """A retrieved reply's fit (its share of the expected ratings) when its post has
    `similarity` to the message; NaN without a gate (then no threshold lets it through)."""
    if gate is None:
        return float("nan")
    return gate.fit(similarity)


def fitting(candidates: Sequence[Generation], threshold: float) -> list[Generation]:
    """The retrieved replies among `candidates` that the gate lets through: a fit of at least
    `threshold` and something left to send once cleaned (`clean_message`)."""
    return [c for c in candidates
            if c.provenance == "retrieved" and c.fit >= threshold and clean_message(c.text)]


def competing(candidates: Sequence[Generation], threshold: float) -> list[Generation]:
    """The candidates a chat chooses its reply among, those with something to send: with a
    gate (`threshold` > 0) the fitting retrieved replies alone where there are any (a
    specific reply that fits beats the model's generic one), else the model's own (a sensible
    generic reply beats a keyword match), else whatever is left."""
    usable = [c for c in candidates if clean_message(c.text)]
    if threshold <= 0:
        return usable
    own = [c for c in usable if c.provenance != "retrieved"]
    return fitting(usable, threshold) or own or usable


def gate_first(candidates: Sequence[Generation], threshold: float) -> list[Generation]:
    """`candidates` with those a chat chooses among (`competing`) ahead of the rest, each
    part in its own order: `Generator.generate`'s order, so that a list's first candidate is
    what a single output (a heatmap, `evaluate --metric bleu`, a headline) must be, not a
    retrieved reply the gate turned away, which the rankers of posts score above the model's
    own. Where nothing competes (nothing left to send) the order is the ranking's."""
    chosen = competing(candidates, threshold)
    kept = {id(c) for c in chosen}
    return [*chosen, *(c for c in candidates if id(c) not in kept)]


def decides_before_decoding(options: DecodeOptions) -> bool:
    """Whether, under `options`, a message with a fitting retrieved reply needs no reply of
    the model's: with a gate (`retrieve` and `retrieved_threshold`) the model's replies do
    not compete there (`competing`). Only under the rankers that read the posts
    (`POST_RANKERS`): they score each retrieved reply by itself, its message's scores
    shifted by one constant when the model's replies are left out, so the order among them
    stays, and with it the list's first candidate (`gate_first`) and the chat's choice; the
    dual encoder with BM25 divides by the best BM25 score of the whole list, and a fallback
    threshold reads a calibrated confidence of those scores."""
    return bool(options.retrieve and options.retrieved_threshold > 0
                and options.rerank in POST_RANKERS and not options.fallback_threshold)
