"""The web page of `s2s serve` in a real browser: Debian's chromium and chromedriver, driven
by selenium, against the real server with tiny trained models.

Skipped (with the reason) when selenium, chromium or chromedriver is missing; on Debian:
`apt-get install chromium chromium-driver` (and `pip install selenium`, in the dev extra).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import serve_args, serving

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
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
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
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

    model.select_by_value("news")
    assert driver.find_element(By.ID, "chat-input").get_attribute("disabled") is not None
    driver.find_element(By.ID, "articles").send_keys(ARTICLE)
    driver.find_element(By.ID, "headlines-go").click()
    headline = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "#headlines-out li"))
    )
    assert headline.text.strip() and "(" in headline.text  # the headline and its score

    driver.find_element(By.ID, "attention-go").click()
    wait.until(lambda d: d.execute_script(
        "const img = document.getElementById('attention-img');"
        "return !img.hidden && img.complete && img.naturalWidth > 100;"
    ))
    assert driver.find_element(By.ID, "status").text == ""  # no error shown
