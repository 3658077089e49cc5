"""Plain-text metrics: ROUGE, BLEU and the chat metrics, Hits@1, repetition. No TensorFlow and
no model here: every metric takes strings (or scores) and returns numbers."""
