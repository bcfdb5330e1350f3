//! A consumed record as handlers see it, with the means to commit it.

use klamm::consumer::ConsumerRecord;
use klamm::group::GroupSession;
use tokio::sync::oneshot;

/// The header carrying a request (trace) id: dp-kafka's `TraceIDHeaderKey`.
pub const TRACE_ID_HEADER: &str = "request-id";

/// One consumed record (dp-kafka's `Message`).
///
/// While a message is held, its partition delivers nothing else: the next
/// record of the partition comes once this one is released — by
/// [`Message::release`], or by dropping it. Handlers are given messages
/// by reference and the crate releases them; an application reading
/// [`ConsumerGroup::recv`](crate::ConsumerGroup::recv) itself releases
/// (and commits) its own.
#[derive(Debug)]
pub struct Message {
    record: ConsumerRecord,
    session: GroupSession,
    release: Option<oneshot::Sender<()>>,
}

impl Message {
    pub(crate) fn new(
        record: ConsumerRecord,
        session: GroupSession,
    ) -> (Message, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (
            Message {
                record,
                session,
                release: Some(tx),
            },
            rx,
        )
    }

    /// The value; empty for a null value.
    pub fn data(&self) -> &[u8] {
        self.record.value.as_deref().unwrap_or_default()
    }

    /// The key, if any.
    pub fn key(&self) -> Option<&[u8]> {
        self.record.key.as_deref()
    }

    /// The first header named `key` whose value is UTF-8 text.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.record
            .headers
            .iter()
            .find(|h| h.key.as_ref() == key.as_bytes())
            .and_then(|h| h.value.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The request id the producer attached ([`TRACE_ID_HEADER`]), which
    /// dp-kafka put in the handler's context.
    pub fn request_id(&self) -> Option<&str> {
        self.header(TRACE_ID_HEADER)
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.record.topic
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.record.partition
    }

    /// The offset.
    pub fn offset(&self) -> i64 {
        self.record.offset
    }

    /// The whole record: timestamp, every header, key and value.
    pub fn record(&self) -> &ConsumerRecord {
        &self.record
    }

    /// Marks the message (and everything before it in its partition) as
    /// consumed; marks are committed every second, and by
    /// [`Message::commit`]. `false` when its partition has since been
    /// given up (the mark would overwrite the next owner's progress).
    pub fn mark(&self) -> bool {
        self.session.mark(&self.record)
    }

    /// Marks the message and commits every mark now.
    pub async fn commit(&self) -> Result<(), crate::Error> {
        self.mark();
        self.session.commit().await?;
        Ok(())
    }

    /// Lets its partition deliver the next record. Idempotent.
    pub fn release(&mut self) {
        if let Some(tx) = self.release.take() {
            let _ = tx.send(());
        }
    }

    /// Commits, then releases (released even when the commit fails).
    pub async fn commit_and_release(mut self) -> Result<(), crate::Error> {
        let committed = self.commit().await;
        self.release();
        committed
    }

    /// The group generation the message was delivered in.
    pub(crate) fn session(&self) -> &GroupSession {
        &self.session
    }
}
