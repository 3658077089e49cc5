"""`s2s embeddings` options."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from nlp.vectors.command import tokenizing_codec


def test_like_refuses_settings_that_would_set_another_tokenizer(tmp_path: Path) -> None:
    """`--like RUN --task headline --set tokenizer.kind=chars` read the run's tokenizer and
    ignored the rest, reporting "(words tokens)"."""
    args = argparse.Namespace(like=tmp_path, task="headline", config=None,
                              set=["tokenizer.kind=chars"])
    with pytest.raises(ValueError, match="--like takes the run's own tokenizer"):
        tokenizing_codec(args)
