"""The bench driver behind `make bench` and `make bench-smoke` (see mk/bench.mk, BENCHMARKS.md).

Runs each workload with retail-ingest and with the Polars reference (bench/reference_polars.py)
in the same invocation, interleaved, after a warm-up; checks that both wrote the same outputs
row for row (bench/compare.py) before it prints a ratio; measures wall time (here), CPU time
and peak RSS (from /usr/bin/time -v, i.e. the kernel's rusage of the whole process); and runs
the parse-only floor (bench/parse_floor.rs) over the same bytes.

Workloads (issue 4):
  W1  first day: empty output store, one real day (referentials parsed and formatted too)
  W2  next day: referentials already formatted and unchanged, one real day
  W3  8 days in one run: the 2 real days + 6 generated at the same size
  W4  30 generated days in one run
  W5  one generated day at 16x the real size
  start  `retail-ingest serve` answers GET / (time from spawn to the first response)

Data is generated once into WORK/data with the project's generator (`retail-ingest generate`)
and reused; `--regenerate` starts over. The real days come from --real when it exists;
otherwise a generated real-size stand-in is used, and the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compare import compare  # noqa: E402

REAL_DATES = ["2023-11-23", "2023-11-26"]
W3_GENERATED_FIRST = "2023-11-27"
W4_FIRST = "2024-01-01"
W5_DATE = "2024-03-01"
SMOKE_FIRST = "2023-11-23"


@dataclass
class Measure:
    wall: float
    cpu: float
    rss_mb: float


@dataclass
class Workload:
    name: str
    title: str
    landing: Path
    dates: list[str]
    # Dates already run (untimed) before each timed run: their outputs are the "previous day".
    prepared: list[str] = field(default_factory=list)
    fresh_referentials: bool = True
    note: str = ""
    ours: list[Measure] = field(default_factory=list)
    reference: list[Measure] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    runs: int = 0
    warmups: int = 0
    check: str = ""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(command: list[str], env: dict | None = None) -> Measure:
    """Runs `command` under /usr/bin/time -v; wall from here, CPU and peak RSS from rusage."""
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
    return Measure(wall, cpu, rss_mb)


def link_tree(source: Path, destination: Path, only=None) -> None:
    """Hard-links the files of `source` (no subfolders) into `destination`: a fresh landing
    container in no time. Safe: neither tool writes into its input files (object_store and
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


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bin = str(Path(args.bin).resolve())
        self.floor_bin = str(Path(args.floor).resolve())
        self.python = sys.executable
        self.reference = str(HERE / "reference_polars.py")
        self.work = Path(args.work).resolve()
        self.data = self.work / ("smoke-data" if args.smoke else "data")
        self.runs_dir = self.work / "runs"

    # ---------------------------------------------------------------- data

    def generate(self, folder: Path, first: str, days: int, *extra: str) -> None:
        stamp = folder / ".generated"
        wanted = f"{first} {days} {' '.join(extra)}"
        if stamp.exists() and stamp.read_text() == wanted and not self.args.regenerate:
            return
        shutil.rmtree(folder, ignore_errors=True)
        log(f"generating {days} day(s) from {first} {' '.join(extra)} into {folder}")
        subprocess.run(
            [self.bin, "generate", "--store", str(folder), "--first-date", first, "--days", str(days), *extra],
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
            chosen.append(Workload("S1", "smoke: first day", folder, [first]))
            chosen.append(Workload("S2", "smoke: next day", folder, [second], prepared=[first], fresh_referentials=False))
            return chosen
        wants = lambda name: only is None or name in only  # noqa: E731
        real, note = self.real_landing() if any(wants(w) for w in ["W1", "W2", "W3"]) else (None, "")
        if wants("W1"):
            chosen.append(Workload("W1", "first day (real)", real, [REAL_DATES[0]], note=note))
        if wants("W2"):
            chosen.append(
                Workload(
                    "W2", "next day (real)", real, [REAL_DATES[1]], prepared=[REAL_DATES[0]],
                    fresh_referentials=False, note=note,
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
                    "W3", "8 days in one run", landing, REAL_DATES + gen_dates,
                    note=(note or "2 real") + " + 6 generated days; generated ids are unknown to the real referentials",
                )
            )
        if wants("W4"):
            folder = self.data / "w4"
            self.generate(folder, W4_FIRST, 30, "--real-size")
            dates = sorted({p.name[13:23] for p in folder.glob("transactions_*.csv")})
            chosen.append(Workload("W4", "30 generated days in one run", folder, dates))
        if wants("W5"):
            folder = self.data / "w5"
            self.generate(folder, W5_DATE, 1, "--real-size", "--rows-per-file", "320000")
            chosen.append(Workload("W5", "one generated day, 16x real size", folder, [W5_DATE]))
        return chosen

    # ---------------------------------------------------------------- runs

    def fresh(self, workload: Workload, tool: str) -> Path:
        """A fresh store (ours: landing + outputs in one container) or output folder (Polars),
        with the workload's `prepared` dates already run."""
        base = self.runs_dir / f"{workload.name}-{tool}"
        prepared = base.with_name(base.name + "-prepared")
        if workload.prepared and prepared.exists():
            # The prepared state is made once; each run starts from a copy of it.
            shutil.rmtree(base, ignore_errors=True)
            shutil.copytree(prepared, base, copy_function=os.link)
            return base
        shutil.rmtree(base, ignore_errors=True)
        if tool == "ours":
            link_tree(workload.landing, base)
        else:
            base.mkdir(parents=True)
        if workload.prepared:
            subprocess.run(self.command(workload, tool, base, workload.prepared), check=True, stdout=subprocess.DEVNULL)
            shutil.rmtree(prepared, ignore_errors=True)
            # Links keep the landing files' inodes, so their ETags (inode, mtime, size) and the
            # referentials' notes stay valid; both tools replace files by renaming new ones, so
            # a timed run never changes the prepared copy.
            shutil.copytree(base, prepared, copy_function=os.link)
        return base

    def command(self, workload: Workload, tool: str, target: Path, dates: list[str]) -> list[str]:
        if tool == "ours":
            return [self.bin, "run", "--store", str(target), "--force", "--dates", *dates]
        return [self.python, self.reference, "--store", str(workload.landing), "--out", str(target), "--quiet",
                "--dates", *dates]

    def run_workload(self, workload: Workload) -> None:
        heavy = workload.name in ("W3", "W4", "W5")
        runs = 1 if self.args.smoke else (self.args.heavy_runs if heavy and self.args.heavy_runs else self.args.runs)
        warmups = 0 if self.args.smoke else (0 if heavy and self.args.heavy_runs else self.args.warmup)
        workload.runs, workload.warmups = runs, warmups
        log(f"{workload.name}: {workload.title}: {warmups} warm-up + {runs} run(s) of each tool")
        for index in range(warmups + runs):
            for tool in ("ours", "reference"):
                target = self.fresh(workload, tool)
                measure = timed(self.command(workload, tool, target, workload.dates))
                if index >= warmups:
                    (workload.ours if tool == "ours" else workload.reference).append(measure)
                log(f"  {tool:9} {measure.wall:7.3f} s wall  {measure.cpu:7.3f} s CPU  {measure.rss_mb:6.0f} MB")
        ours_store, reference_out = self.runs_dir / f"{workload.name}-ours", self.runs_dir / f"{workload.name}-reference"
        problems = compare(ours_store, reference_out, workload.dates)
        workload.check = "equal" if not problems else "MISMATCH"
        for problem in problems:
            log(f"  MISMATCH {problem}")
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

    def parsed_files(self, workload: Workload) -> list[Path]:
        """The CSV bytes the run must parse: its dates' transaction files, and the referentials
        when they are parsed fresh."""
        files = [
            p for p in sorted(workload.landing.glob("transactions_*.csv")) if p.name[13:23] in set(workload.dates)
        ]
        if workload.fresh_referentials:
            files += [workload.landing / f"{kind}.csv" for kind in ("clients", "stores", "products")]
        return files

    def handler_start(self, repeats: int) -> list[float]:
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
                [self.bin, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
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


TARGETS = {
    "W1": (0.5, 3.0),
    "W2": (0.15, 10.0),
    "W3": (None, 5.0),
    "W4": (None, 5.0),
    "S1": (None, None),
    "S2": (None, None),
    "W5": (None, None),
}


def median(values):
    return statistics.median(values) if values else float("nan")


def table(workloads: list[Workload], start: list[float], smoke: bool) -> tuple[str, list[str], bool]:
    lines = [
        "| workload | rows | CSV MB | ours wall | ours CPU | ours peak RSS | rows/s | MB/s | Polars wall | Polars CPU "
        "| Polars peak RSS | speed-up (wall; CPU) | floor wall | ours/floor | outputs | runs+warm-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    verdicts = []
    all_equal = True
    by_name = {}
    for w in workloads:
        ours_wall, ref_wall = median([m.wall for m in w.ours]), median([m.wall for m in w.reference])
        ours_cpu, ref_cpu = median([m.cpu for m in w.ours]), median([m.cpu for m in w.reference])
        ours_rss, ref_rss = max(m.rss_mb for m in w.ours), max(m.rss_mb for m in w.reference)
        floor = median(w.floor)
        equal = w.check == "equal"
        all_equal &= equal
        ratio = f"{ref_wall / ours_wall:.1f}x" if equal else "n/a (outputs differ)"
        by_name[w.name] = (ours_wall, ours_rss, ref_wall / ours_wall if equal else 0.0)
        mb = w.bytes / 1e6
        lines.append(
            f"| {w.name} {w.title} | {w.rows:,} | {mb:.1f} | {ours_wall:.3f} s | {ours_cpu:.2f} s | {ours_rss:.0f} MB "
            f"| {w.rows / ours_wall / 1e6:.2f} M | {mb / ours_wall:.0f} | {ref_wall:.3f} s | {ref_cpu:.2f} s "
            f"| {ref_rss:.0f} MB | **{ratio}** ({ref_cpu / max(ours_cpu, 0.01):.1f}x CPU) | {floor:.3f} s | {ours_wall / floor:.1f}x "
            f"| {w.check} | {w.runs}+{w.warmups} |"
        )
        limit, speedup = TARGETS.get(w.name, (None, None))
        if limit is not None:
            verdicts.append(f"{w.name} wall {ours_wall:.3f} s <= {limit} s: {'met' if ours_wall <= limit else 'MISSED'}")
        if speedup is not None and equal:
            got = ref_wall / ours_wall
            verdicts.append(f"{w.name} speed-up {got:.1f}x >= {speedup:.0f}x: {'met' if got >= speedup else 'MISSED'}")
        if w.name.startswith("W") and w.name != "W5":
            verdicts.append(f"{w.name} peak RSS {ours_rss:.0f} MB <= 200 MB: {'met' if ours_rss <= 200 else 'MISSED'}")
    if "W4" in by_name and "W2" in by_name:
        ratio = by_name["W4"][1] / by_name["W2"][1]
        verdicts.append(f"W4 peak RSS / W2 peak RSS = {ratio:.2f} <= 1.2: {'met' if ratio <= 1.2 else 'MISSED'}")
    if "W5" in by_name and "W2" in by_name:
        ratio = by_name["W5"][0] / by_name["W2"][0]
        verdicts.append(f"W5 wall / W2 wall = {ratio:.1f} <= 17.6 (16x the rows): {'met' if ratio <= 17.6 else 'MISSED'}")
        verdicts.append(f"W5 peak RSS {by_name['W5'][1]:.0f} MB (stated, see BENCHMARKS.md)")
    if start:
        got = median(start) * 1000
        label = f"handler start: GET / answered {got:.1f} ms after spawn (median of {len(start)}; max {max(start) * 1000:.1f} ms)"
        verdicts.append(label + ("" if smoke else f" <= 20 ms: {'met' if got <= 20 else 'MISSED'}"))
    notes = [f"{w.name}: {w.note}" for w in workloads if w.note]
    return "\n".join(lines), verdicts + notes, all_equal


def main() -> None:
    parser = argparse.ArgumentParser(description="retail-ingest vs the Polars reference")
    parser.add_argument("--bin", default="target/release/retail-ingest")
    parser.add_argument("--floor", default="target/release/examples/parse_floor")
    parser.add_argument("--work", default="target/bench")
    parser.add_argument("--real", default="../shared/data/real")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tool and workload (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument(
        "--heavy-runs", type=int, default=0,
        help="runs for W3-W5 without warm-up (their data was just read, so the page cache is warm); "
        "0: as --runs, with warm-up",
    )
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W2 (default: all)")
    parser.add_argument("--no-start", action="store_true", help="skip the handler start measurement")
    parser.add_argument("--smoke", action="store_true", help="tiny data, one run, checks outputs match")
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()

    bench = Bench(args)
    workloads = bench.workloads()
    for workload in workloads:
        bench.run_workload(workload)
    start = [] if args.no_start else bench.handler_start(1 if args.smoke else 10)

    rendered, verdicts, all_equal = table(workloads, start, args.smoke)
    machine = f"{os.cpu_count()} cores; {os.uname().sysname} {os.uname().release}; polars {__import__('polars').__version__}"
    text = "\n".join(
        [
            f"retail-ingest vs Polars reference ({machine}); wall and CPU are medians of the runs "
            f"(column runs+warm-up); peak RSS is the max over runs; load average at the end "
            f"{os.getloadavg()[0]:.1f} (other work on the machine inflates wall times, not CPU times)",
            "",
            rendered,
            "",
            *[f"- {v}" for v in verdicts],
        ]
    )
    print(text)
    (bench.work / ("smoke-results.md" if args.smoke else "results.md")).write_text(text + "\n")
    if not all_equal:
        sys.exit("outputs differ from the reference: no ratio reported for those workloads")


if __name__ == "__main__":
    main()
