"""Training-pair filters: which pairs a chat model should not learn from (`entropy`: the
replies that follow any post, Csáky et al. 2019)."""

from nlp.filtering.entropy import (
    EntropyFilter,
    identity_key,
    utterance_entropies,
)

__all__ = ["EntropyFilter", "identity_key", "utterance_entropies"]
