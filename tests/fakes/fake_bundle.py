"""A model bundle without a model: what reply scoring and retrieval read of one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlp.generation.codec import TextCodec
from nlp.util.config import ExperimentConfig


@dataclass
class FakeBundle:
    """A bundle's config and codec, the parts it has (none, or a retrieval index) and, for
    the meters, any stand-in `model`."""

    codec: TextCodec
    config: ExperimentConfig
    parts: dict[str, Path] = field(default_factory=dict)
    path: Path = Path("fake-bundle")
    model: Any = None
    decoding: Any = None  # the bundle's `DecodeSettings` (its calibrations), if any

    def part(self, name: str) -> Path | None:
        return self.parts.get(name)
