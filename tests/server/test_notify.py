"""The webhook against a local HTTP server: the body, a failing hook, a hung hook."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from webhook_server import Hook

from autoresearch.notify import Webhook, check_url, host_of


@pytest.fixture
def hook():
    server = Hook()
    yield server
    server.close()


def test_texts_are_posted_as_json_with_a_text_field_in_order(hook: Hook) -> None:
    sender = Webhook(hook.url())
    sender.send("first")
    sender.send("second")
    sender.close()
    assert hook.wait_for(2) == ["first", "second"]
    assert hook.paths[0] == "/services/T000/B000/secret-token"
    assert set(hook.bodies[0]) == {"text"}


def test_a_failing_hook_is_logged_by_host_only_and_raises_nothing(caplog) -> None:
    failing = Hook(status=500)
    try:
        caplog.set_level(logging.WARNING, "autoresearch.notify")
        sender = Webhook(failing.url())
        sender.send("one")
        sender.close()
        failing.wait_for(1)
        end = time.monotonic() + 30
        while not caplog.records and time.monotonic() < end:
            time.sleep(0.05)
        text = caplog.text
        assert "HTTP 500" in text and "127.0.0.1" in text
        assert "secret-token" not in text
    finally:
        failing.close()


def test_an_unreachable_hook_never_blocks_the_sender(caplog) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    caplog.set_level(logging.WARNING, "autoresearch.notify")
    sender = Webhook(f"http://127.0.0.1:{port}/secret-path")
    sender.send("notice")
    sender.close()
    end = time.monotonic() + 30
    while not caplog.records and time.monotonic() < end:
        time.sleep(0.05)
    assert "127.0.0.1" in caplog.text and "secret-path" not in caplog.text


def test_a_hung_hook_never_blocks_the_sender() -> None:
    # Each POST hangs a minute: a sender that waited on it would take hours for these.
    hung = Hook(delay_s=60.0)
    try:
        sender = Webhook(hung.url())
        started = time.monotonic()
        for i in range(500):  # more than the queue holds: the rest are dropped, never waited on
            sender.send(f"notice {i}")
            assert time.monotonic() - started < 30, i  # generous: sending only queues
    finally:
        hung.close()


def test_a_hung_hook_is_cut_by_the_timeout() -> None:
    hung = Hook(delay_s=60.0)  # far past the bound below: only the timeout can end the POST
    try:
        sender = Webhook(hung.url(), timeout=0.5)
        sender.send("x")
        started = time.monotonic()
        sender.close(wait_s=90)
        assert time.monotonic() - started < 30  # the POST was abandoned, not waited out
    finally:
        hung.close()


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x", "hooks.slack.com/x", "https://", ""]
)
def test_only_http_and_https_urls_with_a_host(url: str) -> None:
    assert "http:// or https://" in check_url(url)


def test_the_host_is_all_that_is_shown() -> None:
    assert host_of("https://hooks.slack.com/services/T/B/xyz?token=1") == "https://hooks.slack.com"
    assert check_url("https://hooks.slack.com/services/T/B/xyz") == ""


def test_a_redirect_is_not_followed(caplog) -> None:
    moved = Hook(status=302)  # urllib would follow it as a GET
    try:
        caplog.set_level(logging.WARNING, "autoresearch.notify")
        sender = Webhook(moved.url())
        sender.send("once")
        sender.close()
        end = time.monotonic() + 30
        while not caplog.records and time.monotonic() < end:
            time.sleep(0.05)
        assert "HTTP 302" in caplog.text
        assert moved.paths == ["/services/T000/B000/secret-token"]  # never /elsewhere
    finally:
        moved.close()
