"""MirroredStrategy through the project's trainer, on two logical CPU devices (with the
weights' moving average, `train.ema_decay`, and the vocabulary unlikelihood, whose word counts
are the whole batch's).

GPUs are what MirroredStrategy is for, but the code path (replicated variables, split
batches, summed gradients, checkpoints of mirrored variables) is the same on logical CPUs.
Logical devices must be set before TensorFlow starts, hence a fresh process.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # trains in a fresh process

SCRIPT = """
import tempfile
from pathlib import Path

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from nlp.util.config import ModelConfig, TrainConfig
from nlp.model import Seq2Seq
from nlp.tokenizers.specials import EOS_ID
from nlp.training.checkpoint import load_checkpoint
from nlp.training.trainer import Trainer

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = Seq2Seq(ModelConfig(vocab_size=40, embedding_dim=8, units=8, dropout=0.0))
pairs = [([4 + i % 30, 5 + i % 20, 6], [6, 5 + i % 20, EOS_ID]) for i in range(256)]
run = Path(tempfile.mkdtemp())
# with the weights' moving average, whose update runs in each replica's context, and the
# unlikelihood loss, whose word counts are summed over the replicas
config = TrainConfig(batch_size=32, epochs=3, learning_rate=0.01, ema_decay=0.9,
                     unlikelihood_weight=1.0)
trainer = Trainer(model, config, run, verbose=0, strategy=strategy)
state = trainer.fit(pairs, pairs[:32])
losses = [h["valid_loss"] for h in state.history]
assert strategy.num_replicas_in_sync == 2
assert losses[-1] < losses[0], losses
for variable, average in trainer.average.pairs:
    for replica in (0, 1):  # every replica's average moved alike, and away from the weights
        assert (average.values[replica].numpy() == average.values[0].numpy()).all()
assert any((v.numpy() != a.numpy()).any() for v, a in trainer.average.pairs)
load_checkpoint(run / "checkpoint", model, trainer.optimizer, trainer.checkpoint_extras)

# the unlikelihood's weights read the whole batch: replica 0 holds targets 3, 4 and replica 1
# targets 3, 3, every prediction 3; alone, replica 1 over-uses nothing and replica 0's beta is
# 1 ln(1 / 0.5); together p_model(3) = 4/4, p_human(3) = 3/4
import math
from nlp.model.losses import overused_unlikelihood
from nlp.training.objective import everywhere

row = [0.0, 0.0, 0.0, 2.0, 0.0]
halves = iter([tf.constant([[3, 4]]), tf.constant([[3, 3]])])
targets = strategy.experimental_distribute_values_from_function(lambda _: next(halves))
logits = tf.constant([row, row])
penalties = strategy.run(
    lambda t: overused_unlikelihood(logits, t, 5, everywhere)[0], args=(targets,))
first, second = (float(v) for v in strategy.experimental_local_results(penalties))
p = math.exp(2.0) / (math.exp(2.0) + 4.0)
assert abs(first - math.log(4 / 3) * -math.log(1 - p)) < 1e-5, first
assert second == 0.0, second
print("ok", losses)
"""


def test_mirrored_strategy_trains_on_two_replicas() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")
