"""A command that loads TensorFlow starts quietly on a machine without a GPU; -v shows why."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO

# What TensorFlow's C++ start-up writes to fd 2 on a CPU-only machine (absl pre-init notice,
# "Could not find cuda drivers", "failed call to cuInit") and its log-line prefix.
NOISE = re.compile(r"absl|cuda|cuInit|^[IWE]\d{4} ", re.IGNORECASE | re.MULTILINE)


def s2s(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-m", "s2s.cli", *argv], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=300,
    )


def test_a_tensorflow_command_prints_no_cuda_or_absl_lines(tiny_bundle: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    command = ["attention", "--model", str(tiny_bundle), "--text", "how are you?", "--greedy",
               "--min-length", "3",  # the one-epoch model may answer nothing
               "--out", str(tmp_path / "a.png")]
    quiet = s2s(*command)
    assert quiet.returncode == 0, quiet.stderr
    assert "attention heatmap written" in quiet.stdout  # TensorFlow really ran
    assert not NOISE.search(quiet.stderr), quiet.stderr
    verbose = s2s("-v", *command)
    assert verbose.returncode == 0, verbose.stderr
    assert NOISE.search(verbose.stderr)  # the same lines are there, and -v shows them
