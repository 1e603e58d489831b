"""`[notify] webhook`: POST the loop's notices as {"text": ...} (Slack and Discord accept it).

The URL is untrusted config: only http and https, a short timeout, sent from a thread of its
own through a bounded queue, so a slow or failing hook never blocks or stops the loop. A failure
is logged by host only: the path and query of a hook URL are its secret.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.parse
import urllib.request

log = logging.getLogger("autoresearch.notify")

TIMEOUT_S = 5.0
# Notices waiting for the hook; beyond this the newest are dropped (logged), the loop goes on.
QUEUE_MAX = 100


def check_url(url: str) -> str:
    """The problem with a webhook URL, worded as the rest of a sentence, or ''."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The URL itself is not repeated: its path is the hook's secret.
        what = f"a {parts.scheme}: URL" if parts.scheme else "a URL without a scheme"
        if parts.scheme in ("http", "https"):
            what = "a URL without a host"
        return (
            f"must be an http:// or https:// URL with a host, not {what}. Paste the"
            " incoming-webhook URL from Slack or Discord, e.g. 'https://hooks.slack.com/...'."
        )
    return ""


def host_of(url: str) -> str:
    """The URL without its secret: scheme and host only."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


class Webhook:
    """Sends texts to one URL in the background, in order; `close` waits for what is queued."""

    def __init__(self, url: str, timeout: float = TIMEOUT_S) -> None:
        self.url = url.strip()
        self.timeout = timeout
        self._queue: queue.Queue[str | None] = queue.Queue(QUEUE_MAX)
        self._thread = threading.Thread(target=self._work, name="autoresearch-webhook", daemon=True)
        self._thread.start()

    def send(self, text: str) -> None:
        try:
            self._queue.put_nowait(text)
        except queue.Full:
            log.warning("webhook %s: %d notices waiting; one dropped", host_of(self.url), QUEUE_MAX)

    def close(self, wait_s: float = TIMEOUT_S) -> None:
        """Let the queued notices go out (at most about `wait_s` more), then end the thread."""
        try:
            self._queue.put(None, timeout=wait_s)
        except queue.Full:
            return
        self._thread.join(wait_s)

    def _work(self) -> None:
        while (text := self._queue.get()) is not None:
            try:
                self._post(text)
            except Exception as exc:  # logged, never raised: the loop goes on
                log.warning("webhook %s failed: %s", host_of(self.url), _reason(exc))

    def _post(self, text: str) -> None:
        body = json.dumps({"text": text}).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            headers={"Content-Type": "application/json", "User-Agent": "autoresearch"},
            method="POST",
        )
        with _OPENER.open(request, timeout=self.timeout) as response:
            response.read(1024)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A hook answers; it does not send the notice on elsewhere (another scheme, another host)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def _reason(exc: Exception) -> str:
    """An error without the URL in it (urllib's messages may quote the full URL)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"{type(exc.reason).__name__}: {exc.reason}"
    return type(exc).__name__
