use object_store::memory::InMemory;

use super::*;
use crate::storage::blobs;

fn date() -> IngestDate {
    IngestDate::parse("2023-11-23").unwrap()
}

/// A fresh store whose date `run_id` holds, with `ttl` as the time-to-live.
async fn held(run_id: &str, ttl: Duration) -> (Arc<dyn ObjectStore>, Lock) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let lock = Lock::acquire(&store, LockScope::Date(date()), run_id, Duration::ZERO, ttl).await.unwrap();
    (store, lock)
}

async fn note(store: &Arc<dyn ObjectStore>) -> LockNote {
    let bytes = blobs::get(store, &paths::lock(date()), "read").await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_live_holder_keeps_its_lock_beyond_the_time_to_live() {
    let ttl = Duration::from_millis(300);
    let (store, held) = held("first", ttl).await;
    // Three time-to-lives later the holder has renewed: the lock is still not abandoned.
    tokio::time::sleep(ttl * 3).await;
    held.fence().check().expect("the holder's fence holds");
    let second =
        Lock::acquire(&store, LockScope::Date(date()), "second", Duration::from_millis(200), ttl).await;
    assert!(matches!(second, Err(PipelineError::Busy { ref holder, .. }) if holder == "first"));
    held.release().await;
    let released = note(&store).await;
    assert!(released.released && released.run_id == "first", "{released:?}");
    let third = Lock::acquire(&store, LockScope::Date(date()), "third", Duration::ZERO, ttl).await.unwrap();
    assert_eq!(note(&store).await.run_id, "third", "a released lock is taken at once");
    third.release().await;
    assert!(note(&store).await.released);
}

#[tokio::test]
async fn an_unreadable_lock_note_is_taken_over_at_once() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    store.put(&paths::lock(date()), "garbage".into()).await.unwrap();
    let started = Instant::now();
    let lock =
        Lock::acquire(&store, LockScope::Date(date()), "next", Duration::ZERO, Duration::from_secs(60))
            .await
            .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "taken over in {:?}", started.elapsed());
    lock.release().await;
}

#[tokio::test]
async fn a_dead_holders_lock_is_taken_over_after_the_time_to_live() {
    let ttl = Duration::from_millis(300);
    let (store, dead) = held("dead", ttl).await;
    // Dropped without release: the holder died (or lost its storage) mid-run.
    drop(dead);
    let started = Instant::now();
    let next =
        Lock::acquire(&store, LockScope::Date(date()), "next", Duration::from_secs(5), ttl).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "taken over in {:?}", started.elapsed());
    next.release().await;
}

#[tokio::test]
async fn of_runs_taking_over_one_expired_lock_at_once_exactly_one_holds_it() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let ttl = Duration::from_secs(60);
    let expired = LockNote { run_id: "dead".into(), expires_at: Utc::now(), released: false };
    store.put(&paths::lock(date()), note_bytes(&expired)).await.unwrap();
    let attempts = (0..6).map(|i| {
        let store = Arc::clone(&store);
        async move {
            Lock::acquire(
                &store,
                LockScope::Date(date()),
                &format!("run-{i}"),
                Duration::from_millis(300),
                ttl,
            )
            .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let holders: Vec<&Lock> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(holders.len(), 1, "one holder; the others were busy");
    assert_eq!(note(&store).await.run_id, holders[0].run_id);
    for result in &results {
        if let Err(error) = result {
            assert!(
                matches!(error, PipelineError::Busy { holder, .. } if *holder == holders[0].run_id),
                "{error}"
            );
        }
    }
}

#[tokio::test]
async fn a_holder_whose_lock_was_taken_over_finds_its_fence_down_and_leaves_the_lock_alone() {
    let ttl = Duration::from_millis(300);
    let (store, stale) = held("stale", ttl).await;
    let fence = stale.fence();
    // Another run writes the note as if it had found it expired.
    let taken = LockNote {
        run_id: "new".into(),
        expires_at: Utc::now() + chrono::Duration::hours(1),
        released: false,
    };
    store.put(&paths::lock(date()), note_bytes(&taken)).await.unwrap();
    // The next renewal (a third of the time-to-live) finds another version.
    tokio::time::sleep(ttl / 2).await;
    let error = fence.check().expect_err("the fence is down");
    assert!(
        matches!(&error, PipelineError::LockLost { holder, reason, .. } if holder == "stale" && reason.contains("run new took it over")),
        "{error}"
    );
    let written = fence.write(async { Ok::<_, PipelineError>(()) }).await;
    assert!(matches!(written, Err(PipelineError::LockLost { .. })), "no write after the loss");
    stale.release().await;
    let current = note(&store).await;
    assert!(current.run_id == "new" && !current.released, "the new holder's note is untouched: {current:?}");
}

#[tokio::test]
async fn a_files_lock_is_its_own_and_says_which_file_when_busy_or_lost() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let ttl = Duration::from_millis(300);
    let clients = || LockScope::File("clients.csv".to_owned());
    let first = Lock::acquire(&store, clients(), "first", Duration::ZERO, ttl).await.unwrap();
    // Another name, and the date, are other locks.
    let stores = LockScope::File("stores.csv".to_owned());
    let other = Lock::acquire(&store, stores, "second", Duration::ZERO, ttl).await.unwrap();
    let day = Lock::acquire(&store, LockScope::Date(date()), "second", Duration::ZERO, ttl).await.unwrap();
    let busy = Lock::acquire(&store, clients(), "second", Duration::from_millis(200), ttl).await.err();
    assert!(
        matches!(&busy, Some(PipelineError::FileBusy { file, holder, .. }) if file == "clients.csv" && holder == "first"),
        "{busy:?}"
    );
    // The holder dies: the lock is taken over after the time-to-live, and the dead
    // holder's fence is down with the file's name.
    let fence = first.fence();
    drop(first);
    let next = Lock::acquire(&store, clients(), "next", Duration::from_secs(5), ttl).await.unwrap();
    let lost = fence.check().expect_err("the dead holder's fence is down");
    assert!(
        matches!(&lost, PipelineError::FileLockLost { file, holder, .. } if file == "clients.csv" && holder == "first"),
        "{lost}"
    );
    assert!(lost.to_string().starts_with("clients.csv: first lost the file's lock"), "{lost}");
    let note = blobs::get(&store, &paths::file_lock("clients.csv"), "read").await.unwrap();
    assert_eq!(serde_json::from_slice::<LockNote>(&note).unwrap().run_id, "next");
    for lock in [next, other, day] {
        lock.release().await;
    }
}

#[tokio::test]
async fn a_write_still_in_flight_when_the_lease_runs_out_is_abandoned() {
    let ttl = Duration::from_millis(400);
    let (store, lock) = held("slow", ttl).await;
    // The renewals stop (as when storage hangs): the lease runs out three quarters of the
    // time-to-live after the last write of the note.
    lock.stop_renewing.cancel();
    let fence = lock.fence();
    let started = Instant::now();
    let hung = fence.write(async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok::<_, PipelineError>(())
    });
    let error = hung.await.expect_err("abandoned");
    assert!(
        matches!(&error, PipelineError::LockLost { reason, .. } if reason.contains("no renewal")),
        "{error}"
    );
    assert!(started.elapsed() < ttl, "abandoned after {:?}", started.elapsed());
    assert!(fence.check().is_err());
    // The release writes nothing: the note is left to expire.
    lock.release().await;
    assert!(!note(&store).await.released);
}

#[tokio::test]
async fn a_note_of_an_older_version_without_released_is_read() {
    let note: LockNote =
        serde_json::from_str(r#"{"run_id":"old","expires_at":"2023-11-24T09:12:01Z"}"#).unwrap();
    assert!(!note.released);
}
