"""The data contract's transactions path, written in idiomatic Polars: the bench's reference.

    reference_polars.py --store LANDING_DIR --out OUT_DIR --dates 2023-11-23 [2023-11-26 ...]

Reads a landing directory (the same one `retail-ingest run --store` reads), and writes into
OUT_DIR what retail-ingest writes into its store for the transactions path:

    formatted/{clients,stores,products}/{x}.parquet      formatted referentials (+ _source.json)
    formatted/transactions_{date}/transactions.parquet   kept rows, the contract's schema and order
    rejected/transactions_{date}/rejects.parquet         rejected rows with reasons and message
    formatted/transactions_{date}/_summary.json          counts, for the bench's log

It applies every error and warning rule of docs/data-contract.md section 5, enriches
`account_id` through a lookup that never multiplies rows (ambiguous ids get null), flags
duplicate transaction ids over the date's kept rows, quarantines (leaves out) a file with more
than max_reject_ratio of its rows rejected, and reuses a referential's formatted copy when its
source is unchanged (size and mtime), loading only the columns the lookups need, as
retail-ingest does with ETags. Referentials are parsed once per process and serve every date.

What it does not do, on purpose (the Rust tests cover it; the bench compares outputs row for
row and refuses to report a ratio when they differ, so a gap here cannot go unnoticed):
CSV-dialect corner cases the bench data never holds (quoted line breaks, stray quotes, blank
lines inside the data, records with extra fields, CR line ends), copying quarantined files to
error/, and the run reports. `source_line` is the header's line + 1 + the row's index, and `raw`
and the field count come from reading the file's lines a second time: exact for files with one
physical line per record (every real and generated file; it exits otherwise).

Fastest idiomatic style: one `read_csv` per file (all columns as strings: identifiers keep
their leading zeros), vectorised validation over the date's rows at once, hash joins for the
lookups, zstd level 3 Parquet like retail-ingest.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import polars as pl

TRANSACTION_COLUMNS = ["transaction_id", "client_id", "date", "hour", "minute", "product_id", "quantity", "store_id"]
CLIENT_COLUMNS = ["id", "name", "job", "email", "account_id"]
STORE_COLUMNS = ["id", "latlng", "opening", "closing", "type"]
PRODUCT_COLUMNS = ["id", "ean", "brand", "description"]
WARNINGS = [
    "zero_quantity",
    "hour_mismatch",
    "outside_opening_hours",
    "unknown_store",
    "unknown_product",
    "unknown_client",
    "ambiguous_client",
    "ambiguous_store",
    "ambiguous_product",
    "duplicate_transaction_id",
]
ID_WHAT = "an identifier (1-19 digits)"
FILE_NAME = re.compile(r"^transactions_(\d{4}-\d{2}-\d{2})_(\d{1,2})\.csv$")
MAX_REJECT_RATIO = 0.10
PARQUET = {"compression": "zstd", "compression_level": 3, "statistics": True}


def trimmed(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars(" \t")


def is_identifier(column: str) -> pl.Expr:
    return trimmed(column).str.contains(r"^[0-9]{1,19}$").fill_null(False)


def small_number(column: str, maximum: int) -> pl.Expr:
    """One or two digits, at most `maximum`; null when invalid."""
    text = trimmed(column)
    value = text.cast(pl.Int16, strict=False)
    ok = text.str.contains(r"^[0-9]{1,2}$").fill_null(False) & (value <= maximum)
    return pl.when(ok).then(value.cast(pl.Int8))


def quantity(column: str) -> pl.Expr:
    text = trimmed(column)
    value = text.cast(pl.Int64, strict=False)
    ok = text.str.contains(r"^[0-9]{1,10}$").fill_null(False) & (value <= 2_147_483_647)
    return pl.when(ok).then(value.cast(pl.Int32))


def calendar_date(column: str) -> pl.Expr:
    text = trimmed(column)
    parsed = text.str.to_date("%Y-%m-%d", strict=False)
    return pl.when(text.str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$").fill_null(False)).then(parsed)


def shortened(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.len_chars() <= 80).then(expr).otherwise(expr.str.slice(0, 80) + pl.lit("…"))


def write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Writes whole or not at all (a new file renamed into place), like retail-ingest."""
    partial = path.with_name(path.name + ".partial")
    frame.write_parquet(partial, **PARQUET)
    partial.replace(path)


def write_text(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def header_line(path: Path) -> int:
    """0-based index of the header line: blank lines and `#` comments before it are skipped."""
    with path.open("rb") as handle:
        for index, line in enumerate(handle):
            stripped = line.strip(b" \t\r\n")
            if stripped and not line.startswith(b"#"):
                return index
    return -1


def read_strings(path: Path, columns: list[str]) -> pl.DataFrame | None:
    """A referential (or transaction) file with every column as text; None when the header is invalid."""
    skip = header_line(path)
    if skip < 0:
        return None
    frame = pl.read_csv(
        path,
        separator=";",
        skip_lines=skip,
        infer_schema=False,
        empty_string_is_null=False,
        truncate_ragged_lines=True,
        encoding="utf8",
    )
    names = [name.strip() for name in frame.columns]
    if sorted(names) != sorted(columns):
        return None
    return frame.rename(dict(zip(frame.columns, names)))


class Referentials:
    """The three lookups (id -> attributes, with the id's multiplicity), built once per process."""

    def __init__(self, landing: Path, out: Path) -> None:
        self.clients = self._load(landing, out, "clients")
        self.stores = self._load(landing, out, "stores")
        self.products = self._load(landing, out, "products")
        self.span = (self.stores["opening"].min(), self.stores["closing"].max())

    def _load(self, landing: Path, out: Path, kind: str) -> pl.DataFrame:
        source = landing / f"{kind}.csv"
        folder = out / "formatted" / kind
        note_path = folder / "_source.json"
        stat = source.stat()
        note = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        needed = {"clients": ["id", "account_id"], "stores": ["id", "opening", "closing"], "products": ["id"]}[kind]
        if note_path.exists() and json.loads(note_path.read_text()) == note:
            formatted = pl.read_parquet(folder / f"{kind}.parquet", columns=needed)
        else:
            formatted = getattr(self, f"_format_{kind}")(source)
            folder.mkdir(parents=True, exist_ok=True)
            write_parquet(formatted, folder / f"{kind}.parquet")
            write_text(note_path, json.dumps(note))
            formatted = formatted.select(needed)
        # Multiplicity per id: an id seen twice takes no attribute (ambiguous), so a join on the
        # lookup never multiplies rows.
        attributes = [c for c in needed if c != "id"]
        return formatted.group_by("id").agg(
            pl.len().alias(f"{kind}_n"), *[pl.col(c).first() for c in attributes]
        )

    @staticmethod
    def _format_clients(source: Path) -> pl.DataFrame:
        frame = read_strings(source, CLIENT_COLUMNS)
        if frame is None:
            sys.exit(f"{source}: invalid header")
        valid = frame.filter(is_identifier("id") & is_identifier("account_id"))
        return valid.select(
            trimmed("id").alias("id"),
            *[pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in ["name", "job", "email"]],
            trimmed("account_id").alias("account_id"),
        )

    @staticmethod
    def _format_stores(source: Path) -> pl.DataFrame:
        frame = read_strings(source, STORE_COLUMNS)
        if frame is None:
            sys.exit(f"{source}: invalid header")
        number = r"\s*([-+]?[0-9]+(?:\.[0-9]+)?)\s*"
        pair = trimmed("latlng").str.extract_groups(rf"^\({number},{number}\)$")
        parsed = frame.with_columns(
            pair.struct.field("1").cast(pl.Float64, strict=False).alias("latitude"),
            pair.struct.field("2").cast(pl.Float64, strict=False).alias("longitude"),
            small_number("opening", 23).alias("opening"),
            small_number("closing", 23).alias("closing"),
            quantity("type").alias("type"),
        )
        valid = parsed.filter(
            is_identifier("id")
            & pl.col("latitude").is_between(-90, 90)
            & pl.col("longitude").is_between(-180, 180)
            & pl.col("opening").is_not_null()
            & pl.col("closing").is_not_null()
            & pl.col("type").is_not_null()
        )
        return valid.select(trimmed("id").alias("id"), "latitude", "longitude", "opening", "closing", "type")

    @staticmethod
    def _format_products(source: Path) -> pl.DataFrame:
        frame = read_strings(source, PRODUCT_COLUMNS)
        if frame is None:
            sys.exit(f"{source}: invalid header")
        ean = trimmed("ean")
        digits = [ean.str.slice(i, 1).cast(pl.Int32, strict=False) for i in range(13)]
        weighted = pl.sum_horizontal([d * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits[:12])])
        check_ok = (10 - weighted % 10) % 10 == digits[12]
        valid = frame.filter(is_identifier("id") & ean.str.contains(r"^[0-9]{13}$").fill_null(False))
        return valid.select(
            trimmed("id").alias("id"),
            ean.alias("ean"),
            pl.when(pl.col("brand") != "").then(pl.col("brand")).alias("brand"),
            pl.when(pl.col("description") != "").then(pl.col("description")).alias("description"),
            pl.when(check_ok)
            .then(pl.lit([], dtype=pl.List(pl.String)))
            .otherwise(pl.lit(["ean_check_digit"], dtype=pl.List(pl.String)))
            .alias("quality_flags"),
        )


def read_transactions(path: Path, order: int, hour: int) -> pl.DataFrame | None:
    skip = header_line(path)
    frame = read_strings(path, TRANSACTION_COLUMNS)
    if frame is None:
        return None
    # The records' text as sent (`raw`) and their field counts (`malformed_row`): the parsed frame
    # fills a short record's missing fields with "", so read the lines themselves once more.
    lines = pl.read_csv(
        path,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        skip_lines=skip + 1,
        schema={"raw": pl.String},
        empty_string_is_null=False,
    )
    if lines.height != frame.height:
        sys.exit(f"{path}: records span several lines; the reference does not handle that dialect")
    return frame.with_columns(
        lines["raw"],
        (lines["raw"].str.count_matches(";", literal=True) + 1).alias("field_count"),
        (lines["raw"].str.count_matches(";", literal=True) != len(TRANSACTION_COLUMNS) - 1).alias("malformed"),
        (pl.int_range(pl.len(), dtype=pl.Int64) + (skip + 2)).alias("source_line"),
        pl.lit(path.name).alias("source_file"),
        pl.lit(order, dtype=pl.Int32).alias("file_order"),
        pl.lit(hour, dtype=pl.Int8).alias("file_hour"),
    )


def run_date(landing: Path, out: Path, date: str, refs: Referentials) -> dict:
    files = []
    for entry in os.scandir(landing):
        match = FILE_NAME.match(entry.name)
        if match and match.group(1) == date and int(match.group(2)) <= 23:
            files.append((int(match.group(2)), entry.name))
    files.sort()
    frames = []
    for order, (hour, name) in enumerate(files):
        frame = read_transactions(landing / name, order, hour)
        if frame is not None:
            frames.append(frame)
    rows = pl.concat(frames, how="vertical") if frames else pl.DataFrame()
    file_date = pl.lit(date).str.to_date("%Y-%m-%d")

    typed = rows.with_columns(
        trimmed("transaction_id").alias("t_transaction_id"),
        trimmed("client_id").alias("t_client_id"),
        calendar_date("date").alias("t_date"),
        small_number("hour", 23).alias("t_hour"),
        small_number("minute", 59).alias("t_minute"),
        trimmed("product_id").alias("t_product_id"),
        quantity("quantity").alias("t_quantity"),
        trimmed("store_id").alias("t_store_id"),
    )
    checks = [
        ("transaction_id", is_identifier("transaction_id"), ID_WHAT),
        ("client_id", is_identifier("client_id"), ID_WHAT),
        ("date", pl.col("t_date").is_not_null(), "a calendar date (YYYY-MM-DD)"),
        ("hour", pl.col("t_hour").is_not_null(), "an hour (0-23)"),
        ("minute", pl.col("t_minute").is_not_null(), "a minute (0-59)"),
        ("product_id", is_identifier("product_id"), ID_WHAT),
        ("quantity", pl.col("t_quantity").is_not_null(), "a quantity (integer 0-2147483647)"),
        ("store_id", is_identifier("store_id"), ID_WHAT),
    ]
    mismatch = pl.col("t_date").is_not_null() & (pl.col("t_date") != file_date)
    malformed = pl.col("malformed")
    reasons = pl.concat_list(
        [pl.when(malformed).then(pl.lit("malformed_row"))]
        + [pl.when(~malformed & ~ok).then(pl.lit(f"invalid_{column}")) for column, ok, _ in checks]
        + [pl.when(~malformed & mismatch).then(pl.lit("date_mismatch"))]
    ).list.drop_nulls()
    messages = pl.concat_list(
        [pl.when(malformed).then(pl.format("malformed_row: {} fields, expected 8", pl.col("field_count")))]
        + [
            pl.when(~malformed & ~ok).then(
                pl.format("invalid_{}: '{}' is not {}", pl.lit(column), shortened(pl.col(column)), pl.lit(what))
            )
            for column, ok, what in checks
        ]
        + [
            pl.when(~malformed & mismatch).then(
                pl.format("date_mismatch: row date {} differs from the file's {}", pl.col("t_date"), pl.lit(date))
            )
        ]
    ).list.drop_nulls()
    judged = typed.with_columns(reasons.alias("reasons"), messages.alias("messages"))
    judged = judged.with_columns((pl.col("reasons").list.len() > 0).alias("rejected"))

    # A file with strictly more than max_reject_ratio of its rows rejected is left out whole.
    per_file = judged.group_by("source_file").agg(pl.len().alias("rows"), pl.col("rejected").sum().alias("bad"))
    quarantined = per_file.filter(pl.col("bad") > MAX_REJECT_RATIO * pl.col("rows"))["source_file"].to_list()
    if quarantined:
        judged = judged.filter(~pl.col("source_file").is_in(quarantined))

    rejects = judged.filter(pl.col("rejected")).select(
        "source_file",
        "source_line",
        "raw",
        pl.col("reasons"),
        pl.col("messages").list.join("; ").alias("message"),
    )

    kept = judged.filter(~pl.col("rejected"))
    kept = (
        kept.join(refs.stores, left_on="t_store_id", right_on="id", how="left", maintain_order="left")
        .join(refs.products, left_on="t_product_id", right_on="id", how="left", maintain_order="left")
        .join(refs.clients, left_on="t_client_id", right_on="id", how="left", maintain_order="left")
    )
    store_unique = pl.col("stores_n") == 1
    flags = pl.concat_list(
        [
            pl.when(pl.col("t_quantity") == 0).then(pl.lit("zero_quantity")),
            pl.when(pl.col("t_hour") != pl.col("file_hour")).then(pl.lit("hour_mismatch")),
            pl.when(
                store_unique.fill_null(False)
                & ((pl.col("t_hour") < pl.col("opening")) | (pl.col("t_hour") > pl.col("closing")))
            ).then(pl.lit("outside_opening_hours")),
            pl.when(pl.col("stores_n").is_null()).then(pl.lit("unknown_store")),
            pl.when(pl.col("products_n").is_null()).then(pl.lit("unknown_product")),
            pl.when(pl.col("clients_n").is_null()).then(pl.lit("unknown_client")),
            pl.when(pl.col("clients_n") > 1).then(pl.lit("ambiguous_client")),
            pl.when(pl.col("stores_n") > 1).then(pl.lit("ambiguous_store")),
            pl.when(pl.col("products_n") > 1).then(pl.lit("ambiguous_product")),
            pl.when(pl.len().over("t_transaction_id") > 1).then(pl.lit("duplicate_transaction_id")),
        ]
    ).list.drop_nulls()
    datetime = pl.col("t_date").cast(pl.Datetime("us")) + pl.duration(
        hours=pl.col("t_hour"), minutes=pl.col("t_minute"), time_unit="us"
    )
    output = kept.select(
        pl.col("t_transaction_id").alias("transaction_id"),
        pl.col("t_client_id").alias("client_id"),
        pl.when(pl.col("clients_n") == 1).then(pl.col("account_id")).alias("account_id"),
        pl.col("t_product_id").alias("product_id"),
        pl.col("t_store_id").alias("store_id"),
        pl.col("t_quantity").alias("quantity"),
        datetime.alias("datetime"),
        pl.col("t_date").alias("date"),
        pl.col("t_hour").alias("hour"),
        pl.col("t_minute").alias("minute"),
        "source_file",
        "source_line",
        flags.alias("quality_flags"),
    )

    kept_dir = out / "formatted" / f"transactions_{date}"
    rejects_dir = out / "rejected" / f"transactions_{date}"
    kept_dir.mkdir(parents=True, exist_ok=True)
    rejects_dir.mkdir(parents=True, exist_ok=True)
    write_parquet(output, kept_dir / "transactions.parquet")
    write_parquet(rejects, rejects_dir / "rejects.parquet")

    opening, closing = refs.span
    present = {hour for hour, _ in files}
    flag_counts = output.select(pl.col("quality_flags").explode().drop_nulls().value_counts(sort=True))
    summary = {
        "date": date,
        "files": len(files),
        "rows": rows.height,
        "kept": output.height,
        "rejected": rejects.height,
        "quarantined": quarantined,
        "flags": {row["quality_flags"]: row["count"] for row in flag_counts.unnest("quality_flags").to_dicts()},
        "missing_hours": [h for h in range(opening, closing + 1) if h not in present],
    }
    write_text(kept_dir / "_summary.json", json.dumps(summary, indent=1, sort_keys=True))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, type=Path, help="landing directory")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--dates", required=True, nargs="+")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    refs = Referentials(args.store, args.out)
    for date in args.dates:
        summary = run_date(args.store, args.out, date, refs)
        if not args.quiet:
            print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
