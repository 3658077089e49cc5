"""A quiet TensorFlow start: no CUDA, cuInit or absl lines on a machine without a GPU.

Why at the file-descriptor level: TensorFlow's C++ code writes these lines to fd 2 while it
is imported ("All log messages before absl::InitializeLog() ...", "Could not find cuda
drivers ...") and when it first looks for devices ("failed call to cuInit"). They come before
absl's logging is set up, so TF_CPP_MIN_LOG_LEVEL cannot hide them. Commands import
TensorFlow lazily (`s2s corpus` never does), so instead of
importing it up front, `quiet_tensorflow()` installs an import hook: the first
`import tensorflow`, wherever it happens, runs with fd 2 sent to a temporary file, followed
by device discovery. What was captured is dropped, or written to stderr if the import fails.
`s2s -v` does not install the hook and shows everything.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

PACKAGE = "tensorflow"


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
    """Runs the real loader of `tensorflow` inside `native_stderr_captured`."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
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
            spec.loader = _QuietLoader(spec.loader)
        return spec


_FINDER = _QuietFinder()


def quiet_tensorflow() -> None:
    """Make the first `import tensorflow` of this process quiet (see the module docstring)."""
    if PACKAGE not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_FINDER)
