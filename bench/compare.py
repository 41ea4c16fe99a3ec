"""Checks that two stores hold the same transactions outputs, row for row.

    compare.py [--ignore COLUMN,...] OURS_DIR REFERENCE_DIR DATE [DATE ...]

For each date, reads `formatted/transactions_{date}/transactions.parquet` and
`rejected/transactions_{date}/rejects.parquet` from both and requires equal schemas (names,
order, types) and equal rows in the same order, every column included (`account_id`,
`quality_flags`, `source_line`, rejects' `raw`, `reasons` and `message`) but the ignored ones.
The bench ignores rejects' `message` against the Polars anchor only: the contract leaves its
text free, and the anchor writes the rule names alone. Exit 0 when all match; otherwise prints
the first differences and exits 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

OUTPUTS = [
    ("formatted/transactions_{date}/transactions.parquet", "kept"),
    ("rejected/transactions_{date}/rejects.parquet", "rejects"),
]


def first_difference(ours: pl.DataFrame, reference: pl.DataFrame) -> str:
    if ours.columns != reference.columns:
        return f"columns differ: {ours.columns} vs {reference.columns}"
    if ours.schema != reference.schema:
        return f"types differ: {dict(ours.schema)} vs {dict(reference.schema)}"
    if ours.height != reference.height:
        return f"row counts differ: {ours.height} vs {reference.height}"
    for column in ours.columns:
        equal = ours[column].eq_missing(reference[column])
        if not equal.all():
            row = int(equal.arg_min())
            return f"column {column!r}, row {row}: {ours[column][row]!r} vs {reference[column][row]!r}"
    return "no difference found"


def compare(ours_dir: Path, reference_dir: Path, dates: list[str], ignore: tuple[str, ...] = ()) -> list[str]:
    problems = []
    for date in dates:
        for template, label in OUTPUTS:
            relative = template.format(date=date)
            ours_path, reference_path = ours_dir / relative, reference_dir / relative
            if not ours_path.exists() or not reference_path.exists():
                problems.append(f"{date} {label}: missing {ours_path if not ours_path.exists() else reference_path}")
                continue
            ours, reference = pl.read_parquet(ours_path), pl.read_parquet(reference_path)
            ours, reference = (frame.drop([c for c in ignore if c in frame.columns]) for frame in (ours, reference))
            try:
                assert_frame_equal(ours, reference, check_exact=True)
            except AssertionError:
                problems.append(f"{date} {label}: {first_difference(ours, reference)}")
    return problems


def main() -> None:
    args = sys.argv[1:]
    ignore: tuple[str, ...] = ()
    if args[:1] == ["--ignore"] and len(args) > 1:
        ignore, args = tuple(args[1].split(",")), args[2:]
    if len(args) < 3:
        sys.exit(__doc__)
    ours_dir, reference_dir, dates = Path(args[0]), Path(args[1]), args[2:]
    problems = compare(ours_dir, reference_dir, dates, ignore)
    for problem in problems:
        print(f"MISMATCH {problem}")
    if problems:
        sys.exit(1)
    print(f"outputs equal row for row: {len(dates)} date(s)")


if __name__ == "__main__":
    main()
