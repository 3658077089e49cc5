"""The web page of `s2s serve` in a real browser: Debian's chromium and chromedriver, driven
by selenium, against the real server with tiny trained models: what a person does with it,
and what they see (at 1280x1000, on a machine that may have no CJK font: every Chinese
character drawn, the chat input given room, the width used; the header on one line at
1280x900; the heatmap readable on a phone, 390x844).

Skipped (with the reason) when selenium, chromium or chromedriver is missing; on Debian:
`apt-get install chromium chromium-driver` (and `pip install selenium`, in the dev extra).
`.ci/run` installs them.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nlp.chat.messages import ENGLISH
from nlp.serving.http.config import ServeConfig
from tests.conftest import serve_args, serving

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver)",
)]  # slow: a browser against the real server
ARTICLE = "国家统计局今天发布数据，一季度国内生产总值同比增长百分之五点三，经济运行开局良好。"
WIDTH, HEIGHT = 1280, 1000  # a laptop's window, as the page was reviewed in
MODELS = ("chat", "news", "other")  # two chat models (the same bundle) and a headline one
MAX_TEXT_CHARS = 3000  # the server's limit, not its default, to see that the page reads it
# Every Han character of the page's own text, drawn narrower than CJK_SHARE of its font size:
# a CJK font draws an ideograph one em wide, a missing glyph's box is some 0.6 em. (Checked on
# the layout, where the browser bug was: a canvas would measure the loaded font, not what the
# page shows.)
CJK_SHARE = 0.9
HEATMAP_SHOWN = ("const img = document.getElementById('attention-img');"
                 "return !img.hidden && img.complete && img.naturalWidth > 100;")
# Holds the page's chat requests until `release()`, as a slow server would, and counts them.
HOLD_CHAT = """
window.chatBodies = []; window.held = []; window.answered = 0;
const realFetch = window.fetch;
window.fetch = (url, init) => {
  if (!String(url).endsWith('/chat')) return realFetch(url, init);
  window.chatBodies.push(JSON.parse(init.body));
  return new Promise((resolve, reject) => window.held.push(() => realFetch(url, init)
    .then((answer) => { window.answered += 1; return answer; }).then(resolve, reject)));
};
window.release = () => window.held.splice(0).forEach((go) => go());
"""
NARROW_HAN = """
const han = /\\p{Script=Han}/u;
const narrow = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const parent = node.parentElement;
  if (!parent || parent.closest("script, style, select, [hidden]")) continue;
  if (!parent.getClientRects().length) continue;  // not displayed
  const size = parseFloat(getComputedStyle(parent).fontSize);
  const text = node.textContent;
  for (let i = 0; i < text.length; i++) {
    if (!han.test(text[i])) continue;
    const range = document.createRange();
    range.setStart(node, i);
    range.setEnd(node, i + 1);
    const width = range.getBoundingClientRect().width;
    if (width < arguments[0] * size) {
      narrow.push(`${text[i]} of "${text.trim()}": ${width.toFixed(1)} px at ${size} px`);
    }
  }
}
return narrow;
"""


@pytest.fixture(scope="module")
def server(tiny_bundle: Path, tiny_headline_bundle: Path) -> Iterator[str]:
    from nlp.serving.http.command import build_app

    args = serve_args("--model", f"chat={tiny_bundle}", "--model", f"news={tiny_headline_bundle}",
                      "--model", f"other={tiny_bundle}",
                      "--max-text-chars", str(MAX_TEXT_CHARS))
    with serving(build_app(args)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_chat_headlines_and_heatmap_in_the_page(server: str, browser: object) -> None:
    driver = browser
    wait = WebDriverWait(driver, 60)
    model = open_page(driver, server)

    model.select_by_value("chat")
    driver.find_element(By.ID, "chat-input").send_keys("hello, how are you?")
    driver.find_element(By.ID, "chat-send").click()
    reply = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#chat-log .msg.bot")))
    assert reply.text.strip()
    you = driver.find_element(By.CSS_SELECTOR, "#chat-log .msg.you")
    assert you.text == "hello, how are you?"
    driver.find_element(By.ID, "attention-go").click()
    wait.until(lambda d: d.execute_script(HEATMAP_SHOWN))
    image = driver.find_element(By.ID, "attention-img")
    chat_heatmap = image.get_attribute("src")

    model.select_by_value("news")
    assert driver.find_element(By.ID, "chat-input").get_attribute("disabled") is not None
    assert not image.is_displayed()  # the chat's heatmap is not the headline model's
    driver.find_element(By.ID, "articles").send_keys(ARTICLE)
    driver.find_element(By.ID, "headlines-go").click()
    headline = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "#headlines-out li"))
    )
    assert headline.text.strip() and "(" in headline.text  # the headline and its score
    assert not image.is_displayed()

    driver.find_element(By.ID, "attention-go").click()
    wait.until(lambda d: d.execute_script(HEATMAP_SHOWN))
    assert image.get_attribute("src") != chat_heatmap
    assert driver.find_element(By.ID, "status").text == ""  # no error shown
    model.select_by_value("chat")  # back: the chat's own last heatmap
    assert image.is_displayed() and image.get_attribute("src") == chat_heatmap


def open_page(driver: Any, server: str) -> Select:
    """The page, once it has listed the models: its model menu."""
    driver.get(server + "/")
    WebDriverWait(driver, 60).until(
        lambda d: len(Select(d.find_element(By.ID, "model")).options) == len(MODELS)
    )
    return Select(driver.find_element(By.ID, "model"))


@contextlib.contextmanager
def viewport(driver: Any, width: int, height: int, *, phone: bool = False) -> Iterator[None]:
    """The page seen at width x height CSS pixels (a phone: its pixel ratio, the page's
    viewport meta obeyed), back to the window's own size after."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 3 if phone else 1,
        "mobile": phone,
    })
    try:
        yield
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def send(driver: Any, text: str) -> list[tuple[str, str]]:
    """Write `text` in the chat and wait for the answer: the log shown then, (who, text)."""
    count = len(driver.find_elements(By.CSS_SELECTOR, "#chat-log .msg"))
    driver.find_element(By.ID, "chat-input").send_keys(text)
    driver.find_element(By.ID, "chat-send").click()
    WebDriverWait(driver, 60).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chat-log .msg")) == count + 2
    )
    return shown_log(driver)


def shown_log(driver: Any) -> list[tuple[str, str]]:
    return [(element.get_attribute("class").split()[-1], element.text)
            for element in driver.find_elements(By.CSS_SELECTOR, "#chat-log .msg")]


def test_each_model_has_its_own_conversation(server: str, browser: Any) -> None:
    driver = browser
    model = open_page(driver, server)
    model.select_by_value("chat")
    first = send(driver, "hello there")
    assert [who for who, _ in first] == ["you", "bot"] and first[0][1] == "hello there"

    model.select_by_value("other")
    assert shown_log(driver) == []  # not the other model's exchange
    other = send(driver, "你好，最近怎么样？")  # an English model says it reads no Chinese
    assert other == [("you", "你好，最近怎么样？"),
                     ("bot", ENGLISH.foreign_script.format(languages="English"))]
    model.select_by_value("news")
    assert shown_log(driver) == []

    model.select_by_value("chat")  # back: its own conversation, as it was
    assert shown_log(driver) == first
    driver.find_element(By.ID, "chat-new").click()
    model.select_by_value("other")
    assert shown_log(driver) == other  # "New" starts over for the selected model only


def test_the_heatmap_is_of_the_reply_the_server_says_the_model_chose(
    server: str, browser: Any
) -> None:
    """The page guessed from a leading "/" whether an answer was the model's reply: a notice
    (to a message of symbols alone) labelled the heatmap, "/ hello there" (a message to the
    model) was not remembered, "/RESET" left a reply the server had forgotten, and so did a
    409 from the attention endpoint."""
    driver = browser
    model = open_page(driver, server)
    model.select_by_value("chat")

    def labelled() -> str:
        return driver.find_element(By.ID, "attention-of").text

    reply = send(driver, "hello there")[-1][1]
    assert labelled() == f"chat · {reply}"
    assert send(driver, "☺☺")[-1][1] == ENGLISH.no_words
    assert labelled() == f"chat · {reply}"  # the notice is not the model's reply
    send(driver, "/RESET")
    assert labelled() == ""
    assert driver.find_element(By.ID, "attention-go").get_attribute("disabled") is not None
    reply = send(driver, "/ hello there")[-1][1]
    assert labelled() == f"chat · {reply}"

    driver.execute_async_script(  # another client of the conversation resets it
        "const done = arguments[arguments.length - 1];"
        "fetch('/v1/models/chat/chat', {method: 'POST', headers: headers(), body:"
        "  JSON.stringify({conversation: state.conversations.get('chat'), message: '/reset'})})"
        "  .then(() => done());"
    )
    driver.find_element(By.ID, "attention-go").click()
    WebDriverWait(driver, 60).until(lambda d: "409" in d.find_element(By.ID, "status").text)
    assert labelled() == ""


def test_a_late_reply_neither_undoes_new_nor_opens_a_second_conversation(
    server: str, browser: Any
) -> None:
    """Late replies overwrote the page's chat: "New" clicked while a reply was on its way was
    undone (the late reply's conversation continued, its bubble in the new log), and a
    second message sent before the first one's reply opened a second conversation."""
    driver = browser
    model = open_page(driver, server)
    model.select_by_value("chat")
    driver.execute_script(HOLD_CHAT)

    def release() -> None:  # and let the page take in the answers
        driver.execute_async_script("setTimeout(arguments[0], 300)")
        driver.execute_script("release()")
        WebDriverWait(driver, 60).until(
            lambda d: d.execute_script("return window.answered === window.chatBodies.length"))
        driver.execute_async_script("setTimeout(arguments[0], 300)")

    driver.find_element(By.ID, "chat-input").send_keys("hello")
    driver.find_element(By.ID, "chat-send").click()
    driver.find_element(By.ID, "chat-new").click()
    release()
    assert shown_log(driver) == []
    assert driver.execute_script("return state.conversations.get('chat')") is None

    driver.find_element(By.ID, "chat-input").clear()  # "hello" waits there, not sent
    driver.find_element(By.ID, "chat-input").send_keys("my name is alice")
    driver.find_element(By.ID, "chat-send").click()
    driver.execute_script(  # the next message, before the reply
        "document.getElementById('chat-input').value = 'what is my name';"
        "document.getElementById('chat-send').click();")
    release()
    driver.find_element(By.ID, "chat-send").click()  # now, if it is still to send
    release()
    sent = driver.execute_script("return window.chatBodies")[1:]
    conversation = driver.execute_script("return state.conversations.get('chat')")
    assert [body["message"] for body in sent] == ["my name is alice", "what is my name"]
    assert "conversation" not in sent[0] and sent[1]["conversation"] == conversation
    assert [who for who, _ in shown_log(driver)] == ["you", "bot", "you", "bot"]


def test_the_chat_input_takes_the_servers_limit_and_keeps_a_refused_message(
    server: str, browser: Any
) -> None:
    """The input's maxlength was 10,000 whatever the server's limit, and a message the server
    refused (422, 429, 503) was gone from the input, to be written again."""
    driver = browser
    model = open_page(driver, server)
    model.select_by_value("chat")
    field = driver.find_element(By.ID, "chat-input")
    assert field.get_attribute("maxLength") == str(MAX_TEXT_CHARS)
    too_long = "a" * (MAX_TEXT_CHARS + 1)  # typed, the browser would cut it
    driver.execute_script("arguments[0].value = arguments[1];", field, too_long)
    driver.find_element(By.ID, "chat-send").click()
    WebDriverWait(driver, 60).until(lambda d: "422" in d.find_element(By.ID, "status").text)
    assert field.get_attribute("value") == too_long and field.is_enabled()
    assert shown_log(driver) == []  # nothing was said
    field.clear()
    assert send(driver, "hello there")[0] == ("you", "hello there")
    assert field.get_attribute("value") == ""


def test_the_header_keeps_its_line_and_the_articles_limit_is_said(
    server: str, browser: Any
) -> None:
    driver = browser
    limit = ServeConfig().max_articles  # the server's own figure
    with viewport(driver, 1280, 900):
        model = open_page(driver, server)
        header = rect(driver, "header")
        model.select_by_value("news")  # the longest description
        assert rect(driver, "header")["height"] == header["height"]
        assert abs(rect(driver, "#token")["top"] - rect(driver, "#model")["top"]) < 8
        assert str(limit) in driver.find_element(By.ID, "articles-limit").text

        driver.find_element(By.ID, "articles").send_keys(ARTICLE)
        driver.find_element(By.ID, "headlines-go").click()
        WebDriverWait(driver, 60).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, "#headlines-out li"))
        )
        driver.execute_script(  # one article more than the limit
            "document.getElementById('articles').value = arguments[0];",
            "\n".join([ARTICLE] * (limit + 1)),
        )
        driver.find_element(By.ID, "headlines-go").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "status").text)
        status = driver.find_element(By.ID, "status").text
        assert f"{limit + 1} articles: at most {limit} at a time" in status, status
        assert driver.find_elements(By.CSS_SELECTOR, "#headlines-out li") == []  # not stale


def test_the_heatmap_is_readable_on_a_phone(server: str, browser: Any) -> None:
    driver = browser
    with viewport(driver, 390, 844, phone=True):
        model = open_page(driver, server)
        assert driver.execute_script("return window.innerWidth") == 390
        model.select_by_value("news")
        driver.find_element(By.ID, "articles").send_keys(ARTICLE)
        driver.find_element(By.ID, "headlines-go").click()
        WebDriverWait(driver, 60).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, "#headlines-out li"))
        )
        driver.find_element(By.ID, "attention-go").click()
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(HEATMAP_SHOWN))
        shown, natural, page, view, scrolls = driver.execute_script(
            "const img = document.getElementById('attention-img');"
            "const view = document.getElementById('attention-view');"
            "return [img.getBoundingClientRect().width, img.naturalWidth,"
            "  document.documentElement.scrollWidth, view.clientWidth, view.scrollWidth];"
        )
        assert natural > 390 and shown >= natural - 1  # its own size, not shrunk to fit
        assert page <= 390 and view < scrolls  # the heatmap scrolls sideways, not the page


def test_the_page_has_an_icon(server: str, browser: Any) -> None:
    driver = browser
    open_page(driver, server)
    statuses = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const icon = document.querySelector('link[rel=icon]');"
        "Promise.all([icon.href, '/favicon.ico'].map((url) => fetch(url)))"
        "  .then((answers) => done(answers.map((a) => a.status)));"
    )
    assert statuses == [200, 200]


def rect(driver: object, selector: str) -> dict[str, float]:
    return driver.execute_script(  # type: ignore[attr-defined]
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return {left: r.left, right: r.right, top: r.top, width: r.width, height: r.height};",
        selector,
    )


def test_the_page_draws_its_chinese_and_uses_its_width(server: str, browser: object) -> None:
    driver = browser
    open_page(driver, server)
    assert driver.execute_script("return window.innerWidth") == WIDTH
    # Chinese is never boxes, the headings' included (the packaged font loads when needed):
    # waited for, since the font may still be on its way; boxes left then stay boxes.
    narrow: list[str] = []

    def all_drawn(d: object) -> bool:
        narrow[:] = d.execute_script(NARROW_HAN, CJK_SHARE)  # type: ignore[attr-defined]
        return not narrow

    with contextlib.suppress(TimeoutException):
        WebDriverWait(driver, 15).until(all_drawn)
    problems = [f"drawn as a box: {box}" for box in narrow]
    # the chat input has the room of its row, not what its buttons leave
    field, form = rect(driver, "#chat-input"), rect(driver, "#chat-form")
    if field["width"] < 0.5 * form["width"]:
        problems.append(f"chat input {field['width']:.0f} px of a {form['width']:.0f} px row")
    # the sections fill the width: the first row reaches the right edge
    main = rect(driver, "main")
    sections = [rect(driver, f"#{section}")
                for section in ("chat-section", "headlines-section", "attention-section")]
    top = min(r["top"] for r in sections)
    right = max(r["right"] for r in sections if abs(r["top"] - top) < 1)
    if right < main["right"] - 2:
        problems.append(f"the first row ends at {right:.0f} px of {main['right']:.0f} px")
    assert problems == [], "\n".join(problems)
