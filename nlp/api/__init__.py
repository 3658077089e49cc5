"""The Python API: use a trained model, and train one, from your own program.

    from nlp.api import Model
    model = Model.load("runs/news")                  # a bundle or a training run directory
    [best] = model.headlines(["article text ..."])   # .headline, .score, .n_best

Everything here runs the code the `s2s` commands run (one loader, the headline job's
decoding, the bot's responder, the training and tuning functions), so a program gets what the
command line gets for the same input and options. These names are the API; everything else in
`nlp` is internal and may change. A `Model` is safe to share between threads and asyncio
tasks (`nlp.api.model` says how). Errors are `ValueError`s of the classes in
`nlp.api.errors`, with the messages the command line prints. TensorFlow loads with the first
model or training run, not on import, its INFO and WARNING lines hidden (unless
`TF_CPP_MIN_LOG_LEVEL` says otherwise). Its start-up lines (CUDA, absl) are written before
any setting can hide them: `quiet_tensorflow()`, called before the first model loads, drops
them as `s2s` does (`nlp.util.quiet`), by pointing the process's stderr at a file while
TensorFlow imports, so only when asked: the program's own stderr goes there meanwhile too.
"""

from __future__ import annotations

from nlp.api.errors import (
    BundleError,
    BundleNotFoundError,
    ChecksumError,
    ConfigError,
    InputError,
    OptionError,
    TaskError,
)
from nlp.api.model import (
    Attention,
    Candidate,
    ChatReply,
    Conversation,
    Headline,
    Model,
    ScoredReply,
)
from nlp.api.training import TrainResult, corpus_spec, retrain, train, training_config, tune
from nlp.chat.settings import ChatSettings
from nlp.decoding.options import DecodeOptions
from nlp.generation.decode_settings import DecodeSettings
from nlp.training.corpus_io import CorpusSpec
from nlp.util.config import ExperimentConfig
from nlp.util.quiet import hide_tensorflow_logs, quiet_tensorflow

hide_tensorflow_logs()

__all__ = [
    "Attention",
    "BundleError",
    "BundleNotFoundError",
    "Candidate",
    "ChatReply",
    "ChatSettings",
    "ChecksumError",
    "ConfigError",
    "Conversation",
    "CorpusSpec",
    "DecodeOptions",
    "DecodeSettings",
    "ExperimentConfig",
    "Headline",
    "InputError",
    "Model",
    "OptionError",
    "ScoredReply",
    "TaskError",
    "TrainResult",
    "corpus_spec",
    "quiet_tensorflow",
    "retrain",
    "train",
    "training_config",
    "tune",
]
