"""Reply retrieval: BM25 over a chat model's training pairs (`index`), matched on the
message of a post with earlier turns (`turns`)."""

from nlp.retrieval.index import INDEX_DIR, ReplyIndex, RetrievalIndexError, Retrieved, post_key
from nlp.retrieval.turns import message_tokens, repeats_a_turn

__all__ = ["INDEX_DIR", "ReplyIndex", "RetrievalIndexError", "Retrieved", "message_tokens",
           "post_key", "repeats_a_turn"]
