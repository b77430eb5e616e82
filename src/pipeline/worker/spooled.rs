//! The task of a sink with a disk spool: queue → spool (written ahead and synced) → sink.
//!
//! Unlike the plain task, a failed batch is not dropped after its retries: it stays at the head
//! of the spool and is retried (with the same capped backoff) until the sink takes it, while new
//! events keep flowing from the queue into the spool. Only a batch the sink cannot *encode* is
//! given up after the retries, or it would block the spool for good.

use std::collections::VecDeque;

use super::{deliver, flush_sink, guarded, Core, Jitter, Slot};
use crate::event::SharedEvent;
use crate::pipeline::spool::{Appended, Pos, Spool};
use crate::sink::{Sink, SinkErrorKind};

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

type Shared = Arc<Mutex<Spool>>;

/// Runs blocking spool work on the blocking pool, so one sink's disk never stalls the others.
async fn io<T, F>(spool: &Shared, f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Spool) -> T + Send + 'static,
{
    let spool = Arc::clone(spool);
    tokio::task::spawn_blocking(move || f(&mut spool.lock()))
        .await
        .ok()
}

/// Per-task delivery state.
struct State {
    spool: Shared,
    /// The first spooled records, still in memory: delivered from here while the sink keeps up.
    mem: VecDeque<(SharedEvent, Pos)>,
    mem_max: usize,
    chunk_max: usize,
    failures: u32,
    retry_at: Option<Instant>,
    jitter: Jitter,
}

enum Step {
    /// Nothing left in the spool.
    Empty,
    /// A batch left the spool (delivered, or given up and counted).
    Done,
    /// The sink refused; retry after the backoff.
    Failed,
    /// The shutdown deadline cut the write short; the batch stays in the spool.
    Deadline,
}

pub(super) async fn spooled_task(core: Arc<Core>, index: usize, sink: Box<dyn Sink>, spool: Spool) {
    let slot = &core.sinks[index];
    let mut deadline_rx = core.deadline.subscribe();
    let batch_max = core.config.batch_max;
    let mut st = State {
        spool: Arc::new(Mutex::new(spool)),
        mem: VecDeque::new(),
        mem_max: batch_max.saturating_mul(4).max(1024),
        chunk_max: batch_max.saturating_mul(4).clamp(1, 16 * 1024),
        failures: 0,
        retry_at: None,
        jitter: Jitter::new(index),
    };
    loop {
        slot.wake_pending.store(false, SeqCst);
        let stopping = deadline_rx.borrow_and_update().is_some();
        let flush_gen = core.flush_gen.load(SeqCst);
        let persist_gen = core.persist_gen.load(SeqCst);
        if ingest(&core, slot, &*sink, &mut st).await {
            slot.persisted.fetch_max(persist_gen, SeqCst);
            core.signal.bump();
        }
        let mut empty = false;
        let mut out_of_time = false;
        // While stopping, one attempt regardless of the backoff: what fails stays spooled.
        if stopping || st.retry_at.is_none_or(|t| Instant::now() >= t) {
            loop {
                match step(&core, slot, &*sink, &mut st).await {
                    Step::Empty => {
                        empty = true;
                        break;
                    }
                    Step::Done => {}
                    Step::Failed => break,
                    Step::Deadline => {
                        out_of_time = true;
                        break;
                    }
                }
                if core.past_deadline() {
                    out_of_time = true;
                    break;
                }
                // A long backlog must not let the queue overflow meanwhile.
                if slot.queue.len() >= core.wake_at {
                    ingest(&core, slot, &*sink, &mut st).await;
                }
            }
        }
        if empty && !out_of_time && (stopping || flush_gen > slot.flushed.load(SeqCst)) {
            flush_sink(&core, slot, &*sink, flush_gen).await;
        }
        if stopping {
            // Acknowledgements are made durable; what is still spooled waits for the next start.
            if let Some(Err(_)) = io(&st.spool, Spool::sync).await {
                slot.c.write_errors.fetch_add(1, SeqCst);
            }
            return;
        }
        let retry_at = st.retry_at;
        tokio::select! {
            _ = slot.notify.notified() => {}
            _ = tokio::time::sleep(core.config.flush_interval) => {}
            _ = deadline_rx.changed() => {}
            _ = async {
                match retry_at {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
}

/// Moves what is queued now into the spool, synced. Returns whether all of it is durable (or
/// resolved otherwise: refused for want of space, or delivered directly).
async fn ingest(core: &Core, slot: &Slot, sink: &dyn Sink, st: &mut State) -> bool {
    let mut owed = slot.queue.len();
    let mut durable = true;
    loop {
        let mut chunk = Vec::with_capacity(owed.min(st.chunk_max));
        while chunk.len() < st.chunk_max {
            match slot.queue.pop() {
                Some(event) => chunk.push(event),
                None => break,
            }
        }
        if chunk.is_empty() {
            return durable;
        }
        owed = owed.saturating_sub(chunk.len());
        let events = chunk.clone();
        let done = io(&st.spool, move |s| {
            let before = s.pending();
            let (outcomes, error) = s.append(&events);
            let synced = if error.is_none() {
                s.sync().err()
            } else {
                None
            };
            (before, outcomes, error.or(synced), s.pending())
        })
        .await;
        let Some((before, outcomes, error, pending)) = done else {
            // The blocking pool is gone (runtime shutting down): deliver from memory.
            deliver(core, slot, sink, &chunk, &mut st.jitter).await;
            return durable;
        };
        slot.c.spooled.store(pending, SeqCst);
        if let Some(error) = error {
            durable = false;
            slot.c.write_errors.fetch_add(1, SeqCst);
            tracing::warn!(
                target: "tower_siem::pipeline",
                sink = %slot.name,
                %error,
                "spool write failed; delivering from memory"
            );
        }
        let covers = st.mem.len() as u64 == before;
        let mut failed = Vec::new();
        for (event, outcome) in chunk.into_iter().zip(outcomes) {
            match outcome {
                Appended::At(pos) => {
                    if covers && st.mem.len() < st.mem_max {
                        st.mem.push_back((event, pos));
                    }
                }
                Appended::Full => {
                    slot.c.spool_full.fetch_add(1, SeqCst);
                }
                Appended::Failed => failed.push(event),
            }
        }
        if !failed.is_empty() {
            // Without the spool, as if there were none: retried, then dropped and counted.
            deliver(core, slot, sink, &failed, &mut st.jitter).await;
        }
        if owed == 0 {
            return durable;
        }
    }
}

/// Delivers the batch at the head of the spool.
async fn step(core: &Core, slot: &Slot, sink: &dyn Sink, st: &mut State) -> Step {
    let batch_max = core.config.batch_max;
    let head = io(&st.spool, move |s| {
        let (cursor, lost) = s.head()?;
        Ok::<_, std::io::Error>((cursor, lost))
    })
    .await;
    let (cursor, lost) = match head {
        Some(Ok(head)) => head,
        Some(Err(error)) => return spool_error(slot, st, core, &error),
        None => return Step::Deadline,
    };
    slot.c.corrupt.fetch_add(lost, SeqCst);
    if st
        .mem
        .front()
        .is_some_and(|(_, p)| p.segment != cursor.segment)
    {
        // Cannot happen while the bookkeeping is right; the disk is the truth.
        st.mem.clear();
    }
    let (events, end, records, undecodable, from_mem) = if st.mem.is_empty() {
        let read = io(&st.spool, move |s| s.read(batch_max)).await;
        let batch = match read {
            Some(Ok(batch)) => batch,
            Some(Err(error)) => return spool_error(slot, st, core, &error),
            None => return Step::Deadline,
        };
        let Some(end) = batch.end else {
            return Step::Empty;
        };
        (batch.events, end, batch.records, batch.undecodable, false)
    } else {
        let events: Vec<SharedEvent> = st
            .mem
            .iter()
            .take_while(|(_, p)| p.segment == cursor.segment)
            .take(batch_max)
            .map(|(e, _)| Arc::clone(e))
            .collect();
        let end = st.mem[events.len() - 1].1;
        let n = events.len() as u64;
        (events, end, n, 0, true)
    };
    if !events.is_empty() {
        if st.failures > 0 {
            slot.c.retries.fetch_add(1, SeqCst);
        }
        let write = super::timed(slot, guarded(|| sink.write(&events)));
        #[cfg(feature = "metrics")]
        let write = crate::metrics::timed(
            &slot.name,
            crate::metrics::position(&core.sinks, slot),
            write,
        );
        match core.until_deadline(write).await {
            None => return Step::Deadline,
            Some(Ok(())) => {}
            Some(Err(error)) => {
                slot.c.write_errors.fetch_add(1, SeqCst);
                let retry = &core.config.retry;
                if !(error.kind() == SinkErrorKind::Encode && st.failures >= retry.max_retries) {
                    st.failures = st.failures.saturating_add(1);
                    let delay = retry.delay(st.failures, st.jitter.next());
                    st.retry_at = Some(Instant::now() + delay);
                    if st.failures == 1 {
                        tracing::warn!(
                            target: "tower_siem::pipeline",
                            sink = %slot.name,
                            %error,
                            "sink write failed; events stay in the spool and are retried"
                        );
                    }
                    return Step::Failed;
                }
                // The sink cannot encode these: retrying forever would block the spool.
                slot.c.sink_error.fetch_add(events.len() as u64, SeqCst);
                tracing::warn!(
                    target: "tower_siem::pipeline",
                    sink = %slot.name,
                    events = events.len(),
                    %error,
                    "sink cannot encode a spooled batch; batch dropped"
                );
                return finish(slot, st, end, records, undecodable, from_mem, 0).await;
            }
        }
    }
    finish(
        slot,
        st,
        end,
        records,
        undecodable,
        from_mem,
        events.len() as u64,
    )
    .await
}

/// Acknowledges a batch that left the spool and counts it.
async fn finish(
    slot: &Slot,
    st: &mut State,
    end: Pos,
    records: u64,
    undecodable: u64,
    from_mem: bool,
    delivered: u64,
) -> Step {
    slot.c.delivered.fetch_add(delivered, SeqCst);
    slot.c.corrupt.fetch_add(undecodable, SeqCst);
    st.failures = 0;
    st.retry_at = None;
    if from_mem {
        st.mem.drain(..records as usize);
    }
    let acked = io(&st.spool, move |s| (s.ack(end, records), s.pending())).await;
    match acked {
        Some((Ok(lost), pending)) => {
            slot.c.corrupt.fetch_add(lost, SeqCst);
            slot.c.spooled.store(pending, SeqCst);
        }
        Some((Err(error), pending)) => {
            // Consumed in memory all the same; a restart before the next good acknowledgement
            // delivers these again (at least once).
            slot.c.spooled.store(pending, SeqCst);
            slot.c.write_errors.fetch_add(1, SeqCst);
            tracing::warn!(target: "tower_siem::pipeline", sink = %slot.name, %error, "spool acknowledgement failed");
        }
        None => {}
    }
    Step::Done
}

/// A spool read failed: counted, and retried after the backoff like a sink failure.
fn spool_error(slot: &Slot, st: &mut State, core: &Core, error: &std::io::Error) -> Step {
    slot.c.write_errors.fetch_add(1, SeqCst);
    st.failures = st.failures.saturating_add(1);
    st.retry_at = Some(Instant::now() + core.config.retry.delay(st.failures, st.jitter.next()));
    tracing::warn!(target: "tower_siem::pipeline", sink = %slot.name, %error, "spool read failed");
    Step::Failed
}
