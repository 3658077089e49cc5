"""`s2s evaluate` and `s2s attention`: a trained bundle scored on pairs (loss, token
accuracy, exact match, BLEU, ROUGE with the lead baselines, chat metrics, Hits@1).

TensorFlow loads in `evaluate` (the bundle's model) and `accuracy` (the model run
teacher-forced); the metrics themselves are plain text and live in `nlp.metrics`.
"""
