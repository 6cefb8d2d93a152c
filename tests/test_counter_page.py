"""The counter page in a real headless browser (Debian's chromium + chromium-driver, driven by Selenium): the
printed ticket's QR code, read back from the simulated printer's PNG, is typed into the page as a scanner would
(the text, then Enter), and the keyboard alone calls and serves. Screenshots: set COUNTER_SHOTS=DIR to keep them
(the README's come from here: COUNTER_SHOTS=docs/images)."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from counterkit import office_db, served
from kiosk.cardread import decode_qr
from test_counter import EARLIER
from test_ticketcode import OTHER_OFFICE, _code, print_tickets


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        message = "Chromium and its driver are not installed (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run installs them")
        pytest.skip(message + "; the counter page was not tested in a browser")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,1040", "--hide-scrollbars", "--lang=vi"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = _browser()
    yield driver
    driver.quit()


def _shot(browser, tmp_path, name):
    folder = Path(os.environ.get("COUNTER_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(folder / f"counter-{name}.png"))
    with Image.open(folder / f"counter-{name}.png") as img:
        return len(img.convert("RGB").getcolors(1 << 20) or [])


def _keys(browser, *keys):
    """Type into the focused element and wait for the page the form brings back (a new document)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = browser.find_element(By.TAG_NAME, "html")
    browser.switch_to.active_element.send_keys(*keys)
    WebDriverWait(browser, 30).until(expected_conditions.staleness_of(old))
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return document.readyState") == "complete")


def _scan(browser, text):
    """What a keyboard-wedge scanner does: type into the focused element, then Enter."""
    from selenium.webdriver.common.keys import Keys

    assert browser.switch_to.active_element.get_attribute("id") == "code"   # ready for the next ticket, no click
    _keys(browser, text + Keys.ENTER)


def _text(browser, element_id):
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, element_id).text


def test_printed_tickets_scanned_into_the_page(browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    (linked, linked_png), (plain, plain_png) = print_tickets(tmp_path)
    [linked_code] = decode_qr(np.asarray(Image.open(linked_png).convert("L")))
    [plain_code] = decode_qr(np.asarray(Image.open(plain_png).convert("L")))
    earlier = [(k, v, t, c, i, linked.citizen) for k, v, t, c, i, _ in EARLIER[:2]]
    with served(office_db(str(tmp_path / "office.db"), visits=earlier)) as base:
        browser.get(base + "/")
        _scan(browser, plain_code)
        assert _text(browser, "ticket") == plain.ticket and "Vé không gắn với công dân" in _text(browser, "nobody")
        assert _shot(browser, tmp_path, "unlinked") > 10
        _scan(browser, linked_code)
        assert _text(browser, "ticket") == linked.ticket
        assert _text(browser, "citizen") == "Nguyễn Văn An"
        assert _text(browser, "f-card_number") == "001095001234" and _text(browser, "f-birth_date") == "01/02/1995"
        assert "DD-011" in _text(browser, "history") and "HT-004" in _text(browser, "history")
        assert _shot(browser, tmp_path, "linked") > 10
        # keyboard alone: Tab to "Called", Enter; the page comes back with the time and the focus in the input
        browser.switch_to.active_element.send_keys(Keys.TAB)
        assert browser.switch_to.active_element.get_attribute("id") == "called"
        _keys(browser, Keys.ENTER)
        assert _text(browser, "called-at") == "09:42 27/11/2026" and _text(browser, "served-at") == "—"
        _keys(browser, Keys.TAB, Keys.TAB, Keys.ENTER)
        assert _text(browser, "served-at") == "09:42 27/11/2026"
        _scan(browser, linked_code)
        assert "đã được phục vụ" in _text(browser, "refused")


def test_a_refused_code_says_so_plainly(browser, tmp_path):
    with served(office_db(str(tmp_path / "office.db"))) as base:
        browser.get(base + "/")
        _scan(browser, _code(office=OTHER_OFFICE))
        said = _text(browser, "refused")
        assert "văn phòng khác" in said and "sealed for another office" in said
        assert _shot(browser, tmp_path, "refused") > 10
