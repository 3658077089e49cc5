"""The `s2s` command line: the top floor, the only place that sees both `nlp` and `bot`."""
