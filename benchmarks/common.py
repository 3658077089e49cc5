"""Small helpers shared by the benchmarks: isolation, timing, memory, JSON and tables.

Run benchmarks from the repository root as modules (`python -m benchmarks.decode_speed`) so
that both `benchmarks` and `nlp` import.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import nlp  # noqa: F401  (its TensorFlow defaults, before a benchmark imports TensorFlow)

T = TypeVar("T")

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    """A loopback port free a moment ago (for a server the benchmark or test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (ru_maxrss is KiB on Linux,
    bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class ChildrenPeakRss:
    """The largest peak resident memory (VmHWM) among this process's child processes (worker
    pools) while it runs, in MiB, sampled every `interval` seconds from /proc (0 elsewhere).

    Why not `getrusage(RUSAGE_CHILDREN)`: a child started by fork-and-exec ("spawn") is
    charged the parent's resident memory at the fork, so it reports the parent's size; the
    high-water mark of the child's own address space (VmHWM) starts at its exec.
    """

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChildrenPeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for pid in _children():
                self.peak_mb = max(self.peak_mb, _vm_hwm_mb(pid))


def _children() -> list[str]:
    pids: list[str] = []
    for task in Path("/proc/self/task").glob("*"):
        try:
            pids += (task / "children").read_text().split()
        except OSError:
            continue
    return pids


def _vm_hwm_mb(pid: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def run_isolated(function: Callable[..., T], *args: Any) -> T:
    """Call `function(*args)` in a fresh process and return its result.

    Peak RSS only ever grows within a process, so each measurement that reports memory runs
    alone; 'spawn' gives a clean interpreter (no inherited TensorFlow state). `function` must
    be importable at module level and its result picklable.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def timed(function: Callable[[], T]) -> tuple[T, float]:
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, nearest rank (no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def read_results(path: Path) -> dict[str, Any]:
    """A results file's entries, to add to (empty when there is none yet): a run of some of a
    benchmark's cases (`--only`, `--models`) keeps the others' results."""
    return dict(json.loads(path.read_text("utf-8"))) if path.exists() else {}


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A plain-text (Markdown-compatible) table; `columns` are (key, header) pairs. Floats are
    shown with three significant digits, at least one decimal."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3g}"
        return str(value)

    table = [[header for _, header in columns]]
    table += [[cell(row.get(key, "")) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in table
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
