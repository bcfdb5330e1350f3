//! The reader task of one owned partition: moves its batches into the
//! group consumer's shared channel until stopped, and (with offset hooks)
//! reopens the partition where the hooks say when its offset goes out of
//! range.

use tokio::sync::{mpsc, watch};

use super::TopicPartition;
use super::hooks::{Restarter, is_out_of_range};
use crate::consumer::{ConsumedBatch, PartitionConsumer};
use crate::error::{Error, Result};

/// What the group consumer tells a partition's reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Run,
    Pause,
    Stop,
}

/// Something of one partition, tagged with the assignment it belongs to.
pub(crate) struct Fetched {
    pub(crate) tp: TopicPartition,
    pub(crate) token: u64,
    pub(crate) item: Item,
}

pub(crate) enum Item {
    /// A batch, or an error (after which the partition is not read).
    Batch(Result<ConsumedBatch>),
    /// The offset went out of range and the partition reads again from
    /// this offset.
    Restarted(i64),
}

/// Where a partition's batches go, and how big each may be.
pub(crate) struct Outlet {
    pub(crate) tp: TopicPartition,
    pub(crate) token: u64,
    pub(crate) tx: mpsc::Sender<Fetched>,
    /// `max.poll.records`: a longer batch goes in pieces of this many.
    pub(crate) max_records: usize,
}

/// Moves one partition's batches into the shared channel until stopped.
/// With a `restart`, an out-of-range error does not end the partition:
/// it is reopened where the hooks say, and `Restarted` tells the consumer.
pub(crate) async fn forward(
    mut pc: PartitionConsumer,
    out: Outlet,
    mut control: watch::Receiver<Control>,
    restart: Option<Restarter>,
) {
    let Outlet {
        ref tp,
        token,
        ref tx,
        ..
    } = out;
    let mut quiet = 0u32;
    loop {
        let (delivered, out_of_range) = pump(&mut pc, &out, &mut control, restart.is_some()).await;
        pc.close().await;
        let (Some(restart), Some(error)) = (&restart, out_of_range) else {
            return;
        };
        quiet = if delivered {
            0
        } else {
            quiet.saturating_add(1)
        };
        let reopened = tokio::select! {
            biased;
            r = restart.reopen(tp, &error, quiet) => r,
            () = stopped(&mut control) => return,
        };
        let (next, item) = match reopened {
            Ok((next, offset)) => (Some(next), Item::Restarted(offset)),
            Err(e) => (None, Item::Batch(Err(e))),
        };
        let fetched = Fetched {
            tp: tp.clone(),
            token,
            item,
        };
        let sent = send(tx, &mut control, fetched).await;
        match next {
            Some(next) if sent => pc = next,
            Some(next) => return next.close().await,
            None => return,
        }
    }
}

/// Reads `pc` into `tx` until stopped or ended. Returns whether a batch
/// was delivered, and the out-of-range error that ended it when
/// `intercept` (the error is then not delivered).
async fn pump(
    pc: &mut PartitionConsumer,
    out: &Outlet,
    control: &mut watch::Receiver<Control>,
    intercept: bool,
) -> (bool, Option<Error>) {
    let mut delivered = false;
    loop {
        let state = *control.borrow_and_update();
        match state {
            Control::Stop => return (delivered, None),
            Control::Pause => pc.pause(),
            Control::Run => pc.resume(),
        }
        let item = tokio::select! {
            biased;
            changed = control.changed() => {
                if changed.is_err() { return (delivered, None); }
                continue;
            }
            item = pc.recv_batch() => item,
        };
        let Some(item) = item else {
            return (delivered, None);
        };
        let item = match item {
            Err(e) if intercept && is_out_of_range(&e) => return (delivered, Some(e)),
            item => item,
        };
        delivered |= item.is_ok();
        for piece in pieces(item, out.max_records) {
            let fetched = Fetched {
                tp: out.tp.clone(),
                token: out.token,
                item: Item::Batch(piece),
            };
            if !send(&out.tx, control, fetched).await {
                return (delivered, None);
            }
        }
    }
}

/// A batch in runs of at most `max` records (at least one), in order; an
/// error as it is.
fn pieces(item: Result<ConsumedBatch>, max: usize) -> impl Iterator<Item = Result<ConsumedBatch>> {
    let max = max.max(1);
    let mut whole = None;
    let mut split = None;
    match item {
        Ok(batch) if batch.records.len() > max => split = Some(batch),
        other => whole = Some(other),
    }
    let runs = split.into_iter().flat_map(move |batch| {
        let ConsumedBatch {
            topic,
            partition,
            high_water_mark,
            last_stable_offset,
            records,
        } = batch;
        let mut records = records.into_iter().peekable();
        std::iter::from_fn(move || {
            records.peek()?;
            Some(Ok(ConsumedBatch {
                topic: topic.clone(),
                partition,
                high_water_mark,
                last_stable_offset,
                records: records.by_ref().take(max).collect(),
            }))
        })
    });
    whole.into_iter().chain(runs)
}

/// Sends `f` once there is room; `false` when stopped meanwhile or the
/// consumer is gone. A pause or resume meanwhile does not hold it back.
async fn send(
    tx: &mpsc::Sender<Fetched>,
    control: &mut watch::Receiver<Control>,
    f: Fetched,
) -> bool {
    let permit = tokio::select! {
        biased;
        p = tx.reserve() => match p { Ok(p) => p, Err(_) => return false },
        changed = control.changed() => {
            if changed.is_err() || *control.borrow() == Control::Stop { return false; }
            match tx.reserve().await { Ok(p) => p, Err(_) => return false }
        }
    };
    permit.send(f);
    true
}

/// Returns when the partition is stopped (or its consumer is gone).
async fn stopped(control: &mut watch::Receiver<Control>) {
    loop {
        if *control.borrow_and_update() == Control::Stop {
            return;
        }
        if control.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::ConsumerRecord;
    use crate::protocol::records::TimestampType;

    fn batch(offsets: std::ops::Range<i64>) -> ConsumedBatch {
        let record = |offset| ConsumerRecord {
            topic: "t".into(),
            partition: 3,
            offset,
            timestamp: 0,
            timestamp_type: TimestampType::CreateTime,
            key: None,
            value: None,
            headers: Vec::new(),
        };
        ConsumedBatch {
            topic: "t".into(),
            partition: 3,
            high_water_mark: 90,
            last_stable_offset: 80,
            records: offsets.map(record).collect(),
        }
    }

    fn offsets(pieces: impl Iterator<Item = Result<ConsumedBatch>>) -> Vec<Vec<i64>> {
        pieces
            .map(|p| p.unwrap().iter().map(|r| r.offset).collect())
            .collect()
    }

    #[test]
    fn a_long_batch_goes_in_runs_of_max_records_keeping_its_marks() {
        let runs: Vec<_> = pieces(Ok(batch(10..15)), 2).map(Result::unwrap).collect();
        assert_eq!(runs.len(), 3);
        for run in &runs {
            assert_eq!((&*run.topic, run.partition), ("t", 3));
            assert_eq!((run.high_water_mark, run.last_stable_offset), (90, 80));
        }
        assert_eq!(
            offsets(pieces(Ok(batch(10..15)), 2)),
            [vec![10, 11], vec![12, 13], vec![14]]
        );
        assert_eq!(
            offsets(pieces(Ok(batch(10..15)), 5)),
            [vec![10, 11, 12, 13, 14]]
        );
        assert_eq!(offsets(pieces(Ok(batch(10..12)), 0)), [vec![10], vec![11]]);
        let error = pieces(Err(Error::config("x", "y")), 2).collect::<Vec<_>>();
        assert!(
            matches!(error[..], [Err(Error::Config { .. })]),
            "{error:?}"
        );
    }
}
