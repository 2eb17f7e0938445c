"""The status page in a real headless Chromium (issue 14's acceptance), against a daemon that really worked.

Debian's `chromium` and `chromium-driver` (`.ci/run` installs them), driven by Selenium with the driver
given by path and SE_OFFLINE=1, so Selenium Manager never looks for a browser on the network. One
browser per test module (per xdist worker) keeps the tests fast. No screenshot is written anywhere.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Iterator

import pytest
import requests
from daemon_helpers import DaemonThread, write_config
from support import make_image, wait_for

from skylab_watch.ledger import PhotoState

TOKEN = "browser-t0ken-0123456789abcdef"
PHONE_WIDTH = 390

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra: pip install -e '.[test]'")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """A headless Chromium for the module; skipped with the reason when chromium or chromedriver is missing."""
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; "
                    ".ci/run installs them)")
    os.environ["SE_OFFLINE"] = "1"  # Selenium Manager must never download a browser or a driver
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--no-first-run", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    # A phone's screen (a window cannot be made narrower than 500 px): the page must read well there.
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": PHONE_WIDTH, "height": 844,
                                                                          "pixelRatio": 3}})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


class Studio:
    """A daemon with two watches that really ran: `good` delivered 2 photos and rejected an empty file,
    `bad` had its job failed by the emulator."""

    def __init__(self, tmp: Path, emu) -> None:
        token_file = tmp / "http_token"
        token_file.write_text(TOKEN)
        token_file.chmod(0o600)
        self.tmp = tmp
        self.emu = emu
        emu.set_faults({"fail_jobs": ["bad-*"]})
        cfg = write_config(tmp, emu.url, [
            {"name": "good", "input": tmp / "in" / "good", "output": tmp / "out" / "good", "profile": "plain"},
            {"name": "bad", "input": tmp / "in" / "bad", "output": tmp / "out" / "bad", "profile": "plain"}],
            http={"listen": f"127.0.0.1:{_free_port()}", "token_file": str(token_file)})
        self.daemon = DaemonThread(cfg)

    def __enter__(self) -> Studio:
        self.daemon.__enter__()
        assert self.daemon.daemon.http is not None
        self.url = f"http://127.0.0.1:{self.daemon.daemon.http.address[1]}/"
        for i in range(2):
            make_image(self.tmp / "in" / "good" / f"p{i}.jpg", seed=i)
        (self.tmp / "in" / "good" / "empty.jpg").write_bytes(b"")
        make_image(self.tmp / "in" / "bad" / "doomed.jpg", seed=7)
        wait_for(lambda: self.count("good", PhotoState.DONE) == 2 and self.count("bad", PhotoState.FAILED) == 1
                 and self.count("good", PhotoState.REJECTED) == 1, what="deliveries, a rejection and a failure")
        self.emu.clear_faults()
        return self

    def __exit__(self, *exc: object) -> None:
        self.daemon.__exit__(*exc)

    def count(self, watch: str, state: PhotoState) -> int:
        return len(self.daemon.ledger.photos_in_state(state, watch=watch))


@pytest.fixture
def studio(tmp_path: Path, plain_emulator) -> Iterator[Studio]:
    with Studio(tmp_path, plain_emulator) as running:
        yield running


def _open(driver: webdriver.Chrome, url: str) -> None:
    driver.get(url)
    wait_for(lambda: driver.find_elements(By.TAG_NAME, "h1"), timeout=10, what="the page to load")


def _watch(driver: webdriver.Chrome, name: str):
    return driver.find_element(By.CSS_SELECTOR, f'section.watch[data-watch="{name}"]')


def _count(driver: webdriver.Chrome, watch: str, category: str) -> str:
    return _watch(driver, watch).find_element(By.CSS_SELECTOR, f'dd[data-count="{category}"]').text


def _sign_in(driver: webdriver.Chrome, url: str) -> None:
    _open(driver, url)
    driver.find_element(By.NAME, "token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, '#sign-in button[type="submit"]').click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, 'button[data-action="retry"]'), timeout=10,
             what="the signed-in page with its buttons")


def _press(driver: webdriver.Chrome, watch: str, action: str) -> None:
    _watch(driver, watch).find_element(By.CSS_SELECTOR, f'button[data-action="{action}"]').click()


def test_the_page_shows_deliveries_and_a_failure_with_its_reason_and_retry_sends_the_photo_again(
        browser: webdriver.Chrome, studio: Studio) -> None:
    _open(browser, studio.url)
    assert browser.title == "skylab-watch"
    assert (_count(browser, "good", "done"), _count(browser, "good", "rejected")) == ("2", "1")
    assert _count(browser, "bad", "failed") == "1"
    problems = browser.find_element(By.ID, "problems").text
    failed = [line for line in problems.splitlines() if "doomed.jpg" in line]
    assert failed and "bad" in failed[0] and "failed" in problems
    reason = studio.daemon.ledger.photos_in_state(PhotoState.FAILED)[0].reason
    assert reason and reason.startswith("bad: doomed.jpg: ")
    assert reason.removeprefix("bad: doomed.jpg: ") in problems and reason not in problems, \
        "the ledger's reason, without the watch and path its line already shows"
    assert "empty.jpg" in problems, "the rejection too"
    widths = browser.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
    assert widths == [PHONE_WIDTH, PHONE_WIDTH], "laid out at a phone's width, nothing wider"

    _sign_in(browser, studio.url)
    _press(browser, "bad", "retry")
    # find_elements, not _watch: mid-navigation the document has no cards yet, and that is no failure
    wait_for(lambda: browser.current_url == studio.url and browser.find_elements(
        By.CSS_SELECTOR, 'section.watch[data-watch="bad"] button[data-action="pause"]'), timeout=10,
             what="back on the page after the redirect")
    wait_for(lambda: studio.count("bad", PhotoState.DONE) == 1, what="the retried photo delivered")
    assert studio.count("bad", PhotoState.FAILED) == 0 and (studio.tmp / "out" / "bad" / "doomed.jpg").is_file()
    _open(browser, studio.url)
    assert (_count(browser, "bad", "done"), _count(browser, "bad", "failed")) == ("1", "0")


def test_pause_and_resume_from_the_page_and_a_post_without_the_token_is_refused(
        browser: webdriver.Chrome, studio: Studio) -> None:
    ledger = studio.daemon.ledger
    _sign_in(browser, studio.url)
    _press(browser, "good", "pause")
    wait_for(lambda: "good" in ledger.paused_by_hand(), timeout=5, what="the pause in the ledger")
    _open(browser, studio.url)
    assert "paused by hand" in _watch(browser, "good").find_element(By.CSS_SELECTOR, ".state").text
    _press(browser, "good", "resume")
    wait_for(lambda: ledger.paused_by_hand() == {}, timeout=5, what="the resume in the ledger")
    _open(browser, studio.url)
    assert "paused" not in _watch(browser, "good").find_element(By.CSS_SELECTOR, ".state").text

    assert requests.post(f"{studio.url}watches/good/pause", timeout=5).status_code == 401
    browser.delete_all_cookies()
    _press(browser, "good", "pause")  # the form still carries its CSRF field, but the session is gone
    wait_for(lambda: browser.find_elements(By.ID, "sign-in") and not browser.find_elements(By.CSS_SELECTOR,
             "section.watch"), timeout=10, what="the refusal with the sign-in form")
    assert "Sign in with the HTTP token to do this" in browser.page_source
    assert ledger.paused_by_hand() == {}, "refused: nothing changed"
