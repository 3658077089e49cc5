"""The README's recipes, run verbatim: what a user gets is what the benchmarks measure.

A recipe is a fenced `sh` block in README.md right after a `<!-- recipe: NAME -->` line. The
benchmark reads the block from the README (so the two cannot drift apart), runs it with bash
in a fresh work directory with `s2s` on the PATH and the data folders in the environment
variables the README names (e.g. `LCSTS`), and then scores what it left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from benchmarks.common import RESULTS_DIR, read_results, write_json

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"<!-- recipe: (?P<name>[\w-]+) -->\s*```sh\n(?P<body>.*?)```", re.S)


def read_recipe(name: str, readme: Path = README) -> str:
    """The shell text of recipe `name` (KeyError naming the recipes there are)."""
    recipes = {m["name"]: m["body"] for m in _BLOCK.finditer(readme.read_text("utf-8"))}
    if name not in recipes:
        raise KeyError(f"{readme}: no recipe {name!r}; found {sorted(recipes)}")
    return recipes[name]


def commands(script: str) -> list[str]:
    """The recipe's shell commands, continuation lines joined."""
    joined = script.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip()]


def first_training(steps: list[str]) -> int:
    """Index of the recipe's first `s2s train` command (the main model; companions come
    after it, data preparation before)."""
    for index, command in enumerate(steps):
        if shlex.split(command)[:2] == ["s2s", "train"]:
            return index
    raise ValueError("the recipe has no `s2s train` command")


def main_training(script: str) -> list[str]:
    """The recipe's first `s2s train` command as arguments."""
    steps = commands(script)
    return shlex.split(steps[first_training(steps)])


def training_settings(name: str, readme: Path = README) -> tuple[str, ...]:
    """The `--set` values of recipe `name`'s first `s2s train` line but its budget: the
    settings a benchmark that trains on the recipe's corpus in its own loop (steps timed,
    files tokenized) must use, read from the README so the two cannot drift apart."""
    argv = main_training(read_recipe(name, readme))
    values = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--set"]
    return tuple(v for v in values if not v.startswith("train.max_minutes="))


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


class NamedRecipe(Protocol):
    """A README recipe to run: its name and the data folders it names."""

    name: str
    data: dict[str, Path]


def recipe_arguments(
    doc: str, name: str, runs: Sequence[NamedRecipe],
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The options every recipe benchmark takes (and a benchmark's own, `extra`)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    if extra is not None:
        extra(parser)
    parser.add_argument("--only", choices=[r.name for r in runs], action="append")
    parser.add_argument("--limit", type=int, default=1000, help="test pairs per corpus")
    parser.add_argument("--work", type=Path, default=Path("runs") / name)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / f"{name}.json")
    parser.add_argument("--minutes", type=float, help="training budget (not the README's)")
    parser.add_argument("--reuse", action="store_true", help="score models already in --work")
    return parser.parse_args()


R = TypeVar("R", bound=NamedRecipe)
RAN_FILE = "recipe.json"  # in a recipe's work directory: the script that ran, and if verbatim


def run_recipes(
    runs: Sequence[R],
    args: argparse.Namespace,
    model: str,
    score: Callable[[R, Path], dict[str, Any]],
) -> dict[str, Any]:
    """Run each selected recipe in its own work directory (unless --reuse finds its model),
    score it, and write the JSON after each so a long job keeps what it has measured."""
    results = read_results(args.out)  # the other corpora's results stay when re-running one
    for run in runs:
        if args.only and run.name not in args.only:
            continue
        work = args.work / run.name
        script = with_budget(read_recipe(run.name), args.minutes)
        entry: dict[str, Any] = {"recipe": script, "verbatim": args.minutes is None}
        ran = work / RAN_FILE  # what trained the model in `work`, for a later --reuse
        if args.reuse and (work / model / "model").exists():
            # the model's own recipe, not this call's: a --minutes 1 smoke run reused without
            # --minutes is no verbatim recipe
            entry = (json.loads(ran.read_text("utf-8")) if ran.exists()
                     else {"recipe": None, "verbatim": None})
        else:
            minutes = run_script(script, work, run.data, work / "recipe.log")
            entry["recipe_minutes"] = round(minutes, 1)
            write_json(ran, entry)
        entry.update(score(run, work))
        results[run.name] = entry
        write_json(args.out, results)
    return results
