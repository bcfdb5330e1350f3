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

/// Moves one partition's batches into the shared channel until stopped.
/// With a `restart`, an out-of-range error does not end the partition:
/// it is reopened where the hooks say, and `Restarted` tells the consumer.
pub(crate) async fn forward(
    mut pc: PartitionConsumer,
    tp: TopicPartition,
    token: u64,
    tx: mpsc::Sender<Fetched>,
    mut control: watch::Receiver<Control>,
    restart: Option<Restarter>,
) {
    let mut quiet = 0u32;
    loop {
        let (delivered, out_of_range) =
            pump(&mut pc, &tp, token, &tx, &mut control, restart.is_some()).await;
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
            r = restart.reopen(&tp, &error, quiet) => r,
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
        let sent = send(&tx, &mut control, fetched).await;
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
    tp: &TopicPartition,
    token: u64,
    tx: &mpsc::Sender<Fetched>,
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
        let fetched = Fetched {
            tp: tp.clone(),
            token,
            item: Item::Batch(item),
        };
        if !send(tx, control, fetched).await {
            return (delivered, None);
        }
    }
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
