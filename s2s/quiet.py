"""The command line's logging: library loggers held to warnings, ours at INFO.

TensorFlow's start-up lines are quieted by `nlp.util.quiet`, shared with the Python API;
`s2s -v` does not install its hook and shows everything.
"""

from __future__ import annotations

import logging

OWN_LOGGERS = ("nlp", "bot", "s2s")  # our packages: their INFO lines are meant for the user
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(verbose: bool) -> None:
    """Our loggers at INFO (DEBUG with -v); every other library's at WARNING (all with -v).

    Why not the root at INFO: libraries log INFO lines of their own (matplotlib's font cache,
    absl, ...) that mean nothing to a user of the command.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format=LOG_FORMAT)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)

