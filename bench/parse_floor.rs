//! The bench's floor: read CSV files and run the contract's tokenizer over them, nothing else
//! (no header matching, no value parsing, no lookups, no output). `make bench` runs it over
//! the same bytes as each workload, with one thread per core like the pipeline, and prints how
//! far the pipeline is from it.
//!
//! `parse_floor FILE...` prints one JSON line: bytes, records, fields, seconds, threads.

use std::borrow::Cow;
use std::time::Instant;

use retail_ingest::contract::dialect::Tokenizer;
use retail_ingest::contract::file::decode_text;

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(files.len().max(1));
    let started = Instant::now();
    let totals = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                let files = &files;
                scope.spawn(move || {
                    let (mut bytes, mut records, mut fields_seen) = (0u64, 0u64, 0u64);
                    for path in files.iter().skip(worker).step_by(threads) {
                        let data = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
                        bytes += data.len() as u64;
                        let Ok(text) = decode_text(&data) else { continue };
                        let mut fields: Vec<Cow<'_, str>> = Vec::with_capacity(16);
                        let mut tokenizer = Tokenizer::new(text);
                        if tokenizer.header(&mut fields).is_none() {
                            continue;
                        }
                        while tokenizer.next_record(&mut fields).is_some() {
                            records += 1;
                            fields_seen += fields.len() as u64;
                        }
                    }
                    (bytes, records, fields_seen)
                })
            })
            .collect();
        workers.into_iter().fold((0u64, 0u64, 0u64), |acc, worker| {
            let (b, r, f) = worker.join().expect("a worker panicked");
            (acc.0 + b, acc.1 + r, acc.2 + f)
        })
    });
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"bytes\": {}, \"records\": {}, \"fields\": {}, \"seconds\": {seconds:.6}, \"threads\": {threads}}}",
        totals.0, totals.1, totals.2
    );
}
