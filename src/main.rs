//! The `retail-ingest` binary: parse the command line, start telemetry, dispatch.

use std::process::ExitCode;

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
    match retail_ingest::cli::Cli::from_args() {
        Ok(cli) => retail_ingest::cli::main(cli),
        Err(code) => code,
    }
}

/// glibc's allocator set so that memory stays flat across the dates of one run: one arena,
/// `mmap` for buffers of 4 MiB or more, no per-thread cache; and so that the encoders' page
/// buffers, freed and asked for again page after page, reuse the heap's freed top instead of
/// faulting in fresh memory: up to 64 MiB of it kept, grown 16 MiB at a time
/// (docs/configuration.md, "Memory settings"; why each, measured, in BENCHMARKS.md). glibc
/// reads these settings only at start-up, so the process re-executes itself once with them
/// (same PID, arguments and environment otherwise); an operator's own `GLIBC_TUNABLES` stands,
/// and nothing is re-executed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod malloc_tunables {
    use std::os::unix::process::CommandExt;

    const VARIABLE: &str = "GLIBC_TUNABLES";
    const TUNABLES: &str = concat!(
        "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=4194304:glibc.malloc.tcache_count=0",
        ":glibc.malloc.trim_threshold=67108864:glibc.malloc.top_pad=16777216"
    );

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
