"""Text in, text out: the codec, the model bundle, the `Generator`, MMI re-ranking, and the
decoding flags and settings every generating command shares.

Nothing is imported here, so `nlp.generation.text_generator` (the TensorFlow-free
`Generation` and `TextGenerator`) stays cheap for the bot; `generator`, `mmi` and a bundle's
model load TensorFlow.
"""
