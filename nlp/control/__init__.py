"""Control tokens: what a chat model is told about the reply it should write (`specificity`:
conditional training on the reply's specificity, See et al. 2019)."""

from nlp.control.specificity import (
    SpecificityBuckets,
    controlled_source,
    marked_groups,
    marker,
    wanted_bucket,
    with_markers,
)

__all__ = ["SpecificityBuckets", "controlled_source", "marked_groups", "marker", "wanted_bucket",
           "with_markers"]
