//! Running a stage's tasks several at once while keeping their order.

use futures::{Stream, StreamExt, TryStreamExt};

use super::PipelineError;

/// Runs `tasks` up to `parallelism` at once and returns their results in the order of `tasks`
/// (or the first error). A task that is done frees its place for the next one at once: run in
/// order, a core idled behind each file that took longer than the one after it.
pub async fn join_ordered<T>(
    tasks: impl Stream<Item = impl Future<Output = Result<T, PipelineError>>>,
    parallelism: usize,
) -> Result<Vec<T>, PipelineError> {
    let mut done: Vec<(usize, T)> = tasks
        .enumerate()
        .map(|(index, task)| async move { task.await.map(|result| (index, result)) })
        .buffer_unordered(parallelism)
        .try_collect()
        .await?;
    done.sort_unstable_by_key(|(index, _)| *index);
    Ok(done.into_iter().map(|(_, result)| result).collect())
}
