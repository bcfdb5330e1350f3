//! Capturing `tracing` events in tests: every event and span that code
//! under test emits on the test's thread, with its fields as text.
//!
//! [`Capture::start`] captures on the current thread until its guard
//! drops. A `#[tokio::test]` runs every task it spawns on that thread (the
//! current-thread runtime), so a capture sees the whole test and no other
//! test.
//!
//! One global subscriber, installed once, hands each event to the capture
//! of the thread it happens on. Scoped subscribers (`set_default`) are not
//! used: tracing caches per call site whether anyone is interested, and a
//! call site first reached on another test's thread while only one scoped
//! subscriber is alive is cached as uninteresting, so a capture misses it
//! now and then. The global subscriber answers "sometimes" for every call
//! site and decides per event.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, MutexGuard, Once};

use tokio::sync::Notify;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};

/// One event or span as the capture saw it.
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

thread_local! {
    /// The capture of this thread, while one runs.
    static ACTIVE: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

/// Captures until dropped (see [`Capture::start`]).
pub(crate) struct Capturing {
    /// Not `Send`: it ends the capture of the thread that started it.
    _thread: std::marker::PhantomData<*const ()>,
}

impl Drop for Capturing {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.borrow_mut().take());
    }
}

impl Capture {
    /// Starts capturing every event and span of the current thread, at
    /// every level, until the returned guard drops.
    pub(crate) fn start() -> (Capture, Capturing) {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            tracing::subscriber::set_global_default(Router)
                .expect("no other global tracing subscriber in the unit tests");
        });
        let capture = Capture::default();
        ACTIVE.with(|a| *a.borrow_mut() = Some(capture.clone()));
        let guard = Capturing {
            _thread: std::marker::PhantomData,
        };
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

    /// Every span opened with the name `name`, in order.
    pub(crate) fn spans(&self, name: &str) -> Vec<Seen> {
        self.log()
            .spans
            .iter()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }
}

impl Seen {
    /// The field `name` as text; panics, listing the fields, if there is
    /// no such field.
    pub(crate) fn field(&self, name: &str) -> &str {
        match self.fields.get(name) {
            Some(v) => v,
            None => panic!("{:?} has no field {name}: {:?}", self.name, self.fields),
        }
    }
}

/// The capture of the current thread, if one runs.
fn active() -> Option<Capture> {
    ACTIVE.with(|a| a.borrow().clone())
}

/// Collects an event's or a span's fields as text.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    fields: BTreeMap<String, String>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            self.fields.insert(field.name().to_string(), value);
        }
    }

    fn seen(self, name: String) -> Seen {
        Seen {
            name,
            fields: self.fields,
            at: tokio::time::Instant::now(),
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

/// The global subscriber: hands everything to the current thread's
/// capture.
struct Router;

impl Subscriber for Router {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        ACTIVE.with(|a| a.borrow().is_some())
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let seen = fields.seen(attrs.metadata().name().to_string());
        let n = match active() {
            Some(c) => {
                let mut log = c.log();
                log.spans.push(seen);
                log.spans.len()
            }
            None => 1,
        };
        Id::from_u64(n as u64)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let Some(capture) = active() else { return };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let name = fields.message.take().unwrap_or_default();
        capture.log().events.push(fields.seen(name));
        capture.0.seen.notify_waiters();
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
