//! `quarantine list` and `quarantine release NAME`: what sits in `error/`, and putting a file
//! back into the landing container so that the next run ingests it (after raising
//! `INGEST_MAX_REJECT_RATIO`, say, or when the retailer confirms the file).

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{open_store, print};
use crate::pipeline::quarantine::{self, Leftovers, QuarantinedFile, ReleaseError, Released};

#[derive(Debug, Subcommand)]
pub(super) enum QuarantineCommand {
    /// Every quarantined file: name, date, rule, rows, when, reason.
    List(ListArgs),
    /// Put a quarantined file back into the landing container (verified), then remove it and
    /// its note from error/ (a max_reject_ratio file: error/NAME.released.json records the
    /// release, and runs keep that version whatever its ratio); the next sweep or run ingests
    /// it.
    Release(ReleaseArgs),
}

#[derive(Debug, Args)]
pub(super) struct Location {
    /// The store: a local directory, or azure://<container> with credentials in the
    /// environment. Env: INGEST_STORE. Default: ./ingest-store.
    #[arg(long, value_name = "DIR|azure://CONTAINER")]
    store: Option<String>,
    /// Prefix of the landing files inside the store.
    #[arg(long, env = "INGEST_PREFIX", default_value = "", hide_default_value = true, value_parser = super::parse_prefix)]
    prefix: String,
}

#[derive(Debug, Args)]
pub(super) struct ListArgs {
    #[command(flatten)]
    location: Location,
    /// Print the notes as a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(super) struct ReleaseArgs {
    /// The quarantined file's name, as it landed (e.g. transactions_2023-11-23_14.csv).
    name: String,
    #[command(flatten)]
    location: Location,
}

pub(super) async fn quarantine(command: QuarantineCommand) -> anyhow::Result<ExitCode> {
    match command {
        QuarantineCommand::List(args) => list(args).await,
        QuarantineCommand::Release(args) => release(args).await,
    }
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let (store, _) = open_store(args.location.store.as_deref()).await?;
    let files = match quarantine::list(&store, &args.location.prefix).await {
        Ok(files) => files,
        Err(error) => {
            eprintln!("failed: {error}");
            return Ok(ExitCode::from(1));
        }
    };
    if args.json {
        print(&format!("{}\n", serde_json::to_string_pretty(&files)?));
        return Ok(ExitCode::SUCCESS);
    }
    let leftovers = match quarantine::leftovers(&store).await {
        Ok(leftovers) => leftovers,
        Err(error) => {
            eprintln!("failed: {error}");
            return Ok(ExitCode::from(1));
        }
    };
    print(&format!("{}{}", table(&files), leftover_lines(&leftovers)));
    Ok(ExitCode::SUCCESS)
}

/// What `error/`'s folders keep, which no run removes: a line each, when not empty.
fn leftover_lines(leftovers: &Leftovers) -> String {
    let mut out = String::new();
    let Leftovers { superseded, incoming } = leftovers;
    if superseded.files > 0 {
        let _ = writeln!(
            out,
            "error/superseded/ keeps {} earlier version(s) of quarantined files ({} bytes): records, delete them when no longer needed",
            superseded.files, superseded.bytes
        );
    }
    if incoming.files > 0 {
        let _ = writeln!(
            out,
            "error/incoming/ holds {} staged copy(ies) ({} bytes) left by runs that stopped midway (or under way): safe to delete when no run is",
            incoming.files, incoming.bytes
        );
    }
    out
}

/// One line per note; the reason last, since it is the long column.
fn table(files: &[QuarantinedFile]) -> String {
    let mut out = String::new();
    if files.is_empty() {
        out.push_str("no quarantined file (error/ holds no note)\n");
        return out;
    }
    let width = files.iter().map(|file| file.name.len()).max().unwrap_or(0).max("name".len());
    let _ = writeln!(
        out,
        "{:<width$}  {:<10}  {:<16}  {:>8}  {:<17}  reason",
        "name", "date", "rule", "rows", "when"
    );
    for file in files {
        let date = file.date().map_or_else(|| "-".to_owned(), |date| date.to_string());
        let mut remarks = Vec::new();
        if file.lands_again {
            remarks.push("lands again: the retailer sent it again".to_owned());
        }
        if !file.copy_present {
            remarks.push("no copy in error/".to_owned());
        }
        if let Some(earlier) = file.note.as_ref().and_then(|note| note.supersedes.as_ref()) {
            remarks.push(format!("the version quarantined before it is kept in {earlier}/"));
        }
        let remarks = if remarks.is_empty() { String::new() } else { format!(" [{}]", remarks.join("; ")) };
        match (&file.note, &file.unreadable) {
            (Some(note), _) => {
                let when = note.quarantined_at.format("%Y-%m-%d %H:%M").to_string();
                let _ = writeln!(
                    out,
                    "{:<width$}  {date:<10}  {:<16}  {:>8}  {when:<17}  {}{remarks}",
                    file.name, note.rule, note.rows, note.reason
                );
            }
            (None, unreadable) => {
                let why = unreadable.as_deref().unwrap_or("unreadable");
                let _ = writeln!(
                    out,
                    "{:<width$}  {date:<10}  {:<16}  {:>8}  {:<17}  {} is unreadable: {why}{remarks}",
                    file.name, "?", "?", "?", file.note_path
                );
            }
        }
    }
    let _ = writeln!(out, "{} file(s); `retail-ingest quarantine release NAME` puts one back", files.len());
    out
}

async fn release(args: ReleaseArgs) -> anyhow::Result<ExitCode> {
    let (store, _) = open_store(args.location.store.as_deref()).await?;
    match quarantine::release(&store, &args.location.prefix, &args.name).await {
        Ok(released) => {
            print(&released_line(&released));
            Ok(ExitCode::SUCCESS)
        }
        Err(stop) if stop.is_stop() => {
            eprintln!("failed: {stop}");
            Ok(ExitCode::from(1))
        }
        Err(refusal) => {
            eprintln!("refused: {refusal}");
            // A name that can never land is a usage error; the others are the store's state.
            let usage = matches!(refusal, ReleaseError::NotAFileName { .. });
            Ok(ExitCode::from(if usage { 2 } else { 1 }))
        }
    }
}

fn released_line(released: &Released) -> String {
    let next = match released.date {
        Some(date) => format!("the next `sweep` or `run --dates {date}` ingests it"),
        None => "the next run of any date formats it (a referential alone causes no sweep run)".to_owned(),
    };
    let kept = match &released.release_note {
        Some(note) => format!("; {note} keeps this version whatever its reject ratio"),
        None => String::new(),
    };
    let earlier = match &released.supersedes {
        Some(folder) => format!("; the version quarantined before it stays in {folder}/"),
        None => String::new(),
    };
    format!(
        "released {}: back at {} ({} bytes, {} rows, verified; quarantined for {}), {} and {} removed{kept}{earlier}; {next}\n",
        released.name,
        released.landing_path,
        released.bytes,
        released.rows,
        released.rule,
        released.removed[0],
        released.removed[1],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(date: Option<&str>, supersedes: Option<&str>) -> Released {
        Released {
            name: "stores.csv".to_owned(),
            date: date.and_then(|date| crate::contract::IngestDate::parse(date).ok()),
            rule: "invalid_header".to_owned(),
            rows: 3,
            bytes: 120,
            landing_path: "stores.csv".to_owned(),
            removed: ["error/stores.csv.error.json".to_owned(), "error/stores.csv".to_owned()],
            release_note: None,
            supersedes: supersedes.map(str::to_owned),
        }
    }

    #[test]
    fn the_list_says_what_error_keeps_in_its_folders_only_when_they_hold_something() {
        use crate::pipeline::quarantine::FolderUse;
        assert_eq!(leftover_lines(&Leftovers::default()), "");
        let leftovers = Leftovers {
            superseded: FolderUse { files: 2, bytes: 4452 },
            incoming: FolderUse { files: 1, bytes: 20 },
        };
        assert_eq!(
            leftover_lines(&leftovers),
            "error/superseded/ keeps 2 earlier version(s) of quarantined files (4452 bytes): records, delete them when no longer needed\n\
             error/incoming/ holds 1 staged copy(ies) (20 bytes) left by runs that stopped midway (or under way): safe to delete when no run is\n"
        );
    }

    #[test]
    fn a_release_says_where_the_version_quarantined_before_it_stays() {
        let line = released_line(&released(None, Some("error/superseded/20231124T091500.000Z-0a1b2c3d")));
        assert!(
            line.contains("; the version quarantined before it stays in error/superseded/20231124T091500.000Z-0a1b2c3d/;"),
            "{line}"
        );
        assert!(!released_line(&released(None, None)).contains("quarantined before"));
    }
}
