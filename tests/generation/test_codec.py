"""The codec cuts long sources at the end that matters for the task, in training and use alike."""

from __future__ import annotations

from nlp.chat.context import DialogueContext
from nlp.corpus.records import Pair
from nlp.generation.codec import TextCodec
from nlp.tokenizers.specials import EOS_ID
from nlp.util.config import ExperimentConfig

PAIRS = [Pair("a b c d e f g", "x y"), Pair("h i j", "z")]


def _codec(task: str, max_source_length: int = 3) -> TextCodec:
    config = ExperimentConfig().with_overrides(
        [f"data.task={task}", f"train.max_source_length={max_source_length}"]
    )
    return TextCodec.fit(config, PAIRS)


def test_chat_sources_keep_their_last_tokens_in_training_and_use() -> None:
    codec = _codec("chat")
    assert codec.source("a b c d e f g").tokens == ["e", "f", "g"]
    source_ids, _ = codec.pair_ids(PAIRS[0])
    assert source_ids == codec.vocab.encode(["e", "f", "g"])


def test_headline_sources_keep_their_first_tokens_in_training_and_use() -> None:
    codec = _codec("headline")
    assert codec.source("a b c d e f g").tokens == ["a", "b", "c"]
    source_ids, _ = codec.pair_ids(PAIRS[0])
    assert source_ids == codec.vocab.encode(["a", "b", "c"])


def test_a_long_chat_context_keeps_the_message_being_answered() -> None:
    codec = _codec("chat", max_source_length=6)
    context = DialogueContext(2, codec.config.data.turn_separator)
    context.add_exchange("chat", "a b c d", "e f g")
    tokens = codec.source(context.encoder_input("chat", "h i j")).tokens
    assert tokens[-3:] == ["h", "i", "j"] and len(tokens) == 6


def test_only_a_target_that_ended_within_the_limit_gets_an_end_token() -> None:
    """A target cut at `train.max_target_length` did not end there: teaching an end token at
    the cut would teach the model to stop mid-sentence."""
    config = ExperimentConfig().with_overrides(["train.max_target_length=2"])
    codec = TextCodec.fit(config, [Pair("a b", "x y z"), Pair("c", "x y")])
    x, y = codec.vocab.encode(["x", "y"])
    assert codec.pair_ids(Pair("a b", "x y z"))[1] == [x, y]  # cut: no end
    assert codec.pair_ids(Pair("c", "x y"))[1] == [x, y, EOS_ID]  # ended at the limit
    assert codec.pair_ids(Pair("c", "x"))[1] == [x, EOS_ID]


def test_a_sentencepiece_word_step_spaces_restored_values_as_the_word_model_does() -> None:
    """Restoring placeholders in a jieba+sentencepiece model's output used a rule of its own,
    not its word step's: "GPT-4 发布" came back "GPT-4发布", and two values the masking had
    spaced apart ("2.4亿元37.5%") stayed apart, where the jieba model writes the text as given."""
    pairs = [Pair("苹果公司今天发布了新手机", "新手机发布"), Pair("GPT-4发布了新模型", "新模型"),
             Pair("营收增长了很多", "增长")] * 5
    texts = ("GPT-4发布了新模型", "营收2.4亿元37.5%")
    outputs = []
    for kind in ("jieba", "jieba+sentencepiece"):
        config = ExperimentConfig().with_overrides(
            [f"tokenizer.kind={kind}", "tokenizer.placeholders=true", "tokenizer.sp_vocab_size=200"]
        )
        codec = TextCodec.fit(config, pairs)
        outputs.append([codec.as_output(text) for text in texts])
    assert outputs[0] == outputs[1] == ["GPT-4 发布了新模型", "营收2.4亿元37.5%"]
