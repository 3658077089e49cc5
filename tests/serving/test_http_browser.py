"""The web page of `s2s serve` in a real browser: Debian's chromium and chromedriver, driven
by selenium, against the real server with tiny trained models: what a person does with it,
and what they see (at 1280x1000, on a machine that may have no CJK font: every Chinese
character drawn, the chat input given room, the width used).

Skipped (with the reason) when selenium, chromium or chromedriver is missing; on Debian:
`apt-get install chromium chromium-driver` (and `pip install selenium`, in the dev extra).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

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
# Every Han character of the page's own text, drawn narrower than CJK_SHARE of its font size:
# a CJK font draws an ideograph one em wide, a missing glyph's box is some 0.6 em. (Checked on
# the layout, where the browser bug was: a canvas would measure the loaded font, not what the
# page shows.)
CJK_SHARE = 0.9
HEATMAP_SHOWN = ("const img = document.getElementById('attention-img');"
                 "return !img.hidden && img.complete && img.naturalWidth > 100;")
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

    args = serve_args("--model", f"chat={tiny_bundle}", "--model", f"news={tiny_headline_bundle}")
    with serving(build_app(args)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_chat_headlines_and_heatmap_in_the_page(server: str, browser: object) -> None:
    driver = browser
    wait = WebDriverWait(driver, 60)
    driver.get(server + "/")
    wait.until(lambda d: len(Select(d.find_element(By.ID, "model")).options) == 2)
    model = Select(driver.find_element(By.ID, "model"))

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


def rect(driver: object, selector: str) -> dict[str, float]:
    return driver.execute_script(  # type: ignore[attr-defined]
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return {left: r.left, right: r.right, top: r.top, width: r.width};", selector
    )


def test_the_page_draws_its_chinese_and_uses_its_width(server: str, browser: object) -> None:
    driver = browser
    driver.get(server + "/")
    WebDriverWait(driver, 60).until(
        lambda d: len(Select(d.find_element(By.ID, "model")).options) == 2
    )
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
