"""Evaluation metrics and baselines (no TensorFlow here: they work on plain text)."""

from nlp.evaluation.baselines import lead_n_baseline, lead_sentence_baseline
from nlp.evaluation.rouge import RougeScores, Score, rouge

__all__ = ["RougeScores", "Score", "lead_n_baseline", "lead_sentence_baseline", "rouge"]
