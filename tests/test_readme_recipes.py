"""The README's recipes are what the benchmarks run: each must parse with the real CLI."""

from __future__ import annotations

import shlex

import pytest

from benchmarks.recipes import read_recipe, with_budget
from s2s.cli import build_parser

HEADLINE_RECIPES = ["headlines-zh", "headlines-en", "rss-news-en"]
CHAT_RECIPES = ["chat-en", "chat-zh"]
RECIPES = [*HEADLINE_RECIPES, *CHAT_RECIPES]


def commands(script: str) -> list[list[str]]:
    joined = script.replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.strip()]


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_command_is_a_valid_s2s_command(name: str) -> None:
    parser = build_parser()
    found = commands(read_recipe(name))
    assert found, f"recipe {name} is empty"
    for argv in found:
        assert argv[0] == "s2s", f"recipe {name}: only s2s commands, got {argv[0]}"
        args = parser.parse_args(argv[1:])  # SystemExit on an unknown flag or bad value
        assert callable(args.func)


def test_headline_recipes_use_the_task_preset_and_the_stated_budget() -> None:
    for name in HEADLINE_RECIPES:
        script = read_recipe(name)
        assert "s2s train --task headline" in script
        assert "train.max_minutes=20" in script
        assert "train.max_minutes=0.5" in with_budget(script, 0.5)


def test_unknown_recipe_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="headlines-zh"):
        read_recipe("no-such-recipe")


def test_chat_recipes_train_the_companions_name_them_and_tune() -> None:
    for name in CHAT_RECIPES:
        script = read_recipe(name)
        assert script.count("train.max_minutes=20") == 3  # chat model, LM, reverse model
        for step in ("--task lm", "--reverse", "s2s companion --model runs/chat",
                     "s2s tune-decoding --model runs/chat"):
            assert step in script, f"{name}: {step}"
