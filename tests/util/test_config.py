import json
import warnings
from pathlib import Path

import pytest

from nlp.util.config import ConfigError, ExperimentConfig


def test_overrides_are_typed() -> None:
    config = ExperimentConfig().with_overrides(
        ["model.units=64", "model.copy=true", "train.learning_rate=0.01", "model.cell=gru"]
    )
    assert config.model.units == 64 and config.model.copy is True
    assert config.train.learning_rate == 0.01 and config.model.cell == "gru"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("model.unitz=3", "unknown setting"),
        ("model.units=abc", "not a valid int"),
        ("model.copy=maybe", "not a valid bool"),
        ("units=3", "section.key=value"),
    ],
)
def test_bad_overrides_name_the_problem(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig().with_overrides([item])


def test_save_load_round_trip(tmp_path: Path) -> None:
    config = ExperimentConfig().with_overrides(["model.attention=bahdanau", "data.task=headline"])
    config.save(tmp_path / "config.json")
    assert ExperimentConfig.load(tmp_path / "config.json") == config


def test_load_errors_name_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"model": {"units": "many"}}')
    with pytest.raises(ConfigError, match=r"config.json:model:units: expected int"):
        ExperimentConfig.load(path)
    path.write_text('{"model": {"units": 8},\n "bogus": 1}')
    with pytest.raises(ConfigError, match="unknown keys"):
        ExperimentConfig.load(path)
    path.write_text('{"model": \n{')
    with pytest.raises(ConfigError, match="line 2"):
        ExperimentConfig.load(path)


def test_task_preset_applies_before_set_overrides() -> None:
    from nlp.training.command import experiment_config
    from s2s.cli import build_parser

    args = build_parser().parse_args(
        ["train", "--corpus", "c.jsonl", "--out", "o", "--task", "headline",
         "--set", "model.copy=false"]
    )
    config = experiment_config(args)
    assert config.data.task == "headline"
    assert config.tokenizer.placeholders and config.train.select_by == "rouge"  # the preset
    assert config.model.copy is False  # --set wins over the preset
    plain = experiment_config(
        build_parser().parse_args(["train", "--corpus", "c.jsonl", "--out", "o"])
    )
    assert plain.model.copy is False and plain.data.task == "chat"


def test_unknown_task_preset_is_refused() -> None:
    from nlp.util.config import ConfigError, task_preset

    with pytest.raises(ConfigError, match="headline"):
        task_preset("summaries")

def test_configs_saved_with_a_removed_setting_still_load(tmp_path: Path) -> None:
    """A bundle trained while `model.word_dropout` existed would not load at all: its
    config.json held the key. Off, the key goes silently; on, with a warning (a run training
    on from it loses the setting). Unknown keys are still refused."""
    raw = ExperimentConfig().to_dict()
    raw["model"]["word_dropout"] = 0.1
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    with pytest.warns(UserWarning, match=r"config.json: model.word_dropout=0.1 is no longer"):
        assert ExperimentConfig.load(path) == ExperimentConfig()
    raw["model"]["word_dropout"] = 0.0
    path.write_text(json.dumps(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ExperimentConfig.load(path) == ExperimentConfig()
    raw["train"]["ema_decay_typo"] = 0.0
    with pytest.raises(ConfigError, match="unknown keys"):
        ExperimentConfig.from_dict(raw)
