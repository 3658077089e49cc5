"""Telegram adapter: turns updates into calls of the chat responder in `nlp.chat`."""
