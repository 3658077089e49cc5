"""The README's recipes are what the benchmarks run: each must parse with the real CLI."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.recipes import commands as recipe_commands
from benchmarks.recipes import read_recipe, with_budget
from s2s.cli import build_parser

HEADLINE_RECIPES = ["headlines-zh", "headlines-en", "rss-news-en", "xwlb-zh"]
CHAT_RECIPES = ["chat-en", "dailydialog-en", "chat-zh"]
# The set-up lines a recipe may have besides s2s commands: installing a corpus from the package
# registry (pinned), and a variable naming where an installed package keeps its files.
PIP_INSTALL = re.compile(r"pip install '[\w-]+>=[\d.]+,<[\d.]+'")
PACKAGE_FOLDER = re.compile(r'(?P<name>[A-Z_]+)=\$\(python -c "(?P<code>[^"]+)"\)')
RECIPES = [*HEADLINE_RECIPES, *CHAT_RECIPES]


def commands(script: str) -> list[list[str]]:
    """The recipe's s2s commands as arguments (set-up lines left out, see `setup_lines`)."""
    return [shlex.split(line) for line in recipe_commands(script) if not is_setup(line)]


def is_setup(line: str) -> bool:
    return bool(PIP_INSTALL.fullmatch(line) or PACKAGE_FOLDER.fullmatch(line))


def setup_lines(script: str) -> list[str]:
    return [line for line in recipe_commands(script) if is_setup(line)]


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_command_is_a_valid_s2s_command(name: str) -> None:
    parser = build_parser()
    found = commands(read_recipe(name))
    assert found, f"recipe {name} is empty"
    for argv in found:
        assert argv[0] == "s2s", f"recipe {name}: only s2s commands, got {argv[0]}"
        args = parser.parse_args(argv[1:])  # SystemExit on an unknown flag or bad value
        assert callable(args.func)


def test_the_english_chat_recipe_reads_the_registry_corpus_it_installs() -> None:
    """chat-en installs chitchat-dataset and finds its file through the package: no download
    of data at run time, no variable for the user to set."""
    setup = setup_lines(read_recipe("chat-en"))
    assert setup[0] == "pip install 'chitchat-dataset>=0.9,<1'"
    match = PACKAGE_FOLDER.fullmatch(setup[1])
    assert match and match["name"] == "CHITCHAT"
    if importlib.util.find_spec("chitchat_dataset") is None:
        pytest.skip("chitchat-dataset is not installed (the recipe's own first line installs it)")
    printed = subprocess.run([sys.executable, "-c", match["code"]], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert (Path(printed) / "dataset.json").is_file()


def test_only_the_english_chat_recipe_has_set_up_lines() -> None:
    assert [name for name in RECIPES if setup_lines(read_recipe(name))] == ["chat-en"]


def test_headline_recipes_use_the_task_preset_and_the_stated_budget() -> None:
    for name in HEADLINE_RECIPES:
        script = read_recipe(name)
        assert "s2s train --task headline" in script
        assert "train.max_minutes=20" in script
        assert "train.max_minutes=0.5" in with_budget(script, 0.5)


def test_unknown_recipe_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="headlines-zh"):
        read_recipe("no-such-recipe")


def test_chat_recipes_train_the_chat_model_with_its_index_and_tune() -> None:
    # the chat model's training builds its retrieval index and dual encoder (retrieval.*
    # defaults, not turned off); the tuner chooses the ranker and the reply source
    for name in CHAT_RECIPES:
        script = read_recipe(name)
        assert script.count("train.max_minutes=20") == 1, name
        assert "s2s train --task chat" in script and "retrieval." not in script
        assert "s2s tune-decoding --model runs/chat" in script, name


def test_the_learning_curve_trains_the_recipes_main_model_on_its_training_files() -> None:
    from benchmarks.learning_curve import option_values
    from benchmarks.recipes import main_training

    argv = main_training(read_recipe("chat-zh"))
    assert "--reverse" not in argv and argv[argv.index("--task") + 1] == "chat"
    start, end = option_values(argv, "--corpus")
    assert argv[start:end] == ["chat.jsonl", "subtitles.jsonl"]
    assert argv[argv.index("--valid") + 1] == "chat-valid.jsonl"  # never the test split


def test_a_recipe_s_training_settings_are_its_train_line_s_but_the_budget(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from benchmarks.recipes import training_settings

    readme = tmp_path / "README.md"
    readme.write_text(
        "<!-- recipe: toy -->\n```sh\ns2s corpus convert --input a --output b\n"
        "s2s train --task chat --corpus b --out runs/x --set tokenizer.kind=jieba \\\n"
        "    --set train.max_minutes=20 --set train.sampled_softmax=0\n"
        "s2s train --task lm --corpus b --out runs/lm --set vocab.max_size=5\n```\n")
    assert training_settings("toy", readme) == ("tokenizer.kind=jieba", "train.sampled_softmax=0")


def test_the_chat_zh_corpus_of_the_speed_benchmarks_trains_as_its_recipe() -> None:
    from benchmarks.data_pipeline import corpora
    from benchmarks.recipes import training_settings

    chat_zh = next(corpus for corpus in corpora() if corpus.name == "chat-zh")
    assert chat_zh.settings == training_settings("chat-zh")
    assert "train.sampled_softmax=0" in chat_zh.settings  # the recipe's exact softmax


def test_the_learning_curve_samples_are_seeded_and_nested(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from benchmarks.learning_curve import sample_pairs

    source = tmp_path / "pairs.jsonl"
    source.write_text("".join(f'{{"source": "s{i}", "target": "t{i}"}}\n' for i in range(50)))
    small, large, again = (tmp_path / f"{n}.jsonl" for n in ("small", "large", "again"))
    assert sample_pairs([source], 10, 7, small) == 10
    assert sample_pairs([source], None, 7, large) == 50
    sample_pairs([source], 10, 7, again)
    assert small.read_text() == again.read_text()
    assert large.read_text().startswith(small.read_text())  # a larger sample holds the smaller


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_vectors_are_packaged_or_written_by_the_recipe(name: str) -> None:
    """A recipe may not name vectors a user cannot have: a packaged set, or a file an earlier
    line of the same recipe writes."""
    from nlp.vectors.files import PACKAGED

    written: set[str] = set()
    for argv in commands(read_recipe(name)):
        for i, arg in enumerate(argv[:-1]):
            if arg in ("--out", "--output"):
                written.add(argv[i + 1])
            value = argv[i + 1]
            if arg == "--set" and value.startswith("model.pretrained_embeddings="):
                vectors = value.split("=", 1)[1]
                assert vectors in PACKAGED or vectors in written, f"{name}: {vectors}"


def starts_from_glove(recipe: str) -> list[bool]:
    """For each `s2s train` line of the recipe: does it start from the packaged GloVe?"""
    trainings = [argv for argv in commands(read_recipe(recipe)) if argv[:2] == ["s2s", "train"]]
    return ["model.pretrained_embeddings=glove-6b-50d" in argv for argv in trainings]


def test_the_english_chat_model_starts_from_glove() -> None:
    assert starts_from_glove("chat-en") == [True]
    assert starts_from_glove("dailydialog-en") == [True]


def test_the_english_headline_models_start_from_glove() -> None:
    assert starts_from_glove("headlines-en") == [True]
    assert starts_from_glove("rss-news-en") == [True]
