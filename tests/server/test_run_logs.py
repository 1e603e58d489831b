"""Run logs are pruned: keeps and the last run.keep_logs experiments stay plain, the rest are
gzip-compressed, and every reader (the log request, crash triage) reads a compressed tail."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest
from conftest import ScriptedProposer, make_config, set_lr
from lsp_fixtures import daemon

from autoresearch import config as cfg
from autoresearch import runlogs
from autoresearch.loop import Loop
from autoresearch.protocol import Method
from autoresearch.triage import log_tail, read_tail

FLOOD = """\
import os
print("peak_mem_mb: 512.0", flush=True)
os.execvp("yes", ["yes", "0123456789abcdef" * 4])
"""


def flood(root: Path) -> str:
    (root / "train.py").write_text(FLOOD)
    return "print without end"


async def test_old_logs_are_compressed_and_still_served(repo: Path) -> None:
    # 0.24 baseline; 0.14 keep, 0.64 discard, 0.54 discard, 0.09 keep, 0.44 and 0.49 discards
    lrs = ["0.4", "0.9", "0.8", "0.35", "0.7", "0.75"]
    loop = Loop(repo, make_config(run__keep_logs=2), ScriptedProposer(list(map(set_lr, lrs))))
    loop.limit = len(lrs)
    history = loop.run()
    assert [e.status for e in history] == ["keep", "keep", "discard", "discard", "keep"] + [
        "discard"
    ] * 2
    runs = repo / ".autoresearch" / "runs"
    plain = sorted(p.name for p in runs.glob("*.log"))
    packed = sorted(p.name for p in runs.glob("*.log.gz"))
    tag = loop.tag
    assert plain == [f"{tag}-{n}.log" for n in (0, 1, 4, 5, 6)]  # keeps and the last two
    assert packed == [f"{tag}-{n}.log.gz" for n in (2, 3)]
    for name in packed:  # ordinary gzip files: zcat reads them whole
        assert subprocess.run(["gzip", "-t", str(runs / name)], check=False).returncode == 0
    whole = subprocess.run(["zcat", str(runs / packed[0])], capture_output=True, check=True)
    assert whole.stdout == b"training...\nscore: 0.640000\npeak_mem_mb: 512.0\n"

    async with daemon() as client:
        log = await client.request(Method.LOG, {"root": str(repo), "number": 2})
        assert log["path"] == f".autoresearch/runs/{tag}-2.log.gz"
        assert log["text"] == whole.stdout.decode() and not log["truncated"]
        third = "training...\nscore: 0.540000\npeak_mem_mb: 512.0\n"
        short = await client.request(Method.LOG, {"root": str(repo), "number": 3, "max_bytes": 18})
        assert short == {
            "path": f".autoresearch/runs/{tag}-3.log.gz",
            "text": third[-18:],
            "size": len(third),
            "truncated": True,
        }


def test_an_earlier_sessions_logs_are_pruned_by_the_next_session(repo: Path) -> None:
    first = Loop(repo, make_config(), ScriptedProposer([set_lr("0.9"), set_lr("0.8")]), limit=2)
    first.run()  # 0 keep, 1 and 2 discards: with keep_logs = 20 all stay plain
    runs = repo / ".autoresearch" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == [f"{first.tag}-{n}.log" for n in (0, 1, 2)]
    config = make_config(run__keep_logs=1)
    Loop(repo, config, ScriptedProposer([set_lr("0.7")]), tag="second", limit=1).run()
    assert sorted(p.name for p in runs.iterdir()) == [
        f"{first.tag}-0.log",  # its keep
        f"{first.tag}-1.log.gz",
        f"{first.tag}-2.log",  # its last one
        "second-0.log",
        "second-1.log",
    ]


def test_a_compressed_tail_is_read_from_its_last_member_alone(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    text = b"".join(b"step %d loss %f\n" % (i, 1 / (i + 1)) for i in range(600_000))
    log.write_bytes(text)
    assert len(text) > 2 * runlogs.TAIL_MEMBER
    gz = runlogs.compress(log)
    assert not log.exists() and gzip.decompress(gz.read_bytes()) == text
    assert read_tail(gz, 4096) == (text[-4096:], len(text), len(text) - 4096)
    expected = log_tail(_plain(tmp_path, text))
    assert log_tail(gz) == expected  # crash triage's reader
    # Spoil the head member: the tail is still read, so nothing before it was decompressed.
    data = bytearray(gz.read_bytes())
    data[1000:200_000] = b"\x55" * 199_000
    gz.write_bytes(bytes(data))
    assert read_tail(gz, runlogs.TAIL_MEMBER) == (
        text[-runlogs.TAIL_MEMBER :],
        len(text),
        len(text) - runlogs.TAIL_MEMBER,
    )
    assert log_tail(gz) == expected


def test_a_gzip_file_from_elsewhere_is_streamed_within_bounds(tmp_path: Path) -> None:
    path = tmp_path / "other.log.gz"
    path.write_bytes(gzip.compress(b"a" * 50_000_000) + gzip.compress(b"\nlast line\n"))
    data, size, start = read_tail(path, 16)
    assert (data, size, start) == (b"aaaaa\nlast line\n", 50_000_011, 50_000_011 - 16)


def test_a_log_limit_crash_still_records_its_memory(repo: Path) -> None:
    config = make_config(
        run__max_log_mb=1,
        run__memory_pattern=r"^peak_mem_mb:\s*(\S+)",
        run__memory_unit="MB",
    )
    loop = Loop(repo, config, ScriptedProposer([flood]), limit=1)
    history = loop.run()
    crash = history[1]
    assert (crash.status, crash.crash_kind) == ("crash", "log_limit")
    assert crash.memory_gb == pytest.approx(0.512)  # was 0.0: the limit returned before reading it
    assert crash.peak_rss_gb > 0
    row = (repo / "results.tsv").read_text().splitlines()[2].split("\t")
    assert row[2:4] == ["0.5", "crash"]


def test_keep_logs_must_not_be_negative() -> None:
    raw = {"metric": {"name": "m", "direction": "lower"}, "scope": {"files": ["a.py"]}}
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_builtins({**raw, "run": {"command": "true", "keep_logs": -1}})
    assert str(info.value) == (
        "autoresearch.toml: run.keep_logs is -1; it must be 0 or more (how many of the latest"
        " experiments keep a plain run log)."
    )


def _plain(tmp_path: Path, text: bytes) -> Path:
    path = tmp_path / "plain.log"
    path.write_bytes(text)
    return path
