"""How the project starts worker processes: one definition for every pool.

Workers are spawned (a fresh interpreter), never forked. The processes that start pools
(training, `s2s embeddings`) may have TensorFlow loaded, and a forked child inherits its
threads' locks in whatever state they were, held ones included, without the threads that
would release them: the child can deadlock on its first TensorFlow or allocator call. A
spawned worker pays an interpreter start and its imports instead, and the code it runs must
not import TensorFlow (`nlp.training.prepare`, `nlp.vectors.training`). As with any spawned
pool, a script that starts one must guard its entry point (`if __name__ == "__main__":`):
each worker imports the main module.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext

WORKER_START_METHOD = "spawn"


def worker_context() -> BaseContext:
    """The multiprocessing context every pool of the project starts its workers with."""
    return multiprocessing.get_context(WORKER_START_METHOD)
