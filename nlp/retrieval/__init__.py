"""Reply retrieval: BM25 over a chat model's training pairs (`index`)."""

from nlp.retrieval.index import INDEX_DIR, ReplyIndex, RetrievalIndexError, Retrieved, post_key

__all__ = ["INDEX_DIR", "ReplyIndex", "RetrievalIndexError", "Retrieved", "post_key"]
