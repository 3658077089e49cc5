"""Small helpers every layer may use: the experiment configuration (`config`), atomic file
writes (`fsutil`), the progress line (`progress`), a size-bounded dict (`lru`) and how
worker processes start (`processes`). Nothing here imports another `nlp` package."""
