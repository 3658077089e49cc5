"""The field names and values of the conversation log: one definition of the format, shared
by its writer (`nlp.chat.conversation_log`) and its reader
(`nlp.corpus.readers.conversation_log`). Kept here, below both, so the corpus layer never
imports the chat."""

CONVERSATION, TURN, SPEAKER, TEXT, RATING = "conversation", "turn", "speaker", "text", "rating"
USER, BOT, GOOD = "user", "bot", "good"
