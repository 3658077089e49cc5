"""Everything the chat and the bot say in their own words, in English and in Chinese.

Why one module: a Chinese model's users read Chinese, and its help, its settings replies and
its apologies were English, spread over the responder, the slash commands, the settings and
the bot's handlers. Here each message is one field of `Messages`, so a table that forgets
one does not construct, and the two tables are read side by side.

Which table a chat gets (`chat_messages`): the model's language when it reads one of ours
only, since its users write that language whatever their app is set to (Telegram has no
official Chinese version, so many Chinese users' apps say "en"); otherwise the user's own
(Telegram's `language_code`); where no user's language is known (`s2s chat`, the server, the
API), the model's main language; otherwise English.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nlp.chat.question import is_question
from nlp.chat.settings import (
    BEAM_RANGE,
    LENGTH_RANGE,
    TEMPERATURE_RANGE,
    SettingsError,
)
from nlp.decoding.options import RERANK_NAMES, DecodeOptions, OptionError
from nlp.generation.reply_choice import PLAIN, REPLY_MODES, RETRIEVED, ModelReads, reply_choice
from nlp.generation.text_generator import Generation


@dataclass(frozen=True)
class Messages:
    """One language's messages; `{fields}` are filled in where they are used."""

    language: str  # "en" | "zh"
    # answers to what the user wrote
    empty: str
    no_words: str  # emoji or symbols only
    foreign_script: str  # {languages}: letters, none in a script the model reads
    no_idea: str  # no usable candidate
    # Sent when no candidate is likely to fit (`DecodeOptions.fallback_threshold`): lines
    # that make sense after any message (Meena's "sensible", not "specific"), for a question
    # and for anything else, one a line; a chat's turns take them in turn (`fallback_reply`)
    fallback_question: str
    fallback_statement: str
    failure: str  # the model call failed
    unknown_command: str  # {name}
    # /start, /help: the ranges a user may set come from nlp.chat.settings
    hello: str
    help: str  # {beam_low} {beam_high} {temperature_low} {temperature_high} {length_low} ...
    # /reset, /settings and the commands that change settings
    reset: str
    changed: str  # {settings}: what `replies_text` says
    memory: str  # {turns}
    no_memory: str
    usage_beam: str
    usage_sample: str
    usage_length: str
    # What chooses a reply (`replies_text`): per mode of `nlp.generation.reply_choice`, one
    # sentence ({own} {how} {length} {count} {ranking}); per `DecodeOptions.rerank`, how the
    # ranker chooses; the model's own replies, plain and refined; the fallback threshold
    # ({threshold}); with retrieved replies only, that those that fit go first ({fit}); and
    # the decoder's settings where the decoder does not run ({how} {length})
    replies: Mapping[str, str]
    rankings: Mapping[str, str]
    own: str
    own_refined: str
    fallback_below: str
    fitting_first: str
    unused: str
    greedy: str
    beam: str  # {size}
    diverse_beam: str  # {size}
    by_pmi: str  # {how} {weight}: the decoder's replies ordered by PMI (`pmi_weight`)
    # {how} {percent}: a model trained on specificity buckets told how specific to be
    # (`DecodeOptions.specificity`, `nlp.control`)
    specific: str
    sample: str  # {temperature}
    out_of_range: str  # {name} {low} {high}
    refused_options: str  # {reason}: why the model cannot decode with the settings asked for
    # {how} {length}: a chat's stored settings the model (reloaded) cannot decode with, gone
    gave_way: str
    beam_size: str  # the settings' names in `out_of_range`
    length: str
    temperature: str
    # /why
    nothing_to_explain: str
    cannot_draw: str  # {error}
    looked_at: str  # {reply}
    read_retrieved: str  # {reply}: the model's attention while scoring a retrieved reply
    retrieved: str  # {pair}: a training reply sent in its own words
    refined: str  # {pair}: written reading a training reply beside the message
    fallback: str  # no candidate was likely to fit: one of the lines above was sent
    fit: str  # {post} {fit}: the post a retrieved reply answered, and its fit
    fit_gate: str  # {threshold}: the fit from which a retrieved reply is sent
    fit_under_gate: str  # {threshold}: sent below it, as no reply reached it or was written
    confidence: str  # {confidence}: a reply's calibrated probability of fitting
    # /good, /bad
    rating_not_kept: str
    nothing_to_rate: str
    rated_good: str
    rated_bad: str
    # /reload
    reload_admins_only: str
    reload_unavailable: str
    reload_failed: str  # {error}
    reloaded: str
    # the bot's own (bot/): before or instead of the responder
    private_bot: str
    rate_limited: str
    text_only: str
    stale_button: str
    bot_error: str
    backlog: str
    # the languages' names, in `foreign_script`
    english: str
    chinese: str
    language_and: str  # between two names

    def __post_init__(self) -> None:
        for name, keys in (("replies", REPLY_MODES), ("rankings", RERANK_NAMES)):
            missing = sorted(set(keys) - set(getattr(self, name)))
            if missing:
                raise ValueError(f"the {self.language} messages say no {name} for {missing}")

    def language_names(self, languages: Sequence[str]) -> str:
        """The model's languages by name ("English", "Chinese and English")."""
        names = {"en": self.english, "zh": self.chinese}
        return self.language_and.join(names[code] for code in languages if code in names)

    def help_text(self) -> str:
        return self.help.format(
            beam_low=BEAM_RANGE[0], beam_high=BEAM_RANGE[1],
            temperature_low=TEMPERATURE_RANGE[0], temperature_high=TEMPERATURE_RANGE[1],
            length_low=LENGTH_RANGE[0], length_high=LENGTH_RANGE[1],
        )

    def start_text(self) -> str:
        return f"{self.hello}{self.help_text()}"

    def replies_text(self, options: DecodeOptions, reads: ModelReads = PLAIN) -> str:
        """What chooses a reply under `options` for a model that `reads` what it does, in
        words: the sentence of its mode (`reply_choice`), then the fallback's where there is
        a threshold; for a model trained on specificity buckets, how specific it is asked to
        be. The one description of it for /settings, every settings change, `s2s chat` and
        `s2s bot` at start, `s2s serve`'s model list and `nlp.api`."""
        choice = reply_choice(options, reads)
        how = self._how(options)
        if reads.controls:
            how = self.specific.format(how=how, percent=round(100 * options.specificity))
        text = self.replies[choice.mode].format(
            own=self.own_refined if reads.refines else self.own, how=how,
            length=options.max_length, count=choice.retrieved,
            ranking=self.rankings[choice.ranker], fit=choice.retrieved_threshold,
        )
        if choice.mode == RETRIEVED and choice.retrieved_threshold:
            text += " " + self.fitting_first.format(fit=choice.retrieved_threshold)
        if choice.fallback_threshold:
            text += " " + self.fallback_below.format(threshold=choice.fallback_threshold)
        return text

    def settings_text(self, options: DecodeOptions, reads: ModelReads = PLAIN) -> str:
        """/settings: `replies_text`, and where the decoder does not run, that its settings
        (which /beam, /sample and /length still change) have no effect."""
        text = self.replies_text(options, reads)
        if not reply_choice(options, reads).decodes:
            text += " " + self.unused_text(options)
        return text

    def changed_text(self, options: DecodeOptions, reads: ModelReads = PLAIN) -> str:
        """The answer to a settings change: the replies it gives, or, where the decoder does
        not run, that the change is kept but has no effect."""
        if reply_choice(options, reads).decodes:
            return self.changed.format(settings=self.replies_text(options, reads))
        return self.unused_text(options)

    def unused_text(self, options: DecodeOptions) -> str:
        return self.unused.format(how=self._how(options), length=options.max_length)

    def gave_way_text(self, dropped: DecodeOptions) -> str:
        """That the chat's own settings (decoding with `dropped`) were reset to the
        defaults: a chat that set /beam 3 should not find out from its replies alone."""
        return self.gave_way.format(how=self._how(dropped), length=dropped.max_length)

    def _how(self, options: DecodeOptions) -> str:
        how = {
            "greedy": self.greedy,
            "beam": self.beam.format(size=options.beam_size),
            "diverse_beam": self.diverse_beam.format(size=options.beam_size),
            "sample": self.sample.format(temperature=options.temperature),
        }[options.strategy]
        if options.pmi_weight:
            return self.by_pmi.format(how=how, weight=options.pmi_weight)
        return how

    def provenance(self, reply: Generation, options: DecodeOptions | None = None) -> str:
        """Where `reply` came from and how sure the choice was ("" for a reply the model wrote
        alone without a calibrated confidence).
        Why say it: a retrieved reply is a sentence another person wrote, and people should
        be able to tell it from what the model wrote."""
        note = {"retrieved": self.retrieved, "refined": self.refined,
                "fallback": self.fallback}.get(reply.provenance)
        text = note.format(pair=reply.pair or "?") if note else ""
        if reply.provenance == "retrieved" and not math.isnan(reply.fit):
            text += " " + self.fit.format(post=reply.post, fit=reply.fit)
            if options is not None and options.retrieved_threshold > 0:
                gate = self.fit_gate if reply.fit >= options.retrieved_threshold else (
                    self.fit_under_gate)  # retrieved only, or the model wrote nothing usable
                text += gate.format(threshold=options.retrieved_threshold)
        if not math.isnan(reply.confidence) and reply.provenance != "fallback":
            text += self.confidence.format(confidence=reply.confidence)
        return text.strip()

    def fallback_reply(self, message: str, chat: str, turn: int) -> str:
        """The safe line for `message`, the `turn`-th reply of `chat`: a question's or a
        statement's, the same for the same chat and turn (a replayed conversation is
        replayed), one after the other through the list as the turns go on (so a chat does
        not hear the same one twice running), each chat starting elsewhere in it."""
        lines = (self.fallback_question if is_question(message)
                 else self.fallback_statement).splitlines()
        start = int.from_bytes(hashlib.sha256(chat.encode()).digest()[:4], "big")
        return lines[(start + turn) % len(lines)]

    def refused_setting(self, error: SettingsError) -> str:
        name = {"beam_size": self.beam_size, "max_length": self.length,
                "temperature": self.temperature}.get(error.field, error.field)
        return self.out_of_range.format(name=name, low=error.low, high=error.high)


ENGLISH = Messages(
    language="en",
    empty="That message was empty. Write me something and I will answer.",
    no_words="I can only read words so far, not emoji or symbols alone. Try a sentence?",
    foreign_script="Sorry, I can't read the letters of that message: I only read {languages}.",
    no_idea="I have no words for that one. Could you say it differently?",
    fallback_question="""\
Good question. I'm not sure, what do you think?
Hmm, I don't really know. Why do you ask?
I can't say for sure. What about you?""",
    fallback_statement="""\
I see. Tell me more?
Oh, okay. How do you feel about that?
Interesting. What makes you say so?
Hmm, I'm not sure what to say to that. Go on?""",
    failure="Sorry, something went wrong while I was thinking. Please try again.",
    unknown_command="I don't know the command /{name}. Try /help.",
    hello="Hello! ",
    help="""\
I am a small neural chatbot (an attention seq2seq model). Just write to me.

/reset - forget our conversation so far
/settings - show how I pick my replies (/settings default: back to the model's own)
/beam N - beam search with N beams ({beam_low}-{beam_high})
/greedy - greedy search (fastest)
/sample T - random sampling at temperature T ({temperature_low:g}-{temperature_high:g}; \
higher is wilder)
/length N - longest reply in tokens ({length_low}-{length_high})
/why - where my last reply came from, and a picture of what I looked at
/good, /bad - rate my last reply (only if conversation logging is on)
/help - this message""",
    reset="Done, I forgot our conversation. Your settings stay as they were.",
    changed="OK. {settings}",
    memory="I remember the last {turns} turns.",
    no_memory="I answer each message alone.",
    usage_beam="Usage: /beam N, for example /beam 5",
    usage_sample="Usage: /sample T, for example /sample 0.8",
    usage_length="Usage: /length N, for example /length 20",
    replies={
        "generated": "Replies: {own}, by {how}, at most {length} tokens, {ranking}.",
        "retrieved": (
            "Replies: one of the replies people wrote to the {count} training posts nearest "
            "your message, {ranking}; the model does not generate."
        ),
        "either": (
            "Replies: {own} (by {how}, at most {length} tokens) or one of the replies people "
            "wrote to the {count} training posts nearest your message, {ranking}."
        ),
        "gated": (
            "Replies: one of the replies people wrote to the {count} training posts nearest "
            "your message, {ranking}, where its post matches your message well enough that it "
            "probably makes sense (a fit of at least {fit:g}); otherwise {own}, by {how}, at "
            "most {length} tokens."
        ),
        "nothing": (
            "Replies: none found or written (nothing is retrieved and the model does not "
            "generate), so I answer with something safe."
        ),
    },
    rankings={
        "none": "chosen by the model's score",
        "likelihood": "chosen by the model's likelihood per token",
        "mmi-antilm": "chosen by MMI with the language model",
        "mmi-bidi": "chosen by MMI with the reverse model",
        "dual-encoder": "chosen by how well the dual encoder finds each fits your message",
        "dual-encoder+bm25": (
            "chosen by the dual encoder's fit plus the words each shares with your message"
        ),
        "retrieval": (
            "in the retrieval's order (the reply to the post most like your message first)"
        ),
        "sentence-encoder": (
            "by a pretrained sentence encoder: how near each reply and the post it answered "
            "are to your message in meaning"
        ),
    },
    own="the model's own",
    own_refined=(
        "the model's own, written reading a person's reply to the training post nearest "
        "your message"
    ),
    fallback_below=(
        "If none is likely enough to fit (a calibrated probability below {threshold:g}), I "
        "say something safe instead."
    ),
    fitting_first=(
        "Where the posts of some match your message well enough that they probably make sense "
        "(a fit of at least {fit:g}), I choose among those only."
    ),
    unused=(
        "The decoder's settings ({how}, longest reply {length} tokens) are kept, but have no "
        "effect while the model does not write replies of its own."
    ),
    greedy="greedy search",
    beam="beam search, beam size {size}",
    diverse_beam="diverse beam search, beam size {size}",
    by_pmi=(
        "{how}, the one most likelier after your message than after others first (PMI, "
        "weight {weight:g})"
    ),
    specific="{how}, asked to be as specific as its training replies at the {percent}th "
    "percentile",
    sample="sampling, temperature {temperature:g}",
    out_of_range="The {name} must be between {low:g} and {high:g}.",
    refused_options="I kept the settings as they were: this bot cannot answer that way. {reason}",
    gave_way=(
        "Your settings ({how}, longest reply {length} tokens) do not work with the model "
        "reloaded since, so I went back to the model's own (see /settings)."
    ),
    beam_size="beam size",
    length="length",
    temperature="temperature",
    nothing_to_explain="There is no reply of mine to explain yet. Send me a message first.",
    cannot_draw="I can't draw that one: {error}.",
    looked_at="What I looked at while writing \"{reply}\".",
    read_retrieved=(
        "What I looked at while reading \"{reply}\", fed to me word by word (teacher-forced)."
    ),
    retrieved=(
        "I did not write this reply: it is a person's reply to the training post nearest "
        "your message ({pair}), sent in its own words."
    ),
    fit=(
        "That post was \"{post}\"; for how well it matches your message, this reply's share of "
        "its and my own reply's expected ratings is {fit:.2f}."
    ),
    fit_gate=" Retrieved replies are sent from {threshold:.2f}.",
    fit_under_gate=(
        " Retrieved replies are sent from {threshold:.2f}; this one was sent below it, as no "
        "reply reached it."
    ),
    confidence=" The chance that it fits, as calibrated, is {confidence:.2f}.",
    refined=(
        "I wrote this reply reading your message together with a person's reply to the "
        "training post nearest it ({pair})."
    ),
    fallback=(
        "None of the replies I found or wrote was likely to fit your message, so I said "
        "something safe instead."
    ),
    rating_not_kept="Thanks! (Conversation logging is off, so ratings are not kept.)",
    nothing_to_rate="There is no new reply of mine to rate.",
    rated_good="Thanks, noted.",
    rated_bad="Thanks, I will try to do better.",
    reload_admins_only="Sorry, only the bot's admins can reload the model.",
    reload_unavailable="Reloading is not available here.",
    reload_failed="Reloading failed, I keep the current model ({error}).",
    reloaded="Reloaded the model from disk.",
    private_bot="Sorry, this bot is private and can't chat with you. Have a nice day!",
    rate_limited=(
        "You're writing faster than I can think! I'll skip a few messages; slow down a bit."
    ),
    text_only="I can only read text messages. Please type what you want to say.",
    stale_button="This button is no longer active.",
    bot_error="Sorry, something went wrong on my side. Please try again in a moment.",
    backlog=(
        "I'm falling behind in this chat, so I skipped some messages. "
        "Please wait for my replies before writing more."
    ),
    english="English",
    chinese="Chinese",
    language_and=" and ",
)

CHINESE = Messages(
    language="zh",
    empty="这条消息是空的。写点什么吧，我会回复你。",
    no_words="我目前只读得懂文字，看不懂单独的表情或符号。试着写一句话吧？",
    foreign_script="抱歉，我看不懂这条消息用的文字：我只读得懂{languages}。",
    no_idea="这句话我不知道怎么接。能换个说法吗？",
    fallback_question="""\
好问题，我也说不准。你觉得呢？
嗯，这个我不太清楚。你为什么这么问？
我说不好。你怎么看？""",
    fallback_statement="""\
原来如此。能多说一点吗？
这样啊。你对这件事怎么看？
嗯，我明白了。然后呢？
有意思。你为什么这么说？""",
    failure="抱歉，我思考的时候出了点问题。请再试一次。",
    unknown_command="我不认识命令 /{name}。试试 /help。",
    hello="你好！",
    help="""\
我是一个小小的神经网络聊天机器人（带注意力机制的 seq2seq 模型）。直接给我发消息就好。

/reset - 忘掉我们到目前为止的对话
/settings - 看看我是怎样挑选回复的（/settings default：回到模型自己的设置）
/beam N - 用宽度为 N 的束搜索（{beam_low}-{beam_high}）
/greedy - 贪心搜索（最快）
/sample T - 以温度 T 随机采样（{temperature_low:g}-{temperature_high:g}；越高越天马行空）
/length N - 回复最多多少个词元（{length_low}-{length_high}）
/why - 上一条回复从哪里来，以及一张图：我关注了你的哪些词
/good, /bad - 给我的上一条回复打分（仅在开启对话记录时保存）
/help - 显示这条帮助""",
    reset="好的，我已经忘掉了我们的对话。你的设置保持不变。",
    changed="好的。{settings}",
    memory="我记得最近 {turns} 轮对话。",
    no_memory="我单独回答每一条消息。",
    usage_beam="用法：/beam N，例如 /beam 5",
    usage_sample="用法：/sample T，例如 /sample 0.8",
    usage_length="用法：/length N，例如 /length 20",
    replies={
        "generated": "回复：{own}，{how}，最长 {length} 个词元，{ranking}。",
        "retrieved": (
            "回复：训练数据中与你的消息最接近的 {count} 条帖子的真人回复之一，{ranking}；"
            "模型自己不写回复。"
        ),
        "either": (
            "回复：{own}（{how}，最长 {length} 个词元）或训练数据中与你的消息最接近的 {count} "
            "条帖子的真人回复之一，{ranking}。"
        ),
        "gated": (
            "回复：如果训练数据中与你的消息最接近的 {count} 条帖子里有一条与你的消息足够相近"
            "（契合度至少 {fit:g}），就发它的真人回复（{ranking}）；否则发{own}（{how}，最长 "
            "{length} 个词元）。"
        ),
        "nothing": "回复：既没有检索到回复，模型自己也不写，所以我只说一句稳妥的话。",
    },
    rankings={
        "none": "按模型的打分挑选",
        "likelihood": "按模型平均每个词元的概率挑选",
        "mmi-antilm": "按 MMI（配合语言模型）挑选",
        "mmi-bidi": "按 MMI（配合反向模型）挑选",
        "dual-encoder": "按双编码器判断的与你的消息的契合度挑选",
        "dual-encoder+bm25": "按双编码器的契合度加上与你的消息共有的词挑选",
        "retrieval": "按检索的顺序（所回复的帖子与你的消息最相近的排在前面）",
        "sentence-encoder": (
            "按预训练句子编码器判断的回复及其所回复的帖子与你的消息在意思上的接近程度"
        ),
    },
    own="模型自己写的回复",
    own_refined="模型参考训练数据中与你的消息最接近的帖子的真人回复写出的回复",
    fallback_below=(
        "如果没有一条足够可能对得上（校准后的概率低于 {threshold:g}），我就改说一句稳妥的话。"
    ),
    fitting_first=(
        "如果其中有些回复的帖子与你的消息足够相近（契合度至少 {fit:g}），我只在这些里挑。"
    ),
    unused="解码设置（{how}，回复最长 {length} 个词元）已保存，但在模型不自己写回复时不起作用。",
    greedy="贪心搜索",
    beam="束搜索，束宽 {size}",
    diverse_beam="多样化束搜索，束宽 {size}",
    by_pmi="{how}，优先选对你这条消息比对其他消息更可能的回复（PMI，权重 {weight:g}）",
    specific="{how}，要求回复具体到训练回复中第 {percent} 百分位的程度",
    sample="随机采样，温度 {temperature:g}",
    out_of_range="{name}必须在 {low:g} 到 {high:g} 之间。",
    refused_options="设置没有改：这个机器人不能这样回答。{reason}",
    gave_way=(
        "你的设置（{how}，回复最长 {length} 个词元）不适用于重新加载后的模型，"
        "所以我改回了模型自己的设置（见 /settings）。"
    ),
    beam_size="束宽",
    length="长度",
    temperature="温度",
    nothing_to_explain="我还没有可以解释的回复。先给我发一条消息吧。",
    cannot_draw="这条我画不出来：{error}。",
    looked_at="我写“{reply}”时关注的内容。",
    read_retrieved="把“{reply}”逐词喂给我读时（教师强制）我关注的内容。",
    retrieved="这条回复不是我写的：它是训练数据中与你的消息最接近的那条帖子的真人回复（{pair}），用原话发出。",
    refined="这条回复是我在读你的消息的同时，参考训练数据中与之最接近的帖子的真人回复（{pair}）写出的。",
    fallback="我找到或写出的回复看起来都不太对得上你的消息，所以我说了一句稳妥的话。",
    fit=(
        "那条帖子是“{post}”；按它与你的消息的相近程度，这条回复在它与我自己的回复的预期评分中"
        "占 {fit:.2f}。"
    ),
    fit_gate="检索到的回复从 {threshold:.2f} 起发送。",
    fit_under_gate=(
        "检索到的回复从 {threshold:.2f} 起发送；没有回复达到它，所以发送了这条低于它的回复。"
    ),
    confidence="经校准，它对得上的概率是 {confidence:.2f}。",
    rating_not_kept="谢谢！（对话记录没有开启，所以评分不会保存。）",
    nothing_to_rate="没有我的新回复可以评分。",
    rated_good="谢谢，记下了。",
    rated_bad="谢谢，我会努力做得更好。",
    reload_admins_only="抱歉，只有机器人的管理员才能重新加载模型。",
    reload_unavailable="这里不能重新加载模型。",
    reload_failed="重新加载失败，我继续使用当前的模型（{error}）。",
    reloaded="已从磁盘重新加载模型。",
    private_bot="抱歉，这是一个私人机器人，不能和你聊天。祝你愉快！",
    rate_limited="你写得比我想得还快！我会跳过几条消息，请慢一点。",
    text_only="我只读得懂文字消息。请把你想说的话打出来。",
    stale_button="这个按钮已经失效了。",
    bot_error="抱歉，我这边出了点问题。请稍后再试。",
    backlog="这个聊天里的消息我处理不过来了，所以跳过了一些。请等我回复后再继续发。",
    english="英文",
    chinese="中文",
    language_and="和",
)

TABLES: dict[str, Messages] = {table.language: table for table in (ENGLISH, CHINESE)}

def table_for(language: str | None) -> Messages | None:
    """The table of a language tag ("zh", "zh-hans", "zh_CN", "en-GB"), None if we have none."""
    if not language:
        return None
    return TABLES.get(language.replace("_", "-").split("-")[0].lower())


def chat_messages(model_languages: Sequence[str], user_language: str | None = None) -> Messages:
    """The table a chat is spoken to in: the model's language when it reads exactly one of
    ours, else the user's (a bilingual or unknown model); with no user's language known, the
    model's main one (its first: `vocabulary_languages` puts the largest share first); else
    English."""
    ours = [language for language in model_languages if language in TABLES]
    if len(ours) == 1:
        return TABLES[ours[0]]
    if user_language:
        return table_for(user_language) or ENGLISH
    return TABLES[ours[0]] if ours else ENGLISH


def public_reason(error: Exception, directory: str | os.PathLike[str] | None, name: str) -> str:
    """An error's text as someone other than the machine's owner reads it: the model called
    `name`, not by its directory on the server's disk, and an `OptionError`'s reason without
    its remedy (the command the owner would run to change it)."""
    message = error.reason if isinstance(error, OptionError) else str(error)
    if directory is not None:
        for path in {str(directory), str(Path(directory).resolve())}:
            message = message.replace(path, name)
    return message
