"""The one seq2seq network and its pieces."""

from nlp.model.seq2seq import Seq2Seq

__all__ = ["Seq2Seq"]
