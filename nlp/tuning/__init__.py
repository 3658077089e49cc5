"""`s2s tune-decoding`: search decode options on validation pairs, store the best in the bundle."""
