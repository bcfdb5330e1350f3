//! The task that owns a connection's socket: it gives requests their
//! correlation ids, writes whole frames from its own queue, reads frames
//! and hands each answer to its request, and fails everything in flight
//! when the connection faults or a request times out.

use crate::determinism::HashMap;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{CORRELATION_ID_AT, Command, FRAME_SIZE_LEN, Shared};
use crate::error::{Error, Result};
use crate::net::tls::stream_failure_reason;
use crate::protocol::frame::{response_correlation_id, split_frame};
use crate::protocol::messages::ApiKey;

struct Pending {
    reply: oneshot::Sender<Result<Bytes>>,
    deadline: Instant,
    timeout: Duration,
    api: ApiKey,
    expects_response: bool,
}

/// A frame being written: its parts, the part the next byte comes from,
/// and how much of that part is already out.
struct Outgoing {
    parts: Vec<Bytes>,
    part: usize,
    written: usize,
    id: i32,
}

/// The most parts handed to one vectored write (Linux takes up to 1,024;
/// a Produce request to a broker has two or three per partition).
const MAX_WRITE_PARTS: usize = 64;

/// Writes what it can of the queued frames, in order, with one vectored
/// write: the parts still to go of the first frames, up to
/// [`MAX_WRITE_PARTS`] of them.
async fn write_queued<W: AsyncWrite + Unpin>(
    wr: &mut W,
    out: &VecDeque<Outgoing>,
) -> std::io::Result<usize> {
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(MAX_WRITE_PARTS.min(4 * out.len()));
    'frames: for o in out {
        for (i, p) in o.parts.iter().enumerate().skip(o.part) {
            let from = if i == o.part { o.written } else { 0 };
            if from < p.len() {
                slices.push(IoSlice::new(&p[from..]));
                if slices.len() == MAX_WRITE_PARTS {
                    break 'frames;
                }
            }
        }
    }
    wr.write_vectored(&slices).await
}

pub(super) struct Task {
    pub(super) shared: Arc<Shared>,
    pub(super) max_in_flight: usize,
    pub(super) max_frame_size: usize,
}

/// Why the task stopped.
enum Stop {
    Graceful,
    Fault(String),
    /// The TLS layer failed (an alert from the broker, such as a TLS 1.3
    /// server refusing our certificate after the handshake).
    Tls(String),
    TimedOut,
}

impl Stop {
    /// A stop for an I/O error while doing `what`.
    fn io(what: &str, e: &std::io::Error) -> Stop {
        match stream_failure_reason(e) {
            Some(reason) => Stop::Tls(reason),
            None => Stop::Fault(format!("{what} failed: {e}")),
        }
    }
}

impl Task {
    pub(super) async fn run<S: AsyncRead + AsyncWrite + Send + Unpin>(
        self,
        stream: S,
        mut rx: mpsc::Receiver<Command>,
    ) {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut pending: HashMap<i32, Pending> = HashMap::default();
        let mut out: VecDeque<Outgoing> = VecDeque::new();
        let mut rbuf = BytesMut::with_capacity(64 * 1024);
        let mut next_id: i32 = 0;
        let mut closing = false;
        let broker = self.shared.broker.as_str();

        // The in-flight count last given to the metrics sink.
        let mut reported_in_flight = usize::MAX;
        let stop = loop {
            if pending.len() != reported_in_flight {
                reported_in_flight = pending.len();
                if let Some(m) = &self.shared.metrics {
                    m.in_flight(broker, reported_in_flight);
                }
            }
            if closing && pending.is_empty() && out.is_empty() {
                break Stop::Graceful;
            }
            let deadline = pending.values().map(|p| p.deadline).min();
            let accept = !closing && pending.len() < self.max_in_flight;
            let room = make_read_room(&mut rbuf, self.max_frame_size);
            tokio::select! {
                read = async { rd.read_buf(&mut (&mut rbuf).limit(room)).await } => match read {
                    Ok(0) => break Stop::Fault("the broker closed the connection".into()),
                    Ok(_) => {
                        if let Err(reason) = self.take_responses(&mut rbuf, &mut pending) {
                            break Stop::Fault(reason);
                        }
                    }
                    Err(e) => break Stop::io("read", &e),
                },
                written = write_queued(&mut wr, &out), if !out.is_empty() => {
                    match written {
                        Ok(0) => break Stop::Fault("the socket accepted no bytes".into()),
                        Ok(n) => {
                            if let Err(reason) = Self::advance_write(&mut out, &mut pending, n) {
                                break Stop::Fault(reason);
                            }
                            if out.is_empty() {
                                if let Err(e) = wr.flush().await {
                                    break Stop::io("flush", &e);
                                }
                            }
                        }
                        Err(e) => break Stop::io("write", &e),
                    }
                },
                cmd = rx.recv(), if accept => match cmd {
                    None | Some(Command::Close) => closing = true,
                    Some(Command::Send { mut frame, api, expects_response, timeout, reply }) => {
                        next_id = next_id.wrapping_add(1) & i32::MAX;
                        let id = next_id;
                        if let Some(slot) = frame.head.get_mut(CORRELATION_ID_AT..CORRELATION_ID_AT + 4) {
                            slot.copy_from_slice(&id.to_be_bytes());
                        }
                        tracing::trace!(broker, api = api.name(), correlation_id = id, bytes = frame.len(), "request");
                        pending.insert(id, Pending { reply, deadline: Instant::now() + timeout, timeout, api, expects_response });
                        let mut parts = Vec::with_capacity(1 + frame.rest.len());
                        parts.push(frame.head.freeze());
                        parts.append(&mut frame.rest);
                        out.push_back(Outgoing { parts, part: 0, written: 0, id });
                    }
                },
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    break Stop::TimedOut;
                }
            }
        };

        let stop_reason = match &stop {
            Stop::Graceful => (false, "closed".to_string()),
            Stop::Fault(r) => (false, r.clone()),
            Stop::Tls(r) => (true, r.clone()),
            Stop::TimedOut => (
                false,
                "a request timed out, so the connection was closed".to_string(),
            ),
        };
        *self
            .shared
            .stop_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(stop_reason);
        self.shared.closed.store(true, Ordering::Release);
        if let Some(m) = &self.shared.metrics {
            m.disconnected(broker, !matches!(stop, Stop::Graceful));
            m.in_flight(broker, 0);
        }
        rx.close();
        let reason = match &stop {
            Stop::Graceful => "closed".to_string(),
            Stop::Fault(r) | Stop::Tls(r) => r.clone(),
            Stop::TimedOut => "a request timed out, so the connection was closed".to_string(),
        };
        if let Stop::Fault(r) | Stop::Tls(r) = &stop {
            tracing::warn!(broker, reason = %r, in_flight = pending.len(), "connection failed");
        }
        let failed = |reason: &str| match &stop {
            Stop::Tls(_) => Error::Tls {
                broker: broker.to_string(),
                reason: reason.to_string(),
            },
            _ => Error::Disconnected {
                broker: broker.to_string(),
                reason: reason.to_string(),
            },
        };
        let now = Instant::now();
        for (_, p) in pending.drain() {
            let err = if matches!(stop, Stop::TimedOut) && p.deadline <= now {
                Error::Timeout {
                    what: format!("{} request to {broker}", p.api),
                    after: p.timeout,
                }
            } else {
                failed(&reason)
            };
            let _ = p.reply.send(Err(err));
        }
        while let Ok(cmd) = rx.try_recv() {
            if let Command::Send { reply, .. } = cmd {
                let _ = reply.send(Err(failed(&reason)));
            }
        }
        let _ = wr.shutdown().await;
    }

    /// Hands every complete frame in `rbuf` to its request.
    fn take_responses(
        &self,
        rbuf: &mut BytesMut,
        pending: &mut HashMap<i32, Pending>,
    ) -> Result<(), String> {
        loop {
            let frame = match split_frame(rbuf, self.max_frame_size) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) => return Err(format!("bad frame from the broker: {e}")),
            };
            let id = response_correlation_id(&frame)
                .map_err(|e| format!("bad frame from the broker: {e}"))?;
            match pending.remove(&id) {
                Some(p) if p.expects_response => {
                    tracing::trace!(broker = %self.shared.broker, api = p.api.name(), correlation_id = id, bytes = frame.len() + FRAME_SIZE_LEN, "response");
                    let _ = p.reply.send(Ok(frame.freeze()));
                }
                _ => {
                    return Err(format!(
                        "a response with correlation id {id} answers no request in flight"
                    ));
                }
            }
        }
    }

    /// Records `n` written bytes; completes requests that expect no answer
    /// once their whole frame is out.
    fn advance_write(
        out: &mut VecDeque<Outgoing>,
        pending: &mut HashMap<i32, Pending>,
        mut n: usize,
    ) -> Result<(), String> {
        while n > 0 {
            let Some(front) = out.front_mut() else {
                return Err("wrote more bytes than were queued".into());
            };
            let Some(part) = front.parts.get(front.part) else {
                return Err("a finished frame was left queued".into());
            };
            let step = n.min(part.len() - front.written);
            front.written += step;
            n -= step;
            if front.written == part.len() {
                front.part += 1;
                front.written = 0;
            }
            // Skips empty parts, so a finished frame leaves the queue now.
            while front.parts.get(front.part).is_some_and(Bytes::is_empty) {
                front.part += 1;
            }
            if front.part == front.parts.len() {
                let id = front.id;
                out.pop_front();
                if pending.get(&id).is_some_and(|p| !p.expects_response) {
                    if let Some(p) = pending.remove(&id) {
                        let _ = p.reply.send(Ok(Bytes::new()));
                    }
                }
            }
        }
        Ok(())
    }
}

/// What a read makes room for, and takes at most, while no frame's size
/// is known.
const MIN_READ: usize = 64 * 1024;

/// Makes room in `rbuf` for the next read and returns how many bytes that
/// read may take.
///
/// Until a frame's size is known, a read takes up to [`MIN_READ`] bytes
/// (pipelined small answers come in together). Once it is known, the read
/// takes the frame's rest and no more, and a buffer without room for that
/// rest is replaced by one of exactly the frame's size, holding what was
/// read of it. So what is copied is at most one read's worth, once per
/// frame. (Growing with `BytesMut::reserve` instead copied whatever the
/// buffer held, a whole partly read fetch response when the rest did not
/// fit, and doubled its capacity: 14 MiB buffers for 6 MiB responses, and
/// a tenth of a consumer's time in `memcpy`.) A size past
/// `max_frame_size` (refused when the frame is split) makes no room.
pub(super) fn make_read_room(rbuf: &mut BytesMut, max_frame_size: usize) -> usize {
    let rest = rbuf
        .get(..FRAME_SIZE_LEN)
        .and_then(|h| usize::try_from(i32::from_be_bytes([h[0], h[1], h[2], h[3]])).ok())
        .filter(|&size| size <= max_frame_size)
        .map(|size| (size + FRAME_SIZE_LEN).saturating_sub(rbuf.len()))
        .filter(|&rest| rest > 0);
    let spare = rbuf.capacity() - rbuf.len();
    match rest {
        Some(rest) => {
            if spare < rest {
                let mut frame = BytesMut::with_capacity(rbuf.len() + rest);
                frame.extend_from_slice(rbuf);
                *rbuf = frame;
            }
            rest
        }
        None => {
            if spare < MIN_READ {
                rbuf.reserve(MIN_READ);
            }
            MIN_READ
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_start(size: i32, body: usize) -> BytesMut {
        let mut b = BytesMut::new();
        b.put_i32(size);
        b.put_bytes(7, body);
        b
    }

    #[test]
    fn a_frames_rest_is_read_exactly_into_a_buffer_of_its_size() {
        let mut b = frame_start(1 << 20, 100);
        let room = make_read_room(&mut b, 100 << 20);
        assert_eq!(room, (1 << 20) + 4 - 104);
        // Exactly the frame: no doubling.
        assert_eq!(b.capacity(), (1 << 20) + 4);
        assert_eq!(&b[..4], &(1i32 << 20).to_be_bytes());
        assert!(b[4..].iter().all(|&x| x == 7));
        // A small frame's rest too; one that fits stays where it is.
        let mut b = BytesMut::with_capacity(4096);
        b.put_i32(1000);
        b.put_bytes(7, 100);
        let at = b.as_ptr();
        assert_eq!(make_read_room(&mut b, 100 << 20), 900);
        assert_eq!(b.as_ptr(), at);
    }

    #[test]
    fn without_a_known_size_a_read_takes_up_to_min_read() {
        let mut b = BytesMut::new();
        assert_eq!(make_read_room(&mut b, 100 << 20), MIN_READ);
        assert!(b.capacity() >= MIN_READ);
        let mut b = BytesMut::from(&[0u8, 1][..]);
        assert_eq!(make_read_room(&mut b, 100 << 20), MIN_READ);
        // A size past the frame limit or negative makes no room of its
        // size (the frame is refused when it is split).
        for size in [i32::MAX, -5] {
            let mut b = frame_start(size, 0);
            assert_eq!(make_read_room(&mut b, 100 << 20), MIN_READ);
            assert!(b.capacity() < 1 << 20, "{}", b.capacity());
        }
        // A complete frame not yet taken never asks for a read of 0
        // bytes (which would look like the broker closing).
        let mut b = frame_start(10, 10);
        assert_eq!(make_read_room(&mut b, 100 << 20), MIN_READ);
    }
}
