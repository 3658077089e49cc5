"""A quiet TensorFlow start: no CUDA, cuInit or absl lines on a machine without a GPU.

The `s2s` command line quiets every command this way; the Python API (`nlp.api`) only when
the program asks (`nlp.api.quiet_tensorflow`): fd 2 is the whole process's, so whatever else
the program writes to stderr while TensorFlow imports is dropped with TensorFlow's lines.

Why at the file-descriptor level: TensorFlow's C++ code writes these lines to fd 2 while it
is imported ("All log messages before absl::InitializeLog() ...", "Could not find cuda
drivers ...") and when it first looks for devices ("failed call to cuInit"). They come before
absl's logging is set up, so TF_CPP_MIN_LOG_LEVEL cannot hide them. The project imports
TensorFlow lazily (`s2s corpus` never does), so instead of importing it up front,
`quiet_tensorflow()` installs an import hook: the first `import tensorflow`, wherever it
happens, runs with fd 2 sent to a temporary file, followed by device discovery. What was
captured is dropped, or written to stderr if the import fails.

Only where no GPU is to be expected, though: on a machine with an NVIDIA device or driver
(`gpu_sign`), the same lines are where a missing CUDA library or a driver mismatch is
reported, after which TensorFlow trains on the CPU without a word. There the lines pass
through, followed by one line saying which GPU TensorFlow uses or that it found none.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE = "tensorflow"


def hide_tensorflow_logs() -> None:
    """TensorFlow's C++ INFO and WARNING lines after its start ("XLA service ...
    initialized", "Compiled cluster using XLA!") hidden, unless the user set the level: they
    report the library's inner workings, not the program's. Read once, when TensorFlow
    loads, so this must run before."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def gpu_sign(
    devices: Path = Path("/dev"), which: Callable[[str], str | None] = shutil.which
) -> str | None:
    """What says this machine has an NVIDIA GPU (a /dev/nvidia* device or `nvidia-smi`), or
    None: then TensorFlow's complaints about CUDA are expected and say nothing."""
    found = sorted(devices.glob("nvidia*")) if devices.is_dir() else []
    if found:
        return f"{found[0]} exists"
    tool = which("nvidia-smi")
    return f"{tool} exists" if tool else None


def gpu_report(sign: str, gpus: Sequence[Any]) -> str:
    """The line shown after TensorFlow's start on a machine with a GPU."""
    if gpus:
        return "TensorFlow uses " + ", ".join(getattr(g, "name", str(g)) for g in gpus)
    return (
        f"TensorFlow found no GPU although {sign}: it runs on the CPU (the lines above say "
        "why, e.g. a missing CUDA library or an unsupported driver)"
    )


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    """Send fd 2 to a temporary file for the body; replay it to stderr if the body raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            os.write(2, sink.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of `tensorflow` inside `native_stderr_captured`, or, where a GPU
    is to be expected (`sign`), without capturing and reporting which GPU it found."""

    def __init__(self, loader: Any, sign: str | None) -> None:
        self._loader = loader
        self._sign = sign

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if self._sign is not None:
            self._loader.exec_module(module)
            gpus = module.config.list_physical_devices("GPU")
            print(gpu_report(self._sign, gpus), file=sys.stderr, flush=True)
            return
        with native_stderr_captured():
            self._loader.exec_module(module)
            module.config.list_physical_devices("GPU")  # prints "failed call to cuInit" here

    def __getattr__(self, name: str) -> Any:  # resource readers etc. of the real loader
        return getattr(self._loader, name)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` with the other finders and wraps its loader; used once."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != PACKAGE:
            return None
        uninstall()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, gpu_sign())
        return spec


_FINDER = _QuietFinder()


def quiet_tensorflow() -> None:
    """Make the first `import tensorflow` of this process quiet (see the module docstring),
    and what TensorFlow logs after it (`hide_tensorflow_logs`)."""
    hide_tensorflow_logs()
    if PACKAGE not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    """Remove the import hook (after a command, or once it has been used)."""
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_FINDER)
