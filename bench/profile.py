"""Where a binary's CPU and fresh memory go on W1 and W2 (`make bench-profile`; BENCHMARKS.md).

    profile.py --bin PATH [--work target/bench] [--runs 5] [--only W1,W2]

Uses the stores `make bench` prepared in WORK/runs (run it first, at least
BENCH_ARGS="--only W1,W2"): each run starts from a fresh copy, as in the bench. Records every
run with `perf record --call-graph dwarf`, once on `cpu-clock` (CPU samples) and once on
`page-faults` (every first touch of a page), and prints per function:

- self: the samples whose innermost frame is the function (kernel frames included: page
  clearing, the fault path);
- ours: each sample charged to the innermost frame of our crate (`retail_ingest::`) on its
  stack, so that a memcpy, a zstd call or a page fault counts for the function of ours that
  caused it; samples with no frame of ours (the runtime, thread start) go to their leaf.

The binary needs its symbols: a build with debug information, or a stripped one whose
`.debug` file is beside it (objcopy's debug link; `make package` keeps one).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DATES = {"W1": "2023-11-23", "W2": "2023-11-26"}
OURS = "retail_ingest::"


def prepare(work: Path, workload: str, target: Path) -> None:
    """A fresh store: W2 from the bench's prepared copy, W1 from the real landing alone."""
    shutil.rmtree(target, ignore_errors=True)
    if workload == "W2":
        prepared = next(iter(sorted(work.glob("runs/W2-*-prepared"))), None)
        if prepared is None:
            sys.exit(f"no {work}/runs/W2-*-prepared: run `make bench BENCH_ARGS=\"--only W1,W2\"` first")
        shutil.copytree(prepared, target, copy_function=os.link)
    else:
        landing = work / "data" / "real"
        if not landing.exists():
            sys.exit(f"no {landing}: run `make bench BENCH_ARGS=\"--only W1,W2\"` first")
        target.mkdir(parents=True)
        for entry in landing.iterdir():
            os.link(entry, target / entry.name)


def frames(script: str):
    """Yields one list of symbols per sample of `perf script` output, innermost first."""
    stack: list[str] = []
    for line in script.splitlines():
        if not line.strip():
            if stack:
                yield stack
            stack = []
            continue
        if line.startswith((" ", "\t")):
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                symbol = re.sub(r"\+0x[0-9a-f]+$", "", parts[1].rsplit(" (", 1)[0])
                stack.append(simplify(symbol))
    if stack:
        yield stack


def simplify(symbol: str) -> str:
    symbol = re.sub(r"::h[0-9a-f]{16}$", "", symbol)
    symbol = re.sub(r"<impl [^>]*>", "<impl>", symbol)
    return symbol[:140]


def record(binary: str, work: Path, workload: str, event: str, runs: int, scratch: Path) -> list[list[str]]:
    samples: list[list[str]] = []
    store = scratch / f"{workload}-store"
    for index in range(runs):
        prepare(work, workload, store)
        data = scratch / f"{workload}-{event}-{index}.data"
        options = ["-F", "2000"] if event == "cpu-clock" else ["-c", "1"]
        subprocess.run(
            ["perf", "record", "-q", "-e", event, *options, "--call-graph", "dwarf,32768", "-o", str(data), "--",
             binary, "run", "--store", str(store), "--force", "--dates", DATES[workload]],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        script = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip,sym,dso"], capture_output=True,
                                text=True, check=True).stdout
        samples += list(frames(script))
        data.unlink()
    return samples


def table(title: str, counter: collections.Counter, total: int, top: int) -> list[str]:
    lines = [f"{title} ({total:,} samples)", ""]
    for symbol, count in counter.most_common(top):
        lines.append(f"  {100 * count / total:5.1f} %  {symbol}")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--work", default="target/bench")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="W1,W2")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    binary, work = str(Path(args.bin).resolve()), Path(args.work).resolve()
    out: list[str] = [f"profile of {binary}, {args.runs} run(s) of each workload, load {os.getloadavg()[0]:.1f}", ""]
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        for workload in args.only.split(","):
            for event, what in (("cpu-clock", "CPU"), ("page-faults", "page faults")):
                samples = record(binary, work, workload, event, args.runs, Path(tmp))
                self_counts = collections.Counter(stack[0] for stack in samples)
                ours = collections.Counter(
                    next((s for s in stack if s.lstrip("<").startswith(OURS)), stack[0]) for stack in samples)
                out += table(f"{workload} {what}, by innermost function", self_counts, len(samples), args.top)
                out += table(f"{workload} {what}, charged to our innermost function", ours, len(samples), args.top)
    text = "\n".join(out)
    print(text)
    (work / "profile.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
