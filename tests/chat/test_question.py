"""Whether a message asks something (`nlp.chat.question.is_question`), which picks the fallback
line the chat answers with: a question gets a line for questions, a statement one for
statements."""

from __future__ import annotations

import pytest

from nlp.chat.question import is_question

ENGLISH_QUESTIONS = [
    "How are you", "what's your name", "Are you ok", "Where do you live", "Do you like tea",
    "Can you help me", "why not", "Is it raining", "Have you eaten yet", "Does it hurt",
    "Who told you that", "Where to?", "so you're leaving?", "I see. Where to",
    "Hi. How are you", "You are coming, right", "You like it, don't you", "What’s up",
    "Wanna come with us", "Any plans for tonight?",
]
ENGLISH_STATEMENTS = [
    "Have a nice day", "Do it now.", "i went out today.", "Have fun", "Do the dishes",
    "What a lovely day!", "When I got home, I slept", "I wonder why", "Thanks a lot",
    "Don't do that", "How are you. I am fine", "Can't complain.", "Will do!",
    "Where there is a will there is a way.", "Do come in", "Really? I thought so",
]
CHINESE_QUESTIONS = [
    "你好吗", "你叫什么名字", "你去不去", "这是谁的书", "为什么", "你在做什么", "真的？",
    "你呢", "那你呢", "你有没有时间", "你喜不喜欢猫", "你累了吧", "你是学生对吧", "是不是",
    "今天几点开会", "多少钱", "你怎么了", "哪里好玩", "你吃饭了吗。", "难道你不知道",
    "这个怎么样", "请问你叫什么", "你知道他是谁", "你好么", "你要咖啡还是茶?",
    "你看了那部电影没有？", "你可不可以帮我",
]
CHINESE_STATEMENTS = [
    "没什么", "我不知道他在说什么", "我今天去了公园。", "好吧", "我们走吧", "什么都行",
    "谁都知道", "我在吃饭呢", "还没呢", "哪里哪里", "我不怎么喜欢", "我有几个朋友",
    "不管去不去我都支持你", "随便什么都可以", "我忘了他叫什么", "他问我为什么", "没多久",
    "差不多", "我知道他是谁", "水果啊蔬菜什么的", "就是嘛", "我也不知道为什么", "你走吧",
]


@pytest.mark.parametrize("message", ENGLISH_QUESTIONS + CHINESE_QUESTIONS)
def test_questions_are_questions(message: str) -> None:
    assert is_question(message)


@pytest.mark.parametrize("message", ENGLISH_STATEMENTS + CHINESE_STATEMENTS)
def test_statements_are_not(message: str) -> None:
    assert not is_question(message)


def test_empty_and_symbol_only_messages_are_no_questions() -> None:
    assert not is_question("") and not is_question("  ") and not is_question("...")
