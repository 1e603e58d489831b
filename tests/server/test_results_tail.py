"""results_tsv.read_after, what a resume reads: the row count and the rows from a number on,
the same whether it reads only the table's tail (each row one line) or the whole table."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoresearch import results_tsv

ROWS = [
    f"c{n:06d}\t{1 - n / 100:.6f}\t1.0\t{'keep' if n % 3 == 0 else 'discard'}\tn{n}\n"
    for n in range(12)
]
SEED = "".join(ROWS)
TABLES = {
    "the seed's": results_tsv.HEADER + SEED,
    "blank rows": results_tsv.HEADER
    + "".join(r + ("\n" if i == 4 else "") for i, r in enumerate(ROWS))
    + "  \t \n",
    "carriage returns": (results_tsv.HEADER + SEED).replace("\n", "\r\n"),
    "a lone carriage return": results_tsv.HEADER + SEED.replace("\tn7\n", "\tn7\r"),
    "non-ASCII": results_tsv.HEADER + SEED.replace("\tn9\n", "\tlr × 2 —\n"),
    "a cut-off last line": results_tsv.HEADER + SEED + "c999\t0.5",
    "another tool's columns": "commit\tval_bpb\tmemory_gb\tstatus\tdescription\tseed\n"
    + SEED.replace("\n", "\t7\n"),
    "header only": results_tsv.HEADER,
}


@pytest.mark.parametrize("name", TABLES)
def test_the_tail_read_agrees_with_the_whole_read(tmp_path: Path, name: str) -> None:
    path = tmp_path / "results.tsv"
    path.write_bytes(TABLES[name].encode())
    # The whole read, strict, as read_after was before its tail read.
    rows = results_tsv.read(path, "val_bpb")
    for first in (1, 5, len(rows) - 1, len(rows), len(rows) + 3):
        count, after = results_tsv.read_after(path, "val_bpb", first)
        assert (count, after) == (len(rows), rows[first:]), first


def test_a_bad_row_after_the_records_is_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_text(results_tsv.HEADER + SEED.replace("\tdiscard\tn10", "\tmaybe\tn10"))
    with pytest.raises(results_tsv.ResultsError, match=r"results.tsv line 12: status 'maybe'"):
        results_tsv.read_after(path, None, 10)
    assert results_tsv.read_after(path, None, 12) == (12, [])  # counted, not parsed


def test_a_header_without_its_columns_is_refused_even_with_nothing_to_read(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_text("sha\tscore\n" + "abc\t1.0\n" * 3)
    with pytest.raises(results_tsv.ResultsError, match="the header has no commit or status"):
        results_tsv.read_after(path, None, 3)


@pytest.mark.parametrize("name", [*TABLES, "a broken first row"])
def test_the_first_row_alone_is_the_whole_reads_first(tmp_path: Path, name: str) -> None:
    """What a resume compares with its records to tell its own table from another session's."""
    path = tmp_path / "results.tsv"
    text = TABLES.get(name) or results_tsv.HEADER + "\n" + SEED.replace("\tkeep\tn0", "\t?\tn0")
    path.write_bytes(text.encode())
    rows = results_tsv.read(path, "val_bpb", strict=False)
    assert results_tsv.first_row(path, "val_bpb") == (rows[0] if rows else None)
    assert name != "a broken first row" or rows[0].number == 1
