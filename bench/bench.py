"""The bench driver behind `make bench` and `make bench-smoke` (see mk/bench.mk, BENCHMARKS.md).

Runs each workload with retail-ingest and with the Polars anchor (../shared/anchors/
polars_pipeline.py, the fastest idiomatic Polars implementation of the same path we know of) in
the same invocation, alternated, after a warm-up; checks that both wrote the same outputs row for
row (bench/compare.py) before it prints a ratio; measures wall time (here), CPU time and peak RSS
(from /usr/bin/time -v, i.e. the kernel's rusage of the whole process); and runs the parse-only
floor (bench/parse_floor.rs) over the same bytes. bench/reference_polars.py, the project's own
Polars reference, runs beside them as a second column where it is cheap (W1, W2).

Workloads:
  W1  first day: empty output store, one real day (referentials parsed and formatted too; the
      anchor parses every referential)
  W2  steady state: the real day after another, referentials already formatted and unchanged
      (the anchor with --ref-cache, its cache made beforehand)
  W3  8 days in one run, referentials formatted beforehand (anchor: --ref-cache): the 2 real days
      + 6 generated at the same size
  W4  30 generated days in one run, referentials formatted beforehand (anchor: --ref-cache)
  W5  one generated day at 16x the real size, first day (both parse every referential)
  W6  W2's day read from and written to real Azurite through a loopback proxy that adds a delay
      to every request (bench/latency_proxy.rs), beside W2; also with 0 ms added and without
      the proxy, which shows what the proxy itself costs
  SW  the sweep over 365 published dates of a generated container (20 rows a file): an idle
      sweep (nothing changed, no run) and a sweep after one file landed late (one run), on the
      local directory and on Azurite through the proxy with 0 ms added (requests and bytes)
  start  `retail-ingest serve` answers GET / (time from spawn to the first response)

Several binaries (`--bin NAME=PATH` more than once) are measured in the same rounds, each round
running them in a rotated order and then the anchor once, so each binary follows the anchor
equally often (the first touches of fresh memory cost more right after a large process exits).

Data is generated once into WORK/data with the project's generator (`retail-ingest generate`)
and reused; `--regenerate` starts over. The real days come from --real when it exists;
otherwise a generated real-size stand-in is used, and the table says so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from azurite_blobs import Azurite, Container, connection_string  # noqa: E402
from compare import compare  # noqa: E402

REAL_DATES = ["2023-11-23", "2023-11-26"]
W3_GENERATED_FIRST = "2023-11-27"
W4_FIRST = "2024-01-01"
W5_DATE = "2024-03-01"
SMOKE_FIRST = "2023-11-23"
# A date without transaction files: running it formats the referentials and nothing else, the
# steady state's preparation for W3 and W4 (and the anchor's --ref-cache).
EMPTY_DATE = "2000-01-01"
W6_CONTAINER = "bench-w6"
# SW: small days, because a sweep's cost is per date and per file, not per row; 20 rows a file
# keeps one rejected row under max_reject_ratio (10 %), so few files are quarantined.
SW_FIRST = "2024-01-01"
SW_DAYS, SW_SMOKE_DAYS = 365, 20
SW_ROWS_PER_FILE = 20
SW_CONTAINER = "bench-sw"
SW_IDLE_LIMIT_S = 2.0
SW_REQUESTS_PER_DATE_LIMIT = 3.0
ANCHOR, OWN = "anchor", "own"


@dataclass
class Measure:
    wall: float
    cpu: float
    rss_mb: float
    load: float
    faults: int = 0
    storage: dict | None = None


@dataclass
class Workload:
    name: str
    title: str
    landing: Path
    dates: list[str]
    # Dates already run (untimed) before each timed run: their outputs are the "previous day",
    # and the referentials are formatted (the anchor's --ref-cache is made from the same run).
    prepared: list[str] = field(default_factory=list)
    fresh_referentials: bool = True
    own_reference: bool = False
    note: str = ""
    measures: dict[str, list[Measure]] = field(default_factory=dict)
    floor: list[float] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    runs: int = 0
    warmups: int = 0
    checks: dict[str, str] = field(default_factory=dict)


@dataclass
class SweepCase:
    """One kind of sweep on one store, several runs."""
    store: str
    kind: str
    measures: list[Measure] = field(default_factory=list)
    caused: list[int] = field(default_factory=list)

    def add(self, measure: Measure, out: dict) -> None:
        self.measures.append(measure)
        self.caused.append(len(out["runs"]))


@dataclass
class SweepBench:
    days: int
    now: str
    first: str
    last: str
    runs: int = 0
    warmups: int = 0
    prepare: dict[str, Measure] = field(default_factory=dict)
    cases: list[SweepCase] = field(default_factory=list)

    def case(self, store: str, kind: str) -> SweepCase:
        self.cases.append(SweepCase(store, kind))
        return self.cases[-1]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_average() -> float:
    return os.getloadavg()[0]


def timed(command: list[str], env: dict | None = None) -> Measure:
    """Runs `command` under /usr/bin/time -v; wall from here, CPU and peak RSS from rusage."""
    load = load_average()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-v", "-o", report.name, *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
        fields = {}
        for line in report.read().splitlines():
            key, _, value = line.strip().rpartition(": ")
            fields[key] = value
    cpu = float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
    rss_mb = int(fields["Maximum resident set size (kbytes)"]) / 1024
    faults = int(fields.get("Minor (reclaiming a frame) page faults", 0))
    return Measure(wall, cpu, rss_mb, load, faults)


def timed_json(command: list[str], env: dict | None = None, codes=(0, 1)) -> tuple[Measure, object]:
    """`timed` for a command that prints JSON on stdout: the measure and the parsed output.
    Exit code 1 is accepted by default: a sweep exits 1 when some date needs a person (a file
    quarantined in the generated data), which is no failure of the sweep."""
    load = load_average()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report, \
            tempfile.NamedTemporaryFile("r", suffix=".json") as output:
        started = time.perf_counter()
        with open(output.name, "w") as sink:
            done = subprocess.run(["/usr/bin/time", "-v", "-o", report.name, *command], stdout=sink,
                                  stderr=subprocess.PIPE, env=env, text=True)
        wall = time.perf_counter() - started
        if done.returncode not in codes:
            raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
        fields = {}
        for line in report.read().splitlines():
            key, _, value = line.strip().rpartition(": ")
            fields[key] = value
        parsed = json.loads(output.read())
    cpu = float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
    rss_mb = int(fields["Maximum resident set size (kbytes)"]) / 1024
    faults = int(fields.get("Minor (reclaiming a frame) page faults", 0))
    return Measure(wall, cpu, rss_mb, load, faults), parsed


def check_sweep(out: dict, days: int, expected: list[str]) -> None:
    """What makes a sweep's figures the right ones: it ran exactly the `expected` dates (as
    `inputs_changed`), and afterwards every date of the window is published."""
    failed = [f"{run['date']}: {run['error']}" for run in out["runs"] if "error" in run]
    if failed:
        raise SystemExit(f"SW: the sweep's runs failed: {'; '.join(failed)}")
    ran = [(report["date"], report.get("cause"), report["status"]) for report in out["runs"]]
    if ran != [(date, "inputs_changed", "succeeded") for date in expected]:
        raise SystemExit(f"SW: the sweep ran {ran}, expected {expected or 'nothing'} (inputs_changed, succeeded)")
    states = {}
    for entry in out["overview"]["dates"]:
        states.setdefault(entry["state"], []).append(entry["date"])
    if len(out["overview"]["dates"]) != days or set(states) != {"published"}:
        found = {state: f"{len(d)} ({', '.join(d[:3])}{', ...' if len(d) > 3 else ''})" for state, d in states.items()}
        raise SystemExit(f"SW: after the sweep the window's {days} dates should all be published: {found}")


def late_file(folder: Path, date: str) -> tuple[str, bytes]:
    """A file for an hour `date` has none of yet (within the stores' 8-20 when one is free): its
    first file's lines, their hour moved to that one (repeated transaction ids are only flagged,
    so the date is published like the others)."""
    files = sorted(folder.glob(f"transactions_{date}_*.csv"), key=lambda p: int(p.stem.rpartition("_")[2]))
    free = set(range(24)) - {int(p.stem.rpartition("_")[2]) for p in files}
    hour = min(free & set(range(8, 21)) or free)
    lines = files[0].read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    names = lines[header].split(";")
    column = names.index("hour")
    for i in range(header + 1, len(lines)):
        values = lines[i].split(";")
        if len(values) == len(names):
            values[column] = str(hour)
            lines[i] = ";".join(values)
    return f"transactions_{date}_{hour}.csv", ("\n".join(lines) + "\n").encode()


def link_tree(source: Path, destination: Path, only=None) -> None:
    """Hard-links the files of `source` (no subfolders) into `destination`: a fresh landing
    container in no time. Safe: no tool writes into its input files (object_store and
    Polars write new files and rename them)."""
    destination.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(source):
        if entry.is_file() and (only is None or only(entry.name)):
            target = destination / entry.name
            if not target.exists():
                try:
                    os.link(entry.path, target)
                except OSError:
                    shutil.copy2(entry.path, target)


def describe_binary(path: str) -> str:
    """What the table says of a binary: size, content hash, linkage, debug information."""
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:12]
    kind = subprocess.run(["file", "-b", path], capture_output=True, text=True).stdout.strip()
    linkage = "static" if ("statically linked" in kind or "static-pie" in kind) else "dynamic"
    libc = "musl" if linkage == "static" else "glibc"
    glibc_needed = ""
    if linkage == "dynamic":
        symbols = subprocess.run(["objdump", "-T", path], capture_output=True, text=True).stdout
        versions = {v for v in (w.strip("()") for w in symbols.split()) if v.startswith("GLIBC_2.")}
        if versions:
            newest = max(versions, key=lambda v: tuple(int(p) for p in v[6:].split(".") if p.isdigit()))
            glibc_needed = f", needs {newest}"
    debug = "with debug info" if "with debug_info" in kind else "no debug info"
    return f"{path} ({len(data) / 1e6:.1f} MB, sha256 {digest}, {libc} {linkage}{glibc_needed}, {debug})"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bins: dict[str, str] = {}
        for spec in args.bin or ["target/release/retail-ingest"]:
            name, _, path = spec.rpartition("=")
            name = name or ("ours" if not self.bins else f"bin{len(self.bins) + 1}")
            self.bins[name] = str(Path(path).resolve())
        self.first = next(iter(self.bins.values()))
        self.floor_bin = str(Path(args.floor).resolve())
        self.python = sys.executable
        self.anchor = str(Path(args.anchor).resolve())
        self.own = str(HERE / "reference_polars.py")
        self.work = Path(args.work).resolve()
        self.data = self.work / ("smoke-data" if args.smoke else "data")
        self.runs_dir = self.work / ("smoke-runs" if args.smoke else "runs")
        self.storage: dict = {}

    # ---------------------------------------------------------------- data

    def generate(self, folder: Path, first: str, days: int, *extra: str) -> None:
        stamp = folder / ".generated"
        wanted = f"{first} {days} {' '.join(extra)}"
        if stamp.exists() and stamp.read_text() == wanted and not self.args.regenerate:
            return
        shutil.rmtree(folder, ignore_errors=True)
        log(f"generating {days} day(s) from {first} {' '.join(extra)} into {folder}")
        subprocess.run(
            [self.first, "generate", "--store", str(folder), "--first-date", first, "--days", str(days), *extra],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        stamp.write_text(wanted)

    def real_landing(self) -> tuple[Path, str]:
        real = Path(self.args.real)
        landing = self.data / "real"
        if (real / "clients.csv").exists():
            link_tree(real, landing, only=lambda n: n.endswith(".csv"))
            return landing, ""
        # The real sample is absent: a generated real-size stand-in on the same dates.
        folder = self.data / "real-standin"
        self.generate(folder, REAL_DATES[0], 4, "--real-size")
        return folder, "generated stand-in (real sample absent)"

    def workloads(self) -> list[Workload]:
        only = set(self.args.only.split(",")) if self.args.only else None
        chosen = []
        if self.args.smoke:
            folder = self.data / "small"
            self.generate(folder, SMOKE_FIRST, 2, "--rows-per-file", "300")
            dates = sorted(p.name[13:23] for p in folder.glob("transactions_*.csv"))
            first, second = sorted(set(dates))[:2]
            chosen.append(Workload("S1", "smoke: first day", folder, [first], own_reference=True))
            chosen.append(
                Workload("S2", "smoke: next day", folder, [second], prepared=[first], fresh_referentials=False,
                         own_reference=True)
            )
            if not self.args.no_w6:
                chosen.append(
                    Workload("S6", "smoke: next day through Azurite", folder, [second], prepared=[first],
                             fresh_referentials=False)
                )
            return chosen
        wants = lambda name: only is None or name in only  # noqa: E731
        own = self.args.own_reference
        real, note = self.real_landing() if any(wants(w) for w in ["W1", "W2", "W3", "W6"]) else (None, "")
        if wants("W1"):
            chosen.append(Workload("W1", "first day (real)", real, [REAL_DATES[0]], note=note, own_reference=own != "none"))
        if wants("W2"):
            chosen.append(
                Workload(
                    "W2", "steady state, next day (real)", real, [REAL_DATES[1]], prepared=[REAL_DATES[0]],
                    fresh_referentials=False, note=note, own_reference=own != "none",
                )
            )
        if wants("W3"):
            generated = self.data / "w3-generated"
            self.generate(generated, W3_GENERATED_FIRST, 6, "--real-size")
            landing = self.data / "w3"
            link_tree(real, landing)
            link_tree(generated, landing, only=lambda n: n.startswith("transactions_"))
            gen_dates = sorted({p.name[13:23] for p in generated.glob("transactions_*.csv")})
            chosen.append(
                Workload(
                    "W3", "8 days in one run (steady state)", landing, REAL_DATES + gen_dates, prepared=[EMPTY_DATE],
                    fresh_referentials=False, own_reference=own == "all",
                    note=(note or "2 real") + " + 6 generated days; generated ids are unknown to the real referentials",
                )
            )
        if wants("W4"):
            folder = self.data / "w4"
            self.generate(folder, W4_FIRST, 30, "--real-size")
            dates = sorted({p.name[13:23] for p in folder.glob("transactions_*.csv")})
            chosen.append(
                Workload("W4", "30 generated days in one run (steady state)", folder, dates, prepared=[EMPTY_DATE],
                         fresh_referentials=False, own_reference=own == "all")
            )
        if wants("W5"):
            folder = self.data / "w5"
            self.generate(folder, W5_DATE, 1, "--real-size", "--rows-per-file", "320000")
            chosen.append(
                Workload("W5", "one generated day, 16x real size (first day)", folder, [W5_DATE],
                         own_reference=own == "all")
            )
        if wants("W6"):
            chosen.append(
                Workload(
                    "W6", f"W2 through Azurite, +{self.args.w6_delay_ms:g} ms a request", real, [REAL_DATES[1]],
                    prepared=[REAL_DATES[0]], fresh_referentials=False, note=note,
                )
            )
        return chosen

    # ---------------------------------------------------------------- runs

    def fresh(self, workload: Workload, tool: str) -> Path:
        """A fresh store (ours: landing + outputs in one container) or output folder (Polars),
        with the workload's `prepared` dates already run. The anchor keeps nothing in its output
        folder: its steady state is the --ref-cache folder, made once beside it."""
        base = self.runs_dir / f"{workload.name}-{tool}"
        prepared = base.with_name(base.name + "-prepared")
        if tool == ANCHOR:
            shutil.rmtree(base, ignore_errors=True)
            base.mkdir(parents=True)
            if workload.prepared and not (self.anchor_cache(workload) / "key.json").exists():
                scratch = base.with_name(base.name + "-scratch")
                shutil.rmtree(scratch, ignore_errors=True)
                scratch.mkdir(parents=True)
                subprocess.run(self.command(workload, tool, scratch, workload.prepared), check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return base
        if workload.prepared and prepared.exists():
            # The prepared state is made once; each run starts from a copy of it.
            shutil.rmtree(base, ignore_errors=True)
            shutil.copytree(prepared, base, copy_function=os.link)
            return base
        shutil.rmtree(base, ignore_errors=True)
        if tool in self.bins:
            link_tree(workload.landing, base)
        else:
            base.mkdir(parents=True)
        if workload.prepared:
            subprocess.run(self.command(workload, tool, base, workload.prepared), check=True, stdout=subprocess.DEVNULL)
            shutil.rmtree(prepared, ignore_errors=True)
            # Links keep the landing files' inodes, so their ETags (inode, mtime, size) and the
            # referentials' notes stay valid; every tool replaces files by renaming new ones, so
            # a timed run never changes the prepared copy.
            shutil.copytree(base, prepared, copy_function=os.link)
        return base

    def anchor_cache(self, workload: Workload) -> Path:
        return self.runs_dir / f"{workload.name}-anchor-cache"

    def command(self, workload: Workload, tool: str, target: Path, dates: list[str]) -> list[str]:
        if tool in self.bins:
            return [self.bins[tool], "run", "--store", str(target), "--force", "--dates", *dates]
        if tool == ANCHOR:
            cache = ["--ref-cache", str(self.anchor_cache(workload))] if workload.prepared else []
            return [self.python, self.anchor, "--container", str(workload.landing), "--out", str(target),
                    "--dates", *dates, *cache]
        return [self.python, self.own, "--store", str(workload.landing), "--out", str(target), "--quiet",
                "--dates", *dates]

    def run_counts(self, workload: Workload) -> tuple[int, int]:
        heavy = workload.name in ("W3", "W4", "W5")
        runs = 1 if self.args.smoke else (self.args.heavy_runs if heavy and self.args.heavy_runs else self.args.runs)
        warmups = 0 if self.args.smoke else (0 if heavy and self.args.heavy_runs else self.args.warmup)
        return runs, warmups

    def run_workload(self, workload: Workload) -> None:
        if workload.name in ("W6", "S6"):
            return self.run_storage_workload(workload)
        runs, warmups = self.run_counts(workload)
        workload.runs, workload.warmups = runs, warmups
        names = list(self.bins)
        references = [ANCHOR] + ([OWN] if workload.own_reference else [])
        log(f"{workload.name}: {workload.title}: {warmups} warm-up + {runs} run(s) of each of "
            f"{', '.join(names + references)}")
        for index in range(warmups + runs):
            shift = index % len(names)
            last = index == warmups + runs - 1
            timed_references = references if last or not self.args.anchor_once else []
            for tool in names[shift:] + names[:shift] + timed_references:
                target = self.fresh(workload, tool)
                measure = timed(self.command(workload, tool, target, workload.dates))
                if index >= warmups:
                    workload.measures.setdefault(tool, []).append(measure)
                log(f"  {tool:14} {measure.wall:7.3f} s wall  {measure.cpu:7.3f} s CPU  {measure.rss_mb:6.0f} MB"
                    f"  load {measure.load:.1f}")
        self.check(workload, names, self.runs_dir / f"{workload.name}-{ANCHOR}")
        if workload.own_reference:
            # Our own reference writes our rejects' messages too: every column is compared.
            ours = self.runs_dir / f"{workload.name}-{names[0]}"
            problems = compare(ours, self.runs_dir / f"{workload.name}-{OWN}", workload.dates)
            workload.checks[OWN] = "equal" if not problems else "MISMATCH"
            for problem in problems:
                log(f"  MISMATCH {names[0]} vs bench/reference_polars.py: {problem}")
        ours_store = self.runs_dir / f"{workload.name}-{names[0]}"
        for date in workload.dates:
            report = json.loads((ours_store / "formatted" / f"transactions_{date}" / "_report.json").read_text())
            workload.rows += report["totals"]["rows"]
        files = self.parsed_files(workload)
        workload.bytes = sum(f.stat().st_size for f in files)
        for _ in range(max(1, runs)):
            started = time.perf_counter()
            out = subprocess.run([self.floor_bin, *map(str, files)], check=True, capture_output=True, text=True)
            workload.floor.append(time.perf_counter() - started)
            floor = json.loads(out.stdout)
            assert floor["bytes"] == workload.bytes, (floor, workload.bytes)

    def check(self, workload: Workload, tools: list[str], anchor_out: Path) -> None:
        """Each binary's outputs against the anchor's, row for row; rejects' `message` aside (the
        contract leaves its text free and the anchor writes the rule names alone)."""
        for tool in tools:
            problems = compare(self.runs_dir / f"{workload.name}-{tool}", anchor_out, workload.dates, ("message",))
            workload.checks[tool] = "equal" if not problems else "MISMATCH"
            for problem in problems:
                log(f"  MISMATCH {tool} vs the anchor: {problem}")

    def parsed_files(self, workload: Workload) -> list[Path]:
        """The CSV bytes the run must parse: its dates' transaction files, and the referentials
        when they are parsed fresh."""
        files = [
            p for p in sorted(workload.landing.glob("transactions_*.csv")) if p.name[13:23] in set(workload.dates)
        ]
        if workload.fresh_referentials:
            files += [workload.landing / f"{kind}.csv" for kind in ("clients", "stores", "products")]
        return files

    # ---------------------------------------------------------------- W6: Azurite

    def run_storage_workload(self, workload: Workload) -> None:
        """W2's day with the store in real Azurite: without the proxy, through it with 0 ms
        added, and through it with the delay; alternated per round, each run from the state the
        prepared dates left (blobs a run wrote are deleted before the next)."""
        runs, warmups = self.run_counts(workload)
        workload.runs, workload.warmups = runs, warmups
        delay = 5.0 if self.args.smoke else self.args.w6_delay_ms
        folder = self.work / "azurite"
        shutil.rmtree(folder, ignore_errors=True)
        with Azurite(ROOT, folder) as azurite, LatencyProxy(self.args.proxy, azurite.blob_port) as proxy:
            container = Container(azurite.blob_port, W6_CONTAINER)
            container.create()
            log(f"{workload.name}: uploading {workload.landing} to Azurite (port {azurite.blob_port})")
            for path in sorted(workload.landing.iterdir()):
                wanted = path.name.endswith(".csv") and (
                    not path.name.startswith("transactions_") or path.name[13:23] in set(workload.dates + workload.prepared))
                if wanted:
                    container.put(path.name, path.read_bytes())
            direct_env = self.azure_env(azurite.blob_port)
            proxied_env = self.azure_env(proxy.port)
            subprocess.run([self.first, "run", "--force", "--dates", *workload.prepared], env=direct_env, check=True,
                           stdout=subprocess.DEVNULL)
            kept = set(container.names())
            variants = [("direct", None), ("proxy +0 ms", 0.0), (f"proxy +{delay:g} ms", delay)]
            log(f"{workload.name}: {workload.title}: {warmups} warm-up + {runs} run(s) of each of "
                f"{', '.join(v for v, _ in variants)} x {', '.join(self.bins)}")
            names = list(self.bins)
            for index in range(warmups + runs):
                shift = index % len(names)
                for tool in names[shift:] + names[:shift]:
                    for variant, added in variants:
                        container.keep_only(kept)
                        env = direct_env if added is None else proxied_env
                        if added is not None:
                            proxy.reset(added)
                        command = [self.bins[tool], "run", "--force", "--dates", *workload.dates]
                        measure = timed(command, env)
                        if added is not None:
                            measure.storage = proxy.stats()
                        if index >= warmups:
                            workload.measures.setdefault(f"{tool} {variant}", []).append(measure)
                        extra = ""
                        if measure.storage:
                            extra = (f"  {measure.storage['requests']} requests, "
                                     f"{measure.storage['up_bytes'] / 1e6:.1f} MB up, "
                                     f"{measure.storage['down_bytes'] / 1e6:.1f} MB down")
                        log(f"  {tool} {variant:12} {measure.wall:7.3f} s wall  {measure.cpu:7.3f} s CPU  "
                            f"{measure.rss_mb:6.0f} MB  load {measure.load:.1f}{extra}")
                    # Outputs of this binary's last run (the delayed one) against the anchor's.
                    out = self.runs_dir / f"{workload.name}-{tool}"
                    shutil.rmtree(out, ignore_errors=True)
                    outputs = [n for n in container.names() if n not in kept and n.endswith(".parquet")]
                    container.download(outputs, out)
                    (out / "report.json").write_bytes(container.get(
                        f"formatted/transactions_{workload.dates[0]}/_report.json"))
        anchor_out = self.fresh(workload, ANCHOR)
        subprocess.run(self.command(workload, ANCHOR, anchor_out, workload.dates), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.check(workload, names, anchor_out)
        report = json.loads((self.runs_dir / f"{workload.name}-{names[0]}" / "report.json").read_text())
        workload.rows = report["totals"]["rows"]
        workload.bytes = sum(f.stat().st_size for f in self.parsed_files(workload))

    def azure_env(self, port: int, container: str = W6_CONTAINER) -> dict:
        return {
            **os.environ,
            "INGEST_STORE": f"azure://{container}",
            "INGEST_STORAGE_CONNECTION_STRING": connection_string(port),
            "RUST_LOG": "error",
        }

    # ---------------------------------------------------------------- SW: the sweep

    def run_sweep_workload(self, days: int, with_azurite: bool) -> SweepBench:
        """A container of `days` small published dates (generated, then every date run once):
        idle sweeps (nothing changed) and sweeps after one file landed late, on the local
        directory and, unless `with_azurite` is false, on Azurite through the proxy with 0 ms
        added. Every sweep's --json output is checked: the idle ones caused no run, the late
        ones exactly one, of the date that got the file, and every date ends published."""
        folder = self.data / f"sweep-{days}"
        self.generate(folder, SW_FIRST, days, "--rows-per-file", str(SW_ROWS_PER_FILE), "--markers")
        dates = sorted({p.name[13:23] for p in folder.glob("transactions_*.csv")})
        if len(dates) != days:
            raise SystemExit(f"SW: the generator wrote files for {len(dates)} dates, not {days}")
        # The window ends on the clock's date, so the clock is on the last date: every date of
        # the window has its files and a run (a published date's state does not depend on it).
        result = SweepBench(days=days, now=f"{dates[-1]}T23:00:00Z", first=dates[0], last=dates[-1])
        runs = 1 if self.args.smoke else self.args.runs
        warmups = 0 if self.args.smoke else self.args.warmup
        result.runs, result.warmups = runs, warmups
        # One date per late sweep, spread over the window, each getting a file for an hour it lacks.
        late_dates = [dates[(i + 1) * days // (warmups + runs + 1)] for i in range(warmups + runs)]
        sweep = ["sweep", "--days", str(days), "--now", result.now, "--json"]

        store = self.runs_dir / f"SW-{days}-local"
        shutil.rmtree(store, ignore_errors=True)
        link_tree(folder, store)
        log(f"SW: running the {days} dates of {folder} once (local directory)")
        result.prepare["local"] = self.sweep_prepare([self.first, "run", "--store", str(store)], None, dates)
        self.sweep_rounds(result, "local directory", "SW local", [self.first, *sweep, "--store", str(store)],
                          None, None, lambda name, data: (store / name).write_bytes(data), folder, late_dates)
        shutil.rmtree(store, ignore_errors=True)
        if not with_azurite:
            return result

        azurite_dir = self.work / "azurite-sw"
        shutil.rmtree(azurite_dir, ignore_errors=True)
        with Azurite(ROOT, azurite_dir) as azurite, LatencyProxy(self.args.proxy, azurite.blob_port) as proxy:
            container = Container(azurite.blob_port, SW_CONTAINER)
            container.create()
            direct = self.azure_env(azurite.blob_port, SW_CONTAINER)
            proxied = self.azure_env(proxy.port, SW_CONTAINER)
            # The generator's default seed: the same files as `folder`, written by the binary.
            subprocess.run([self.first, "generate", "--first-date", SW_FIRST, "--days", str(days),
                            "--rows-per-file", str(SW_ROWS_PER_FILE), "--markers"],
                           env=direct, check=True, stdout=subprocess.DEVNULL)
            log(f"SW: running the {days} dates once on Azurite (port {azurite.blob_port}, not through the proxy)")
            result.prepare["Azurite"] = self.sweep_prepare([self.first, "run"], direct, dates)
            self.sweep_rounds(result, "Azurite, proxy +0 ms", "SW Azurite", [self.first, *sweep], proxied, proxy,
                              container.put, folder, late_dates)
        shutil.rmtree(azurite_dir, ignore_errors=True)
        return result

    def sweep_rounds(self, result: "SweepBench", store_name: str, label: str, command: list[str],
                     env: dict | None, proxy: "LatencyProxy | None", land, folder: Path,
                     late_dates: list[str]) -> None:
        """The idle sweeps, then one sweep after each late file (`land(name, data)` puts it in
        the store), each checked and, past the warm-ups, added to its case; through `proxy`,
        when given, with the requests it counted."""
        days, warmups = result.days, result.warmups
        case_idle = result.case(store_name, "idle")
        case_late = result.case(store_name, "one file landed late")
        rounds = [(index, None) for index in range(warmups + result.runs)] + list(enumerate(late_dates))
        for index, date in rounds:
            name = ""
            if date is not None:
                name, data = late_file(folder, date)
                land(name, data)
            if proxy is not None:
                proxy.reset(0)
            measure, out = timed_json(command, env)
            if proxy is not None:
                measure.storage = proxy.stats()
            check_sweep(out, days, [] if date is None else [date])
            if index >= warmups:
                (case_idle if date is None else case_late).add(measure, out)
            requests = f"  {measure.storage['requests']} requests" if proxy is not None else ""
            log(f"  {label} {'idle' if date is None else 'late'} {measure.wall:7.3f} s wall  {measure.cpu:7.3f} s CPU"
                f"  load {measure.load:.1f}{requests}{f'  ({name})' if name else ''}")

    def sweep_prepare(self, command: list[str], env: dict | None, dates: list[str]) -> Measure:
        """Every date run once, in one process; each must publish (`succeeded`)."""
        measure, out = timed_json([*command, "--from", dates[0], "--to", dates[-1], "--json"], env, codes=(0,))
        statuses = {report["status"] for report in out}
        if len(out) != len(dates) or statuses != {"succeeded"}:
            raise SystemExit(f"SW: running {len(dates)} dates gave {len(out)} report(s), statuses {sorted(statuses)}")
        log(f"  {len(dates)} dates in {measure.wall:.1f} s (load {measure.load:.1f})")
        return measure

    # ---------------------------------------------------------------- start

    def handler_start(self, binary: str, repeats: int) -> list[float]:
        """Time from spawning `retail-ingest serve` to the first answer to GET /."""
        times = []
        store = self.runs_dir / "serve-store"
        store.mkdir(parents=True, exist_ok=True)
        for _ in range(repeats):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            env = {**os.environ, "INGEST_STORE": str(store), "RUST_LOG": "error"}
            started = time.perf_counter()
            process = subprocess.Popen(
                [binary, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                answered = None
                while time.perf_counter() - started < 10:
                    try:
                        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
                            connection.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                            status = connection.recv(64)
                            if status.startswith(b"HTTP/1.1 "):
                                answered = time.perf_counter() - started
                                break
                    except OSError:
                        time.sleep(0.0005)
                if answered is None:
                    raise SystemExit("serve did not answer GET / within 10 s")
                times.append(answered)
            finally:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        return times


class LatencyProxy:
    """bench/latency_proxy.rs in front of Azurite's blob port, on a free loopback port."""

    def __init__(self, binary: str, upstream_port: int) -> None:
        self.binary, self.upstream_port = str(Path(binary).resolve()), upstream_port

    def __enter__(self) -> "LatencyProxy":
        self.process = subprocess.Popen([self.binary, str(self.upstream_port), "0"], stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())
        return self

    def __exit__(self, *_exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def _call(self, method: str, path: str) -> bytes:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.read()

    def reset(self, delay_ms: float) -> None:
        self._call("POST", f"/__proxy/reset?delay_ms={int(delay_ms)}")

    def stats(self) -> dict:
        return json.loads(self._call("GET", "/__proxy/stats"))


def storage_breakdown(stats: dict) -> list[str]:
    """Requests of one proxied run by kind: count, bytes, when they ran, and how many at once."""
    kinds: dict[str, list[dict]] = {}
    for r in stats["records"]:
        path, _, query = r["target"].partition("?")
        blob = "/".join(path.split("/")[3:])
        blob = re.sub(r"\d{4}-\d{2}-\d{2}", "D", blob)
        blob = re.sub(r"_\d{1,2}\.csv", "_H.csv", blob)
        blob = re.sub(r"^runs/D/.*\.json$", "runs/D/{run_id}.json", blob)
        if "comp=list" in query:
            prefix = re.search(r"prefix=([^&]*)", query)
            listed = re.sub(r"\d{4}-\d{2}-\d{2}", "D", urllib.parse.unquote(prefix.group(1))) if prefix else ""
            kind = "list" + (f" {listed}" if listed else "")
        elif "comp=batch" in query:
            kind = f"{r['method']} batch (deletes)"
        else:
            kind = f"{r['method']} {blob}"
        kinds.setdefault(kind, []).append(r)
    lines = ["| requests | kind | MB up | MB down | first start | last end | most at once |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for kind, records in sorted(kinds.items(), key=lambda kv: min(r["start_ms"] for r in kv[1])):
        lines.append(
            f"| {len(records)} | {kind} | {sum(r['up_bytes'] for r in records) / 1e6:.2f} "
            f"| {sum(r['down_bytes'] for r in records) / 1e6:.2f} | {min(r['start_ms'] for r in records):.0f} ms "
            f"| {max(r['end_ms'] for r in records):.0f} ms | {most_at_once(records)} |"
        )
    records = stats["records"]
    busy, rounds = busy_time(records)
    lines.append("")
    lines.append(f"{len(records)} requests; some request in flight for {busy:.0f} ms of the run, in {rounds} "
                 f"stretch(es) with nothing in flight between them; at most {most_at_once(records)} at once")
    return lines


def most_at_once(records: list[dict]) -> int:
    events = sorted([(r["start_ms"], 1) for r in records] + [(r["end_ms"], -1) for r in records],
                    key=lambda e: (e[0], e[1]))
    level = best = 0
    for _, step in events:
        level += step
        best = max(best, level)
    return best


def busy_time(records: list[dict]) -> tuple[float, int]:
    spans = sorted((r["start_ms"], r["end_ms"]) for r in records)
    busy, stretches, current = 0.0, 0, None
    for start, end in spans:
        if current is None or start > current[1]:
            if current:
                busy += current[1] - current[0]
            current, stretches = [start, end], stretches + 1
        else:
            current[1] = max(current[1], end)
    if current:
        busy += current[1] - current[0]
    return busy, stretches


def sweep_lines(sw: SweepBench, smoke: bool, label: str = "SW") -> tuple[list[str], list[str]]:
    """SW's table, the requests of its last Azurite sweeps by kind, and its verdicts."""
    lines = [
        f"{label}: sweeps over {sw.days} published dates ({sw.first} to {sw.last}, {SW_ROWS_PER_FILE} rows a file, "
        f"--now {sw.now}):",
        "",
        "| workload | store | sweep | wall | CPU | peak RSS | runs caused | requests | requests per date | KB up "
        "| KB down | KB down per date | runs+warm-up | load |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    verdicts = []
    medians: dict[tuple[str, str], tuple[float, float | None]] = {}
    for case in sw.cases:
        ms = case.measures
        wall, cpu, rss = median([m.wall for m in ms]), median([m.cpu for m in ms]), max(m.rss_mb for m in ms)
        loads = [m.load for m in ms]
        requests = median([m.storage["requests"] for m in ms]) if ms[0].storage else None
        cells = [""] * 5
        if requests is not None:
            up = median([m.storage["up_bytes"] for m in ms]) / 1e3
            down = median([m.storage["down_bytes"] for m in ms]) / 1e3
            cells = [f"{requests:.0f}", f"{requests / sw.days:.2f}", f"{up:.1f}", f"{down:.1f}",
                     f"{down / sw.days:.2f}"]
        medians[(case.store, case.kind)] = (wall, requests)
        lines.append(
            f"| {label} | {case.store} | {case.kind} | {wall:.3f} s | {cpu:.2f} s | {rss:.0f} MB "
            f"| {'/'.join(str(c) for c in sorted(set(case.caused)))} | {' | '.join(cells)} "
            f"| {sw.runs}+{sw.warmups} | {min(loads):.1f}-{max(loads):.1f} |"
        )
    for case in sw.cases:
        if case.measures[-1].storage:
            lines += ["", f"{label} {case.store}, {case.kind}: requests of its last run:", ""]
            lines += storage_breakdown(case.measures[-1].storage)
    lines.append("")
    prepare = ", ".join(f"{store} {m.wall:.1f} s (load {m.load:.1f})" for store, m in sw.prepare.items())
    verdicts.append(f"{label}: the {sw.days} dates run once beforehand, in one process: {prepare}")
    local_idle, local_late = medians.get(("local directory", "idle")), medians.get(("local directory", "one file landed late"))
    azure_idle = medians.get(("Azurite, proxy +0 ms", "idle"))
    azure_late = medians.get(("Azurite, proxy +0 ms", "one file landed late"))
    if local_idle and local_late:
        verdicts.append(f"{label}: a sweep after one late file (one date run, then every date surveyed again) "
                        f"takes {local_late[0] - local_idle[0]:+.3f} s over an idle one on the local directory")
    if azure_idle and azure_late:
        verdicts.append(f"{label}: on Azurite it costs {azure_late[1] - azure_idle[1]:+.0f} requests and "
                        f"{azure_late[0] - azure_idle[0]:+.3f} s over an idle one")
    if smoke:
        verdicts.append(f"{label}: smoke ({sw.days} dates): checked the idle sweep caused no run and the late one "
                        f"exactly one; the targets are judged at {SW_DAYS} dates")
        return lines, verdicts
    if local_idle:
        wall = local_idle[0]
        verdicts.append(f"{label} idle sweep of {sw.days} dates, local directory: {wall:.3f} s < {SW_IDLE_LIMIT_S:g} s: "
                        f"{met(wall < SW_IDLE_LIMIT_S)}")
    if azure_idle:
        per_date = azure_idle[1] / sw.days
        verdicts.append(f"{label} idle sweep of {sw.days} dates, Azurite: {azure_idle[1]:.0f} requests = {per_date:.2f} "
                        f"per date < {SW_REQUESTS_PER_DATE_LIMIT:g}: "
                        f"{met(per_date < SW_REQUESTS_PER_DATE_LIMIT)} ({azure_idle[0]:.3f} s)")
    return lines, verdicts


# (wall limit in s, speed-up over the anchor) per workload.
TARGETS = {
    "W1": (0.5, 4.0),
    "W2": (0.15, 10.0),
    "W3": (None, 8.0),
    "W4": (None, 8.0),
    "W5": (None, None),
}
PEAK_LIMIT_MB = 200
W6_OVER_W2_LIMIT = 0.35


def met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def peak_verdict(label: str, rss: float) -> str:
    return f"{label} peak RSS {rss:.0f} MB <= {PEAK_LIMIT_MB} MB: {met(rss <= PEAK_LIMIT_MB)}"


def median(values):
    return statistics.median(values) if values else float("nan")


def table(bench: Bench, workloads: list[Workload], starts: dict[str, list[float]], smoke: bool):
    lines = [
        "| workload | binary | rows | CSV MB | wall | CPU | peak RSS | page faults | MB/s | anchor wall "
        "| anchor CPU | anchor peak RSS | speed-up over the anchor (wall; CPU) | own reference wall (speed-up) "
        "| floor wall | wall/floor | outputs | runs+warm-up | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    verdicts = []
    all_equal = True
    by_name: dict[tuple[str, str], tuple[float, float, float]] = {}
    storage_lines: list[str] = []
    for w in workloads:
        if w.name in ("W6", "S6"):
            continue
        anchor = w.measures.get(ANCHOR, [])
        anchor_wall, anchor_cpu = median([m.wall for m in anchor]), median([m.cpu for m in anchor])
        anchor_rss = max(m.rss_mb for m in anchor)
        own = w.measures.get(OWN, [])
        own_wall = median([m.wall for m in own]) if own else None
        floor = median(w.floor)
        mb = w.bytes / 1e6
        for tool in bench.bins:
            ms = w.measures[tool]
            wall, cpu = median([m.wall for m in ms]), median([m.cpu for m in ms])
            rss, faults = max(m.rss_mb for m in ms), median([m.faults for m in ms])
            loads = [m.load for m in ms + anchor]
            equal = w.checks.get(tool) == "equal"
            all_equal &= equal
            ratio = f"**{anchor_wall / wall:.1f}x** ({anchor_cpu / max(cpu, 0.01):.1f}x CPU)" if equal else "n/a (outputs differ)"
            own_text = "" if own_wall is None else (
                f"{own_wall:.3f} s ({own_wall / wall:.1f}x)" if w.checks.get(OWN) == "equal" else "n/a (outputs differ)")
            by_name[(w.name, tool)] = (wall, rss, anchor_wall / wall if equal else 0.0)
            lines.append(
                f"| {w.name} {w.title} | {tool} | {w.rows:,} | {mb:.1f} | {wall:.3f} s | {cpu:.2f} s | {rss:.0f} MB "
                f"| {faults:,.0f} | {mb / wall:.0f} | {anchor_wall:.3f} s | {anchor_cpu:.2f} s | {anchor_rss:.0f} MB "
                f"| {ratio} | {own_text} | {floor:.3f} s | {wall / floor:.1f}x | {w.checks.get(tool)} "
                f"| {w.runs}+{w.warmups} | {min(loads):.1f}-{max(loads):.1f} |"
            )
            label = w.name if len(bench.bins) == 1 else f"{w.name} [{tool}]"
            limit, speedup = TARGETS.get(w.name, (None, None))
            if smoke:
                continue
            if limit is not None:
                verdicts.append(f"{label} wall {wall:.3f} s <= {limit} s: {met(wall <= limit)}")
            if speedup is not None and equal:
                got = anchor_wall / wall
                verdicts.append(f"{label} {got:.1f}x the anchor >= {speedup:.0f}x: {met(got >= speedup)}")
            if w.name != "W5":
                verdicts.append(peak_verdict(label, rss))
            else:
                verdicts.append(f"{label} peak RSS {rss:.0f} MB (stated: a date is held whole)")
    for tool in bench.bins:
        label = "" if len(bench.bins) == 1 else f" [{tool}]"
        if ("W4", tool) in by_name and ("W2", tool) in by_name and not smoke:
            ratio = by_name[("W4", tool)][1] / by_name[("W2", tool)][1]
            verdicts.append(f"W4 peak RSS / W2 peak RSS{label} = {ratio:.2f} <= 1.2: {met(ratio <= 1.2)}")
        if ("W5", tool) in by_name and ("W2", tool) in by_name and not smoke:
            ratio = by_name[("W5", tool)][0] / by_name[("W2", tool)][0]
            verdicts.append(f"W5 wall / W2 wall{label} = {ratio:.1f} (16x the rows)")
    for w in workloads:
        if w.name not in ("W6", "S6"):
            continue
        if not storage_lines:
            storage_lines += [
                "| workload | binary | store | wall | CPU | peak RSS | requests | MB up | MB down | outputs "
                "| runs+warm-up | load |",
                "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---|",
            ]
        for key, ms in w.measures.items():
            tool, _, variant = key.partition(" ")
            wall, cpu, rss = median([m.wall for m in ms]), median([m.cpu for m in ms]), max(m.rss_mb for m in ms)
            stats = ms[-1].storage
            requests = f"{median([m.storage['requests'] for m in ms]):.0f}" if stats else ""
            up = f"{stats['up_bytes'] / 1e6:.1f}" if stats else ""
            down = f"{stats['down_bytes'] / 1e6:.1f}" if stats else ""
            equal = w.checks.get(tool) == "equal"
            all_equal &= equal
            loads = [m.load for m in ms]
            storage_lines.append(
                f"| {w.name} {w.title} | {tool} | Azurite, {variant} | {wall:.3f} s | {cpu:.2f} s | {rss:.0f} MB "
                f"| {requests} | {up} | {down} | {w.checks.get(tool)} | {w.runs}+{w.warmups} "
                f"| {min(loads):.1f}-{max(loads):.1f} |"
            )
            if smoke:
                continue
            label = "W6" if len(bench.bins) == 1 else f"W6 [{tool}]"
            if variant.startswith("proxy +0 "):
                direct = median([m.wall for m in w.measures[f"{tool} direct"]])
                verdicts.append(f"{label}: the proxy with 0 ms added costs {wall - direct:+.3f} s against Azurite "
                                f"direct ({direct:.3f} s)")
            elif variant.startswith("proxy"):
                verdicts.append(peak_verdict(label, rss))
                if ("W2", tool) in by_name:
                    w2 = by_name[("W2", tool)][0]
                    verdicts.append(
                        f"{label} wall {wall:.3f} s <= W2 {w2:.3f} s + {W6_OVER_W2_LIMIT} s: "
                        f"{met(wall <= w2 + W6_OVER_W2_LIMIT)} (W6 - W2 = {wall - w2:.3f} s)"
                    )
                storage_lines += ["", f"{key}, requests of its last run:", ""] + storage_breakdown(stats) + [""]
    for tool, start in starts.items():
        if not start:
            continue
        got = median(start) * 1000
        label = "" if len(bench.bins) == 1 else f" [{tool}]"
        text = f"handler start{label}: GET / answered {got:.1f} ms after spawn (median of {len(start)}; max {max(start) * 1000:.1f} ms)"
        verdicts.append(text + ("" if smoke else f" <= 20 ms: {met(got <= 20)}"))
    notes = [f"{w.name}: {w.note}" for w in workloads if w.note]
    return "\n".join(lines), storage_lines, verdicts + notes, all_equal


def main() -> None:
    parser = argparse.ArgumentParser(description="retail-ingest vs the Polars anchor")
    parser.add_argument("--bin", action="append",
                        help="[NAME=]PATH of a retail-ingest binary; repeat to measure several in the same rounds")
    parser.add_argument("--floor", default="target/release/examples/parse_floor")
    parser.add_argument("--proxy", default="target/release/examples/latency_proxy")
    parser.add_argument("--anchor", default="../shared/anchors/polars_pipeline.py")
    parser.add_argument("--work", default="target/bench")
    parser.add_argument("--real", default="../shared/data/real")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tool and workload (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument(
        "--heavy-runs", type=int, default=0,
        help="runs for W3-W5 without warm-up (their data was just read, so the page cache is warm); "
        "0: as --runs, with warm-up",
    )
    parser.add_argument("--anchor-once", action="store_true",
                        help="run the references in the last round only (their outputs are still checked): "
                        "for pairing two binaries, whose ratio to each other is the figure wanted")
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W2 (default: all)")
    parser.add_argument("--own-reference", choices=["none", "real", "all"], default="real",
                        help="where bench/reference_polars.py runs as a second column (default: W1, W2)")
    parser.add_argument("--w6-delay-ms", type=float, default=20.0, help="delay the proxy adds to each request in W6")
    parser.add_argument("--no-w6", action="store_true",
                        help="skip the Azurite workloads (W6 and SW's Azurite half; smoke S6 and SW's)")
    parser.add_argument("--no-start", action="store_true", help="skip the handler start measurement")
    parser.add_argument("--smoke", action="store_true", help="tiny data, one run, checks outputs match")
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    if args.no_w6 and args.only:
        args.only = ",".join(w for w in args.only.split(",") if w != "W6")

    bench = Bench(args)
    binaries = [f"- {name}: {describe_binary(path)}" for name, path in bench.bins.items()]
    log("measuring\n" + "\n".join(binaries))
    workloads = bench.workloads()
    for workload in workloads:
        bench.run_workload(workload)
    sweep = None
    if args.smoke or not args.only or "SW" in args.only.split(","):
        sweep = bench.run_sweep_workload(SW_SMOKE_DAYS if args.smoke else SW_DAYS, with_azurite=not args.no_w6)
    starts = {}
    if not args.no_start:
        for name, path in bench.bins.items():
            starts[name] = bench.handler_start(path, 1 if args.smoke else 10)

    rendered, storage, verdicts, all_equal = table(bench, workloads, starts, args.smoke)
    if sweep is not None:
        sweep_table, sweep_verdicts = sweep_lines(sweep, args.smoke)
        storage += sweep_table
        verdicts += sweep_verdicts
    machine = (f"{os.cpu_count()} cores; {os.uname().sysname} {os.uname().release}; "
               f"polars {__import__('polars').__version__}")
    text = "\n".join(
        [
            f"retail-ingest vs the Polars anchor ({machine}); wall and CPU are medians of the runs "
            f"(column runs+warm-up); peak RSS is the max over runs; load is the 1-minute load average "
            f"before each run (other work on the machine inflates wall times, not CPU times). "
            f"Binaries measured:",
            *binaries,
            "",
            *([rendered, ""] if workloads else []),
            *storage,
            *[f"- {v}" for v in verdicts],
        ]
    )
    print(text)
    (bench.work / ("smoke-results.md" if args.smoke else "results.md")).write_text(text + "\n")
    raw = {
        w.name: {tool: [m.__dict__ for m in ms] for tool, ms in w.measures.items()} | {"checks": w.checks}
        for w in workloads
    }
    if sweep is not None:
        raw["SW"] = {
            "days": sweep.days, "now": sweep.now,
            "prepare": {store: m.__dict__ for store, m in sweep.prepare.items()},
            "cases": [{"store": c.store, "kind": c.kind, "caused": c.caused,
                       "measures": [{k: v for k, v in m.__dict__.items() if k != "storage"}
                                    | ({"requests": m.storage["requests"], "up_bytes": m.storage["up_bytes"],
                                        "down_bytes": m.storage["down_bytes"]} if m.storage else {})
                                    for m in c.measures]}
                      for c in sweep.cases],
        }
    (bench.work / ("smoke-results.json" if args.smoke else "results.json")).write_text(json.dumps(raw, indent=1))
    if not all_equal:
        sys.exit("outputs differ from the anchor's: no ratio reported for those workloads")


if __name__ == "__main__":
    main()
