//! Processors: a group graph run by a consumer-group member, with its
//! table partitions recovered into local storage before input is read.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use klamm::Client;
use klamm::admin::{Admin, NewTopic};
use klamm::consumer::{Consumer, ConsumerRecord};
use klamm::group::{
    Claim, GroupConsumer, GroupHandler, GroupOptions, GroupSession, TopicPartition,
};
use klamm::producer::{AsyncProducer, DeliveryFuture};
use klamm::protocol::error_codes::ErrorCode;
use tokio::sync::{OnceCell, mpsc, watch};
use tokio::task::JoinHandle;

use crate::codec::SharedCodec;
use crate::context::{Context, Overlay, Shared, TableWrite, Write};
use crate::error::Error;
use crate::graph::{CallbackError, GroupGraph, NilHandling, group_table, loop_stream};
use crate::handle::Handle;
use crate::lock;
use crate::storage::{Storage, StorageBuilder};
use crate::table::{PartitionState, StateLog, follow, partition_count, recover};
use crate::view::ViewCore;

/// Processor settings beyond the graph.
#[derive(Debug, Clone)]
pub struct ProcessorOptions {
    /// Where table partitions are stored locally (goka: LevelDB under
    /// `/tmp/goka`).
    pub storage: Arc<dyn StorageBuilder>,
    /// Records buffered per partition ahead of the callback. Default 10
    /// (goka's partition channel size).
    pub partition_channel_size: usize,
    /// Replication factor of the loop and table topics the processor
    /// creates; -1 (the default) takes the broker's default.
    pub replication_factor: i16,
}

impl ProcessorOptions {
    /// Options storing tables with `storage`.
    pub fn new(storage: impl StorageBuilder + 'static) -> ProcessorOptions {
        ProcessorOptions {
            storage: Arc::new(storage),
            partition_channel_size: 10,
            replication_factor: -1,
        }
    }
}

/// Counts of one partition of a processor (goka's `PartitionProcStats`,
/// in brief).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionStats {
    /// Input records handled (including loop records).
    pub inputs: u64,
    /// Records written to outputs and the loop.
    pub outputs: u64,
    /// Writes to the group table.
    pub table_writes: u64,
    /// The offset of the last input record handled.
    pub last_offset: Option<i64>,
}

/// A record whose writes are in flight; committed once all are acknowledged.
struct Pending {
    tp: TopicPartition,
    offset: i64,
    writes: Vec<(DeliveryFuture, Option<TableWrite>)>,
}

/// One assigned partition's tasks.
struct Runner {
    tx: mpsc::Sender<ConsumerRecord>,
    task: JoinHandle<()>,
    committer: JoinHandle<()>,
    joins_stop: watch::Sender<bool>,
    joins: Vec<JoinHandle<()>>,
}

pub(crate) struct Inner<V: Send + Sync + 'static> {
    pub(crate) graph: GroupGraph<V>,
    client: Client,
    storage: Arc<dyn StorageBuilder>,
    channel_size: usize,
    pub(crate) partitions: i32,
    partition_counts: BTreeMap<String, i32>,
    producer: AsyncProducer,
    pub(crate) states: StateLog,
    pub(crate) tables: Mutex<BTreeMap<i32, Arc<dyn Storage>>>,
    pub(crate) stats: Mutex<BTreeMap<i32, PartitionStats>>,
    lookups: OnceCell<BTreeMap<String, (SharedCodec, Arc<ViewCore>)>>,
    runners: tokio::sync::Mutex<BTreeMap<i32, Runner>>,
    failure: Mutex<Option<Error>>,
    pub(crate) failed: watch::Sender<bool>,
    pub(crate) stop: watch::Sender<bool>,
    /// Set by a stop or a failure: recoveries in progress give up.
    pub(crate) halt: watch::Sender<bool>,
    ran: AtomicBool,
}

impl<V: Send + Sync + 'static> Inner<V> {
    fn fail(&self, e: Error) {
        tracing::warn!(group = %self.graph.group, error = %e, "processor failed");
        let mut f = lock(&self.failure);
        if f.is_none() {
            *f = Some(e);
        }
        drop(f);
        let _ = self.failed.send_replace(true);
        let _ = self.halt.send_replace(true);
    }

    fn has_failed(&self) -> bool {
        *self.failed.borrow()
    }
}

/// A goka processor: runs a [`GroupGraph`] as a member of the consumer
/// group named after it.
///
/// Instances in one group split the partitions (the range assignor gives
/// each the same partition numbers of every input). For each partition it
/// is given, an instance recovers the group table partition (and the join
/// partitions) from their topics into local storage —
/// [`PartitionState::Recovering`], then [`PartitionState::Preparing`],
/// then [`PartitionState::Running`] — and only then reads that
/// partition's input. Callbacks of one partition run one at a time, in
/// arrival order; an input record is committed once its table write and
/// emits are acknowledged.
///
/// ```no_run
/// use klamm_goka::{GroupGraph, Int64Codec, Processor, ProcessorOptions, RedbBuilder, StringCodec};
///
/// # async fn run(client: klamm::Client) -> Result<(), klamm_goka::Error> {
/// let graph = GroupGraph::persist("clicks", Int64Codec).input("user-clicks", StringCodec, |ctx, _: String| {
///     let n = ctx.value()?.unwrap_or(0);
///     ctx.set_value(&(n + 1))?;
///     Ok(())
/// });
/// let processor = Processor::new(client, graph, ProcessorOptions::new(RedbBuilder::new("/var/lib/clicks"))).await?;
/// let handle = processor.handle();
/// let running = tokio::spawn(processor.run());
/// // ... handle.get("user-3"), handle.stats() ...
/// handle.stop();
/// running.await.expect("joined")?;
/// # Ok(())
/// # }
/// ```
pub struct Processor<V: Send + Sync + 'static> {
    inner: Arc<Inner<V>>,
}

impl<V: Send + Sync + 'static> std::fmt::Debug for Processor<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("graph", &self.inner.graph)
            .field("partitions", &self.inner.partitions)
            .finish_non_exhaustive()
    }
}

impl<V: Send + Sync + 'static> Processor<V> {
    /// Validates `graph`, checks that its inputs and join tables are
    /// co-partitioned, creates the loop topic and the compacted group
    /// table when missing (with as many partitions), and connects a client
    /// of its own for the group (`client`'s settings, `group.id` the
    /// graph's group).
    pub async fn new(
        client: Client,
        graph: GroupGraph<V>,
        options: ProcessorOptions,
    ) -> Result<Processor<V>, Error> {
        graph.validate()?;
        let group = graph.group.clone();
        let loop_topic = loop_stream(&group);
        let mut copartitioned: Vec<&String> = graph
            .input_order
            .iter()
            .filter(|t| !(graph.has_loop && **t == loop_topic))
            .collect();
        copartitioned.extend(graph.joins.keys());
        let admin = Admin::new(client.clone());
        let mut partitions: Option<(String, i32)> = None;
        for topic in copartitioned {
            let Some(n) = partition_count(&admin, topic).await? else {
                return Err(Error::Copartitioning(format!(
                    "topic {topic} does not exist"
                )));
            };
            match &partitions {
                None => partitions = Some((topic.clone(), n)),
                Some((first, m)) if *m != n => {
                    return Err(Error::Copartitioning(format!(
                        "{first} has {m} partitions but {topic} has {n}"
                    )));
                }
                Some(_) => {}
            }
        }
        let Some((_, n)) = partitions else {
            return Err(Error::Graph("no input stream in group graph".into()));
        };
        let rf = options.replication_factor;
        if graph.has_loop {
            ensure_topic(&client, &admin, NewTopic::new(&loop_topic, n, rf)).await?;
        }
        if graph.table.is_some() {
            let table =
                NewTopic::new(group_table(&group), n, rf).with_config("cleanup.policy", "compact");
            ensure_topic(&client, &admin, table).await?;
        }
        let mut partition_counts = BTreeMap::new();
        for topic in graph.outputs.keys() {
            let count = client.partitions(topic).await?.len();
            if count == 0 {
                return Err(Error::Graph(format!(
                    "the output topic {topic} does not exist"
                )));
            }
            partition_counts.insert(topic.clone(), i32::try_from(count).unwrap_or(i32::MAX));
        }
        if graph.has_loop {
            partition_counts.insert(loop_topic, n);
        }

        let mut config = client.config().clone();
        config.consumer.group_id = Some(group.clone());
        config.consumer.partition_assignment_strategy = vec!["range".into()];
        config.consumer.enable_auto_commit = true;
        config.consumer.auto_commit_interval = Duration::from_secs(1);
        config.metadata.allow_auto_topic_creation = false;
        // The range assignor decides: the classic protocol (KIP-848 lets
        // the broker assign, which does not keep inputs co-located).
        config.consumer.group_protocol = klamm::config::GroupProtocol::Classic;
        // Recovery runs in setup and may be long; rebalances still wait
        // at most a minute for the others.
        config.consumer.max_poll_interval = config
            .consumer
            .max_poll_interval
            .max(Duration::from_secs(30 * 60));
        if config.consumer.rebalance_timeout.is_none() {
            config.consumer.rebalance_timeout = Some(Duration::from_secs(60));
        }
        if config.producer.acks == klamm::config::Acks::None {
            return Err(Error::Config(
                "acks=0: a processor commits an input only after its writes are acknowledged"
                    .into(),
            ));
        }
        let own = Client::connect(config).await?;
        let producer = AsyncProducer::new(own.clone()).await?;
        Ok(Processor {
            inner: Arc::new(Inner {
                graph,
                client: own,
                storage: options.storage,
                channel_size: options.partition_channel_size.max(1),
                partitions: n,
                partition_counts,
                producer,
                states: StateLog::default(),
                tables: Mutex::new(BTreeMap::new()),
                stats: Mutex::new(BTreeMap::new()),
                lookups: OnceCell::new(),
                runners: tokio::sync::Mutex::new(BTreeMap::new()),
                failure: Mutex::new(None),
                failed: watch::Sender::new(false),
                stop: watch::Sender::new(false),
                halt: watch::Sender::new(false),
                ran: AtomicBool::new(false),
            }),
        })
    }

    /// A handle to read the table, watch the partitions and stop the run.
    pub fn handle(&self) -> Handle<V> {
        Handle::new(self.inner.clone())
    }

    /// Recovers the lookup tables, joins the group and processes until
    /// [`Handle::stop`] (then `Ok`) or a failure (its error: a callback's,
    /// a write Kafka refused...). The group is left and what is
    /// acknowledged is committed in both cases.
    pub async fn run(self) -> Result<(), Error> {
        let inner = self.inner;
        if inner.ran.swap(true, Ordering::AcqRel) {
            return Err(Error::State("the processor was run already"));
        }
        let outcome = run(&inner).await;
        if let Some(lookups) = inner.lookups.get() {
            for (_, view) in lookups.values() {
                view.close().await;
            }
        }
        if let Err(e) = inner.producer.flush().await {
            tracing::warn!(error = %e, "flushing the processor's producer failed");
        }
        inner.client.close().await;
        let failure = lock(&inner.failure).take();
        match failure {
            Some(f) => Err(f),
            None => outcome,
        }
    }
}

async fn run<V: Send + Sync + 'static>(inner: &Arc<Inner<V>>) -> Result<(), Error> {
    let mut lookups = BTreeMap::new();
    for (topic, codec) in &inner.graph.lookups {
        let view = ViewCore::start(&inner.client, topic, &inner.storage).await?;
        lookups.insert(topic.clone(), (codec.clone(), view));
    }
    let lookups = inner.lookups.get_or_init(|| async { lookups }).await;
    for (_, view) in lookups.values() {
        let mut halt = inner.halt.subscribe();
        tokio::select! {
            r = view.wait_running() => r?,
            _ = halt.wait_for(|s| *s) => return Ok(()),
        }
    }
    let options = GroupOptions {
        assignors: Some(vec![
            klamm::group::assignor::by_name("range")
                .ok_or(Error::State("the range assignor is missing"))?,
        ]),
        ..GroupOptions::default()
    };
    let group = GroupConsumer::with_options(
        inner.client.clone(),
        inner.graph.input_order.clone(),
        options,
    )
    .await?;
    let mut stop = inner.stop.subscribe();
    let mut failed = inner.failed.subscribe();
    let shutdown = async move {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => {}
            _ = failed.wait_for(|f| *f) => {}
        }
    };
    group
        .run(
            Partitions {
                inner: inner.clone(),
            },
            shutdown,
        )
        .await?;
    Ok(())
}

/// Creates `topic` unless it exists; an existing one must have its
/// partition count. Waits until its partitions have leaders.
async fn ensure_topic(client: &Client, admin: &Admin, topic: NewTopic) -> Result<(), Error> {
    let name = topic.name.clone();
    let want = topic.partitions;
    if partition_count(admin, &name).await?.is_none() {
        let mut created = admin.create_topics(std::slice::from_ref(&topic)).await;
        if let Some(Err(e)) = created.remove(&name)
            && e.kafka_code() != Some(ErrorCode::TOPIC_ALREADY_EXISTS)
        {
            return Err(Error::Kafka(e));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let described = admin.describe_topics(&[name.as_str()]).await;
        if let Some(Ok(d)) = described.get(&name) {
            let have = d.partitions.len();
            if i32::try_from(have).ok() != Some(want) {
                return Err(Error::Copartitioning(format!(
                    "{name} has {have} partitions; the processor needs {want}"
                )));
            }
            if d.partitions
                .iter()
                .all(|p| p.leader.is_some_and(|l| l >= 0))
            {
                client
                    .refresh_metadata(Some(std::slice::from_ref(&name)))
                    .await?;
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(Error::State("a created topic got no leaders within 30 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The group handler: recovers each assigned partition, then feeds its
/// records, from every input topic, to one task.
struct Partitions<V: Send + Sync + 'static> {
    inner: Arc<Inner<V>>,
}

impl<V: Send + Sync + 'static> GroupHandler for Partitions<V> {
    async fn setup(&self, session: &GroupSession) -> klamm::Result<()> {
        let numbers: BTreeSet<i32> = session.claims().iter().map(|tp| tp.partition).collect();
        for p in numbers {
            match start_partition(&self.inner, session, p).await {
                Ok(true) => {}
                // Stopping: the run ends at once after setup.
                Ok(false) => break,
                Err(e) => {
                    self.inner.fail(e);
                    break;
                }
            }
        }
        Ok(())
    }

    async fn consume_claim(&self, _session: GroupSession, mut claim: Claim) -> klamm::Result<()> {
        let tx = match self.inner.runners.lock().await.get(&claim.partition()) {
            Some(r) => r.tx.clone(),
            None => return Ok(()),
        };
        let mut failed = self.inner.failed.subscribe();
        loop {
            let record = tokio::select! {
                biased;
                _ = failed.wait_for(|f| *f) => return Ok(()),
                r = claim.recv() => r,
            };
            let Some(record) = record else {
                return Ok(());
            };
            if tx.send(record).await.is_err() {
                return Ok(());
            }
        }
    }

    async fn cleanup(&self, session: &GroupSession) -> klamm::Result<()> {
        let numbers: BTreeSet<i32> = session.claims().iter().map(|tp| tp.partition).collect();
        for p in numbers {
            stop_partition(&self.inner, p).await;
        }
        Ok(())
    }
}

/// Recovers partition `p` (its joins, then its table) and starts its
/// tasks; `false` when a stop or a failure interrupted the recovery.
async fn start_partition<V: Send + Sync + 'static>(
    inner: &Arc<Inner<V>>,
    session: &GroupSession,
    p: i32,
) -> Result<bool, Error> {
    let consumer = Consumer::new(inner.client.clone());
    let mut halt = inner.halt.subscribe();
    // Joins first: they keep following the topic afterwards.
    let (joins_stop, _) = watch::channel(false);
    let mut joins = BTreeMap::new();
    let mut join_tasks = Vec::new();
    let scratch = StateLog::default();
    for (topic, codec) in &inner.graph.joins {
        let store = inner.storage.build(topic, p)?;
        let recovered = recover(
            &inner.client,
            &consumer,
            topic,
            p,
            &store,
            &scratch,
            &mut halt,
        )
        .await?;
        let Some(next) = recovered else {
            let _ = joins_stop.send_replace(true);
            return Ok(false);
        };
        let (inner2, topic2, store2, stop) = (
            inner.clone(),
            topic.clone(),
            store.clone(),
            joins_stop.subscribe(),
        );
        let follower = consumer.clone();
        join_tasks.push(tokio::spawn(async move {
            if let Err(e) = follow(follower, topic2.clone(), p, next, store2, stop).await {
                inner2.fail(e);
            }
        }));
        joins.insert(topic.clone(), (codec.clone(), store));
    }
    let table_store = match inner.graph.table_topic() {
        Some(topic) => {
            let store = inner.storage.build(&topic, p)?;
            let recovered = recover(
                &inner.client,
                &consumer,
                &topic,
                p,
                &store,
                &inner.states,
                &mut halt,
            )
            .await?;
            if recovered.is_none() {
                let _ = joins_stop.send_replace(true);
                return Ok(false);
            }
            lock(&inner.tables).insert(p, store.clone());
            Some(store)
        }
        None => {
            inner.states.set(p, PartitionState::Preparing);
            inner.states.set(p, PartitionState::Running);
            None
        }
    };
    let overlay = Arc::new(Overlay::default());
    let (tx, rx) = mpsc::channel(inner.channel_size);
    let (commit_tx, commit_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(process(
        inner.clone(),
        p,
        rx,
        commit_tx,
        joins,
        table_store.clone(),
        overlay.clone(),
    ));
    let committer = tokio::spawn(commit(
        inner.clone(),
        session.clone(),
        table_store,
        overlay,
        commit_rx,
    ));
    inner.runners.lock().await.insert(
        p,
        Runner {
            tx,
            task,
            committer,
            joins_stop,
            joins: join_tasks,
        },
    );
    Ok(true)
}

async fn stop_partition<V: Send + Sync + 'static>(inner: &Arc<Inner<V>>, p: i32) {
    let runner = inner.runners.lock().await.remove(&p);
    if let Some(r) = runner {
        drop(r.tx);
        let _ = r.task.await;
        let _ = r.committer.await;
        let _ = r.joins_stop.send_replace(true);
        for j in r.joins {
            let _ = j.await;
        }
    }
    let store = lock(&inner.tables).remove(&p);
    if let Some(Err(e)) = store.map(|s| s.flush()) {
        tracing::warn!(partition = p, error = %e, "flushing a table store failed");
    }
    inner.states.set(p, PartitionState::Stopped);
}

/// Runs the callbacks of partition `p`, one record at a time.
async fn process<V: Send + Sync + 'static>(
    inner: Arc<Inner<V>>,
    p: i32,
    mut rx: mpsc::Receiver<ConsumerRecord>,
    commits: mpsc::UnboundedSender<Pending>,
    joins: BTreeMap<String, (SharedCodec, Arc<dyn Storage>)>,
    table_store: Option<Arc<dyn Storage>>,
    overlay: Arc<Overlay>,
) {
    let empty = BTreeMap::new();
    let lookups = inner.lookups.get().unwrap_or(&empty);
    while let Some(record) = rx.recv().await {
        if inner.has_failed() {
            break;
        }
        let tp = TopicPartition::new(&*record.topic, record.partition);
        let Some(callback) = inner.graph.inputs.get(&*record.topic).cloned() else {
            continue;
        };
        if record.value.is_none() && inner.graph.nil == NilHandling::Ignore {
            let _ = commits.send(Pending {
                tp,
                offset: record.offset,
                writes: Vec::new(),
            });
            continue;
        }
        let key = record.key.clone().unwrap_or_default();
        let key_text = String::from_utf8_lossy(&key).into_owned();
        let mut ctx = Context {
            shared: Shared {
                group: &inner.graph.group,
                table: inner.graph.table.as_ref(),
                loop_codec: inner.graph.loop_codec.as_ref(),
                outputs: &inner.graph.outputs,
                joins: &joins,
                lookups,
                partitions: &inner.partition_counts,
                table_store: table_store.as_ref(),
                overlay: &overlay,
            },
            record: &record,
            key: &key,
            key_text: &key_text,
            writes: Vec::new(),
            failed: std::cell::RefCell::new(None),
        };
        let value = record.value.as_deref().unwrap_or_default();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| callback(&mut ctx, value)));
        let failure = match (outcome, ctx.failed.take()) {
            (_, Some(reason)) => Some(reason),
            (Ok(Ok(())), None) => None,
            (Ok(Err(CallbackError::Failed(e))), None) => Some(e.to_string()),
            (Ok(Err(CallbackError::Decode(e))), None) => Some(format!("decoding the value: {e}")),
            (Err(panic), None) => Some(format!(
                "panic in callback: {}",
                panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            )),
        };
        if let Some(reason) = failure {
            inner.fail(Error::Callback {
                topic: record.topic.to_string(),
                partition: p,
                offset: record.offset,
                source: reason.into(),
            });
            break;
        }
        let writes: Vec<Write> = std::mem::take(&mut ctx.writes);
        drop(ctx);
        let (mut outputs, mut table_writes) = (0, 0);
        let mut sent = Vec::with_capacity(writes.len());
        for w in writes {
            if w.table.is_some() {
                table_writes += 1;
            } else {
                outputs += 1;
            }
            match inner.producer.send(w.record).await {
                Ok(f) => sent.push((f, w.table)),
                Err(e) => {
                    inner.fail(Error::Kafka(e));
                    return;
                }
            }
        }
        {
            let mut stats = lock(&inner.stats);
            let s = stats.entry(p).or_default();
            s.inputs += 1;
            s.outputs += outputs;
            s.table_writes += table_writes;
            s.last_offset = Some(record.offset);
        }
        if commits
            .send(Pending {
                tp,
                offset: record.offset,
                writes: sent,
            })
            .is_err()
        {
            break;
        }
    }
}

/// Marks each record once its writes are acknowledged, in order; applies
/// each acknowledged table write to the store with the offset it got.
async fn commit<V: Send + Sync + 'static>(
    inner: Arc<Inner<V>>,
    session: GroupSession,
    table_store: Option<Arc<dyn Storage>>,
    overlay: Arc<Overlay>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
) {
    while let Some(pending) = rx.recv().await {
        for (delivery, table) in pending.writes {
            match delivery.await {
                Ok(meta) => {
                    if let (Some(w), Some(store)) = (table, &table_store) {
                        let update = [(w.key.clone(), w.value)];
                        if let Err(e) = store.apply(&update, Some(meta.offset)) {
                            inner.fail(e);
                            return;
                        }
                        overlay.applied(&w.key, w.seq);
                    }
                }
                Err(e) => {
                    inner.fail(Error::Kafka(e));
                    return;
                }
            }
        }
        session.mark_offset(&pending.tp, pending.offset + 1, None);
    }
}
