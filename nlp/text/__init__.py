"""Plain text utilities shared by corpus preparation and inference (no model code here)."""

from nlp.text.normalize import normalize_text

__all__ = ["normalize_text"]
