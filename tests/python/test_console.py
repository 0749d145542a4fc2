"""The web console at /console, in a real headless browser: Debian's Chromium driven by its
ChromeDriver through Selenium. Each view loads; a queue is created from the form with a
dead-letter queue picked; a message sent from the form shows up in the poll view; a redrive
moves dead letters back and can be cancelled; purge and delete ask first; with authentication on,
the console asks for an access key and acts with that key's permissions.

Screenshots of each view are written to target/test-output/console/ (or $HOLDFAST_TEST_OUTPUT).
Without Chromium and ChromeDriver (or $CHROMIUM / $CHROMEDRIVER naming them) the tests skip,
and fail under CI=true: scripts/forms-deps.sh installs both.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import authenticated
from holdfast_testlib import (
    ACCESS_KEY,
    EXTRA_KEYS,
    SECRET_KEY,
    message_count,
    queue_arn_of,
    queue_attributes,
    redrive_policy,
    unique_name,
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("HOLDFAST_TEST_OUTPUT") or REPO / "target" / "test-output") / "console"


def _binary(env: str, *candidates: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def driver():
    chromium = _binary("CHROMIUM", "chromium", "chromium-browser", "google-chrome")
    chromedriver = _binary("CHROMEDRIVER", "chromedriver")
    if not chromium or not chromedriver:
        message = "Chromium and ChromeDriver are needed (scripts/forms-deps.sh installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    browser.set_page_load_timeout(30)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    yield browser
    browser.quit()


class Console:
    """The browser on the console of one server, signed in when the server asks for keys."""

    def __init__(self, driver, url: str):
        self.driver = driver
        self.url = url

    def open(self, path: str = "") -> None:
        self.driver.get(f"{self.url}/console{path}")

    def sign_in(self, key: str, secret: str) -> None:
        self.open("/sign-in")
        self.fill("access_key_id", key)
        self.fill("secret_access_key", secret)
        self.submit_form_of("secret_access_key")

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def fill(self, field_id: str, text: str) -> None:
        element = self.find(f"#{field_id}")
        element.clear()
        element.send_keys(text)

    def choose(self, field_id: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.find(f"#{field_id}")).select_by_value(value)

    def click_and_wait(self, element) -> None:
        """Clicks `element` and waits until the page it leads to has replaced this one and loaded.
        A mark left in this page's window tells the two apart (asking about an element of the
        old page mid-navigation can fail in Chrome instead of answering "stale")."""
        from selenium.common.exceptions import WebDriverException

        self.driver.execute_script("window.__before_click = true;")
        element.click()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.driver.execute_script("return !window.__before_click && document.readyState === 'complete';"):
                    return
            except WebDriverException:
                pass  # mid-navigation
            time.sleep(0.05)
        raise AssertionError(f"clicking did not lead to a new page: {self.driver.current_url}")

    def submit_form_of(self, field_id: str) -> None:
        form = self.find(f"#{field_id}").find_element("xpath", "ancestor::form")
        self.click_and_wait(form.find_element("css selector", "button[type=submit]"))

    def click_button(self, text: str, within: str = "body") -> None:
        for button in self.find(within).find_elements("css selector", "button"):
            if button.text.strip() == text:
                self.click_and_wait(button)
                return
        raise AssertionError(f"no button {text!r} in {within}: {self.text()[:2000]}")

    def follow(self, css: str) -> None:
        self.click_and_wait(self.find(css))

    def live_text(self, css: str) -> str:
        """The text of an element in a part the page's script replaces every few seconds ("" if
        it was replaced while being read)."""
        from selenium.common.exceptions import WebDriverException

        try:
            return self.find(css).text
        except WebDriverException:  # stale, missing, or mid-replacement
            return ""

    def text(self) -> str:
        return self.find("body").text

    def notice(self) -> str:
        notices = self.find_all(".notice")
        return notices[0].text if notices else ""

    def screenshot(self, name: str) -> None:
        self.driver.save_screenshot(str(OUTPUT / f"{name}.png"))


@pytest.fixture
def console(driver, server):
    page = Console(driver, server.url)
    if authenticated():
        page.sign_in(ACCESS_KEY, SECRET_KEY)
    return page


@pytest.fixture
def queues(json_client):
    """Queue names to delete after the test."""
    names: list[str] = []
    yield names
    for name in names:
        try:
            json_client.delete_queue(QueueUrl=json_client.get_queue_url(QueueName=name)["QueueUrl"])
        except Exception:
            pass


def _source_with_dead_letter_queue(client, queues: list[str], prefix: str, max_receives: int):
    """A dead-letter queue and a source queue that sends there after `max_receives` receives,
    both deleted after the test. Returns (source name, source URL, DLQ name, DLQ URL)."""
    dlq, source = unique_name(f"{prefix}dlq"), unique_name(f"{prefix}src")
    queues += [source, dlq]
    dlq_url = client.create_queue(QueueName=dlq)["QueueUrl"]
    policy = redrive_policy(queue_arn_of(client, dlq_url), max_receives)
    source_url = client.create_queue(QueueName=source, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    return source, source_url, dlq, dlq_url


def test_the_queue_list_shows_counts_badges_and_filters(console, json_client, queues):
    source, source_url, dlq, _ = _source_with_dead_letter_queue(json_client, queues, "c", 3)
    for i in range(3):
        json_client.send_message(QueueUrl=source_url, MessageBody=f"m{i}")

    console.open(f"?filter={source}")
    row = console.find(f"tr[data-queue='{source}']")
    cells = [cell.text for cell in row.find_elements("css selector", "td")]
    assert cells[0] == source and "has DLQ" in cells[1] and cells[2] == "3", cells
    assert row.find_elements("css selector", "svg.spark"), "a depth sparkline"
    assert not console.find_all(f"tr[data-queue='{dlq}']"), "filtered out"

    console.open(f"?filter={dlq}")
    assert "dead-letter queue" in console.find(f"tr[data-queue='{dlq}']").text
    console.open()
    console.screenshot("queues")


def test_a_queue_is_created_from_the_form_with_a_dead_letter_queue_picked(console, json_client, queues):
    dlq = unique_name("cdlq")
    queues.append(dlq)
    dlq_arn = queue_arn_of(json_client, json_client.create_queue(QueueName=dlq)["QueueUrl"])
    name = unique_name("cnew")
    queues.append(name)

    console.open("/new")
    console.fill("QueueName", name)
    console.fill("VisibilityTimeout", "45")
    console.choose("dead_letter_arn", dlq_arn)
    console.fill("max_receive_count", "4")
    console.fill("tag_key_0", "team")
    console.fill("tag_value_0", "sales")
    console.screenshot("create-queue")
    console.submit_form_of("QueueName")

    assert f"Created queue {name}." in console.notice()
    url = json_client.get_queue_url(QueueName=name)["QueueUrl"]
    attributes = queue_attributes(json_client, url, "All")
    assert attributes["VisibilityTimeout"] == "45"
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 4}
    assert json_client.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "sales"}
    # The queue page links its dead-letter queue, and the DLQ's page links back.
    assert "team" in console.find("table.tags").text
    console.follow(f".relations a[href='/console/queues/{dlq}']")
    assert name in console.find(".relations").text
    assert console.find_all(f".relations a[href='/console/queues/{name}']")


def test_a_bad_queue_form_shows_the_sqs_error_and_keeps_what_was_typed(console):
    console.open("/new")
    console.fill("QueueName", "bad name!")
    console.fill("VisibilityTimeout", "99999")
    console.submit_form_of("QueueName")
    assert "InvalidParameterValue" in console.notice() or "InvalidAttributeValue" in console.notice(), console.notice()
    assert console.find("#QueueName").get_attribute("value") == "bad name!"


def test_attributes_and_tags_are_edited_on_the_queue_page(console, json_client, queues):
    name = unique_name("cedit")
    queues.append(name)
    url = json_client.create_queue(QueueName=name)["QueueUrl"]
    console.open(f"/queues/{name}")
    console.fill("DelaySeconds", "7")
    console.submit_form_of("DelaySeconds")
    assert "Saved DelaySeconds." == console.notice(), console.notice()
    assert queue_attributes(json_client, url, "DelaySeconds")["DelaySeconds"] == "7"

    console.fill("key", "owner")
    console.fill("value", "ops team")
    console.submit_form_of("key")
    assert console.notice() == "Tagged owner.", console.notice()
    assert json_client.list_queue_tags(QueueUrl=url)["Tags"] == {"owner": "ops team"}
    assert "ops team" in console.find("table.tags").text
    console.click_button("Remove", "table.tags")
    assert "Tags" not in json_client.list_queue_tags(QueueUrl=url)


def test_a_message_sent_from_the_form_shows_up_in_the_poll_view(console, json_client, queues):
    name = unique_name("cmsg")
    queues.append(name)
    url = json_client.create_queue(QueueName=name)["QueueUrl"]
    console.open(f"/queues/{name}/messages")
    console.fill("MessageBody", '{"lead": {"email": "ada@example.com", "score": 7}}')
    console.fill("attr_name_0", "source")
    console.fill("attr_value_0", "web-form")
    console.fill("attr_name_1", "size")
    console.choose("attr_type_1", "Number")
    console.fill("attr_value_1", "3")
    console.submit_form_of("MessageBody")
    assert console.notice().startswith("Sent message "), console.notice()
    message_id = console.notice().removeprefix("Sent message ").rstrip(".")

    # Peek: shown, then visible again at once.
    console.choose("mode", "peek")
    console.submit_form_of("mode")
    card = console.find(f"article[data-message-id='{message_id}']")
    body = card.find_element("css selector", "pre.body")
    assert "json" in body.get_attribute("class")
    assert body.text == json.dumps({"lead": {"email": "ada@example.com", "score": 7}}, indent=2)
    assert "web-form" in card.text and "Number" in card.text
    console.driver.execute_script("arguments[0].scrollIntoView();", console.find("div.messages"))
    console.screenshot("messages")
    received = json_client.receive_message(
        QueueUrl=url, MessageAttributeNames=["All"], MessageSystemAttributeNames=["ApproximateReceiveCount"], WaitTimeSeconds=2
    )["Messages"]
    assert received[0]["MessageId"] == message_id, "a peeked message is visible again"
    assert received[0]["MessageAttributes"]["size"] == {"StringValue": "3", "DataType": "Number"}
    json_client.change_message_visibility(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"], VisibilityTimeout=0)

    # Receive, then delete from the card.
    console.open(f"/queues/{name}/messages")
    console.choose("mode", "receive")
    console.fill("WaitTimeSeconds", "2")
    console.submit_form_of("mode")
    console.follow(f"article[data-message-id='{message_id}'] button.danger")
    assert console.notice() == "Deleted the message."
    assert message_count(json_client, url) == 0


def test_the_queue_page_updates_live_and_draws_recorded_metrics(console, json_client, queues):
    name = unique_name("clive")
    queues.append(name)
    url = json_client.create_queue(QueueName=name)["QueueUrl"]
    console.open(f"/queues/{name}")
    assert console.find("#count-visible").text == "0"
    json_client.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(4)])
    # No reload: the page's script refreshes the live part.
    wait_for(lambda: console.live_text("#count-visible") == "4", timeout=20)
    wait_for(lambda: console.live_text("figure.chart figcaption") == "Messages", timeout=10)
    # The open minute's sends are recorded and drawn (the legend shows the latest value).
    wait_for(lambda: "sent: 4" in console.live_text("figure.chart:nth-of-type(2)"), timeout=20)
    for label in ("24h", "14d"):
        console.follow(f".ranges a[href$='range={label}']")
        assert console.find(".ranges a.current").text == label
    console.open(f"/queues/{name}")
    console.screenshot("queue")


def test_a_redrive_moves_dead_letters_back_and_can_be_cancelled(console, json_client, queues):
    _, source_url, dlq, dlq_url = _source_with_dead_letter_queue(json_client, queues, "cr", 1)
    json_client.send_message_batch(QueueUrl=source_url, Entries=[{"Id": str(i), "MessageBody": f"b{i}"} for i in range(5)])
    deadline = time.monotonic() + 20
    while message_count(json_client, dlq_url) < 5 and time.monotonic() < deadline:
        json_client.receive_message(QueueUrl=source_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert message_count(json_client, dlq_url) == 5, "setup: dead-lettered"

    # A slow redrive, cancelled.
    console.open(f"/queues/{dlq}")
    console.follow(f"a[href='/console/queues/{dlq}/redrive']")
    console.fill("rate", "1")
    console.submit_form_of("rate")
    assert console.notice() == "Redrive started."
    console.click_button("Cancel", "table.tasks")
    assert console.notice().startswith("Redrive cancelled"), console.notice()
    # The live table follows the task to its end without a reload.
    wait_for(lambda: "CANCELLED" in console.live_text("table.tasks tr.task"), timeout=20)

    # A full one, to the source queue, watched until it completes.
    console.submit_form_of("rate")
    wait_for(lambda: "COMPLETED" in console.live_text("table.tasks tr.task"), timeout=30)
    console.screenshot("redrive")
    assert message_count(json_client, source_url) == 5
    assert message_count(json_client, dlq_url) == 0


def test_purge_and_delete_ask_for_the_name_first(console, json_client, queues):
    name = unique_name("cdel")
    queues.append(name)
    url = json_client.create_queue(QueueName=name)["QueueUrl"]
    json_client.send_message(QueueUrl=url, MessageBody="keep me")
    console.open(f"/queues/{name}")
    console.follow(f"a[href='/console/queues/{name}/purge']")
    console.fill("confirm", "not-the-name")
    console.submit_form_of("confirm")
    assert "nothing was done" in console.notice()
    assert message_count(json_client, url) == 1
    console.fill("confirm", name)
    console.submit_form_of("confirm")
    assert console.notice() == f"Purged {name}."
    wait_for(lambda: message_count(json_client, url) == 0)

    console.follow(f"a[href='/console/queues/{name}/delete']")
    console.fill("confirm", name)
    console.submit_form_of("confirm")
    assert console.notice() == f"Deleted {name}."
    assert name not in [u.rsplit("/", 1)[-1] for u in json_client.list_queues().get("QueueUrls", [])]


def test_with_authentication_the_console_asks_for_a_key_and_acts_with_its_rights(driver, signed_server, client_as):
    page = Console(driver, signed_server.url)
    driver.delete_all_cookies()
    page.open()
    assert driver.current_url.endswith("/console/sign-in")
    started = time.monotonic()
    page.sign_in(ACCESS_KEY, "wrong secret")
    assert "not right" in page.notice()
    assert time.monotonic() - started >= 1.0, "a refused sign-in is answered after a second"
    page.screenshot("sign-in")

    # A key that may only send to policy-* queues: the console cannot create queues with it.
    producer = EXTRA_KEYS["producer"]
    page.sign_in(producer.access_key_id, producer.secret)
    assert producer.access_key_id in page.find("header .who").text
    name = unique_name("cauth")
    page.open("/new")
    page.fill("QueueName", name)
    page.submit_form_of("QueueName")
    assert "AccessDenied" in page.notice(), page.notice()

    page.click_button("Sign out", "header")
    assert driver.current_url.endswith("/console/sign-in")
    page.sign_in(ACCESS_KEY, SECRET_KEY)
    page.open("/new")
    page.fill("QueueName", name)
    page.submit_form_of("QueueName")
    assert page.notice() == f"Created queue {name}."
    client = client_as("json")
    client.delete_queue(QueueUrl=client.get_queue_url(QueueName=name)["QueueUrl"])
    driver.delete_all_cookies()


def _raw(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def test_forms_need_the_session_token_and_pages_allow_only_their_own_assets(server, json_client, queues):
    name = unique_name("ccsrf")
    queues.append(name)
    url = json_client.create_queue(QueueName=name)["QueueUrl"]
    json_client.send_message(QueueUrl=url, MessageBody="keep me")
    if authenticated():
        # Unsigned in, the console only offers the sign-in page.
        status, headers, _ = _raw("GET", f"{server.url}/console/queues/{name}")
        assert status == 303 and headers["Location"] == "/console/sign-in"
        credentials = f"access_key_id={ACCESS_KEY}&secret_access_key={SECRET_KEY}".encode()
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        status, headers, _ = _raw("POST", f"{server.url}/console/sign-in", credentials, form)
        assert status == 303
    else:
        status, headers, _ = _raw("GET", f"{server.url}/console")
        assert status == 200
        assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    cookie = headers["Set-Cookie"].split(";")[0]
    status, headers, _ = _raw("GET", f"{server.url}/console/queues/{name}", headers={"Cookie": cookie})
    assert status == 200 and "default-src 'none'" in headers["Content-Security-Policy"]
    # A cross-site form post (the cookie, but no token) changes nothing.
    body = f"confirm={name}".encode()
    form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    status, _, text = _raw("POST", f"{server.url}/console/queues/{name}/purge", body, form)
    assert status == 403 and "old or another session" in text
    assert message_count(json_client, url) == 1
    # Too many fields are refused before anything is built from them.
    status, _, _ = _raw("POST", f"{server.url}/console/new", "&".join(f"f{i}=x" for i in range(500)).encode(), form)
    assert status == 413
    # A body past --max-request-bytes (4 MiB) is refused before it is read whole.
    status, _, _ = _raw("POST", f"{server.url}/console/new", b"QueueName=" + b"x" * (5 << 20), form)
    assert status == 413
    status, headers, text = _raw("GET", f"{server.url}/console/assets/console.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript") and "data-live" in text
    assert _raw("GET", f"{server.url}/console/no/such/page", headers={"Cookie": cookie})[0] == 404
    # Notices come from the server's own redirects, never from the URL: a link cannot make the
    # console say something.
    status, _, text = _raw("GET", f"{server.url}/console?notice=Call+555-0100+now", headers={"Cookie": cookie})
    assert status == 200 and "555-0100" not in text
