"""Word-level attention seq2seq for chatbots and headline generation.

Importing the package sets one TensorFlow default, before TensorFlow itself is imported (it
reads the variable once, when it loads):

- `TF_ENABLE_ONEDNN_OPTS=1`: TensorFlow turns its oneDNN kernels on by itself only on CPUs
  with AVX-512 VNNI, bfloat16 or AMX instructions. Elsewhere (AVX2-only CPUs, common among
  rented AMD machines) it uses Eigen's, which at the default model size make the training
  step and decoding one message at a time (what a chat user waits for) slower; batched and
  beam decoding are about even, and tiny models (the tests') are faster on Eigen.
  docs/BENCHMARKS.md "oneDNN on AVX2" has the comparison. A value the user set wins, and a
  program that imported TensorFlow before `nlp` keeps what it had.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
