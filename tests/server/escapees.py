"""Processes built to escape a kill, and how the tests look for them afterwards.

Two kinds, both started by a command's shell in the background:
- a sleeper started with `setsid env -i`: out of the process group, and no environment, so no
  environment marker finds it; its unique duration (`sleep 1000.<digits>`) names it;
- a daemon that forks again and again, each generation in a new session, its parent gone: a
  scan that lists processes, then kills them, keeps finding yesterday's pid.
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from pathlib import Path

import psutil

FORKER = """\
import os, sys, time
token, started, stop = sys.argv[1:4]
open(started, "w").close()
while not os.path.exists(stop):
    if os.fork():
        os._exit(0)
    os.setsid()
    time.sleep(0.002)
"""


class Escapees:
    def __init__(self, tmp: Path) -> None:
        self.token = f"1000.{random.randrange(10**8, 10**9)}"
        self.forker = tmp / "forker.py"
        self.forker.write_text(FORKER)
        self.started = tmp / f"forker-{self.token}.started"
        self.stop = tmp / f"forker-{self.token}.stop"

    def shell(self) -> str:
        """Shell lines that start both in the background and wait until the forker runs."""
        return (
            f"setsid env -i sleep {self.token} & "
            f"{sys.executable} {self.forker} {self.token} {self.started} {self.stop} & "
            f"while [ ! -e {self.started} ]; do sleep 0.05; done; "
        )

    def alive(self) -> list[psutil.Process]:
        """Live processes carrying the token on their command line."""
        found = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            info = proc.info
            if info["status"] != psutil.STATUS_ZOMBIE and self.token in (info["cmdline"] or []):
                found.append(proc)
        return found

    def survivors(self, looks: int = 5) -> list[psutil.Process]:
        """What is left, over a few looks: one look can fall between two of the forker's
        generations (the listed one gone, its child not listed)."""
        for _ in range(looks):
            found = self.alive()
            if found:
                return found
            time.sleep(0.1)
        return []

    def cleanup(self) -> None:
        """After a failed test: the forker ends itself on the stop file; the sleeper is killed."""
        self.stop.touch()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = self.alive()
            if not found:
                return
            for proc in found:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            time.sleep(0.05)
