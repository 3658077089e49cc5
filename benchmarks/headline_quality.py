"""Headline quality on real corpora: the model against the lead baselines, by ROUGE F1.

Chinese: LCSTS subset, trained on train.tsv, scored on val.tsv (ROUGE per character).
English: Reuters-21578, trained on reut2-000..019, scored on the held-out reut2-020..021
(ROUGE per word). Each model trains for at most --minutes of wall-clock training time on
the machine it runs on (the README states the budget used), then decodes with beam 5.

    python -m benchmarks.headline_quality [--minutes 20] [--limit 1000]
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import format_table
from benchmarks.quality import BASE_SETTINGS, SHARED, QualityRun, arguments, run_all, test_pairs
from nlp.decoding import DecodeOptions
from nlp.evaluation.evaluate import rouge_metrics
from nlp.generator import Generator
from nlp.training.corpus_io import CorpusSpec

HEADLINE_MODEL = [
    *BASE_SETTINGS,
    "data.task=headline",
    "tokenizer.placeholders=true",
    "model.copy=true",
    "train.max_source_length=80",
    "train.max_target_length=25",
]


def runs() -> list[QualityRun]:
    lcsts = SHARED / "headlines-zh" / "lcsts"
    reuters = SHARED / "headlines-en" / "reuters21578"
    files = sorted(reuters.glob("reut2-*.sgm"))
    decode = DecodeOptions(beam_size=5, max_length=25, no_repeat_ngram=3, length_penalty=0.6)
    return [
        QualityRun(
            "lcsts-zh",
            CorpusSpec((lcsts / "train.tsv",), "lcsts-tsv"),
            CorpusSpec((lcsts / "val.tsv",), "lcsts-tsv"),
            [*HEADLINE_MODEL, "tokenizer.kind=jieba", "vocab.max_size=10000"],
            decode,
        ),
        QualityRun(
            "reuters-en",
            CorpusSpec(tuple(files[:-2]), "reuters"),
            CorpusSpec(tuple(files[-2:]), "reuters"),
            [*HEADLINE_MODEL, "tokenizer.kind=words", "vocab.max_size=12000", "vocab.min_freq=2"],
            decode,
        ),
    ]


def main() -> None:
    args = arguments(__doc__, "headline_quality")

    def score(run: QualityRun, generator: Generator, info: dict[str, Any]) -> dict[str, Any]:
        report = rouge_metrics(generator, test_pairs(run, args.work, args.limit), run.decode, 64)
        pairs = test_pairs(run, args.work, 5)
        outputs = generator.generate([p.source for p in pairs], run.decode)
        report["samples"] = [
            {"article": p.source[:200], "reference": p.target, "generated": o[0].text if o else ""}
            for p, o in zip(pairs, outputs, strict=True)
        ]
        return report

    results = run_all(runs(), args.work, args.minutes, score, args.out, args.reuse)
    rows = [
        {"corpus": name, "system": system, **result[system], "unit": result["unit"]}
        for name, result in results.items()
        for system in ("model", "lead_sentence", "lead_n")
    ]
    print(
        format_table(
            rows,
            [
                ("corpus", "corpus"),
                ("system", "system"),
                ("unit", "unit"),
                ("rouge1_f1", "R-1"),
                ("rouge2_f1", "R-2"),
                ("rougeL_f1", "R-L"),
                ("repeat_share", "repeats"),
            ],
        )
    )


if __name__ == "__main__":
    main()
