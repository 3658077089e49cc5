"""Serving outside Python: the model and the shared decoder exported as a SavedModel."""
