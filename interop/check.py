"""The outputs read back by the engines that read them downstream: `make interop` (mk/interop.mk).

    check.py --bin BIN --real DIR --work DIR [--engines pyarrow,pandas,duckdb,polars,spark]

1. Writes two stores with BIN (fresh each time, under WORK): `demo` (`retail-ingest demo`, three
   generated dates with a quarantined and an unrecognized file) and `real` (the real feed's two
   days from --real, `retail-ingest run`).
2. Reads every output kind of each store as one dataset, all dates at once (a glob), with
   pyarrow, pandas, DuckDB, Polars and Spark (local mode, one session for everything), and
   checks against the run reports and the data contract (../shared/docs/data-contract.md,
   sections 4-6): column names in order; each column's type as that engine names it (timestamp
   without time zone in microseconds, ids as strings, list columns as lists of strings); the
   nullability where the engine keeps it (pyarrow: only `account_id` of the transactions, the
   referentials' text and store_daily's unknown-store columns are nullable); row counts per
   date and per source file equal to the reports'; null counts where they are known; and, on
   the real days, a few rows picked from the real files, every column, value by value.
3. Prints one line per engine and kind, then a summary. Any difference prints what was
   expected and what was found, and the exit code is 1.

The expected counts come from the published reports (`formatted/transactions_{date}/_report.json`),
whose totals on the real days are first checked against ../shared/data/real/expected.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path

# --------------------------------------------------------------------------- the contract


@dataclass(frozen=True)
class Column:
    name: str
    # One of: string int8 int32 int64 float64 date timestamp (microseconds, no time zone) list
    # (of strings).
    type: str
    nullable: bool = False


def columns(spec: str) -> list[Column]:
    """`name:type` items separated by spaces; a trailing `?` marks a nullable column."""
    out = []
    for item in spec.split():
        name, kind = item.split(":")
        out.append(Column(name, kind.rstrip("?"), kind.endswith("?")))
    return out


@dataclass(frozen=True)
class Kind:
    name: str
    # Every file of the kind, all dates, relative to a store's root: what a reader globs.
    pattern: str
    columns: list[Column]
    # The columns whose per-value row counts are checked against the reports.
    group_by: tuple[str, ...]


KINDS = [
    Kind(
        "transactions",
        "formatted/transactions_*/transactions.parquet",
        columns(
            "transaction_id:string client_id:string account_id:string? product_id:string "
            "store_id:string quantity:int32 datetime:timestamp date:date hour:int8 minute:int8 "
            "source_file:string source_line:int64 quality_flags:list"
        ),
        ("date", "source_file"),
    ),
    Kind(
        "rejects",
        "rejected/transactions_*/rejects.parquet",
        columns("source_file:string source_line:int64 raw:string reasons:list message:string"),
        ("source_file",),
    ),
    Kind(
        "store_daily",
        "aggregated/store_daily/store_daily_*.parquet",
        columns(
            "store_id:string? latitude:float64? longitude:float64? type:int32? date:date "
            "transactions:int64 total_quantity:int64 distinct_clients:int64 flagged_rows:int64"
        ),
        ("date",),
    ),
    Kind(
        "clients",
        "formatted/clients/clients.parquet",
        columns("id:string name:string? job:string? email:string? account_id:string"),
        (),
    ),
    Kind(
        "stores",
        "formatted/stores/stores.parquet",
        columns("id:string latitude:float64 longitude:float64 opening:int8 closing:int8 type:int32"),
        (),
    ),
    Kind(
        "products",
        "formatted/products/products.parquet",
        columns("id:string ean:string brand:string? description:string? quality_flags:list"),
        (),
    ),
]

# How each engine names each contract type. pandas (default NumPy-backed frames) has no date
# or list type: both come as `object` columns (datetime.date values, NumPy arrays); an integer
# column with a null becomes float64 (see expected_type).
ENGINE_TYPES = {
    "pyarrow": {
        "string": "string", "int8": "int8", "int32": "int32", "int64": "int64", "float64": "double",
        "date": "date32[day]", "timestamp": "timestamp[us]", "list": "list<string not null>",
    },
    "pandas": {
        "string": "str", "int8": "int8", "int32": "int32", "int64": "int64", "float64": "float64",
        "date": "object", "timestamp": "datetime64[us]", "list": "object",
    },
    "duckdb": {
        "string": "VARCHAR", "int8": "TINYINT", "int32": "INTEGER", "int64": "BIGINT",
        "float64": "DOUBLE", "date": "DATE", "timestamp": "TIMESTAMP", "list": "VARCHAR[]",
    },
    "polars": {
        "string": "String", "int8": "Int8", "int32": "Int32", "int64": "Int64", "float64": "Float64",
        "date": "Date", "timestamp": "Datetime(time_unit='us', time_zone=None)", "list": "List(String)",
    },
    "spark": {
        "string": "string", "int8": "tinyint", "int32": "int", "int64": "bigint", "float64": "double",
        "date": "date", "timestamp": "timestamp_ntz", "list": "array<string>",
    },
}


def expected_type(engine: str, column: Column, nulls: int | None) -> str:
    if engine == "pandas" and column.type.startswith("int") and nulls:
        return "float64"
    return ENGINE_TYPES[engine][column.type]


# --------------------------------------------------------------------------- known rows
# Picked from the real files (../shared/data/real) and checked there by hand: a transaction id
# with a leading zero, a client id with one, an hour-7 row in the hour-8 file (two flags), a
# zero quantity, an unknown store, an ambiguous client (null account_id), the first row of the
# other date; two date_mismatch rejects; a client with a leading-zero account id and the two
# rows of an ambiguous client id; two stores' coordinates; a product whose quoted description
# holds a `;`, one with a leading-zero id, one with an empty brand. The description of the
# quoted one is read from products.csv with Python's csv module (see known_rows).

D23, D26 = dt.date(2023, 11, 23), dt.date(2023, 11, 26)
F23_8 = "transactions_2023-11-23_8.csv"


def tx(tid, client, account, product, store, quantity, when, file, line, flags):
    return {
        "transaction_id": tid, "client_id": client, "account_id": account, "product_id": product,
        "store_id": store, "quantity": quantity, "datetime": when, "date": when.date(),
        "hour": when.hour, "minute": when.minute, "source_file": file, "source_line": line,
        "quality_flags": flags,
    }


def at(date: dt.date, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(date.year, date.month, date.day, hour, minute)


@dataclass(frozen=True)
class Prefix:
    """A text value known by its start (the program's own wording after it is free)."""

    start: str

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith(self.start)

    def __repr__(self) -> str:
        return f"{self.start!r}…"


def known_rows(real: Path) -> dict[str, list[tuple[dict, list[dict]]]]:
    """Kind → (key, every row the key selects, all columns) on the real store."""
    with open(real / "products.csv", newline="", encoding="utf-8") as f:
        quoted = next(r for r in csv.DictReader(f, delimiter=";") if r["id"] == "4304116150444")
    assert ";" in quoted["description"], "products.csv: the quoted description lost its ';'"

    def one(key: dict, row: dict) -> tuple[dict, list[dict]]:
        return key, [row]

    def by_line(row: dict) -> tuple[dict, list[dict]]:
        return one({"source_file": row["source_file"], "source_line": row["source_line"]}, row)

    return {
        "transactions": [
            by_line(tx("060412698023", "4458971438379910", "180025280358655", "502059960471",
                       "4862766377469395", 2, at(D23, 8, 40), F23_8, 42, [])),
            by_line(tx("6558554237372593", "213169664761547", "676364457603", "4936059034554",
                       "5261111987144241", 5, at(D23, 7, 0), F23_8, 54,
                       ["hour_mismatch", "outside_opening_hours"])),
            by_line(tx("4074834497142", "3531237174208892", "213114280128366", "375109728047479",
                       "3561590953381915", 0, at(D23, 8, 37), F23_8, 76, ["zero_quantity"])),
            by_line(tx("213190835729247", "060471311781", "343040243990829", "5431378349557049",
                       "4279246846108715", 5, at(D23, 8, 58), F23_8, 112, [])),
            by_line(tx("6576074577721893", "060428648525", "3550760827527125", "4311667300691492",
                       "3531426224540871", 1, at(D23, 8, 9), F23_8, 412, ["unknown_store"])),
            by_line(tx("180078486192766", "676312666776", None, "562386338825", "3572095351152444",
                       4, at(D23, 12, 59), "transactions_2023-11-23_12.csv", 10899,
                       ["ambiguous_client"])),
            by_line(tx("3572469123443128", "2224572090317193", "6011173440724796", "572053008742",
                       "3585959166176689", 5, at(D26, 9, 26), "transactions_2023-11-26_9.csv", 2, [])),
        ],
        "rejects": [
            by_line({
                "source_file": F23_8, "source_line": 86,
                "raw": "180040536433517;378901449339392;1999-01-01;8;48;4503716849708420;2;584412436415",
                "reasons": ["date_mismatch"], "message": Prefix("date_mismatch"),
            }),
            by_line({
                "source_file": "transactions_2023-11-26_9.csv", "source_line": 16,
                "raw": "4574262665260927;3590252833158543;1999-01-01;9;56;6597255471565271;3;349788575114871",
                "reasons": ["date_mismatch"], "message": Prefix("date_mismatch"),
            }),
        ],
        # Counted independently from the real files: the store's kept rows of the date, their
        # quantity, distinct clients and flagged rows; the unknown stores' group under null.
        "store_daily": [
            one({"date": D23, "store_id": "4438835056941647"}, {
                "store_id": "4438835056941647", "latitude": 33.41012, "longitude": -91.06177, "type": 0,
                "date": D23, "transactions": 4659, "total_quantity": 13800, "distinct_clients": 4642,
                "flagged_rows": 79,
            }),
            one({"date": D23, "store_id": None}, {
                "store_id": None, "latitude": None, "longitude": None, "type": None, "date": D23,
                "transactions": 2264, "total_quantity": 6725, "distinct_clients": 2260, "flagged_rows": 2264,
            }),
        ],
        "clients": [
            one({"id": "4259021513286175"}, {
                "id": "4259021513286175", "name": "Christopher Sexton", "job": "Actuary",
                "email": "mpearson@hotmail.com", "account_id": "060474076605",
            }),
            ({"id": "676312666776"}, [
                {"id": "676312666776", "name": "Anthony Marshall", "job": "Engineer, chemical",
                 "email": "haasmarissa@gmail.com", "account_id": "2236964648073988"},
                {"id": "676312666776", "name": "Anthony Holland", "job": "Charity fundraiser",
                 "email": "robertalvarado@yahoo.com", "account_id": "375552753951372"},
            ]),
        ],
        "stores": [
            one({"id": "4438835056941647"}, {
                "id": "4438835056941647", "latitude": 33.41012, "longitude": -91.06177,
                "opening": 8, "closing": 20, "type": 0,
            }),
            one({"id": "639025595690"}, {
                "id": "639025595690", "latitude": 42.93369, "longitude": -72.27814,
                "opening": 8, "closing": 20, "type": 1,
            }),
        ],
        "products": [
            one({"id": "4304116150444"}, {
                "id": "4304116150444", "ean": "5232378284644", "brand": "Clark Group",
                "description": quoted["description"], "quality_flags": [],
            }),
            one({"id": "060446873667"}, {
                "id": "060446873667", "ean": "5786329160438", "brand": "Leon Ltd",
                "description": Prefix("Movie risk which away better region information road"),
                "quality_flags": [],
            }),
            one({"id": "6011938333572936"}, {
                "id": "6011938333572936", "ean": "7215219767382", "brand": None,
                "description": Prefix("East mission main least throw radio approach"),
                "quality_flags": [],
            }),
        ],
    }


# --------------------------------------------------------------------------- the stores


@dataclass
class Expected:
    """What one kind of one store must read as."""

    # Group key (values of Kind.group_by, in order) → rows.
    counts: dict[tuple, int]
    # Column → null count, for the columns where it is known (every required column: 0).
    nulls: dict[str, int]
    rows: list[tuple[dict, list[dict]]] = field(default_factory=list)


@dataclass
class Store:
    name: str
    root: Path
    reports: dict[dt.date, dict]
    known: dict[str, list[tuple[dict, list[dict]]]] = field(default_factory=dict)

    def paths(self, kind: Kind) -> list[str]:
        return sorted(glob.glob(str(self.root / kind.pattern)))

    def glob(self, kind: Kind) -> str:
        return str(self.root / kind.pattern)


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(
            f"interop: {' '.join(command)} exited with {done.returncode}\n"
            f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )


def link_files(source: Path, destination: Path) -> None:
    """Hard-links (or copies) the CSV files of `source` into `destination`: a landing container.
    The binary never writes into its inputs (object_store writes new files and renames them)."""
    destination.mkdir(parents=True)
    for entry in sorted(source.glob("*.csv")):
        try:
            os.link(entry, destination / entry.name)
        except OSError:
            shutil.copy2(entry, destination / entry.name)


def published_reports(root: Path) -> dict[dt.date, dict]:
    reports = {}
    for path in sorted(root.glob("formatted/transactions_*/_report.json")):
        report = json.loads(path.read_text())
        reports[dt.date.fromisoformat(report["date"])] = report
    return reports


def check_reports(store: Store, ground_truth: dict | None) -> list[str]:
    """The reports are the expected counts: they must agree with themselves and, on the real
    days, with the independently counted expected.json."""
    problems = []
    if not store.reports:
        return [f"{store.name}: no published report under {store.root}/formatted"]
    for date, report in store.reports.items():
        totals = report["totals"]
        if report["status"] != "succeeded":
            problems.append(f"{store.name} {date}: status {report['status']}, expected succeeded")
        outputs = {o["path"]: o["rows"] for o in report["outputs"]}
        for path, total in [
            (f"formatted/transactions_{date}/transactions.parquet", totals["kept"]),
            (f"rejected/transactions_{date}/rejects.parquet", totals["rejected_rows"]),
        ]:
            per_file = sum(i["kept" if "formatted" in path else "rejected_rows"] for i in report["inputs"])
            if not outputs.get(path) == total == per_file:
                problems.append(
                    f"{store.name} {date}: {path}: outputs say {outputs.get(path)} rows, totals {total}, "
                    f"inputs {per_file}"
                )
        if ground_truth is not None:
            truth = ground_truth["dates"].get(str(date))
            if truth is None:
                problems.append(f"{store.name} {date}: not in expected.json")
                continue
            for ours, theirs in [
                ("files", "files"), ("rows", "rows"), ("kept", "kept"), ("rejected_rows", "rejected_date_mismatch"),
            ]:
                if totals[ours] != truth[theirs]:
                    problems.append(
                        f"{store.name} {date}: totals.{ours} is {totals[ours]}, expected.json says {truth[theirs]}"
                    )
    dates = sorted(map(str, store.reports))
    if ground_truth is not None and dates != sorted(ground_truth["dates"]):
        problems.append(f"{store.name}: dates {dates}, expected.json has {sorted(ground_truth['dates'])}")
    return problems


def csv_nulls(path: Path, nullable: list[str]) -> dict[str, int]:
    """Empty text is null (contract section 3): counted in the source referential itself."""
    counts = dict.fromkeys(nullable, 0)
    with open(path, newline="", encoding="utf-8-sig") as f:
        for record in csv.DictReader(f, delimiter=";"):
            for name in nullable:
                counts[name] += record[name] == ""
    return counts


def expected_for(store: Store, kind: Kind) -> Expected:
    reports = store.reports
    required = {c.name: 0 for c in kind.columns if not c.nullable}
    if kind.name == "transactions":
        counts = {
            (date, i["name"]): i["kept"] for date, r in reports.items() for i in r["inputs"] if i["kept"]
        }
        # account_id is null exactly when the client is ambiguous or unknown (contract section 4).
        flags = [r["totals"]["flags"] for r in reports.values()]
        nulls = {**required, "account_id": sum(f.get("ambiguous_client", 0) + f.get("unknown_client", 0) for f in flags)}
    elif kind.name == "rejects":
        counts = {
            (i["name"],): i["rejected_rows"] for r in reports.values() for i in r["inputs"] if i["rejected_rows"]
        }
        nulls = required
    elif kind.name == "store_daily":
        path = "aggregated/store_daily/store_daily_{}.parquet"
        counts = {}
        for date, r in reports.items():
            rows = {o["path"]: o["rows"] for o in r["outputs"]}.get(path.format(date))
            if rows is None:
                raise SystemExit(f"interop: {store.name} {date}: the report lists no {path.format(date)}")
            counts[(date,)] = rows
        # One row per date gathers the unknown stores, with no store, coordinates or type.
        unknown = sum(1 for r in reports.values() if r["totals"]["flags"].get("unknown_store"))
        nulls = {**required, **dict.fromkeys(["store_id", "latitude", "longitude", "type"], unknown)}
    else:
        # One copy, rewritten only when its source changes: every report names the same version.
        versions = {
            json.dumps({k: r["referentials"][kind.name][k] for k in ("etag", "rows", "rejected")}, sort_keys=True)
            for r in reports.values()
        }
        if len(versions) != 1:
            raise SystemExit(f"interop: {store.name}: the reports name {len(versions)} versions of {kind.name}")
        used = json.loads(versions.pop())
        if used["rejected"]:
            # A row may carry several rules, so the rejected rows can't be told from the report.
            raise SystemExit(f"interop: {store.name}: {kind.name} has rejects {used['rejected']}: not handled")
        counts = {(): used["rows"]}
        nullable = [c.name for c in kind.columns if c.nullable]
        nulls = {**required, **csv_nulls(store.root / f"{kind.name}.csv", nullable)}
    return Expected(counts, nulls, store.known.get(kind.name, []))


# --------------------------------------------------------------------------- the engines
# Each engine opens a kind of a store as one dataset and answers three questions: its schema
# (names, type names, nullability where it keeps it), its row counts per group with the null
# count of every column, and the rows matching some keys (all columns, as Python values).


def matches(key: dict) -> str:
    def value(v) -> str:
        return str(v) if isinstance(v, (dt.date, int)) else repr(v)

    return " and ".join(f"{c} is null" if v is None else f"{c} = {value(v)}" for c, v in key.items())


class PyArrow:
    name = "pyarrow"
    keeps_nullability = True

    def __init__(self) -> None:
        import pyarrow
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        self.pa, self.pc, self.ds = pyarrow, pc, ds
        self.version = f"pyarrow {pyarrow.__version__}"

    def open(self, store: Store, kind: Kind):
        return self.ds.dataset(store.paths(kind), format="parquet")

    def type_name(self, t) -> str:
        # The list item's name (`item`, `element`) is the writer's business; its type is not.
        if self.pa.types.is_list(t):
            item = t.value_field
            return f"list<{self.type_name(item.type)}{'' if item.nullable else ' not null'}>"
        return str(t)

    def schema(self, dataset) -> list[tuple[str, str, bool]]:
        return [(f.name, self.type_name(f.type), f.nullable) for f in dataset.schema]

    def groups(self, dataset, by, names):
        table = dataset.to_table()
        nulls = {c: table[c].null_count for c in names}
        if not by:
            return {(): table.num_rows}, nulls
        grouped = table.group_by(list(by)).aggregate([([], "count_all")])
        return {tuple(r[c] for c in by): r["count_all"] for r in grouped.to_pylist()}, nulls

    def select(self, dataset, keys):
        field = self.ds.field
        conditions = [
            reduce(lambda a, b: a & b, [field(c).is_null() if v is None else field(c) == v for c, v in key.items()])
            for key in keys
        ]
        return dataset.to_table(filter=reduce(lambda a, b: a | b, conditions)).to_pylist()


class Pandas:
    name = "pandas"
    keeps_nullability = False

    def __init__(self) -> None:
        import numpy
        import pandas

        self.pd, self.np = pandas, numpy
        self.version = f"pandas {pandas.__version__}"

    def open(self, store: Store, kind: Kind):
        return self.pd.read_parquet(store.paths(kind))

    def schema(self, frame):
        return [(c, str(frame[c].dtype), None) for c in frame.columns]

    def groups(self, frame, by, names):
        nulls = {c: int(frame[c].isna().sum()) for c in names}
        if not by:
            return {(): len(frame)}, nulls
        sizes = frame.groupby(list(by), dropna=False).size()
        return {k if isinstance(k, tuple) else (k,): int(n) for k, n in sizes.items()}, nulls

    def plain(self, value):
        """pandas' values as Python's: NaN is its null, lists are NumPy arrays, a timestamp is
        a pandas.Timestamp."""
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, self.pd.Timestamp):
            return value.to_pydatetime()
        if isinstance(value, (self.np.ndarray, self.np.generic)):
            return value.tolist()
        return value

    def select(self, frame, keys):
        mask = self.pd.Series(False, index=frame.index)
        for key in keys:
            one = self.pd.Series(True, index=frame.index)
            for c, v in key.items():
                one &= frame[c].isna() if v is None else frame[c] == v
            mask |= one
        return [{c: self.plain(v) for c, v in row.items()} for row in frame[mask].to_dict("records")]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckDB:
    name = "duckdb"
    keeps_nullability = False

    def __init__(self) -> None:
        import duckdb

        self.con = duckdb.connect()
        self.con.execute("SET threads TO 2")
        self.version = f"DuckDB {duckdb.__version__}"

    def open(self, store: Store, kind: Kind):
        return store.glob(kind)

    def schema(self, pattern):
        described = self.con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [pattern]).fetchall()
        return [(name, kind, None) for name, kind, *_ in described]

    def groups(self, pattern, by, names):
        keys = [quote(c) for c in by]
        aggregates = ["count(*)"] + [f"count(*) - count({quote(c)})" for c in names]
        sql = f"SELECT {', '.join(keys + aggregates)} FROM read_parquet(?)"
        if by:
            sql += f" GROUP BY {', '.join(keys)}"
        counts, nulls = {}, dict.fromkeys(names, 0)
        for row in self.con.execute(sql, [pattern]).fetchall():
            counts[tuple(row[: len(by)])] = row[len(by)]
            for c, n in zip(names, row[len(by) + 1 :]):
                nulls[c] += n
        return counts, nulls

    def select(self, pattern, keys):
        clauses, parameters = [], [pattern]
        for key in keys:
            parts = []
            for c, v in key.items():
                if v is None:
                    parts.append(f"{quote(c)} IS NULL")
                else:
                    parts.append(f"{quote(c)} = ?")
                    parameters.append(v)
            clauses.append("(" + " AND ".join(parts) + ")")
        cursor = self.con.execute(f"SELECT * FROM read_parquet(?) WHERE {' OR '.join(clauses)}", parameters)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


class Polars:
    name = "polars"
    keeps_nullability = False

    def __init__(self) -> None:
        import polars

        self.pl = polars
        self.version = f"Polars {polars.__version__}"

    def open(self, store: Store, kind: Kind):
        return self.pl.scan_parquet(store.glob(kind))

    def schema(self, frame):
        return [(name, str(t), None) for name, t in frame.collect_schema().items()]

    def groups(self, frame, by, names):
        pl = self.pl
        aggregates = [pl.len().alias("__rows")] + [pl.col(c).null_count().alias(f"__nulls_{c}") for c in names]
        result = (frame.group_by(list(by)).agg(aggregates) if by else frame.select(aggregates)).collect()
        counts, nulls = {}, dict.fromkeys(names, 0)
        for row in result.rows(named=True):
            counts[tuple(row[c] for c in by)] = row["__rows"]
            for c in names:
                nulls[c] += row[f"__nulls_{c}"]
        return counts, nulls

    def select(self, frame, keys):
        col = self.pl.col
        conditions = [
            reduce(lambda a, b: a & b, [col(c).is_null() if v is None else col(c) == v for c, v in key.items()])
            for key in keys
        ]
        return frame.filter(reduce(lambda a, b: a | b, conditions)).collect().rows(named=True)


class Spark:
    name = "spark"
    keeps_nullability = False

    def __init__(self, work: Path) -> None:
        started = time.monotonic()
        # PySpark warns that its pandas features are untested with pandas 3: none is used here.
        warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas")
        from pyspark.sql import SparkSession
        from pyspark.sql import functions

        self.F = functions
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # The JVM inherits stderr when it starts: pointed at a file, its start-up banner and
        # warnings go there instead of between our lines.
        log = open(work / "spark.log", "w")
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            self.spark = (
                SparkSession.builder.master("local[2]")
                .appName("retail-ingest interop")
                .config("spark.driver.memory", "1g")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                # Small data: 2 shuffle partitions instead of 200 tasks per aggregation.
                .config("spark.sql.shuffle.partitions", "2")
                .getOrCreate()
            )
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.close()
        self.spark.sparkContext.setLogLevel("ERROR")
        java = self.spark.sparkContext._jvm.java.lang.System.getProperty("java.version")
        self.version = f"Spark {self.spark.version} (Java {java}, started in {time.monotonic() - started:.0f} s)"

    def open(self, store: Store, kind: Kind):
        return self.spark.read.parquet(store.glob(kind))

    def schema(self, frame):
        return [(f.name, f.dataType.simpleString(), None) for f in frame.schema.fields]

    def groups(self, frame, by, names):
        F = self.F
        aggregates = [F.count(F.lit(1)).alias("__rows")] + [
            F.sum(F.col(c).isNull().cast("long")).alias(f"__nulls_{i}") for i, c in enumerate(names)
        ]
        rows = (frame.groupBy(*by) if by else frame).agg(*aggregates).collect()
        counts, nulls = {}, dict.fromkeys(names, 0)
        for row in rows:
            counts[tuple(row[c] for c in by)] = row["__rows"]
            for i, c in enumerate(names):
                nulls[c] += row[f"__nulls_{i}"] or 0
        return counts, nulls

    def select(self, frame, keys):
        F = self.F
        conditions = [
            reduce(lambda a, b: a & b, [F.col(c).isNull() if v is None else F.col(c) == F.lit(v) for c, v in key.items()])
            for key in keys
        ]
        return [r.asDict(recursive=True) for r in frame.where(reduce(lambda a, b: a | b, conditions)).collect()]


ENGINES = ["pyarrow", "pandas", "duckdb", "polars", "spark"]


def make_engine(name: str, work: Path):
    if name == "spark":
        return Spark(work)
    return {"pyarrow": PyArrow, "pandas": Pandas, "duckdb": DuckDB, "polars": Polars}[name]()


# --------------------------------------------------------------------------- comparing


def same(expected, found) -> bool:
    """Equal values of the same kind: an id must come back as a string, a date as a date (not a
    datetime), a wall-clock time as a naive datetime, a list as a list."""
    if isinstance(expected, Prefix):
        return expected == found
    if expected is None or found is None:
        return expected is None and found is None
    if isinstance(expected, list):
        return isinstance(found, list) and len(found) == len(expected) and all(map(same, expected, found))
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        return isinstance(found, (int, float)) and not isinstance(found, bool) and found == expected
    return type(found) is type(expected) and found == expected


def show(value) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "…"


class ReaderError(Exception):
    """An engine's error, with the step it happened in."""


def attempt(what: str, call, *args):
    try:
        return call(*args)
    except Exception as error:  # noqa: BLE001 - any reader error is a finding, reported as such
        raise ReaderError(f"could not {what}: {first_line(error)}") from error


def compare_kind(engine, kind: Kind, store: Store, expected: Expected) -> tuple[list[str], int]:
    """The differences between what `engine` reads for `kind` of `store` and what is expected."""
    label = f"{store.name}"
    problems = []
    dataset = attempt(f"open {store.glob(kind)}", engine.open, store, kind)

    schema = attempt("read the schema", engine.schema, dataset)
    names = [name for name, _, _ in schema]
    wanted = [c.name for c in kind.columns]
    if names != wanted:
        problems.append(f"{label}: columns {names}, expected {wanted}")
    found_types = {name: (t, nullable) for name, t, nullable in schema}
    for column in kind.columns:
        if column.name not in found_types:
            continue
        t, nullable = found_types[column.name]
        want = expected_type(engine.name, column, expected.nulls.get(column.name))
        if t != want:
            problems.append(f"{label}: {column.name}: type {t}, expected {want}")
        if engine.keeps_nullability and nullable != column.nullable:
            problems.append(
                f"{label}: {column.name}: {'nullable' if nullable else 'required'}, "
                f"expected {'nullable' if column.nullable else 'required'}"
            )
    if names != wanted:
        return problems, 0

    counts, nulls = attempt("count the rows", engine.groups, dataset, kind.group_by, wanted)
    rows = sum(counts.values())
    if counts != expected.counts:
        differing = sorted(set(counts) | set(expected.counts), key=str)
        differing = [k for k in differing if counts.get(k, 0) != expected.counts.get(k, 0)]
        by = ", ".join(kind.group_by) or "rows"
        for key in differing[:5]:
            problems.append(
                f"{label}: rows of {by} = {', '.join(map(str, key)) or 'all'}: "
                f"{counts.get(key, 0)}, expected {expected.counts.get(key, 0)}"
            )
        if len(differing) > 5:
            problems.append(f"{label}: … and {len(differing) - 5} more groups differ")
    for name, want in expected.nulls.items():
        if nulls.get(name) != want:
            problems.append(f"{label}: {name}: {nulls.get(name)} nulls, expected {want}")

    if expected.rows:
        found = attempt("select the known rows", engine.select, dataset, [key for key, _ in expected.rows])
        for key, wanted_rows in expected.rows:
            hits = [r for r in found if all(same(v, r.get(c)) for c, v in key.items())]
            if len(hits) != len(wanted_rows):
                problems.append(f"{label}: {matches(key)}: {len(hits)} rows, expected {len(wanted_rows)}")
                continue
            order = lambda r: [str(r.get(c)) for c in wanted]  # noqa: E731 - pairs rows of one key
            for want, hit in zip(sorted(wanted_rows, key=order), sorted(hits, key=order)):
                for c in wanted:
                    if not same(want[c], hit.get(c)):
                        problems.append(
                            f"{label}: {matches(key)}: {c} is {show(hit.get(c))} "
                            f"({type(hit.get(c)).__name__}), expected {show(want[c])}"
                        )
    return problems, rows


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0][:400] if lines else ''}"


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True, help="the retail-ingest executable that writes the outputs")
    parser.add_argument("--real", default="../shared/data/real", help="the real feed (skipped when absent, unless CI=true)")
    parser.add_argument("--work", default="target/interop", help="where the two stores are written (emptied first)")
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"a subset of {','.join(ENGINES)}")
    args = parser.parse_args()
    started = time.monotonic()
    engines = [e for e in args.engines.split(",") if e]
    if unknown := set(engines) - set(ENGINES):
        parser.error(f"unknown engines {sorted(unknown)}: choose among {ENGINES}")
    binary = str(Path(args.bin).resolve())
    if not os.access(binary, os.X_OK):
        sys.exit(f"interop: no executable at {args.bin}")
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    real = Path(args.real)

    stores, problems = [], []
    demo_root = work / "demo"
    shutil.rmtree(demo_root, ignore_errors=True)
    run([binary, "demo", "--store", str(demo_root)])
    stores.append(Store("demo", demo_root, published_reports(demo_root)))
    problems += check_reports(stores[-1], None)

    if (real / "expected.json").exists():
        truth = json.loads((real / "expected.json").read_text())
        real_root = work / "real"
        shutil.rmtree(real_root, ignore_errors=True)
        link_files(real, real_root)
        run([binary, "run", "--store", str(real_root), "--dates", *sorted(truth["dates"])])
        stores.append(Store("real", real_root, published_reports(real_root), known_rows(real)))
        problems += check_reports(stores[-1], truth)
    elif os.environ.get("CI") == "true":
        sys.exit(f"interop: {real}/expected.json is missing and CI=true: the real days must be checked in CI")
    else:
        print(f"interop: {real} is absent: only the demo store is checked, not the real days")

    for store in stores:
        dates = sorted(store.reports)
        print(f"interop: {store.name:<5} {len(dates)} dates ({', '.join(map(str, dates))}) in {store.root}")
    if problems:
        print("interop: the reports, which hold the expected counts, are wrong:")
        for problem in problems:
            print(f"    {problem}")
        return 1
    expectations = {(s.name, k.name): expected_for(s, k) for s in stores for k in KINDS}

    failed, passed, versions = [], 0, []
    for name in engines:
        try:
            engine = make_engine(name, work)
        except Exception as error:  # noqa: BLE001 - an engine that can't start fails its lines
            log = f" (the JVM's output: {work / 'spark.log'})" if name == "spark" else ""
            print(f"{name:<8} could not start: {first_line(error)}{log}")
            failed += [f"{name}/{k.name}" for k in KINDS]
            continue
        versions.append(engine.version)
        for kind in KINDS:
            t = time.monotonic()
            found, rows = [], 0
            for store in stores:
                try:
                    store_problems, store_rows = compare_kind(engine, kind, store, expectations[(store.name, kind.name)])
                except ReaderError as error:
                    store_problems, store_rows = [f"{store.name}: {error}"], 0
                found += store_problems
                rows += store_rows
            dates = sum(len(s.reports) for s in stores) if kind.group_by else len(stores)
            unit = "dates " if kind.group_by else "copies"
            status = "ok" if not found else "FAILED"
            print(f"{name:<8} {kind.name:<13} {dates:>2} {unit} {rows:>9,} rows  {status}  ({time.monotonic() - t:.1f} s)")
            for problem in found:
                print(f"    {problem}")
            if found:
                failed.append(f"{name}/{kind.name}")
            else:
                passed += 1
            sys.stdout.flush()

    total = passed + len(failed)
    elapsed = time.monotonic() - started
    print(f"interop: readers: {'; '.join(versions) or 'none started'}")
    stores_text = " + ".join(s.name for s in stores)
    if failed:
        print(f"interop: FAILED: {len(failed)} of {total} engine/kind checks ({stores_text}) in {elapsed:.0f} s:")
        print(f"    {', '.join(failed)}")
        return 1
    print(f"interop: all {total} engine/kind checks passed ({stores_text}) in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
