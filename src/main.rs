//! The `retail-ingest` binary: parse the command line, start telemetry, dispatch.

use std::process::ExitCode;

use clap::Parser;

// Allocator candidates for the musl build (Cargo features; BENCHMARKS.md, "The shipped build").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    malloc_tunables::apply();
    let cli = retail_ingest::cli::Cli::parse();
    retail_ingest::cli::main(cli)
}

/// Memory that stays flat across the dates of one run, with glibc's allocator.
///
/// With its defaults, glibc gives every thread that allocates its own arena (up to 8 per core)
/// and, once a large buffer has been freed, serves buffers up to that size from those arenas
/// instead of `mmap`: the space a date's buffers leave there is not returned, so a 30-date run
/// peaked at about twice one date's memory (BENCHMARKS.md, "Memory across dates"). One arena,
/// and `mmap` for every buffer of 4 MiB or more, keep it flat: the large buffers (a day's
/// columns, encoded files) go back to the system when freed, while the many 1–4 MiB ones (a
/// file's bytes, its parsed columns, Parquet pages) reuse the same heap pages from file to
/// file. Fresh pages are what cost most on a VM whose host reclaims freed memory (zeroing a
/// page the host must first fault in): a 1 MiB threshold with transparent huge pages, the
/// previous setting, touched three times as much fresh memory and was slower and far noisier
/// on a cached day (BENCHMARKS.md, third round).
///
/// No per-thread cache (`tcache`) either: glibc's heap shrinks only down to its highest chunk in
/// use, and each thread's cache keeps up to seven freed chunks of every small size "in use",
/// some of them high in the heap when a date ends. A process that had run one date kept that
/// date's heap resident, and the next date's peak came on top of it: 30 dates peaked at 1.25x
/// one date. Without the cache, and with nothing small of a date kept past it (`cli::run_dates`,
/// `schema::build_all`), the heap shrinks back between dates: 1.07x. The cache saved no
/// measurable time, all threads sharing one arena anyway (BENCHMARKS.md, "Memory across dates").
///
/// glibc reads these settings only at start-up, from `GLIBC_TUNABLES`, so the process
/// re-executes itself once with them (same PID, arguments and environment otherwise). When
/// `GLIBC_TUNABLES` is already set the operator's choice stands, and nothing is re-executed.
/// mimalloc and jemalloc as `#[global_allocator]` were measured too: both kept the memory of a
/// single date far higher than this (BENCHMARKS.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod malloc_tunables {
    use std::os::unix::process::CommandExt;

    const VARIABLE: &str = "GLIBC_TUNABLES";
    const TUNABLES: &str =
        "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=4194304:glibc.malloc.tcache_count=0";

    pub fn apply() {
        if std::env::var_os(VARIABLE).is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else { return };
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
        // `exec` returns only when it failed: then run on with glibc's defaults.
        let _failed = std::process::Command::new(&exe).arg0(arg0).args(args).env(VARIABLE, TUNABLES).exec();
    }
}
