"""Training and retraining."""
