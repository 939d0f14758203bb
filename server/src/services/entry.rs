//! The `OrderEntry` stream's plumbing: one reader task per stream and a reply stream that
//! hyper polls directly.
//!
//! ```text
//! client --requests--> reader task: check, submit to the core, queue a Pending (in order)
//!                                      |
//! dispatcher --applied, 1-2 wake/batch--> ReplySink ---+
//!                                                      v
//! client <--replies-- EntryReplies (polled by hyper): next Pending + its Applied -> reply
//! ```
//! No channel or task sits between the dispatcher and the connection: the dispatcher wakes
//! the task that writes the HTTP/2 stream, and that task builds each reply as it sends it.
//! At most `limit` requests are queued per stream (`limits.in_flight_per_connection`); the
//! reader stops reading (and HTTP/2 flow control holds the client back) until replies go out.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use engine::OrderId;
use parking_lot::Mutex;
use proto::v1 as pb;
use tonic::Status;

use crate::auth::Slot;
use crate::catalog::Catalog;
use crate::core::{Applied, ReplySink};
use crate::error::ApiError;
use crate::services::convert::order_reply;

/// One request of the stream, in the order the client sent it.
#[derive(Debug)]
pub enum Pending {
    /// Answered without reaching the core (refused by the gateway).
    Ready(pb::OrderEntryReply),
    /// Submitted: its result arrives in the stream's reply sink, in submission order.
    Waiting {
        correlation_id: u64,
        order: Option<OrderId>,
        _slot: Slot,
    },
    /// The request stream failed (e.g. a malformed frame): this status ends the replies.
    Failed(Status),
}

#[derive(Debug, Default)]
struct State {
    pending: VecDeque<Pending>,
    /// No more requests will come (the client half-closed, or the stream failed).
    reader_done: bool,
    /// The reply stream is gone (the client went away): the reader stops.
    replies_dropped: bool,
    /// The reply stream waits for a request to answer.
    replies_waker: Option<Waker>,
    /// The reader waits for room in `pending`.
    reader_waker: Option<Waker>,
}

/// What the reader and the reply stream of one `OrderEntry` call share.
#[derive(Debug)]
pub struct Entry {
    state: Mutex<State>,
    pub sink: Arc<ReplySink>,
    limit: usize,
}

fn register(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

impl Entry {
    pub fn new(limit: usize) -> Arc<Entry> {
        Arc::new(Entry {
            state: Mutex::new(State::default()),
            sink: Arc::new(ReplySink::default()),
            limit: limit.max(1),
        })
    }

    /// Waits until another request may be queued; false once the replies are gone.
    pub async fn room(&self) -> bool {
        std::future::poll_fn(|cx| {
            let mut state = self.state.lock();
            if state.replies_dropped {
                Poll::Ready(false)
            } else if state.pending.len() < self.limit {
                Poll::Ready(true)
            } else {
                register(&mut state.reader_waker, cx.waker());
                Poll::Pending
            }
        })
        .await
    }

    /// Queues a request's reply-to-be (after `room`).
    pub fn push(&self, pending: Pending) {
        let waker = {
            let mut state = self.state.lock();
            if matches!(pending, Pending::Failed(_)) {
                state.reader_done = true;
            }
            // The replies wait here only while nothing is queued.
            let waker = if state.pending.is_empty() {
                state.replies_waker.take()
            } else {
                None
            };
            let waiting = matches!(pending, Pending::Waiting { .. });
            state.pending.push_back(pending);
            waker.map(|w| (w, waiting))
        };
        match waker {
            // A submitted request can only be answered once its result is in the sink:
            // the replies now wait there (woken at once if it already is).
            Some((w, true)) => self.sink.register_or_wake(w),
            Some((w, false)) => w.wake(),
            None => {}
        }
    }

    /// No more requests: the replies end once every queued one is answered.
    pub fn finish(&self) {
        let waker = {
            let mut state = self.state.lock();
            state.reader_done = true;
            state.replies_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The reply half of an `OrderEntry` call, polled by the HTTP/2 stream's task.
#[derive(Debug)]
pub struct EntryReplies {
    entry: Arc<Entry>,
    catalog: Arc<Catalog>,
    /// Results taken from the sink, not yet matched with their request.
    applied: VecDeque<Applied>,
    /// Event buffers of answered results, emptied, to give back to the sink.
    spare: Vec<Vec<engine::Event>>,
    ended: bool,
}

impl EntryReplies {
    pub fn new(entry: Arc<Entry>, catalog: Arc<Catalog>) -> EntryReplies {
        EntryReplies {
            entry,
            catalog,
            applied: VecDeque::new(),
            spare: Vec::new(),
            ended: false,
        }
    }
}

enum Next {
    Reply(pb::OrderEntryReply),
    Answer {
        correlation_id: u64,
        order: Option<OrderId>,
        applied: Applied,
    },
    Failed(Status),
    End,
    Wait,
}

impl tokio_stream::Stream for EntryReplies {
    type Item = Result<pb::OrderEntryReply, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        let (next, reader) = {
            let mut state = this.entry.state.lock();
            let sink = &this.entry.sink;
            let next = next_of(&mut state, sink, &mut this.applied, &mut this.spare, cx);
            let reader = if matches!(next, Next::Reply(_) | Next::Answer { .. }) {
                state.reader_waker.take()
            } else {
                None
            };
            (next, reader)
        };
        if let Some(w) = reader {
            w.wake();
        }
        match next {
            Next::Wait => Poll::Pending,
            Next::End => {
                this.ended = true;
                Poll::Ready(None)
            }
            Next::Failed(status) => {
                this.ended = true;
                Poll::Ready(Some(Err(status)))
            }
            Next::Reply(reply) => Poll::Ready(Some(Ok(reply))),
            Next::Answer {
                correlation_id,
                order,
                applied,
            } => Poll::Ready(Some(Ok(this.answer(correlation_id, order, applied)))),
        }
    }
}

impl EntryReplies {
    /// The reply to a request the core answered (its events' buffer kept for reuse).
    fn answer(
        &mut self,
        correlation_id: u64,
        order: Option<OrderId>,
        applied: Applied,
    ) -> pb::OrderEntryReply {
        let reply = match order_reply(&applied, order, &self.catalog) {
            Ok(r) => r,
            Err(e) => pb::OrderReply {
                sequence: applied.seq,
                rejection: Some(e.rejection()),
                ..pb::OrderReply::default()
            },
        };
        ReplySink::keep_spare(&mut self.spare, applied.events);
        pb::OrderEntryReply {
            correlation_id,
            reply: Some(reply),
        }
    }
}

/// What the reply stream does next: the first pending request's reply when it has one
/// (a waiting request's result taken from the sink), the end, or wait (wakers
/// registered).
fn next_of(
    state: &mut State,
    sink: &ReplySink,
    applied: &mut VecDeque<Applied>,
    spare: &mut Vec<Vec<engine::Event>>,
    cx: &mut Context<'_>,
) -> Next {
    match state.pending.pop_front() {
        None if state.reader_done => Next::End,
        None => {
            register(&mut state.replies_waker, cx.waker());
            Next::Wait
        }
        Some(Pending::Ready(reply)) => Next::Reply(reply),
        Some(Pending::Failed(status)) => Next::Failed(status),
        Some(Pending::Waiting {
            correlation_id,
            order,
            _slot,
        }) => {
            if applied.is_empty() {
                sink.take_or_register(cx.waker(), applied, spare);
            }
            match applied.pop_front() {
                Some(applied) => Next::Answer {
                    correlation_id,
                    order,
                    applied,
                },
                None => {
                    // Its result is not in yet: it stays first in line.
                    state.pending.push_front(Pending::Waiting {
                        correlation_id,
                        order,
                        _slot,
                    });
                    Next::Wait
                }
            }
        }
    }
}

impl Drop for EntryReplies {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.entry.state.lock();
            state.replies_dropped = true;
            state.reader_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The reason a request was refused without reaching the core, as its reply.
pub fn refused(correlation_id: u64, e: &ApiError) -> Pending {
    Pending::Ready(pb::OrderEntryReply {
        correlation_id,
        reply: Some(pb::OrderReply {
            rejection: Some(e.rejection()),
            ..pb::OrderReply::default()
        }),
    })
}
