//! Helpers shared by the unit tests under `src/`: a bound on how long a
//! test may run, a wait for a condition, the accept every fake broker
//! uses, and ([`trace`]) a tracing subscriber that keeps what it sees.
//!
//! The tests against in-process fake brokers run on tokio's paused clock
//! (`#[tokio::test(start_paused = true)]`). That clock moves only when
//! every task of the test waits on a timer, and then jumps straight to the
//! next timer, so timeouts, lingers and backoffs fire at exact instants of
//! virtual time however busy the machine is; loopback I/O takes no virtual
//! time at all.

pub(crate) mod trace;

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// How long a test may run before it counts as hung (virtual time on a
/// paused clock, wall time otherwise).
const TEST_BOUND: Duration = Duration::from_secs(20);

/// How much real time a bounded test may take before the watchdog stops
/// the test run. A task that never waits keeps a paused clock from moving,
/// so [`TEST_BOUND`] alone cannot end a test that spins.
const WALL_BOUND: Duration = Duration::from_secs(120);

/// How long [`eventually`] waits for its condition.
const EVENTUALLY_BOUND: Duration = Duration::from_secs(10);

/// Accepts the next connection on a fake broker's listener, with Nagle's
/// algorithm off. Every fake broker accepts through this: with Nagle on,
/// the kernel may hold a small answer back until the client's delayed ACK
/// (tens of milliseconds of real time), and meanwhile a paused clock sees
/// every task idle and jumps to the next timer, a request timeout say.
pub(crate) async fn accept(listener: &TcpListener) -> std::io::Result<TcpStream> {
    let (stream, _) = listener.accept().await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Runs a test body; a body that does not finish within [`TEST_BOUND`] of
/// the test's clock is a failed test, and one that spins for
/// [`WALL_BOUND`] of real time aborts the test run rather than hang it.
pub(crate) async fn bounded<T>(f: impl Future<Output = T>) -> T {
    let _watchdog = Watchdog::start();
    tokio::time::timeout(TEST_BOUND, f)
        .await
        .expect("test finished in time")
}

/// Aborts the process if it is not dropped within [`WALL_BOUND`].
struct Watchdog {
    _done: mpsc::Sender<()>,
}

impl Watchdog {
    fn start() -> Watchdog {
        let (done, wait) = mpsc::channel::<()>();
        let test = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(WALL_BOUND) {
                eprintln!(
                    "{test} ran for {WALL_BOUND:?} of real time: a task that never waits \
                     keeps the paused clock still; aborting"
                );
                std::process::abort();
            }
        });
        Watchdog { _done: done }
    }
}

/// Waits until `cond` holds, checking it after each millisecond of the
/// clock; panics naming `what` if it does not hold within ten seconds. On
/// a paused clock it sees a change in the first millisecond after it.
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < EVENTUALLY_BOUND,
            "{what}: not so after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// (broker asked, partitions in the request) of every ListOffsets the
/// fake cluster handled, in order.
pub(crate) fn list_offsets_requests(c: &klamm_fake::FakeCluster) -> Vec<(i32, Vec<i32>)> {
    c.history()
        .iter()
        .filter_map(|r| match &r.body {
            klamm_fake::klamm::protocol::messages::RequestBody::ListOffsets(req) => Some((
                r.broker,
                req.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}
