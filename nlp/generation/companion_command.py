"""`s2s companion --model CHAT [--lm LM] [--reverse REV]`: name a chat bundle's MMI companions.

Why: `--rerank mmi-antilm` / `mmi-bidi` (and a tuned default that re-ranks) need the LM or the
reverse model; naming them inside the chat bundle (`companions.json`, checksummed like every
bundle file) lets `s2s chat`, `s2s bot`, `s2s evaluate` and `s2s tune-decoding` load them
without `--mmi-model` on every start. The companion's kind is checked from its config.json
(data.task=lm, data.reverse=true) so a swapped pair is refused here, not at the first reply.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nlp.generation.bundle import CONFIG_FILE, resolve, store_companions
from nlp.util.config import ExperimentConfig


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "companion",
        help="name the LM / reverse bundles a chat model uses for MMI re-ranking",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, required=True, help="chat bundle or run dir")
    parser.add_argument("--lm", type=Path, help="language model (s2s train --task lm)")
    parser.add_argument("--reverse", type=Path, help="reverse model (s2s train --reverse)")
    parser.set_defaults(func=run)


def companion_kind(path: Path) -> str:
    """"lm", "reverse" or "chat", from the bundle's config (no TensorFlow needed)."""
    data = ExperimentConfig.load(resolve(path) / CONFIG_FILE).data
    return "lm" if data.task == "lm" else "reverse" if data.reverse else data.task


def run(args: argparse.Namespace) -> int:
    given = {kind: path for kind, path in (("lm", args.lm), ("reverse", args.reverse)) if path}
    if not given:
        raise ValueError("name at least one companion: --lm BUNDLE and/or --reverse BUNDLE")
    for kind, path in given.items():
        found = companion_kind(path)
        if found != kind:
            raise ValueError(f"{path}: a {found} model, not a {kind} model")
    directory = store_companions(args.model, given)
    names = ", ".join(f"{kind} = {path}" for kind, path in given.items())
    print(f"{directory}/companions.json: {names}", file=sys.stderr)
    return 0
