"""The README's recipes, run verbatim: what a user gets is what the benchmarks measure.

A recipe is a fenced `sh` block in README.md right after a `<!-- recipe: NAME -->` line. The
benchmark reads the block from the README (so the two cannot drift apart), runs it with bash
in a fresh work directory with `s2s` on the PATH and the data folders in the environment
variables the README names (e.g. `LCSTS`), and then scores what it left behind.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"<!-- recipe: (?P<name>[\w-]+) -->\s*```sh\n(?P<body>.*?)```", re.S)


def read_recipe(name: str, readme: Path = README) -> str:
    """The shell text of recipe `name` (KeyError naming the recipes there are)."""
    recipes = {m["name"]: m["body"] for m in _BLOCK.finditer(readme.read_text("utf-8"))}
    if name not in recipes:
        raise KeyError(f"{readme}: no recipe {name!r}; found {sorted(recipes)}")
    return recipes[name]


def with_budget(script: str, minutes: float | None) -> str:
    """The recipe with another training budget (for smoke runs; results are then labelled
    as not the README's recipe)."""
    if minutes is None:
        return script
    return re.sub(r"train\.max_minutes=[\d.]+", f"train.max_minutes={minutes:g}", script)


def s2s_environment(data: dict[str, Path]) -> dict[str, str]:
    """This interpreter's `s2s` first on the PATH, the data folders as variables."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TF_CPP_MIN_LOG_LEVEL"] = env.get("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update({key: str(path) for key, path in data.items()})
    return env


def run_script(script: str, work: Path, data: dict[str, Path], log: Path) -> float:
    """Run `script` with bash (-e: the first failing command stops it) in `work`; returns
    the wall-clock minutes. Output goes to `log`; a failure raises with the log's tail."""
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as handle:
        result = subprocess.run(
            ["bash", "-e", "-x", "-c", script],
            cwd=work,
            env=s2s_environment(data),
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode:
        tail = "".join(log.read_text("utf-8").splitlines(keepends=True)[-30:])
        raise RuntimeError(f"recipe failed (exit {result.returncode}); {log}:\n{tail}")
    return (time.monotonic() - started) / 60
