"""The `s2s` command line: every option is explained, and help does not load TensorFlow."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from s2s.cli import build_parser, main
from tests.conftest import REPO


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:  # argparse has no public walk over subcommands
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found.update({f"{name} {k}": v for k, v in _subparsers(sub).items()})
    return found


def test_every_subcommand_and_option_has_help() -> None:
    commands = _subparsers(build_parser())
    expected = {"corpus", "train", "retrain", "evaluate", "attention", "headlines", "chat", "bot"}
    assert expected <= set(commands)
    for name, parser in commands.items():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            assert action.help, f"s2s {name} {action.option_strings or action.dest}: no help"


@pytest.mark.slow
def test_help_is_fast_and_does_not_import_tensorflow() -> None:
    code = (
        "import sys; from s2s.cli import build_parser; build_parser(); "
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_bad_input_is_one_clear_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "nope.jsonl"
    code = main(["train", "--corpus", str(missing), "--out", str(tmp_path / "run")])
    assert code == 1
    assert f"{missing}: no such file or directory" in capsys.readouterr().err


def test_unknown_setting_is_refused(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    code = main(
        [
            "train",
            "--corpus",
            "corpora/dialogue-en.jsonl",
            "--out",
            str(tmp_path),
            "--set",
            "model.unitz=8",
        ]
    )
    assert code == 1
    assert "unknown setting 'model.unitz'" in capsys.readouterr().err
