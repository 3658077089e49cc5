"""Whether a chat message asks something, which picks the fallback line it is answered with
(`Messages.fallback_reply`): "Why do you ask?" after "Have a nice day" reads as nonsense.

Why rules and not a first word or a last character: people leave the question mark out, so
the words must tell, and the words that open questions open other sentences too. An
auxiliary opens imperatives and wishes ("Do it now.", "Have a nice day"), and 什么, 谁 and
哪 stand inside statements ("没什么": it is nothing; "我不知道他在说什么": I don't know what
he is saying). So the last sentence of the message decides:

- a question mark ends it (either width): a question;
- English: a wh-word opens it, or an auxiliary with its subject after it ("are you", "does
  it"; "do it" and "have a" are imperatives), or a tag closes it (", right", ", don't you");
  not when it ends in '.' or '!' (people who type a full stop after "How nice." state);
- Chinese: a final 吗 or 么 (not that of 什么 / 怎么 / 这么...), or 吧 asking for agreement
  (对吧, 是吧, 你...了吧; "走吧" proposes), or 呢 after a person or a "then" (你呢, 然后呢;
  "我在吃饭呢" states); else, when it does not end in 。 or ！, an A-not-A verb (去不去,
  有没有, 可不可以) or a question word (什么, 谁, 哪, 为什么, 怎么, 多少, 几点...) that is
  not an indefinite (什么都行, 没什么, 不怎么, 什么的) and not inside the clause of a verb of
  knowing or asking (我不知道他在说什么, 他问我为什么; but 你知道他是谁 asks).
"""

from __future__ import annotations

import re

_SENTENCES = re.compile(r"[^.!?。！？…]+[.!?。！？…]*")
_HAN = re.compile(r"[\u3400-\u9fff]")
_ENGLISH_WORDS = re.compile(r"[a-z]+(?:['’][a-z]+)?")

# "wanna" stands for "do you want to" ("wanna come?")
_OPENERS = frozenset(("what", "why", "how", "who", "whom", "whose", "where", "when", "which",
                      "wanna"))
_AUXILIARIES = frozenset((
    "am", "is", "are", "was", "were", "do", "does", "did", "can", "could", "would", "will",
    "should", "shall", "may", "might", "must", "have", "has", "had", "isn't", "aren't",
    "wasn't", "weren't", "don't", "doesn't", "didn't", "can't", "couldn't", "wouldn't",
    "won't", "shouldn't", "haven't", "hasn't", "hadn't"))
# The subjects an auxiliary is followed by in a question ("are you", "is it", "has the...").
_SUBJECTS = frozenset((
    "i", "you", "we", "they", "he", "she", "it", "u", "ya", "there", "this", "that", "these",
    "those", "anyone", "anybody", "someone", "somebody", "everyone", "everybody", "anything",
    "something", "my", "your", "our", "their", "his", "her", "its", "the"))
# "do" and "have" are verbs of their own in imperatives: "do it", "do the dishes", "have a
# nice day" command or wish; after them only a person asks ("do you", "have we").
_PERSONS = frozenset(("i", "you", "we", "they", "he", "she", "u", "ya"))
_TAGS = frozenset(("right", "huh", "eh", "ok", "okay"))

_ASKING_PARTICLES = ("吗", "么")
_NOT_PARTICLE = tuple("什怎这那多要")  # 什么, 怎么, 这么, 那么, 多么, 要么: words, not particles
_AGREEMENT = ("对吧", "是吧", "没错吧", "不是吧")
_ABOUT_WHOM = re.compile(
    r"^(那|那么|而|还有)?(你|您|我|他|她|它|咱|大家|别人)(们)?$|^(然后|后来|那)$")
_A_NOT_A = re.compile(r"([\u3400-\u9fff])[不没]\1")
# Question words; 难道 and 请问 ask whatever follows.
_QUESTION_WORDS = re.compile(
    "为什么|什么|怎么|怎样|为啥|干嘛|干吗|谁|哪|啥|咋|多少|多大|多久|多长|多远|几点|几岁|几号|是否|"
    "难道|请问")
_IDIOMS = ("哪里哪里",)  # a modest "not at all"
_ALWAYS_ASKING = ("难道", "请问")
_INDEFINITE_BEFORE = ("没", "没有", "不", "随便", "任何", "无论", "不管", "不论")
# 什么都行, 谁也不知道, 什么时候都可以 (but 为什么他也来了 asks); 水果什么的: "and so on"
_ALL_AFTER = re.compile(r"^[^，,。！？]{0,3}?[都也]")
_SO_ON = re.compile(r"^的(?:$|[，,、])")
# Verbs whose object clause a question word may stand in: knowing, asking, telling, seeing.
_EMBEDDING = re.compile(
    "知道|清楚|明白|懂|记得|忘了|忘记|问(?!题)|告诉|看看|想想|确定|不管|无论|不论|猜")
_YOU = re.compile("你|您")
_YOU_ASK = re.compile(r"(你|您)(们)?(知道|记得)$")


def is_question(message: str) -> bool:
    """Whether `message` asks something (the module says by which rules)."""
    sentences = _SENTENCES.findall(message.strip())
    last = sentences[-1].strip() if sentences else ""
    body = last.rstrip(".!?。！？… ~～")
    if not body:
        return False
    if last.endswith(("?", "？")):
        return True
    closed = last[len(body):].strip()[:1] in (".", "!", "。", "！", "…")
    if _HAN.search(body):
        return _chinese_question(body, closed)
    return not closed and _english_question(body)


def _english_question(sentence: str) -> bool:
    words = _ENGLISH_WORDS.findall(sentence.lower())
    if not words:
        return False
    first = re.split("['’]", words[0])[0]
    if first in _OPENERS:
        # "what a day", "when I got home, I slept": exclamations and clauses, not questions
        return not (first == "what" and words[1:2] in (["a"], ["an"])) and not (
            first in ("when", "where", "while") and "," in sentence)
    if words[0] in _AUXILIARIES and len(words) > 1:
        subjects = _PERSONS if words[0] in ("do", "have") else _SUBJECTS
        if words[1] in subjects:
            return True
    if "," not in sentence:
        return False
    tag = _ENGLISH_WORDS.findall(sentence.rsplit(",", 1)[-1].lower())
    return tag in ([word] for word in _TAGS) or (
        len(tag) == 2 and tag[0] in _AUXILIARIES and tag[1] in _SUBJECTS)


def _chinese_question(sentence: str, closed: bool) -> bool:
    text = sentence.rstrip("啊呀哦喔~～ ")
    if text.endswith(_ASKING_PARTICLES) and not text[:-1].endswith(_NOT_PARTICLE):
        return True
    if text.endswith("吧"):
        return text.endswith(_AGREEMENT) or (text.endswith("了吧") and bool(_YOU.search(text)))
    if text.endswith("呢"):
        before = text[:-1]
        if _ABOUT_WHOM.match(before):
            return True
        text = before  # "我在吃饭呢" states; a question word or A-not-A before it still asks
    if closed:
        return False
    for idiom in _IDIOMS:
        text = text.replace(idiom, "")
    return any(_asks(text, match.start(), match.end())
               for pattern in (_QUESTION_WORDS, _A_NOT_A) for match in pattern.finditer(text))


def _asks(text: str, start: int, end: int) -> bool:
    """Whether the question word or A-not-A verb at `text[start:end]` asks: not an
    indefinite, not inside the clause of a verb of knowing or asking."""
    word, before, after = text[start:end], text[:start], text[end:]
    if word in _ALWAYS_ASKING:
        return True
    if before.endswith(_INDEFINITE_BEFORE) or (word == "什么" and _SO_ON.match(after)) or (
            word != "为什么" and _ALL_AFTER.match(after)):
        return False
    clause = re.split("[，,；;：:]", before)[-1]
    embedding = list(_EMBEDDING.finditer(clause))
    if not embedding:
        return True
    return bool(_YOU_ASK.search(clause[:embedding[-1].end()]))  # 你知道他是谁: asks
