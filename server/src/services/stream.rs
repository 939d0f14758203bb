//! Resumable server streams: one task per subscriber reads the hub's history from its own
//! cursor and pushes into a bounded buffer. A consumer that stops reading for
//! `slow_consumer_ms`, or falls behind the history, is dropped with a clear status.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::auth::Slot;
use crate::error::ApiError;
use crate::hub::{Hub, Item, Pos};
use crate::metrics::Metrics;
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

/// A slow consumer's status: it fell behind the history, or did not read in time.
fn slow_consumer(why: String) -> Status {
    Status::from(ApiError::new(
        tonic::Code::Unavailable,
        "SLOW_CONSUMER",
        "",
        why,
    ))
}

/// Counts a stream open for as long as it lives.
struct OpenStream(Arc<Metrics>);

impl OpenStream {
    fn new(metrics: Arc<Metrics>) -> OpenStream {
        metrics.streams_open.fetch_add(1, Ordering::Relaxed);
        OpenStream(metrics)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.streams_open.fetch_sub(1, Ordering::Relaxed);
    }
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
    let cursor = if from_now {
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
    let pump = Pump {
        hub,
        tx,
        slow: Duration::from_millis(ctx.limits.slow_consumer_ms),
        open: OpenStream::new(ctx.core.metrics.clone()),
        _slot: slot,
    };
    tokio::spawn(pump.run(cursor, keep, convert, ctx.shutdown.clone()));
    Ok(ReceiverStream::new(rx))
}

/// One subscriber's task: reads the history from its cursor into its buffer.
struct Pump<T> {
    hub: Arc<Hub>,
    tx: mpsc::Sender<Result<T, Status>>,
    slow: Duration,
    open: OpenStream,
    _slot: Slot,
}

impl<T: Send + 'static> Pump<T> {
    async fn run(
        self,
        mut cursor: Pos,
        keep: impl Fn(&Item) -> bool,
        convert: impl Fn(&Item) -> Option<T>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut latest = self.hub.subscribe();
        loop {
            latest.borrow_and_update();
            let (items, last) = match self.hub.read_after(cursor, READ_CHUNK, &keep) {
                Ok(read) => read,
                Err(e) => {
                    self.drop_slow(format!(
                        "the stream fell behind the server's history (oldest kept: {:?}); resume from your last position or re-read the state",
                        e.oldest
                    ));
                    return;
                }
            };
            for item in &items {
                let Some(message) = convert(item) else {
                    continue;
                };
                if !self.send(message).await {
                    return;
                }
            }
            cursor = cursor.max(last);
            if items.is_empty() {
                tokio::select! {
                    changed = latest.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    _ = shutdown.changed() => {
                        let _ = self.tx.try_send(Err(Status::unavailable("the server is shutting down; resume from the last position received")));
                        return;
                    }
                    () = self.tx.closed() => return,
                }
            }
        }
    }

    /// Sends one message within the slow-consumer window; false when the stream ends
    /// (the client went away, or did not read in time).
    async fn send(&self, message: T) -> bool {
        match tokio::time::timeout(self.slow, self.tx.reserve_many(2)).await {
            Ok(Ok(mut permits)) => {
                if let Some(permit) = permits.next() {
                    permit.send(Ok(message));
                }
                true
            }
            // The client went away.
            Ok(Err(_)) => false,
            Err(_) => {
                self.drop_slow(
                    "the client did not read the stream in time; resume from the last position received"
                        .into(),
                );
                false
            }
        }
    }

    fn drop_slow(&self, why: String) {
        self.open
            .0
            .slow_consumers_dropped
            .fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.try_send(Err(slow_consumer(why)));
    }
}
