"""`s2s train --multi-worker`'s strategy through the project's training loop: two worker
processes on 127.0.0.1 (TF_CONFIG, MultiWorkerMirroredStrategy) train 20 steps of a tiny
model to identical weights, with the same per-step losses as one process on the same global
batches, and compute in the dtypes the chief chose.

Tolerance: 1e-5 on losses and weights. The workers' all-reduce sums the two halves of each
batch in another order than one process summing the whole batch, so float32 results may
differ in the last bits; an error in the loss weighting or the data split differs at 1e-2.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # two worker processes train

WORKER = """
import json, sys, tempfile
from pathlib import Path

import numpy as np

from nlp.training.run import training_strategy
strategy = training_strategy(multi_worker=sys.argv[1] == "multi")

import keras
from nlp.util.config import ModelConfig, TrainConfig
from nlp.model import Seq2Seq
from nlp.tokenizers.specials import EOS_ID
from nlp.training.trainer import Trainer

keras.utils.set_random_seed(7)
with strategy.scope():
    model = Seq2Seq(ModelConfig(vocab_size=40, embedding_dim=8, units=8, dropout=0.0))
# Equal lengths: every global batch is full, so each worker gets exactly half of it;
# 320 pairs in global batches of 16: one epoch is the 20 steps.
pairs = [([4 + i % 30, 5 + i % 20, 6 + i % 7], [6 + i % 11, 5 + i % 20, EOS_ID])
         for i in range(320)]
trainer = Trainer(model, TrainConfig(batch_size=16, epochs=1, learning_rate=0.01, seed=3),
                  Path(tempfile.mkdtemp()), verbose=0, strategy=strategy)
losses = []
step = trainer.train_batch
trainer.train_batch = lambda *batch: losses.append(step(*batch)) or losses[-1]
trainer.fit(pairs, pairs[:16])
np.save(sys.argv[2], np.concatenate([v.numpy().ravel() for v in model.trainable_variables]))
# each worker chose its own dtypes (the chief bfloat16 products, the other float32): all take
# the chief's
from nlp.training.precision import BFLOAT16_PRODUCTS, FLOAT32, the_chiefs
resolver = strategy.cluster_resolver if sys.argv[1] == "multi" else None
chief = resolver is None or resolver.task_id == 0
agreed = the_chiefs(BFLOAT16_PRODUCTS if chief else FLOAT32, strategy, chief)
print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                  "losses": [float(l) for l in losses], "precision": agreed.products}))
"""


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _env(tf_config: dict | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def test_two_workers_train_like_one_process(tmp_path: Path) -> None:
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, "multi", str(tmp_path / f"worker{i}.npy")],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}),
        )
        for i in range(2)
    ]
    single = subprocess.run(
        [sys.executable, "-c", WORKER, "single", str(tmp_path / "single.npy")],
        cwd=REPO, capture_output=True, text=True, env=_env(None), timeout=600,
    )
    outputs = []
    for process in processes:
        try:
            stdout, stderr = process.communicate(timeout=600)
        finally:
            process.kill()
        assert process.returncode == 0, stderr[-3000:]
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert single.returncode == 0, single.stderr[-3000:]
    reference = json.loads(single.stdout.strip().splitlines()[-1])

    assert [o["replicas"] for o in outputs] == [2, 2] and reference["replicas"] == 1
    assert len(reference["losses"]) == 20
    for output in outputs:
        np.testing.assert_allclose(output["losses"], reference["losses"], rtol=0, atol=1e-5)
    chief, other = (np.load(tmp_path / f"worker{i}.npy") for i in range(2))
    np.testing.assert_array_equal(chief, other)  # all-reduce gives both the same update
    np.testing.assert_allclose(chief, np.load(tmp_path / "single.npy"), rtol=0, atol=1e-5)
    assert reference["losses"][-1] < reference["losses"][0]
    assert [o["precision"] for o in outputs] == ["bfloat16", "bfloat16"]  # the chief's choice
    assert reference["precision"] == "bfloat16"  # one process: its own


BUDGET_WORKER = """
import json, sys, tempfile, time
from pathlib import Path

from nlp.training.run import training_strategy
strategy = training_strategy(multi_worker=True)

import keras
from nlp.util.config import ModelConfig, TrainConfig
from nlp.model import Seq2Seq
from nlp.tokenizers.specials import EOS_ID
from nlp.training.trainer import Trainer

keras.utils.set_random_seed(7)
with strategy.scope():
    model = Seq2Seq(ModelConfig(vocab_size=40, embedding_dim=8, units=8, dropout=0.0))
pairs = [([4 + i % 30, 5 + i % 20, 6 + i % 7], [6 + i % 11, 5 + i % 20, EOS_ID])
         for i in range(40000)]  # an epoch far longer than the budget
config = TrainConfig(batch_size=16, epochs=1, learning_rate=0.01, seed=3, max_minutes=0.1,
                     lr_schedule="linear")
trainer = Trainer(model, config, Path(tempfile.mkdtemp()), verbose=0, strategy=strategy)
trainer.fit(pairs[:16], pairs[:16])  # one step: the steps are traced before the clocks start
if sys.argv[1] == "1":
    time.sleep(3)  # reaches the loop later (a slower machine): its clock starts later
state = trainer.fit(pairs, pairs[:16])
print(json.dumps({"step": state.global_step, "seconds": state.train_seconds,
                  "rate": float(trainer.optimizer.learning_rate.numpy())}))
"""


def test_a_time_budget_ends_every_worker_at_the_same_step(tmp_path: Path) -> None:
    """`train.max_minutes` under --multi-worker: the workers start their loops seconds
    apart, so their clocks differ; each stopping on its own clock left the later one
    blocked in the next step's all-reduce. They stop at the step their agreed clock
    (`nlp.training.clock`) reaches the budget, with the same `linear` rate."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", BUDGET_WORKER, str(i)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}),
        )
        for i in range(2)
    ]
    outputs = []
    for process in processes:
        try:
            stdout, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            stdout, stderr = "", "timed out: a worker still waits for the other"
        finally:
            process.kill()
        assert process.returncode == 0, stderr[-3000:]
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert outputs[0] == outputs[1]
    assert 0 < outputs[0]["step"] < 2500 and outputs[0]["seconds"] >= 0.1 * 60
