//! A `tracing` subscriber for tests that keeps every event and span it
//! sees, with its fields as text.
//!
//! [`Capture::start`] installs it for the current thread until the guard
//! drops. A `#[tokio::test]` runs every task it spawns on that thread (the
//! current-thread runtime), so the capture sees the events of the whole
//! test and of no other test.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Metadata, Subscriber};

/// One event or span as the subscriber saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// The event's message, or the span's name.
    pub name: String,
    /// Every other field, as text: strings and numbers as they are,
    /// anything recorded with `?` or `%` as its `Debug` or `Display` text.
    pub fields: BTreeMap<String, String>,
    /// When it was seen, on the test's (possibly paused) tokio clock.
    pub at: tokio::time::Instant,
}

#[derive(Default)]
struct Log {
    events: Vec<Seen>,
    spans: Vec<Seen>,
}

#[derive(Default)]
struct Shared {
    log: Mutex<Log>,
    /// Notified at every event, for [`Capture::wait_for`].
    seen: Notify,
}

/// What a capture has seen so far; clone it freely.
#[derive(Clone, Default)]
pub(crate) struct Capture(Arc<Shared>);

impl Capture {
    /// Starts capturing every event and span of the current thread, at
    /// every level, until the returned guard drops.
    pub(crate) fn start() -> (Capture, tracing::subscriber::DefaultGuard) {
        let capture = Capture::default();
        let guard = tracing::subscriber::set_default(Sink(capture.clone()));
        (capture, guard)
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.0.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `count` events with message `message` have been seen.
    /// It waits on the events themselves, not on a clock.
    pub(crate) async fn wait_for(&self, message: &str, count: usize) {
        loop {
            let seen = self.0.seen.notified();
            let mut seen = std::pin::pin!(seen);
            seen.as_mut().enable();
            if self.events(message).len() >= count {
                return;
            }
            seen.await;
        }
    }

    /// Every event seen whose message is `message`, in order.
    pub(crate) fn events(&self, message: &str) -> Vec<Seen> {
        self.log()
            .events
            .iter()
            .filter(|e| e.name == message)
            .cloned()
            .collect()
    }
}

struct Sink(Capture);

/// Collects an event's or a span's fields as text.
struct Fields {
    message: Option<String>,
    fields: BTreeMap<String, String>,
}

impl Fields {
    fn new() -> Fields {
        Fields {
            message: None,
            fields: BTreeMap::new(),
        }
    }

    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            self.fields.insert(field.name().to_string(), value);
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.put(field, text);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.to_string());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.to_string());
    }
}

fn seen(name: String, fields: BTreeMap<String, String>) -> Seen {
    Seen {
        name,
        fields,
        at: tokio::time::Instant::now(),
    }
}

impl Subscriber for Sink {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut fields = Fields::new();
        attrs.record(&mut fields);
        let meta = attrs.metadata();
        let mut log = self.0.log();
        log.spans.push(seen(meta.name().to_string(), fields.fields));
        Id::from_u64(log.spans.len() as u64)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::new();
        event.record(&mut fields);
        let name = fields.message.unwrap_or_default();
        self.0.log().events.push(seen(name, fields.fields));
        self.0.0.seen.notify_waiters();
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
