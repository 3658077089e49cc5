"""HTTP adapter (`s2s serve`): one process serving model bundles over HTTP with FastAPI.

Like the Telegram adapter (`bot/`), it only translates: every reply comes from the chat
responder (`nlp.chat.responder`), every headline from the responder's micro-batcher and the
headline job's record rules (`nlp.headlines`), every picture from `nlp.chat.attention_plot`.
No TensorFlow is imported here; `serve.models` loads bundles through `nlp.generation.loading`.
"""
