//! The sweep's table (contract section 9), as one pure function of what is known of a date:
//! its state, and the run to cause, if any.

use chrono::{DateTime, NaiveTime, Utc};

use crate::contract::IngestDate;
use crate::contract::overview::DateState;
use crate::contract::report::{Cause, RunReport, RunStatus};
use crate::pipeline::fingerprint::Fingerprint;

/// When a date is due, and what to do past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The time of the next day by which a date's files and marker are due (UTC).
    pub time: NaiveTime,
    /// Past the deadline, ingest a date whose files landed without a marker.
    pub ingest_without_marker: bool,
}

impl Deadline {
    /// The deadline of `date`: `time` on the next day.
    pub fn of(&self, date: IngestDate) -> DateTime<Utc> {
        let next = date.naive().succ_opt().unwrap_or(date.naive());
        next.and_time(self.time).and_utc()
    }
}

/// What is known of one date when the sweep decides.
pub struct Facts<'a> {
    /// The date.
    pub date: IngestDate,
    /// Its latest run's report, if it has one.
    pub latest: Option<&'a RunReport>,
    /// What a run would see now: the files as they land (present or quarantined earlier), the
    /// referential versions it would use.
    pub now: &'a Fingerprint,
    /// True when the date's end-of-transmission marker is present.
    pub marker: bool,
    /// The files the marker present now lists that are missing, as a run of it would find
    /// them, when the sweep read it (for a date whose latest run is `incomplete`: a marker sent
    /// again may list other files); `None`: not read, or unreadable, and the files the latest
    /// run found missing stand.
    pub marker_missing: Option<&'a [String]>,
    /// Why the marker present cannot be read, when the sweep read it (a date without run, or
    /// whose latest run is `incomplete`) and it is invalid: a marker run of it would fail.
    pub marker_invalid: Option<&'a str>,
    /// Names of the date's files present or quarantined earlier.
    pub files: &'a [String],
}

/// The sweep's verdict on one date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Where the date stands before the run this decision causes.
    pub state: DateState,
    /// The run to cause, and why; `None`: nothing to do.
    pub cause: Option<Cause>,
    /// Why the date needs a person (its state's reason), if it does.
    pub why: Option<String>,
}

impl Decision {
    fn new(state: DateState, cause: Option<Cause>, why: Option<String>) -> Self {
        Self { state, cause, why }
    }
}

/// Decides one date at `now` (the sweep's clock).
pub fn decide(facts: &Facts<'_>, deadline: &Deadline, now: DateTime<Utc>) -> Decision {
    let due = deadline.of(facts.date);
    let past_deadline = now >= due;
    let Some(latest) = facts.latest else { return without_run(facts, deadline, due, past_deadline) };
    let seen = Fingerprint::of_report(latest);
    match latest.status {
        RunStatus::Succeeded | RunStatus::Unchanged => {
            if facts.now.same_files(&seen) {
                Decision::new(DateState::Published, None, None)
            } else {
                Decision::new(DateState::Changed, Some(Cause::InputsChanged), None)
            }
        }
        RunStatus::Incomplete if facts.marker_invalid.is_some() => {
            let state = if past_deadline { DateState::Late } else { DateState::Incomplete };
            Decision::new(state, None, invalid_marker(facts, None))
        }
        RunStatus::Incomplete => {
            let still_missing: Vec<&str> = match facts.marker_missing {
                Some(missing) => missing.iter().map(String::as_str).collect(),
                None => {
                    let missing = latest.missing_files.as_deref().unwrap_or_default();
                    missing.iter().filter(|name| !facts.files.contains(name)).map(String::as_str).collect()
                }
            };
            if still_missing.is_empty() {
                if facts.marker {
                    return Decision::new(DateState::Incomplete, Some(Cause::MarkerRetry), None);
                }
                let why = "every file the marker listed has landed, but the marker is gone: upload it again or reingest the date";
                return Decision::new(DateState::Incomplete, None, Some(why.to_owned()));
            }
            let listed = format!("{} file(s) the marker lists", still_missing.len());
            if past_deadline {
                let why = format!(
                    "{listed} are still missing past the deadline {}: {}",
                    at(due),
                    still_missing.join(", ")
                );
                Decision::new(DateState::Late, None, Some(why))
            } else {
                let why = format!(
                    "{listed} have not landed yet (deadline {}): {}",
                    at(due),
                    still_missing.join(", ")
                );
                Decision::new(DateState::Incomplete, None, Some(why))
            }
        }
        RunStatus::Blocked | RunStatus::NoFiles => {
            let changed = !facts.now.same_files(&seen) || !facts.now.same_referentials(&seen);
            let cause = changed.then_some(Cause::InputsChanged);
            if latest.status == RunStatus::Blocked {
                let why =
                    latest.reason.clone().unwrap_or_else(|| "a referential has no usable version".to_owned());
                Decision::new(DateState::Blocked, cause, Some(why))
            } else {
                Decision::new(DateState::NoFiles, cause, None)
            }
        }
    }
}

/// A date that nothing has run yet.
fn without_run(facts: &Facts<'_>, deadline: &Deadline, due: DateTime<Utc>, past_deadline: bool) -> Decision {
    if facts.marker && facts.marker_invalid.is_none() {
        // Its marker's event was lost (or has not been delivered yet: the run takes the lock).
        return Decision::new(DateState::Pending, Some(Cause::MarkerRetry), None);
    }
    let decision = without_marker(facts, deadline, due, past_deadline);
    if facts.marker_invalid.is_some() {
        // A marker run would fail on every sweep: the date is as if it had none, and says why.
        let why = invalid_marker(facts, decision.why);
        return Decision { why, ..decision };
    }
    decision
}

/// Why a date with an invalid marker needs a person, before what else it needs.
fn invalid_marker(facts: &Facts<'_>, and: Option<String>) -> Option<String> {
    let error = facts.marker_invalid?;
    let why =
        format!("the marker eot_{}.txt is invalid ({error}): ask the retailer to send it again", facts.date);
    Some(match and {
        Some(and) => format!("{why}; {and}"),
        None => why,
    })
}

/// A date without run and without a usable marker.
fn without_marker(
    facts: &Facts<'_>,
    deadline: &Deadline,
    due: DateTime<Utc>,
    past_deadline: bool,
) -> Decision {
    let no_marker = if facts.marker_invalid.is_some() { "no valid marker" } else { "no marker" };
    match (facts.files.is_empty(), past_deadline) {
        (_, false) => Decision::new(DateState::Pending, None, None),
        (false, true) if deadline.ingest_without_marker => {
            Decision::new(DateState::AwaitingMarker, Some(Cause::NoMarker), None)
        }
        (false, true) => {
            let why = format!(
                "{} file(s) landed and {no_marker} came by the deadline {} (ingestion without marker is off)",
                facts.files.len(),
                at(due)
            );
            Decision::new(DateState::AwaitingMarker, None, Some(why))
        }
        (true, true) => {
            let why = format!("no transaction file and {no_marker} by the deadline {}", at(due));
            Decision::new(DateState::Missing, None, Some(why))
        }
    }
}

fn at(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::report::{InputReport, ReferentialReport};
    use crate::pipeline::fingerprint::FileVersion;

    const DAY: &str = "2023-11-24";
    const H8: &str = "transactions_2023-11-24_8.csv";
    const H20: &str = "transactions_2023-11-24_20.csv";
    const H9: &str = "transactions_2023-11-24_9.csv";

    fn deadline(ingest_without_marker: bool) -> Deadline {
        Deadline { time: NaiveTime::from_hms_opt(10, 0, 0).expect("a time"), ingest_without_marker }
    }

    /// Before the deadline (the next day, 09:00) and after it (11:00).
    fn before() -> DateTime<Utc> {
        "2023-11-25T09:00:00Z".parse().expect("a time")
    }

    fn after() -> DateTime<Utc> {
        "2023-11-25T11:00:00Z".parse().expect("a time")
    }

    fn run(status: RunStatus, inputs: &[(&str, &str)], referentials: &[(&str, &str)]) -> RunReport {
        let mut report = RunReport::example();
        report.date = IngestDate::parse(DAY).expect("a date");
        report.status = status;
        report.inputs = inputs
            .iter()
            .map(|&(name, etag)| InputReport {
                name: name.to_owned(),
                etag: etag.to_owned(),
                size: 10,
                ..InputReport::default()
            })
            .collect();
        report.referentials = referentials
            .iter()
            .map(|&(name, etag)| (name.to_owned(), ReferentialReport::example(etag)))
            .collect();
        report
    }

    fn now(files: &[(&str, &str)], referentials: &[(&str, &str)]) -> Fingerprint {
        Fingerprint {
            contract_version: crate::contract::CONTRACT_VERSION,
            files: files
                .iter()
                .map(|&(name, etag)| FileVersion { name: name.to_owned(), etag: etag.to_owned(), size: 10 })
                .collect(),
            referentials: referentials.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())).collect(),
        }
    }

    struct Case<'a> {
        latest: Option<RunReport>,
        files: &'a [(&'a str, &'a str)],
        referentials: &'a [(&'a str, &'a str)],
        marker: bool,
        marker_missing: Option<&'a [String]>,
        marker_invalid: Option<&'a str>,
        at: DateTime<Utc>,
        ingest_without_marker: bool,
    }

    impl Case<'_> {
        fn decide(&self) -> Decision {
            let now = now(self.files, self.referentials);
            let names: Vec<String> = self.files.iter().map(|(name, _)| (*name).to_owned()).collect();
            let facts = Facts {
                date: IngestDate::parse(DAY).expect("a date"),
                latest: self.latest.as_ref(),
                now: &now,
                marker: self.marker,
                marker_missing: self.marker_missing,
                marker_invalid: self.marker_invalid,
                files: &names,
            };
            decide(&facts, &deadline(self.ingest_without_marker), self.at)
        }
    }

    fn case<'a>(latest: Option<RunReport>, files: &'a [(&'a str, &'a str)]) -> Case<'a> {
        Case {
            latest,
            files,
            referentials: &[("clients", "c1")],
            marker: false,
            marker_missing: None,
            marker_invalid: None,
            at: after(),
            ingest_without_marker: false,
        }
    }

    const CLIENTS: &[(&str, &str)] = &[("clients", "c1")];

    #[test]
    fn a_published_date_whose_files_are_what_its_latest_run_saw_causes_nothing() {
        let latest = run(RunStatus::Succeeded, &[(H8, "a")], CLIENTS);
        let decision = case(Some(latest), &[(H8, "a")]).decide();
        assert_eq!(decision, Decision { state: DateState::Published, cause: None, why: None });
    }

    #[test]
    fn a_file_added_replaced_or_removed_after_publication_runs_the_date_again() {
        for files in [&[(H8, "a"), (H20, "b")][..], &[(H8, "a2")], &[]] {
            let latest = run(RunStatus::Unchanged, &[(H8, "a")], CLIENTS);
            let decision = case(Some(latest), files).decide();
            assert_eq!(
                (decision.state, decision.cause),
                (DateState::Changed, Some(Cause::InputsChanged)),
                "{files:?}"
            );
        }
    }

    #[test]
    fn a_referential_change_alone_causes_nothing_for_a_published_date() {
        let latest = run(RunStatus::Succeeded, &[(H8, "a")], CLIENTS);
        let mut changed = case(Some(latest), &[(H8, "a")]);
        changed.referentials = &[("clients", "c2")];
        assert_eq!(changed.decide().cause, None);
    }

    #[test]
    fn an_incomplete_date_whose_listed_files_landed_is_retried_as_a_marker_run() {
        let mut latest = run(RunStatus::Incomplete, &[], &[]);
        latest.missing_files = Some(vec![H20.to_owned()]);
        let mut landed = case(Some(latest.clone()), &[(H8, "a"), (H20, "b")]);
        landed.marker = true;
        assert_eq!(landed.decide().cause, Some(Cause::MarkerRetry));

        let mut still_missing = case(Some(latest.clone()), &[(H8, "a")]);
        still_missing.marker = true;
        let late = still_missing.decide();
        assert_eq!((late.state, late.cause), (DateState::Late, None));
        assert!(
            late.why.as_deref().is_some_and(|why| why.contains(H20) && why.contains("2023-11-25 10:00 UTC"))
        );
        still_missing.at = before();
        let incomplete = still_missing.decide();
        assert_eq!((incomplete.state, incomplete.cause), (DateState::Incomplete, None));

        let mut marker_gone = case(Some(latest), &[(H8, "a"), (H20, "b")]);
        marker_gone.marker = false;
        assert_eq!(marker_gone.decide().cause, None, "no marker to retry");
    }

    #[test]
    fn a_marker_sent_again_decides_by_what_it_misses_now() {
        let mut latest = run(RunStatus::Incomplete, &[], &[]);
        latest.missing_files = Some(vec![H20.to_owned()]);
        // The retailer corrects the marker: the hour-20 file will never come, and it lists
        // nothing that is missing.
        let mut retried = case(Some(latest), &[(H8, "a")]);
        retried.marker = true;
        retried.marker_missing = Some(&[]);
        let decision = retried.decide();
        assert_eq!((decision.state, decision.cause), (DateState::Incomplete, Some(Cause::MarkerRetry)));
        // A marker sent again that lists a file still missing keeps the date late, naming it.
        let other = [H9.to_owned()];
        retried.marker_missing = Some(&other);
        let late = retried.decide();
        assert_eq!((late.state, late.cause), (DateState::Late, None));
        assert!(late.why.as_deref().is_some_and(|why| why.contains(H9) && !why.contains(H20)), "{late:?}");
    }

    #[test]
    fn a_marker_with_no_run_is_run_as_a_marker_run() {
        for at in [before(), after()] {
            let mut lost = case(None, &[(H8, "a")]);
            lost.marker = true;
            lost.at = at;
            assert_eq!(lost.decide().cause, Some(Cause::MarkerRetry));
        }
    }

    #[test]
    fn an_invalid_marker_is_not_run_again_and_needs_a_person() {
        let invalid = "line 1: '{\"files\"' is not a transaction file name";
        let expected = |state, and: &str| Decision {
            state,
            cause: None,
            why: Some(format!(
                "the marker eot_{DAY}.txt is invalid ({invalid}): ask the retailer to send it again{and}"
            )),
        };
        let mut lost = case(None, &[(H8, "a")]);
        (lost.marker, lost.marker_invalid, lost.at) = (true, Some(invalid), before());
        assert_eq!(lost.decide(), expected(DateState::Pending, ""));
        lost.at = after();
        let awaiting = "; 1 file(s) landed and no valid marker came by the deadline 2023-11-25 10:00 UTC \
                        (ingestion without marker is off)";
        assert_eq!(lost.decide(), expected(DateState::AwaitingMarker, awaiting));
        lost.ingest_without_marker = true;
        assert_eq!(lost.decide().cause, Some(Cause::NoMarker), "past the deadline, as without marker");

        let mut resent = case(Some(run(RunStatus::Incomplete, &[(H8, "a")], CLIENTS)), &[(H8, "a")]);
        (resent.marker, resent.marker_invalid, resent.at) = (true, Some(invalid), before());
        assert_eq!(resent.decide(), expected(DateState::Incomplete, ""));
        resent.at = after();
        assert_eq!(resent.decide(), expected(DateState::Late, ""));
    }

    #[test]
    fn a_date_that_published_nothing_runs_again_when_its_files_or_referentials_change() {
        for status in [RunStatus::Blocked, RunStatus::NoFiles] {
            let latest = run(status, &[(H8, "a")], CLIENTS);
            let same = case(Some(latest.clone()), &[(H8, "a")]).decide();
            assert_eq!(same.cause, None, "{status:?}");
            let mut referential = case(Some(latest.clone()), &[(H8, "a")]);
            referential.referentials = &[("clients", "c1"), ("stores", "s1")];
            assert_eq!(referential.decide().cause, Some(Cause::InputsChanged), "{status:?}");
            let files = case(Some(latest), &[(H8, "a"), (H20, "b")]).decide();
            assert_eq!(files.cause, Some(Cause::InputsChanged), "{status:?}");
        }
        let mut blocked = run(RunStatus::Blocked, &[], CLIENTS);
        blocked.reason = Some("stores.csv is absent and no formatted copy exists".to_owned());
        let decision = case(Some(blocked), &[]).decide();
        assert_eq!(decision.state, DateState::Blocked);
        assert_eq!(decision.why.as_deref(), Some("stores.csv is absent and no formatted copy exists"));
    }

    #[test]
    fn files_without_marker_wait_for_the_deadline_then_wait_for_a_person_or_are_ingested() {
        let mut pending = case(None, &[(H8, "a")]);
        pending.at = before();
        assert_eq!(pending.decide(), Decision { state: DateState::Pending, cause: None, why: None });
        let awaiting = case(None, &[(H8, "a")]).decide();
        assert_eq!((awaiting.state, awaiting.cause), (DateState::AwaitingMarker, None));
        assert!(awaiting.why.is_some());
        let mut ingest = case(None, &[(H8, "a")]);
        ingest.ingest_without_marker = true;
        assert_eq!(ingest.decide().cause, Some(Cause::NoMarker));
    }

    #[test]
    fn a_date_with_nothing_is_missing_past_its_deadline() {
        let missing = case(None, &[]).decide();
        assert_eq!((missing.state, missing.cause), (DateState::Missing, None));
        let mut early = case(None, &[]);
        early.at = before();
        assert_eq!(early.decide().state, DateState::Pending);
        let deadline = deadline(false).of(IngestDate::parse("2024-02-28").expect("a date"));
        assert_eq!(deadline.to_rfc3339(), "2024-02-29T10:00:00+00:00", "the next day, leap day included");
    }
}
