//! # klamm-dpkafka
//!
//! [dp-kafka](https://github.com/ONSdigital/dp-kafka) (v4)'s managed
//! consumer group and producer, rebuilt on the [klamm] Kafka
//! client's public API: services that start before Kafka is reachable,
//! consume through a handler, report their health and are started and
//! stopped by it.
//!
//! A [`ConsumerGroup`] has a lifecycle ([`State`]): `Initialising` until
//! the cluster is first reached (in the background, with [`retry_time`]'s
//! pauses: creation never fails for want of a broker), then `Stopped`;
//! [`start`](ConsumerGroup::start) joins the group (`Starting`, then
//! `Consuming` once partitions are assigned), [`stop`](ConsumerGroup::stop)
//! leaves it (`Stopping`, then `Stopped`), [`close`](ConsumerGroup::close)
//! ends it (`Closing`). Records go to one [`Handler`] run by `num_workers`
//! tasks, or to one [`BatchHandler`]; a record is committed after its
//! handler returns, unless it returned [`HandlerError::do_not_commit`].
//! The health check ([`ConsumerGroup::check_health`]) probes every
//! configured broker, and [`ConsumerGroup::on_health_update`] lets a
//! health verdict stop and restart consumption. A [`Producer`] starts the
//! same way and puts a `request-id` header on every record.
//!
//! ```no_run
//! use std::time::Duration;
//! use klamm_dpkafka::{
//!     ConsumerGroup, ConsumerGroupConfig, Handler, HandlerError, Message, Producer, ProducerConfig,
//!     State,
//! };
//!
//! struct Print;
//! impl Handler for Print {
//!     async fn handle(&self, worker: usize, m: &Message) -> Result<(), HandlerError> {
//!         let text = std::str::from_utf8(m.data())?; // a bad record: logged, committed
//!         println!("worker {worker}: {text} (request {:?})", m.request_id());
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = ConsumerGroupConfig::new(["localhost:9092"], "orders", "billing");
//! config.num_workers = 3;
//! let consumer = ConsumerGroup::new(config).await?; // Ok even with Kafka down
//! consumer.register_handler(Print)?;
//! consumer.start().await?;
//! consumer.wait_for(State::Consuming).await;
//!
//! let mut pconfig = ProducerConfig::new(["localhost:9092"], "orders");
//! pconfig.min_brokers_healthy = 1;
//! let producer = Producer::new(pconfig).await?;
//! producer.wait_initialised().await?;
//! producer.send_bytes("hello").await?.await?;
//!
//! let health = consumer.check_health().await; // OK, WARNING or CRITICAL, with why
//! consumer.on_health_update(health.status).await; // stops on WARNING/CRITICAL
//!
//! consumer.stop_and_wait().await?;
//! consumer.close(Duration::from_secs(10)).await?;
//! producer.close(Duration::from_secs(10)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Coming from dp-kafka
//!
//! | dp-kafka (Go) | klamm-dpkafka (Rust) |
//! |---|---|
//! | `ConsumerGroupConfig` (pointer fields, nil = default) | [`ConsumerGroupConfig::new`] with the defaults filled in (`Offset` oldest, 10 s session, 1 worker, batch 1 / 200 ms, retries 200 ms–32 s, 1 healthy broker) and [`ConsumerGroupConfig::validate`] |
//! | `KafkaVersion` | not needed: klamm negotiates versions with each broker |
//! | `Offset` (`OffsetOldest` / `OffsetNewest`, else an error) | [`Offset::Oldest`] / [`Offset::Newest`] |
//! | `MessageConsumeTimeout` | [`ConsumerGroupConfig::message_consume_timeout`] (`session.timeout.ms`) |
//! | `NewConsumerGroup(ctx, cfg)` | [`ConsumerGroup::new`]; only a bad configuration fails |
//! | `Initialise`, `IsInitialised`, the init-retry loop | automatic, in the background; [`ConsumerGroup::is_initialised`] |
//! | `GetRetryTime` | [`retry_time`], the same formula (2^n × min, ±25 % of min, wrapping at max) |
//! | `State()`, `StateWait(s)`, `Channels().State.X.Wait()` | [`ConsumerGroup::state`], [`ConsumerGroup::wait_for`], and [`ConsumerGroup::transitions`] (every state in order) |
//! | `Start`, `Stop`, `StopAndWait` | [`ConsumerGroup::start`], [`ConsumerGroup::stop`], [`ConsumerGroup::stop_and_wait`] (async) |
//! | `Close(ctx, optFuncs...)` | [`ConsumerGroup::close`] / [`ConsumerGroup::close_with`] (a deadline, and [`CloseHook`]s) |
//! | `RegisterHandler(ctx, Handler)` with `NumWorkers` | [`ConsumerGroup::register_handler`] with a [`Handler`] (`async fn handle(&self, worker, &Message)`) |
//! | `RegisterBatchHandler(ctx, BatchHandler)` | [`ConsumerGroup::register_batch_handler`] with a [`BatchHandler`] (`async fn handle(&mut self, &[Message])`) |
//! | the `Upstream` channel, `Release`, `Commit`, `CommitAndRelease` | [`ConsumerGroup::recv`]; [`Message::release`] (or drop), [`Message::commit`], [`Message::commit_and_release`] |
//! | `Message.GetData`, `GetHeader`, `Offset`, `Mark`, `Context()` with the request id | [`Message::data`], [`Message::header`], [`Message::offset`], [`Message::mark`], [`Message::request_id`] |
//! | an error implementing `Commiter{Commit() bool}` | [`HandlerError::do_not_commit`] (or [`HandlerError::new`]; `?` on any error commits, as dp-kafka does) |
//! | `NewError(err, logData)`, `UnwrapLogData` | `tracing` fields: handler failures are logged with topic, partition, offset and whether they commit |
//! | `Checker(ctx, state)`, `MinBrokersHealthy` | [`ConsumerGroup::check_health`] / [`Producer::check_health`] → [`Health`] `{ status, message }`, the same messages |
//! | `OnHealthUpdate("OK" / "WARNING" / "CRITICAL")` | [`ConsumerGroup::on_health_update`] with a [`Status`] |
//! | `LogErrors(ctx)`, the `Errors` channel | errors are logged through `tracing`; a failing session is retried with [`retry_time`] pauses |
//! | `NewProducer`, `ProducerConfig` | [`Producer::new`], [`ProducerConfig::new`] (2 healthy brokers by default) |
//! | `Send` (Avro), `SendJSON`, `SendBytes`, the `Output` channel | [`Producer::send_json`], [`Producer::send_bytes`] (Avro is left to the application: encode, then `send_bytes`) |
//! | `AddHeader`, the `request-id` header ([`TRACE_ID_HEADER`]) from the context or a UUID per producer | [`Producer::add_header`], [`ProducerConfig::trace_id`] or a UUID per producer |
//! | the producer's `Errors` channel | the [`DeliveryFuture`](klamm::producer::DeliveryFuture) each send returns |
//! | `SecurityConfig{RootCACerts, ClientCert, ClientKey, InsecureSkipVerify}` | [`SecurityConfig`]: PEM text (literal `\n` allowed) or file paths, as in dp-kafka |
//! | `kafkatest` fakes | klamm's in-process fake cluster (`klamm-fake`) or a real broker |
//!
//! Differences, where dp-kafka's behaviour was a limitation rather than a
//! contract:
//! - `stop` leaves the group (after the records in hand are handled and
//!   committed), so the partitions go to the other members at once;
//!   `stop_and_wait` waits for that, also when no session had started yet
//!   (dp-kafka's could block for good then).
//! - The health check reports WARNING when too few reachable brokers have
//!   the topic, and while the consumer is not initialised but the brokers
//!   are reachable; CRITICAL when too few brokers are reachable, whether
//!   initialised or not (dp-kafka said WARNING for every uninitialised
//!   consumer, and never WARNING for a missing topic). A topic counts as
//!   present when its metadata has no error and some partitions (dp-kafka
//!   v5's rule). The probe does not create the topic.
//! - Consumer commits are synchronous after each record (or batch), as in
//!   dp-kafka, plus marks every second. A stop hands a batch handler the
//!   batch gathered so far, so it is committed before the group is left
//!   (dp-kafka left that to close hooks). A handler that panics fails its
//!   record without committing it, and its worker goes on.
//! - A producer that is not initialised refuses the record with
//!   [`Error::NotInitialised`] instead of dropping it; the producer uses
//!   klamm's defaults (`acks=all`, idempotent) where dp-kafka kept
//!   Sarama's (leader acknowledgement only).
//! - Closing has a deadline, and dropping the last handle closes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backoff;
mod config;
mod consumer;
mod error;
mod handler;
mod health;
mod message;
mod producer;
mod state;

pub use backoff::retry_time;
pub use config::{ConsumerGroupConfig, Offset, ProducerConfig, SecurityConfig};
pub use consumer::{CloseHook, ConsumerGroup};
pub use error::{BoxError, Error, HandlerError};
pub use handler::{BatchHandler, Handler};
pub use health::{Health, Status};
pub use message::{Message, TRACE_ID_HEADER};
pub use producer::Producer;
pub use state::{State, Transitions};

/// Locks `m`, going on past a panic in another holder (the data stays
/// consistent: no holder leaves it half-changed).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
