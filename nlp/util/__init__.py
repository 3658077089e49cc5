"""Small helpers every layer may use: the experiment configuration (`config`), atomic file
writes (`fsutil`), the progress line (`progress`) and a size-bounded dict (`lru`). Nothing
here imports another `nlp` package."""
