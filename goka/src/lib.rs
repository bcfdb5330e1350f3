//! # klamm-goka
//!
//! [goka](https://github.com/lovoo/goka)'s stateful stream processing,
//! rebuilt on the [klamm] Kafka client's public API: processors that keep
//! a table per consumer group, persisted to Kafka and recovered into local
//! storage, views that serve a whole table, and emitters.
//!
//! A [`GroupGraph`] names a group and its edges: input streams (with their
//! callbacks), the group table (`<group>-table`, compacted), a loop stream
//! (`<group>-loop`), join tables (co-partitioned), lookup tables (any
//! partitioning) and outputs. A [`Processor`] runs the graph as a member of
//! the consumer group named after it: instances split the partitions; each
//! recovers its partitions of the group table and of the joins from their
//! topics into local storage ([`RedbBuilder`] on disk, or
//! [`MemoryBuilder`]) before it reads their input, and runs the callbacks
//! of a partition one record at a time. A callback gets a [`Context`]: the
//! table value of the record's key, joins, lookups, emits, loopback,
//! headers. Its writes are sent when it returns, and the input record is
//! committed only once Kafka has acknowledged them all (at least once).
//! Keys are placed with goka's hasher ([`goka_partition`]: FNV-1a, as
//! Sarama's hash partitioner applies it), so Go goka and klamm-goka agree
//! on where a key lives.
//!
//! ```no_run
//! use klamm_goka::{Emitter, GroupGraph, Int64Codec, MemoryBuilder, Processor, ProcessorOptions, RedbBuilder, StringCodec, View};
//!
//! # async fn run(client: klamm::Client) -> Result<(), Box<dyn std::error::Error>> {
//! // Count clicks per user in `clicks-table`.
//! let graph = GroupGraph::persist("clicks", Int64Codec)
//!     .input("user-clicks", StringCodec, |ctx, _click: String| {
//!         let n = ctx.value()?.unwrap_or(0);
//!         ctx.set_value(&(n + 1))?;
//!         Ok(())
//!     });
//! let processor = Processor::new(client.clone(), graph, ProcessorOptions::new(RedbBuilder::new("/var/lib/clicks"))).await?;
//! let handle = processor.handle();
//! let running = tokio::spawn(processor.run());
//!
//! let emitter = Emitter::new(client.clone(), "user-clicks", StringCodec).await?;
//! emitter.emit_sync("user-3", &"click".to_string()).await?;
//!
//! let view = View::start(client, "clicks-table", Int64Codec, MemoryBuilder::new()).await?;
//! view.wait_running().await?;
//! println!("user-3: {:?}", view.get("user-3")?);
//!
//! handle.stop();
//! running.await??;
//! # Ok(())
//! # }
//! ```
//!
//! ## Coming from goka
//!
//! | goka (Go) | klamm-goka (Rust) |
//! |---|---|
//! | `DefineGroup(group, edges...)` | [`GroupGraph::persist`] (with a table) or [`GroupGraph::stateless`], then one builder call per edge |
//! | `Input(topic, codec, cb)`, `Inputs(...)` | [`GroupGraph::input`], [`GroupGraph::inputs`]: the callback gets the decoded value, typed by the codec |
//! | `Persist(codec)`, `GroupTable(group)` | the codec of [`GroupGraph::persist`]; [`group_table`] |
//! | `Loop(codec, cb)` | [`GroupGraph::loopback`]; [`loop_stream`] |
//! | `Join(table, codec)`, `Lookup(table, codec)`, `Output(topic, codec)` | [`GroupGraph::join`], [`GroupGraph::lookup`], [`GroupGraph::output`] |
//! | `Validate()` and its messages; `DefineGroup`'s panics | [`GroupGraph::validate`] (the panics are errors too) |
//! | `Codec` (`interface{}` in and out); `codec.Bytes`, `codec.String`, `codec.Int64` | [`Codec`] with an associated `Value` type; [`BytesCodec`], [`StringCodec`], [`Int64Codec`], and [`JsonCodec`] |
//! | `ProcessCallback(ctx, msg interface{})` | `Fn(&mut Context<V>, C::Value) -> Result<(), BoxError>` |
//! | `ctx.Value()`, `SetValue`, `Delete` | [`Context::value`], [`Context::set_value`], [`Context::delete`] |
//! | `ctx.Emit(topic, key, value)` | [`Context::emit`] / [`Context::emit_with_headers`] / [`Context::emit_null`] (declared outputs only) |
//! | `ctx.Loopback(key, value)`, `Join(table)`, `Lookup(table, key)` | [`Context::loopback`], [`Context::join`], [`Context::lookup`] (typed: `join::<T>`) |
//! | `ctx.Headers()`, `Key()`, `Topic()`, `Partition()`, `Offset()`, `Timestamp()` | [`Context::headers`], [`Context::key`], ... |
//! | `ctx.Fail(err)` (a panic) | return an error, or [`Context::fail`] |
//! | `NewProcessor(brokers, graph, opts...)`, `Run(ctx)` | [`Processor::new`] (a [`klamm::Client`] and [`ProcessorOptions`]), [`Processor::run`]; [`Handle::stop`] |
//! | `Processor.Get(key)` | [`Handle::get`] (owned, recovered partitions only) |
//! | `PartitionStatus` (Recovering, Preparing, Running) | [`PartitionState`]; [`Handle::partition_states`], [`Handle::state_log`] |
//! | `Processor.Stats()` | [`Handle::stats`] ([`PartitionStats`]: inputs, outputs, table writes, last offset) |
//! | `WithStorageBuilder`, `storage.DefaultBuilder` (LevelDB), `storage.MemoryBuilder` | [`ProcessorOptions::storage`]: [`RedbBuilder`] (redb), [`MemoryBuilder`]; the [`Storage`] trait |
//! | `NewView(brokers, table, codec)`, `Run`, `Get`, `Has`, `Iterator`, `IteratorWithRange`, `Evict`, `Recovered` | [`View::start`], [`View::get`], [`View::has`], [`View::iter`], [`View::range`], [`View::evict`], [`View::recovered`], [`View::wait_running`] |
//! | `NewEmitter(brokers, topic, codec)`, `Emit`, `EmitSync`, `Finish` | [`Emitter::new`], [`Emitter::emit`], [`Emitter::emit_sync`], [`Emitter::finish`] |
//! | `DefaultHasher()` (FNV-1a) | [`fnv1a32`], [`goka_partition`] |
//! | `NilHandling` | [`NilHandling`] (`Ignore`, the default, and `Decode`) |
//!
//! Differences, where goka's behaviour was a limitation rather than a
//! contract, or the Rust shape asks for it:
//! - Partitions are split by the `range` assignor (each member gets the
//!   same partition numbers of every input), not goka's `copartition`
//!   strategy; a klamm-goka and a Go goka processor do not share a group.
//! - A table write goes to the partition of the input record that made it
//!   (whose local store holds it), not to the key's hashed partition:
//!   the two agree when inputs are keyed as goka places them.
//! - `get` refuses a key whose partition is not held (or not recovered)
//!   with [`Error::NotReady`] rather than answering from an empty store.
//! - A view's values are read after recovery only ([`Error::NotReady`]
//!   before), and it keeps following the table until closed.
//! - The loop and table topics are created with the broker's default
//!   replication factor ([`ProcessorOptions::replication_factor`]).
//! - The local store takes a table write only once Kafka acknowledged it
//!   (callbacks of the partition read pending writes from memory): a
//!   failed callback leaves nothing behind, where goka's store could keep
//!   a write the table topic never got.
//! - Any error from a context method fails the callback even if the
//!   callback ignores it (goka panics there).
//! - The processor refuses `acks=0` (as goka) and always uses the classic
//!   group protocol.
//! - A join table whose follower fails stops the processor with the error
//!   (goka restarts the follower with a backoff).
//! - Not (yet) here: visitors, hot standby, recover-ahead, the tester
//!   package, `NilProcess`, and goka's per-topic detail of stats.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod context;
mod emitter;
mod error;
mod graph;
mod handle;
mod hasher;
mod processor;
pub mod storage;
mod table;
mod view;

pub use codec::{BytesCodec, Codec, Int64Codec, JsonCodec, StringCodec};
pub use context::Context;
pub use emitter::Emitter;
pub use error::{BoxError, Error};
pub use graph::{GroupGraph, NilHandling, group_table, loop_stream};
pub use handle::Handle;
pub use hasher::{fnv1a32, goka_partition};
pub use processor::{PartitionStats, Processor, ProcessorOptions};
pub use storage::{MemoryBuilder, RedbBuilder, Storage, StorageBuilder};
pub use table::PartitionState;
pub use view::View;

/// Locks `m`, going on past a panic in another holder (the data stays
/// consistent: no holder leaves it half-changed).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
