"""A command that loads TensorFlow starts quietly on a machine without a GPU; -v shows why."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

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
               "--retrieve", "0",  # the model's own reply, whose heatmap it writes
               "--min-length", "3",  # the one-epoch model may answer nothing
               "--out", str(tmp_path / "a.png")]
    quiet = s2s(*command)
    assert quiet.returncode == 0, quiet.stderr
    assert "attention heatmap written" in quiet.stdout  # TensorFlow really ran
    assert not NOISE.search(quiet.stderr), quiet.stderr
    verbose = s2s("-v", *command)
    assert verbose.returncode == 0, verbose.stderr
    assert NOISE.search(verbose.stderr)  # the same lines are there, and -v shows them


def test_library_loggers_are_held_to_warnings_ours_are_not(capsys) -> None:  # type: ignore[no-untyped-def]
    """An INFO line of matplotlib's font cache reached the demo's terminal; ours must."""
    import logging

    from s2s import quiet

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    root.handlers = []
    try:
        quiet.configure_logging(verbose=False)
        logging.getLogger("matplotlib.font_manager").info("generated new fontManager")
        logging.getLogger("nlp.chat.responder").info("our own line")
        logging.getLogger("matplotlib.font_manager").warning("a library's warning")
    finally:
        root.handlers, root.level = saved
        for name in quiet.OWN_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
    err = capsys.readouterr().err
    assert "fontManager" not in err
    assert "our own line" in err and "a library's warning" in err


def test_a_gpu_is_expected_where_a_device_or_nvidia_smi_exists(tmp_path: Path) -> None:
    from nlp.util.quiet import gpu_sign

    assert gpu_sign(tmp_path, lambda name: None) is None  # CPU machine: stay quiet
    assert gpu_sign(tmp_path, lambda name: f"/usr/bin/{name}") == "/usr/bin/nvidia-smi exists"
    (tmp_path / "nvidia0").touch()
    assert gpu_sign(tmp_path, lambda name: None) == f"{tmp_path / 'nvidia0'} exists"


class _Device:
    name = "/physical_device:GPU:0"


class _FakeTensorFlowLoader:
    """Imports a stand-in `tensorflow` that complains on fd 2 as the real one does."""

    def __init__(self, gpus: list[object]) -> None:
        self.gpus = gpus

    def create_module(self, spec):  # type: ignore[no-untyped-def]
        return None

    def exec_module(self, module) -> None:  # type: ignore[no-untyped-def]
        import types

        os.write(2, b"Could not load dynamic library 'libcudart.so.12'\n")
        gpus = self.gpus
        module.config = types.SimpleNamespace(list_physical_devices=lambda kind: gpus)


def _import_with(loader: object, sign: str | None):  # type: ignore[no-untyped-def]
    import importlib.machinery
    import importlib.util

    from nlp.util.quiet import _QuietLoader

    quiet_loader = _QuietLoader(loader, sign)
    spec = importlib.machinery.ModuleSpec("fake_tensorflow", quiet_loader)
    module = importlib.util.module_from_spec(spec)
    quiet_loader.exec_module(module)
    return module


def test_cuda_complaints_are_dropped_only_where_no_gpu_is_expected(capfd) -> None:  # type: ignore[no-untyped-def]
    _import_with(_FakeTensorFlowLoader([]), None)
    assert capfd.readouterr().err == ""  # a CPU machine: nothing to say

    _import_with(_FakeTensorFlowLoader([]), "/dev/nvidia0 exists")
    err = capfd.readouterr().err
    assert "libcudart.so.12" in err  # the reason TensorFlow gives, passed through
    assert "no GPU although /dev/nvidia0 exists" in err and "CPU" in err

    _import_with(_FakeTensorFlowLoader([_Device()]), "/dev/nvidia0 exists")
    assert "TensorFlow uses /physical_device:GPU:0" in capfd.readouterr().err
