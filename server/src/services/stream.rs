//! Resumable server streams: one task per subscriber reads the hub's history from its own
//! cursor and pushes into a bounded buffer. A consumer that stops reading for
//! `slow_consumer_ms`, or falls behind the history, is dropped with a clear status.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::auth::Slot;
use crate::error::ApiError;
use crate::hub::{Item, Pos};
use crate::services::Ctx;

/// Items read from the history per pass.
const READ_CHUNK: usize = 1_024;

pub type ItemStream<T> = ReceiverStream<Result<T, Status>>;

fn too_old(oldest: Pos) -> ApiError {
    ApiError::new(
        tonic::Code::OutOfRange,
        "RESUME_POINT_TOO_OLD",
        "after",
        format!(
            "the server keeps stream items from ({}, {}) on; re-read the state and start from now",
            oldest.0, oldest.1
        ),
    )
}

/// Starts a subscription after `after` (None: the oldest retained; `from_now`: only new).
pub fn subscribe<T, K, C>(
    ctx: &Ctx,
    after: Option<Pos>,
    from_now: bool,
    keep: K,
    convert: C,
    slot: Slot,
) -> Result<ItemStream<T>, ApiError>
where
    T: Send + 'static,
    K: Fn(&Item) -> bool + Send + 'static,
    C: Fn(&Item) -> Option<T> + Send + 'static,
{
    let hub = ctx.core.hub.clone();
    let mut latest = hub.subscribe();
    let mut cursor = if from_now {
        (hub.latest_seq(), u32::MAX)
    } else {
        after.unwrap_or_else(|| hub.oldest())
    };
    if after.is_some() && !from_now {
        hub.read_after(cursor, 0, |_| false)
            .map_err(|e| too_old(e.oldest))?;
    }
    // One slot more than the buffer: data never takes the last one, so the status that
    // explains why a stream ends always fits.
    let (tx, rx) = mpsc::channel(ctx.limits.stream_buffer + 1);
    let metrics = ctx.core.metrics.clone();
    let slow = Duration::from_millis(ctx.limits.slow_consumer_ms);
    let mut shutdown = ctx.shutdown.clone();
    metrics.streams_open.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let _slot = slot;
        loop {
            latest.borrow_and_update();
            let read = hub.read_after(cursor, READ_CHUNK, &keep);
            let (items, last): (Vec<Item>, Pos) = match read {
                Ok(r) => r,
                Err(e) => {
                    metrics
                        .slow_consumers_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    let _ = tx.try_send(Err(Status::from(ApiError::new(
                        tonic::Code::Unavailable,
                        "SLOW_CONSUMER",
                        "",
                        format!(
                            "the stream fell behind the server's history (oldest kept: {:?}); resume from your last position or re-read the state",
                            e.oldest
                        ),
                    ))));
                    break;
                }
            };
            let caught_up = items.is_empty();
            for item in &items {
                let Some(message) = convert(item) else {
                    continue;
                };
                match tokio::time::timeout(slow, tx.reserve_many(2)).await {
                    Ok(Ok(mut permits)) => {
                        if let Some(permit) = permits.next() {
                            permit.send(Ok(message));
                        }
                    }
                    Ok(Err(_)) => {
                        // The client went away.
                        metrics.streams_open.fetch_sub(1, Ordering::Relaxed);
                        return;
                    }
                    Err(_) => {
                        metrics
                            .slow_consumers_dropped
                            .fetch_add(1, Ordering::Relaxed);
                        let _ = tx.try_send(Err(Status::from(ApiError::new(
                            tonic::Code::Unavailable,
                            "SLOW_CONSUMER",
                            "",
                            "the client did not read the stream in time; resume from the last position received",
                        ))));
                        metrics.streams_open.fetch_sub(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
            cursor = cursor.max(last);
            if caught_up {
                tokio::select! {
                    changed = latest.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                    _ = shutdown.changed() => {
                        let _ = tx.try_send(Err(Status::unavailable("the server is shutting down; resume from the last position received")));
                        break;
                    }
                    () = tx.closed() => break,
                }
            }
        }
        metrics.streams_open.fetch_sub(1, Ordering::Relaxed);
    });
    Ok(ReceiverStream::new(rx))
}
