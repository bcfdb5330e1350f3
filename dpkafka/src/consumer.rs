//! The managed consumer group: lifecycle, background initialisation,
//! sessions, and the commands that drive them.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use klamm::Client;
use klamm::group::{Claim, GroupConsumer, GroupHandler, GroupSession};
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::Error;
use crate::backoff::{initialise_until, retry_time};
use crate::config::ConsumerGroupConfig;
use crate::handler::{BatchHandler, Handler, Upstream, run_batches, run_worker};
use crate::health::{Health, Prober, Status, Subject, verdict};
use crate::lock;
use crate::message::Message;
use crate::state::{State, StateMachine, Transitions};

/// A hook run by [`ConsumerGroup::close_with`] once no new record is
/// handed out, before the group is left (dp-kafka's close `OptFunc`):
/// e.g. to flush what the application gathered.
pub type CloseHook = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the commands ask of the lifecycle; `seq` changes with every
/// command that ends a running session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    want: Want,
    seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Stopped,
    Consuming,
    Closed,
}

#[derive(Debug)]
struct Inner {
    config: ConsumerGroupConfig,
    client_config: klamm::Config,
    state: StateMachine,
    target: watch::Sender<Target>,
    client: StdMutex<Option<Client>>,
    upstream_tx: mpsc::Sender<Message>,
    upstream: Upstream,
    /// Whether claims hand out new records (false from `close`).
    accepting: watch::Sender<bool>,
    /// Set once the consumer is closed: handler tasks end.
    closed: watch::Sender<bool>,
    handler_registered: AtomicBool,
    /// Asks the batch handler's task to hand its batch over now.
    batch_flush: StdMutex<Option<mpsc::Sender<oneshot::Sender<()>>>>,
    prober: Arc<Prober>,
    driver: StdMutex<Option<JoinHandle<()>>>,
    /// Serialises start, stop and close.
    commands: Mutex<()>,
}

impl Inner {
    fn command(&self, want: Want) {
        self.target.send_modify(|t| {
            t.want = want;
            t.seq += 1;
        });
    }

    fn want(&self) -> Want {
        self.target.borrow().want
    }

    /// Moves from one of `from` to `to` if no command came since `seq`
    /// (the target is held meanwhile, so none can come in between).
    fn enter(&self, seq: u64, from: &[State], to: State) -> bool {
        let target = self.target.borrow();
        target.seq == seq && (self.state.get() == to || self.state.set_if(from, to).is_ok())
    }
}

/// Closes the consumer when the last [`ConsumerGroup`] handle is dropped
/// without `close` (dp-kafka closed on its context's end).
#[derive(Debug)]
struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        let inner = &self.0;
        let _ = inner.accepting.send_replace(false);
        inner.state.close();
        inner.command(Want::Closed);
        let _ = inner.closed.send_replace(true);
    }
}

/// A consumer-group member with a lifecycle (dp-kafka's `ConsumerGroup`).
///
/// - Creating one never fails because the cluster is unreachable: it
///   keeps trying in the background (pauses from [`retry_time`]), in
///   [`State::Initialising`].
/// - [`start`](Self::start) joins the group ([`State::Starting`], then
///   [`State::Consuming`] once partitions are assigned), [`stop`](Self::stop)
///   leaves it ([`State::Stopping`], then [`State::Stopped`]); either may
///   be called in any state, also before initialisation (the last one
///   wins), and a health check can call them ([`on_health_update`](Self::on_health_update)).
/// - Records go to one [`Handler`] on `num_workers` tasks, or to one
///   [`BatchHandler`], or to the application through [`recv`](Self::recv).
/// - [`close`](Self::close) ends it for good, within a deadline.
///
/// Handles are cheap clones of one consumer; dropping the last one
/// closes it.
///
/// ```no_run
/// use std::time::Duration;
/// use klamm_dpkafka::{ConsumerGroup, ConsumerGroupConfig, Handler, HandlerError, Message, State};
///
/// struct Log;
/// impl Handler for Log {
///     async fn handle(&self, _worker: usize, m: &Message) -> Result<(), HandlerError> {
///         println!("{}", String::from_utf8_lossy(m.data()));
///         Ok(())
///     }
/// }
///
/// # async fn run() -> Result<(), klamm_dpkafka::Error> {
/// let config = ConsumerGroupConfig::new(["localhost:9092"], "orders", "billing");
/// let consumer = ConsumerGroup::new(config).await?;
/// consumer.register_handler(Log)?;
/// consumer.start().await?;
/// consumer.wait_for(State::Consuming).await;
/// // ... until shutdown:
/// consumer.stop_and_wait().await?;
/// consumer.close(Duration::from_secs(10)).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    inner: Arc<Inner>,
    _owner: Arc<Owner>,
}

impl ConsumerGroup {
    /// Checks `config`, makes one attempt to reach the cluster, and
    /// returns: [`State::Stopped`] when it was reached, otherwise
    /// [`State::Initialising`] with the attempts going on in the
    /// background. Only a bad configuration fails.
    pub async fn new(config: ConsumerGroupConfig) -> Result<ConsumerGroup, Error> {
        let client_config = config.client_config()?;
        let prober = Prober::new(&client_config, &config.topic)?;
        let capacity = config.num_workers.max(config.batch_size);
        let (upstream_tx, upstream_rx) = mpsc::channel(capacity);
        let closed = watch::Sender::new(false);
        let inner = Arc::new(Inner {
            upstream: Upstream {
                rx: Arc::new(Mutex::new(upstream_rx)),
                closed: closed.subscribe(),
            },
            config,
            client_config,
            state: StateMachine::new(State::Initialising),
            target: watch::Sender::new(Target {
                want: Want::Stopped,
                seq: 0,
            }),
            client: StdMutex::new(None),
            upstream_tx,
            accepting: watch::Sender::new(true),
            closed,
            handler_registered: AtomicBool::new(false),
            batch_flush: StdMutex::new(None),
            prober,
            driver: StdMutex::new(None),
            commands: Mutex::new(()),
        });
        let (first_tx, first_rx) = oneshot::channel();
        let task = tokio::spawn(drive(inner.clone(), first_tx));
        *lock(&inner.driver) = Some(task);
        let _ = first_rx.await;
        Ok(ConsumerGroup {
            _owner: Arc::new(Owner(inner.clone())),
            inner,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerGroupConfig {
        &self.inner.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.inner.state.get()
    }

    /// Waits until the state is `state` (at once when it is).
    pub async fn wait_for(&self, state: State) {
        self.inner.state.wait_for(state).await
    }

    /// Every state the consumer has been in, from its creation, then each
    /// new one as it comes.
    pub fn transitions(&self) -> Transitions {
        self.inner.state.transitions()
    }

    /// Whether the cluster has been reached.
    pub fn is_initialised(&self) -> bool {
        lock(&self.inner.client).is_some()
    }

    /// The client, once initialised.
    pub fn client(&self) -> Option<Client> {
        lock(&self.inner.client).clone()
    }

    /// Joins the group and consumes. While initialising, it makes the
    /// consumer start once initialised; while starting or consuming, it
    /// does nothing. Fails only when the consumer is closing.
    pub async fn start(&self) -> Result<(), Error> {
        let _serial = self.inner.commands.lock().await;
        if self.state() == State::Closing {
            return Err(Error::Closing);
        }
        // What was asked last decides, not the state: a start right after
        // a stop (or the reverse) must not be lost before the driver acts.
        if self.inner.want() != Want::Consuming {
            self.inner.command(Want::Consuming);
        }
        Ok(())
    }

    /// Leaves the group: records in hand are handled and committed first,
    /// then the partitions go to other members. Returns without waiting
    /// (see [`stop_and_wait`](Self::stop_and_wait)). While initialising,
    /// it makes the consumer stay stopped once initialised.
    pub async fn stop(&self) -> Result<(), Error> {
        let _serial = self.inner.commands.lock().await;
        if self.state() == State::Closing || self.inner.want() == Want::Stopped {
            return Ok(());
        }
        let _ = self
            .inner
            .state
            .set_if(&[State::Starting, State::Consuming], State::Stopping);
        self.inner.command(Want::Stopped);
        Ok(())
    }

    /// [`stop`](Self::stop), then waits until the group is left
    /// ([`State::Stopped`]; at once while initialising, or when closed
    /// meanwhile). Do not call it from a handler: the group is left only
    /// once the handlers have released their records.
    pub async fn stop_and_wait(&self) -> Result<(), Error> {
        self.stop().await?;
        self.inner
            .state
            .wait_for_any(&[State::Stopped, State::Closing, State::Initialising])
            .await;
        Ok(())
    }

    /// Starts on `OK`, stops on `WARNING` and `CRITICAL`: give it the
    /// combined status of the health checks the consumer depends on
    /// (dp-kafka's `OnHealthUpdate`, a dp-healthcheck subscriber).
    pub async fn on_health_update(&self, status: Status) {
        let done = match status {
            Status::Ok => self.start().await,
            Status::Warning | Status::Critical => self.stop().await,
        };
        if let Err(e) = done {
            tracing::warn!(%status, error = %e, "health update not applied");
        }
    }

    /// Probes every configured broker for the topic (dp-kafka's
    /// `Checker`): CRITICAL when fewer than `min_brokers_healthy` are
    /// reachable, WARNING while not initialised or when too few reachable
    /// brokers have the topic, OK otherwise (naming any broker that is
    /// not healthy).
    pub async fn check_health(&self) -> Health {
        let probes = self.inner.prober.probe_all().await;
        verdict(
            Subject::Consumer,
            &self.inner.config.topic,
            &probes,
            self.inner.config.min_brokers_healthy,
            self.is_initialised(),
        )
    }

    /// Runs `handler` on `num_workers` tasks for every record from now
    /// on. One handler per consumer, of either kind.
    pub fn register_handler<H: Handler>(&self, handler: H) -> Result<(), Error> {
        self.claim_handler_slot()?;
        let handler = Arc::new(handler);
        for worker in 1..=self.inner.config.num_workers {
            tokio::spawn(run_worker(
                handler.clone(),
                worker,
                self.inner.upstream.clone(),
            ));
        }
        Ok(())
    }

    /// Runs `handler` over batches of `batch_size` records (or fewer, after
    /// `batch_wait_time` without a new one). One handler per consumer.
    pub fn register_batch_handler<B: BatchHandler>(&self, handler: B) -> Result<(), Error> {
        self.claim_handler_slot()?;
        let (flush_tx, flush_rx) = mpsc::channel(1);
        *lock(&self.inner.batch_flush) = Some(flush_tx);
        tokio::spawn(run_batches(
            handler,
            self.inner.config.batch_size,
            self.inner.config.batch_wait_time,
            self.inner.upstream.clone(),
            flush_rx,
        ));
        Ok(())
    }

    fn claim_handler_slot(&self) -> Result<(), Error> {
        if self.inner.handler_registered.swap(true, Ordering::AcqRel) {
            return Err(Error::HandlerRegistered);
        }
        Ok(())
    }

    /// Without a registered handler: the next record (dp-kafka's
    /// `Upstream` channel); `None` once closed. Commit and release it (or
    /// drop it) when done: its partition delivers nothing more until then.
    pub async fn recv(&self) -> Option<Message> {
        self.inner.upstream.clone().next().await
    }

    /// [`close_with`](Self::close_with) without hooks.
    pub async fn close(&self, deadline: Duration) -> Result<(), Error> {
        self.close_with(deadline, Vec::new()).await
    }

    /// Closes the consumer for good, within `deadline`: no new record is
    /// handed out, `hooks` run, the state becomes [`State::Closing`],
    /// records in hand are handled and committed, the group is left and
    /// the connections are closed. Idempotent: closing a closed consumer
    /// does nothing. Past the deadline it returns [`Error::Timeout`] and
    /// the rest goes on in the background.
    pub async fn close_with(&self, deadline: Duration, hooks: Vec<CloseHook>) -> Result<(), Error> {
        let _serial = self.inner.commands.lock().await;
        if self.state() == State::Closing {
            return Ok(());
        }
        let work = async {
            let _ = self.inner.accepting.send_replace(false);
            for hook in hooks {
                hook.await;
            }
            self.inner.state.close();
            self.inner.command(Want::Closed);
            let driver = lock(&self.inner.driver).take();
            if let Some(driver) = driver {
                let _ = driver.await;
            }
        };
        let finished = tokio::time::timeout(deadline, work).await;
        // Whatever happened, handler tasks end and probes disconnect.
        self.inner.state.close();
        self.inner.command(Want::Closed);
        let _ = self.inner.closed.send_replace(true);
        self.inner.prober.close().await;
        finished.map_err(|_| Error::Timeout {
            what: "closing the consumer group",
            after: deadline,
        })
    }
}

/// The lifecycle: initialise, then follow the commands until closed.
async fn drive(inner: Arc<Inner>, first: oneshot::Sender<()>) {
    let Some(client) = initialise(&inner, first).await else {
        return;
    };
    let mut attempt = 1;
    loop {
        let target = *inner.target.borrow();
        match target.want {
            Want::Closed => break,
            Want::Stopped => {
                let from = [
                    State::Initialising,
                    State::Starting,
                    State::Consuming,
                    State::Stopping,
                ];
                if !inner.enter(target.seq, &from, State::Stopped) {
                    if inner.state.get() == State::Closing {
                        break;
                    }
                    continue;
                }
                let mut rx = inner.target.subscribe();
                let _ = rx.wait_for(|t| t.seq != target.seq).await;
            }
            Want::Consuming => {
                // Fails only when a command came (or closing began): then
                // the loop reads the new target.
                let from = [
                    State::Stopped,
                    State::Starting,
                    State::Consuming,
                    State::Stopping,
                ];
                if !inner.enter(target.seq, &from, State::Starting) {
                    if inner.state.get() == State::Closing {
                        break;
                    }
                    continue;
                }
                let outcome = session(&inner, &client, target.seq).await;
                // A stop during the session: the group is left.
                let _ = inner.state.set_if(&[State::Stopping], State::Stopped);
                // Ended by a command: start afresh. Ended by itself (the
                // member failed or the group consumer stopped): retry.
                let commanded = inner.target.borrow().seq != target.seq;
                match outcome {
                    Ok(()) if commanded => attempt = 1,
                    Err(e) if commanded => {
                        tracing::warn!(error = %e, "leaving the consumer group failed");
                        attempt = 1;
                    }
                    ended => {
                        let e = match ended {
                            Err(e) => e.to_string(),
                            Ok(()) => "the group consumer ended".to_string(),
                        };
                        let pause = retry_time(
                            attempt,
                            inner.config.min_retry_period,
                            inner.config.max_retry_period,
                        );
                        tracing::warn!(error = %e, attempt, ?pause, "consumer group session failed; retrying");
                        let _ = inner.state.set_if(&[State::Consuming], State::Starting);
                        attempt += 1;
                        let mut rx = inner.target.subscribe();
                        let _ =
                            tokio::time::timeout(pause, rx.wait_for(|t| t.seq != target.seq)).await;
                    }
                }
            }
        }
    }
    client.close().await;
}

/// Reaches the cluster, retrying with pauses until it does or the
/// consumer closes; signals `first` after the first attempt.
async fn initialise(inner: &Arc<Inner>, first: oneshot::Sender<()>) -> Option<Client> {
    let mut first = Some(first);
    // Closing starts by refusing new records: that ends a pause early.
    let client = initialise_until(
        (inner.config.min_retry_period, inner.config.max_retry_period),
        "the consumer group",
        &mut first,
        || inner.want() == Want::Closed || !*inner.accepting.borrow(),
        inner.accepting.subscribe(),
        false,
        || Client::connect(inner.client_config.clone()),
    )
    .await;
    let client = client?;
    *lock(&inner.client) = Some(client.clone());
    // The first state before `new` returns: Stopped, or Starting when a
    // start came while initialising.
    let target = *inner.target.borrow();
    let first_state = match target.want {
        Want::Consuming => State::Starting,
        Want::Stopped | Want::Closed => State::Stopped,
    };
    inner.enter(target.seq, &[State::Initialising], first_state);
    if let Some(f) = first.take() {
        let _ = f.send(());
    }
    Some(client)
}

/// One membership: join, consume until a command ends it (or the member
/// fails), leave.
async fn session(inner: &Arc<Inner>, client: &Client, seq: u64) -> Result<(), Error> {
    let group = GroupConsumer::new(client.clone(), [inner.config.topic.clone()]).await?;
    let mut rx = inner.target.subscribe();
    let shutdown = async move {
        let _ = rx.wait_for(|t| t.seq != seq).await;
    };
    let handler = Session {
        inner: inner.clone(),
        seq,
    };
    group.run(handler, shutdown).await?;
    Ok(())
}

/// The group handler: moves the state with the assignments and hands
/// each partition's records out one at a time.
struct Session {
    inner: Arc<Inner>,
    /// The command that started the session: a later one ends it.
    seq: u64,
}

impl GroupHandler for Session {
    async fn setup(&self, _session: &GroupSession) -> klamm::Result<()> {
        let _ = self
            .inner
            .state
            .set_if(&[State::Starting, State::Consuming], State::Consuming);
        Ok(())
    }

    async fn consume_claim(&self, session: GroupSession, mut claim: Claim) -> klamm::Result<()> {
        let mut accepting = self.inner.accepting.subscribe();
        let mut closed = self.inner.closed.subscribe();
        let mut target = self.inner.target.subscribe();
        let seq = self.seq;
        loop {
            let record = tokio::select! {
                biased;
                _ = accepting.wait_for(|a| !*a) => return Ok(()),
                r = claim.recv() => r,
            };
            let Some(record) = record else {
                return Ok(());
            };
            let (message, released) = Message::new(record, session.clone());
            // A full queue: give the push up when the session is ending
            // (the record stays uncommitted, for the next owner).
            tokio::select! {
                biased;
                _ = accepting.wait_for(|a| !*a) => return Ok(()),
                _ = target.wait_for(|t| t.seq != seq) => return Ok(()),
                sent = self.inner.upstream_tx.send(message) => if sent.is_err() {
                    return Ok(());
                },
            }
            // Dropped unreleased counts as released; once the consumer is
            // closed no handler will release it.
            tokio::select! {
                _ = released => {}
                _ = closed.wait_for(|c| *c) => return Ok(()),
            }
        }
    }

    async fn cleanup(&self, _session: &GroupSession) -> klamm::Result<()> {
        // A batch handler hands over what it gathered now, so it is
        // committed before the partitions go.
        let flush = lock(&self.inner.batch_flush).clone();
        if let Some(flush) = flush {
            let (done, flushed) = oneshot::channel();
            if flush.send(done).await.is_ok() {
                let _ = flushed.await;
            }
        }
        let _ = self
            .inner
            .state
            .set_if(&[State::Consuming], State::Starting);
        Ok(())
    }
}
