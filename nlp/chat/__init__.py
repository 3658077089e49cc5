"""The chat responder shared by the Telegram bot (`bot/`) and the terminal chat (`s2s chat`).

Kept free of TensorFlow at import time: the real generator is loaded lazily by
`nlp.generation.loading`, so the bot adapter can import everything here cheaply.
"""
