"""Curves read from real log shapes, incrementally, as a run writes them."""

from __future__ import annotations

import re
from pathlib import Path

from autoresearch import curves

NANOGPT = r"^step (\d+): train loss [-+0-9.eE]+, val loss ([-+0-9.eE]+)"
KARPATHY = r"^step (\d+) .*loss: ([-+0-9.eE]+)"
TQDM = r"(\d+)/\d+ \[.*loss=([-+0-9.eE]+)"


def points(pattern: str, text: bytes) -> list[tuple[int, float]]:
    return curves.parse_lines(re.compile(pattern.encode()), re.split(rb"\r\n|\r|\n", text))


def test_nanogpt_eval_lines() -> None:
    log = (
        b"number of parameters: 10.65M\n"
        b"step 0: train loss 4.2874, val loss 4.2823\n"
        b"iter 0: loss 4.2654, time 2941.43ms, mfu -100.00%\n"
        b"iter 10: loss 3.2443, time 32.12ms, mfu 11.60%\n"
        b"step 250: train loss 1.9689, val loss 2.0648\n"
        b"saving checkpoint to out-shakespeare-char\n"
        b"step 500: train loss 1.5404, val loss 1.7262\n"
    )
    assert points(NANOGPT, log) == [(0, 4.2823), (250, 2.0648), (500, 1.7262)]


def test_karpathy_autoresearch_step_lines() -> None:
    # train.py prints a step line per step, redrawn with "\r", then the final summary block.
    log = (
        b"step 00000 (0.0%) | loss: 9.011230 | lrm: 1.00 | dt: 1212ms "
        b"| tok/sec: 432,561 | mfu: 12.1%\r"
        b"step 00001 (0.3%) | loss: 8.703412 | lrm: 1.00 | dt: 310ms "
        b"| tok/sec: 1,690,332 | mfu: 47.3%\r"
        b"step 00002 (0.6%) | loss: 8.123001 | lrm: 1.00 | dt: 309ms "
        b"| tok/sec: 1,696,101 | mfu: 47.5%\n"
        b"---\nval_bpb:          0.997900\ntraining_seconds: 300.1\n"
    )
    assert points(KARPATHY, log) == [(0, 9.01123), (1, 8.703412), (2, 8.123001)]


def test_tqdm_carriage_returns_keep_the_last_value_of_a_step() -> None:
    log = (
        b"  0%|          | 0/300 [00:00<?, ?it/s]\r"
        b"  1%|1         | 3/300 [00:01<01:40, 2.96it/s, loss=2.31]\r"
        b"  1%|1         | 3/300 [00:01<01:40, 2.96it/s, loss=2.29]\r"
        b"  2%|2         | 6/300 [00:02<01:39, 2.97it/s, loss=2.05]\r"
        b" 100%|##########| 300/300 [01:41<00:00, 2.96it/s, loss=0.93]\n"
    )
    assert points(TQDM, log) == [(3, 2.29), (6, 2.05), (300, 0.93)]


def test_the_follower_reads_only_what_was_appended_and_stores_the_curve(tmp_path: Path) -> None:
    (tmp_path / ".autoresearch").mkdir()
    log = tmp_path / "run.log"
    log.write_bytes(b"step 0: train loss 4.0, val loss 4.1\nstep 1")
    follower = curves.Follower(tmp_path, log, NANOGPT, "t", 3)
    assert follower.poll() == [(0, 4.1)]
    with open(log, "r+b") as f:  # bytes already read are never read again (not every tick)
        f.write(b"step 9")
    with open(log, "ab") as f:  # the rest of a line arrives later
        f.write(b"00: train loss 2.0, val loss 2.2\n")
    assert follower.poll() == [(100, 2.2)]
    assert follower.poll() == []
    with open(log, "ab") as f:
        f.write(b"step 200: train loss 1.0, val loss 1.5")  # no newline: the run ended
    assert follower.poll() == []
    assert follower.poll(final=True) == [(200, 1.5)]
    assert curves.read(tmp_path, "t", 3) == [(0, 4.1), (100, 2.2), (200, 1.5)]
    assert (tmp_path / ".autoresearch/curves/t-3.tsv").read_text().splitlines()[1] == "100\t2.2"


def test_a_line_without_end_stays_bounded(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_bytes(b"x" * (curves.MAX_LINE * 3))
    follower = curves.Follower(tmp_path, log, NANOGPT, "t", None)
    assert follower.poll() == []
    assert len(follower.partial) <= curves.MAX_LINE


def test_a_long_curve_is_thinned_when_read_back(tmp_path: Path) -> None:
    path = tmp_path / curves.curve_rel("t", 1)
    path.parent.mkdir(parents=True)
    n = curves.MAX_POINTS * 3 + 7
    path.write_text("".join(f"{i}\t{1 / (i + 1)}\n" for i in range(n)))
    read = curves.read(tmp_path, "t", 1)
    assert len(read) <= curves.MAX_POINTS + 1
    assert read[0][0] == 0 and read[-1][0] == n - 1


def test_a_curve_file_under_a_link_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside).mkdir()
    (outside / "t-1.tsv").write_text("1\t2.0\n")
    root = tmp_path / "repo"
    (root / ".autoresearch").mkdir(parents=True)
    (root / ".autoresearch/curves").symlink_to(outside)
    assert curves.read(root, "t", 1) == []


def test_a_log_written_faster_than_polled_is_caught_up_in_chunks(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    steps = 3 * curves.CHUNK // 40  # lines of about 40 bytes: three chunks and more
    text = "".join(f"step {i}: train loss 1.0, val loss {i % 7}.5\n" for i in range(steps))
    log.write_text(text)
    follower = curves.Follower(tmp_path, log, NANOGPT, "t", None)
    first = follower.poll()
    assert 0 < len(first) < steps  # one chunk at a time while the run goes on
    rest = follower.poll(final=True)  # at the end, everything
    assert [s for s, _ in first + rest] == list(range(steps))
