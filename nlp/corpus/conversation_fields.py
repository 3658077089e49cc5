"""The field names and values of the conversation log: one definition of the format, shared
by its writer (`nlp.chat.conversation_log`) and its reader
(`nlp.corpus.readers.conversation_log`). Kept here, below both, so the corpus layer never
imports the chat."""

from typing import Final

CONVERSATION: Final = "conversation"
TURN: Final = "turn"
SPEAKER: Final = "speaker"
TEXT: Final = "text"
RATING: Final = "rating"
USER: Final = "user"
BOT: Final = "bot"
GOOD: Final = "good"
