"""The TensorFlow defaults `import nlp` sets: oneDNN kernels on unless the user said no."""

from __future__ import annotations

import os
import subprocess
import sys

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
