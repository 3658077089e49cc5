"""The TensorFlow defaults `import nlp` sets: oneDNN kernels on unless the user said no, and
training's XLA:CPU without YNNPACK fusions unless the user set them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# TensorFlow's own answer, not the variable: whether its oneDNN kernels are in use (the
# probe the oneDNN benchmark records), after `import nlp` and then TensorFlow
PROBE = """
import nlp
import tensorflow
from benchmarks.onednn_cpu import onednn_in_use
print(onednn_in_use())
"""


def _onednn_enabled(**env: str) -> bool:
    environ = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True,
                            text=True, timeout=300, env={**environ, **env})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.slow  # two processes importing TensorFlow
def test_onednn_is_on_unless_the_user_turned_it_off() -> None:
    assert _onednn_enabled()  # on AVX2-only CPUs TensorFlow alone leaves it off
    assert not _onednn_enabled(TF_ENABLE_ONEDNN_OPTS="0")


# A training process's XLA flags, then an XLA-compiled function (XLA aborts the process on a
# flag it does not know, so this also shows the flag is TensorFlow's)
XLA_PROBE = """
import os
import tensorflow as tf
from nlp.training.trainer import avoid_ynn_fusions
avoid_ynn_fusions()
print(os.environ["XLA_FLAGS"])
print(float(tf.function(lambda x: x + 1, jit_compile=True)(tf.constant(1.0))))
"""


def _xla_flags(**env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    result = subprocess.run([sys.executable, "-c", XLA_PROBE], cwd=REPO, capture_output=True,
                            text=True, timeout=300, env={**environ, **env})
    assert result.returncode == 0, result.stderr[-3000:]
    flags, value = result.stdout.strip().splitlines()[-2:]
    assert value == "2.0"
    return flags


@pytest.mark.slow  # processes importing TensorFlow
def test_training_turns_ynn_fusions_off_unless_the_user_set_them() -> None:
    # XLA:CPU's YNNPACK fusions crash TensorFlow 2.21 now and then (issue 52's SIGSEGV)
    assert _xla_flags() == "--xla_cpu_experimental_ynn_fusion_type="
    assert _xla_flags(XLA_FLAGS="--xla_cpu_use_thunk_runtime=true").split() == [
        "--xla_cpu_use_thunk_runtime=true", "--xla_cpu_experimental_ynn_fusion_type="]
    own = "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
    assert _xla_flags(XLA_FLAGS=own) == own


def test_a_trainer_turns_them_off(tiny_bundle: Path) -> None:
    # the session's tiny model was trained in this process, through `Trainer`
    assert "--xla_cpu_experimental_ynn_fusion_type=" in os.environ.get("XLA_FLAGS", "")
