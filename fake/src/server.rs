//! The brokers' network side: one listener per broker on loopback, one
//! task per connection reading frames, and the faults applied on the way.
//! A connection handles its requests one at a time, in order, as a Kafka
//! broker does.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use klamm::protocol::frame::{decode_request, split_frame};
use klamm::protocol::messages::{ApiKey, RequestBody, RequestHeader};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;

use crate::api;
use crate::control::Fault;
use crate::signal::{Signal, Waiter};
use crate::state::State;

/// The largest request frame a broker reads (`socket.request.max.bytes`).
const MAX_REQUEST: usize = 100 * 1024 * 1024;

/// What every broker task shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<State>,
    /// Bumped whenever a log or a group changes, to wake long polls and
    /// rebalances that wait for it.
    pub changed: Arc<Signal>,
    /// Per broker: bumped when the broker goes down, closing its
    /// connections.
    pub downs: Mutex<std::collections::BTreeMap<i32, Arc<Signal>>>,
    pub listeners: Mutex<std::collections::BTreeMap<i32, JoinHandle<()>>>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes whatever waits for a change.
    pub(crate) fn bump(&self) {
        self.changed.bump();
    }

    pub(crate) fn down_signal(&self, broker: i32) -> Waiter {
        let mut downs = self.downs.lock().unwrap_or_else(|p| p.into_inner());
        downs.entry(broker).or_default().subscribe()
    }

    /// Closes every connection of `broker`.
    pub(crate) fn close_connections(&self, broker: i32) {
        let downs = self.downs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(signal) = downs.get(&broker) {
            signal.bump();
        }
    }
}

/// Binds `port` on 127.0.0.1 (0 for any), reusing the address so that a
/// broker restarted at once gets its port back.
pub(crate) fn bind(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(1024)
}

/// Serves `broker` on `listener` until the broker is stopped.
pub(crate) fn spawn_listener(shared: Arc<Shared>, broker: i32, listener: TcpListener) {
    let s = Arc::clone(&shared);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(Arc::clone(&s), broker, stream));
        }
    });
    let mut listeners = shared.listeners.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(old) = listeners.insert(broker, task) {
        old.abort();
    }
}

/// Serves one connection to `broker` until either side closes it or the
/// broker goes down.
pub(crate) async fn serve<S>(shared: Arc<Shared>, broker: i32, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut down = shared.down_signal(broker);
    {
        let mut st = shared.lock();
        if !st.brokers.get(&broker).is_some_and(|b| b.up) {
            return;
        }
        *st.connections.entry(broker).or_insert(0) += 1;
    }
    // Wakes a connection whose answers wait, when they may be released.
    let mut changed = shared.changed.subscribe();
    // Answers not yet sent, in order (FakeCluster::hold).
    let mut pending: VecDeque<(ApiKey, BytesMut)> = VecDeque::new();
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let frame = match split_frame(&mut buf, MAX_REQUEST) {
            Ok(Some(f)) => f,
            Ok(None) => {
                // In a fixed order (a broker going down wins), so that a
                // simulation's runs take the same branches.
                tokio::select! {
                    biased;
                    () = down.changed() => return,
                    r = rd.read_buf(&mut buf) => match r {
                        Ok(0) | Err(_) => return,
                        Ok(_) => continue,
                    },
                    () = changed.changed(), if !pending.is_empty() => {
                        if send_released(&shared, &mut pending, &mut wr).await.is_err() {
                            return;
                        }
                        continue;
                    }
                }
            }
            Err(_) => return,
        };
        let frame = frame.freeze();
        let (header, body) = match decode_request(frame.clone()) {
            Ok(r) => r,
            Err(e) => match api::meta::unsupported_api_versions(&shared, &frame) {
                // A newer client's ApiVersions: answered at v0 with the
                // versions this broker has (KIP-511), as Kafka does.
                Some(reply) => {
                    if wr.write_all(&reply).await.is_err() {
                        return;
                    }
                    continue;
                }
                None => {
                    shared
                        .lock()
                        .problems
                        .push(format!("broker {broker}: a request it could not read: {e}"));
                    return;
                }
            },
        };
        let key = body.api_key();
        let client = header.client_id.clone().unwrap_or_default();
        let (fault, held) = {
            let mut st = shared.lock();
            if st.partitioned.contains(&(client.clone(), broker)) {
                return;
            }
            *st.handled.entry((broker, key)).or_insert(0) += 1;
            st.traced(broker, key.code(), header.request_api_version);
            if st.recording {
                st.history.push(crate::SeenRequest {
                    broker,
                    version: header.request_api_version,
                    client_id: header.client_id.clone(),
                    body: body.clone(),
                });
            }
            let busy = st.in_flight.entry((broker, key)).or_insert((0, 0));
            busy.0 += 1;
            busy.1 = busy.1.max(busy.0);
            (take_fault(&mut st, key, broker), st.held.contains(&key))
        };
        // Until the answer is written or queued behind a held one (or the
        // connection ends).
        let _busy = InFlight {
            shared: &shared,
            broker,
            key,
        };
        let reply = tokio::select! {
            biased;
            () = down.changed() => return,
            r = handle(&shared, broker, header, body, fault) => r,
        };
        match reply {
            Step::Reply(bytes) if held || !pending.is_empty() => {
                pending.push_back((key, bytes));
                if send_released(&shared, &mut pending, &mut wr).await.is_err() {
                    return;
                }
            }
            Step::Reply(bytes) => {
                if wr.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Step::Nothing => {}
            Step::Silent => {
                // As a hung broker: nothing more is answered on this
                // connection (answers go out in order, so none can pass the
                // lost one) until the client gives up on it.
                let mut sink = [0u8; 4096];
                loop {
                    tokio::select! {
                        biased;
                        () = down.changed() => return,
                        r = rd.read(&mut sink) => match r {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        },
                        // Answers held before the lost one still go out.
                        () = changed.changed(), if !pending.is_empty() => {
                            if send_released(&shared, &mut pending, &mut wr).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            Step::Close(None) => return,
            Step::Close(Some(why)) => {
                shared
                    .lock()
                    .problems
                    .push(format!("broker {broker}: {why}"));
                return;
            }
        }
    }
}

/// Sends the answers at the front of `pending` whose API is no longer
/// held, in order, stopping at the first still held.
async fn send_released<W: AsyncWrite + Unpin>(
    shared: &Shared,
    pending: &mut VecDeque<(ApiKey, BytesMut)>,
    wr: &mut W,
) -> std::io::Result<()> {
    loop {
        let free = match pending.front() {
            Some((key, _)) => !shared.lock().held.contains(key),
            None => false,
        };
        if !free {
            return Ok(());
        }
        if let Some((_, bytes)) = pending.pop_front() {
            wr.write_all(&bytes).await?;
        }
    }
}

/// A request being handled: counted in [`State::in_flight`] until its
/// answer is written or its connection ends.
struct InFlight<'a> {
    shared: &'a Shared,
    broker: i32,
    key: ApiKey,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(busy) = self
            .shared
            .lock()
            .in_flight
            .get_mut(&(self.broker, self.key))
        {
            busy.0 = busy.0.saturating_sub(1);
        }
    }
}

enum Step {
    Reply(BytesMut),
    /// No answer (a Produce with `acks=0`).
    Nothing,
    /// No answer, now or to anything later on the connection.
    Silent,
    /// Close the connection; with a reason when it is not an injected fault.
    Close(Option<String>),
}

async fn handle(
    shared: &Arc<Shared>,
    broker: i32,
    header: RequestHeader,
    body: RequestBody,
    fault: Option<Fault>,
) -> Step {
    let version = header.request_api_version;
    let id = header.correlation_id;
    let cx = api::Cx {
        shared,
        broker,
        version,
        client_id: header.client_id.unwrap_or_default(),
    };
    match fault {
        Some(Fault::CutBeforeApply) => return Step::Close(None),
        Some(Fault::Error(_)) if matches!(&body, RequestBody::Produce(p) if p.acks == 0) => {
            // A Produce with acks=0 is never answered, error or not.
            return Step::Nothing;
        }
        Some(Fault::Error(code)) => {
            // An incremental Fetch fails on its session's partitions.
            let body = match body {
                RequestBody::Fetch(r) => {
                    RequestBody::Fetch(api::fetch::with_session_partitions(&shared.lock(), r))
                }
                other => other,
            };
            return match api::errors::error_reply(&body, code, id, version) {
                Some(r) => Step::Reply(r),
                None => Step::Close(Some(format!("no error answer for {}", key_name(&body)))),
            };
        }
        _ => {}
    }
    let reply = api::dispatch(&cx, id, body).await;
    match fault {
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::NoResponse) => return Step::Silent,
        Some(Fault::CutAfterApply) => return Step::Close(None),
        _ => {}
    }
    match reply {
        api::Reply::Frame(mut b) => {
            if let Some(Fault::TrailingBytes(n)) = fault {
                pad_frame(&mut b, n);
            }
            Step::Reply(b)
        }
        api::Reply::None => Step::Nothing,
        api::Reply::Close(why) => Step::Close(Some(why)),
    }
}

/// Appends `n` zero bytes to a response frame, growing its size prefix.
fn pad_frame(frame: &mut BytesMut, n: u16) {
    let Some(size) = frame.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
        return;
    };
    let size = i32::from_be_bytes(size).saturating_add(i32::from(n));
    frame[..4].copy_from_slice(&size.to_be_bytes());
    frame.resize(frame.len() + usize::from(n), 0);
}

fn key_name(body: &RequestBody) -> &'static str {
    body.api_key().name()
}

/// The fault for the next request of `key` at `broker`, if one waits.
fn take_fault(st: &mut State, key: ApiKey, broker: i32) -> Option<Fault> {
    let i = st
        .rules
        .iter()
        .position(|r| r.api == key && r.broker.is_none_or(|b| b == broker) && r.remaining > 0)?;
    let rule = &mut st.rules[i];
    rule.remaining -= 1;
    let fault = rule.fault;
    if rule.remaining == 0 {
        st.rules.remove(i);
    }
    Some(fault)
}
