"""Dialogue corpora are split by conversation, through every conversion and the trainer.

Adjacent turns make pairs, so the reply of one pair is the post of the next: a split that
placed pairs one by one would put most held-out utterances into training as well.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from nlp.corpus.command import register
from nlp.corpus.pipeline import VALID, assign_split
from nlp.corpus.readers import read_pairs
from nlp.corpus.records import GROUP_FIELD, Pair, ReadReport
from nlp.training.corpus_io import split

DIALOGUES = 300


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="s2s")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["corpus", *argv])
    return args.func(args)


def utterance(dialogue: int, turn: int) -> str:
    return f"dialogue {dialogue} says thing {turn} ."


def dailydialog(path: Path) -> Path:
    """DailyDialog's format: a dialogue per line, turns ended by `__eou__`."""
    lines = [
        " __eou__ ".join(utterance(d, t) for t in range(5)) + " __eou__"
        for d in range(DIALOGUES)
    ]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def chitchat(path: Path) -> Path:
    """chitchat-dataset's `dataset.json`: conversations of one speaker's message lists."""
    conversations = {
        f"id-{d}": {
            "messages": [
                [{"text": utterance(d, t), "sender": "ab"[t % 2], "timestamp": 0}]
                for t in range(5)
            ]
        }
        for d in range(DIALOGUES)
    }
    path.write_text(json.dumps(conversations), "utf-8")
    return path


def rows(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def utterances(path: Path) -> set[str]:
    return {text for row in rows(path) for text in (row["source"], row["target"])}


def convert(fmt: str, source: Path, kept: Path, held: Path, seed: int) -> None:
    assert cli("convert", "--format", fmt, "--input", str(source), "--output", str(kept),
               "--valid-output", str(held), "--valid-fraction", "0.2", "--seed", str(seed)) == 0


def test_a_held_out_dialogue_shares_no_utterance_with_training(tmp_path: Path) -> None:
    train, valid = tmp_path / "train.jsonl", tmp_path / "valid.jsonl"
    convert("dailydialog", dailydialog(tmp_path / "d.txt"), train, valid, seed=1)
    assert len(rows(train)) + len(rows(valid)) == DIALOGUES * 4
    assert 20 < len(rows(valid)) // 4 < 100  # about a fifth of the dialogues, each whole
    assert not utterances(train) & utterances(valid)


def test_a_test_split_then_a_validation_split_keep_conversations_whole(tmp_path: Path) -> None:
    """The chat recipes' two conversions: test pairs out first, then validation from the
    rest; the second reads the first's JSONL, which carries each pair's conversation."""
    rest, test = tmp_path / "all.jsonl", tmp_path / "test.jsonl"
    train, valid = tmp_path / "train.jsonl", tmp_path / "valid.jsonl"
    convert("chitchat", chitchat(tmp_path / "dataset.json"), rest, test, seed=2)
    convert("jsonl", rest, train, valid, seed=1)
    assert all(row[GROUP_FIELD] for row in rows(rest) + rows(valid))
    assert rows(valid) and rows(test)
    assert not utterances(rest) & utterances(test)
    assert not utterances(train) & utterances(valid)
    assert not utterances(train) & utterances(test)


def test_pairs_of_one_conversation_share_a_group_drawn_from_its_text(tmp_path: Path) -> None:
    first = list(read_pairs(dailydialog(tmp_path / "a.txt"), "dailydialog", report=ReadReport()))
    again = list(read_pairs(dailydialog(tmp_path / "b.txt"), "dailydialog", report=ReadReport()))
    assert [p.group for p in first] == [p.group for p in again]  # content, not file or line
    assert len({p.group for p in first[:4]}) == 1
    assert len({p.group for p in first}) == DIALOGUES


def test_the_trainers_own_split_keeps_groups_whole() -> None:
    pairs = [Pair(utterance(d, t), utterance(d, t + 1), group=f"g{d}")
             for d in range(DIALOGUES) for t in range(4)]
    kept, held = split(pairs, 0.2, seed=3)
    assert held and not {p.group for p in kept} & {p.group for p in held}


def test_pairs_without_a_group_are_placed_by_their_own_content() -> None:
    pair = Pair("a post", "a reply")
    assert assign_split(pair, 0.5, 1) == assign_split(Pair("a post", "a reply", "x:9"), 0.5, 1)
    sides = {assign_split(Pair(f"post {n}", "reply"), 0.5, 1) for n in range(50)}
    assert VALID in sides and len(sides) == 2


def test_pairs_of_too_few_conversations_are_split_pair_by_pair(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One chat's log is one conversation: held out whole, nothing would be left to train
    on (`s2s retrain --corpus LOG` failed so), so its pairs are split one by one."""
    pairs = [Pair(utterance(0, t), utterance(0, t + 1), group="g0") for t in range(40)]
    kept, held = split(pairs, 0.5, seed=3)
    assert kept and held and len(kept) + len(held) == 40
    assert "40 pairs from 1 conversation, too few" in capsys.readouterr().err
    many = [Pair(utterance(d, t), utterance(d, t + 1), group=f"g{d}")
            for d in range(DIALOGUES) for t in range(4)]
    split(many, 0.2, seed=3)
    assert "too few" not in capsys.readouterr().err  # enough conversations: split by them
