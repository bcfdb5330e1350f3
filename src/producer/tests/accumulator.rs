//! The accumulator: batching by size, linger and request size; memory
//! accounting and backpressure; sequence numbers; retry order.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::ErrorKind;
use crate::producer::accumulator::{
    Accumulator, Limits, batch_capacity, linger_wait, record_memory,
};
use crate::producer::batch::{HEADER, ProducerBatch, Stamp};
use crate::producer::record::ProducerRecord;
use crate::protocol::compression::Compression;

fn limits() -> Limits {
    Limits {
        batch_size: 1024,
        linger: Duration::from_millis(50),
        buffer_memory: 1 << 20,
        max_records: 100_000,
        block_on_full: true,
        max_block: Duration::from_secs(5),
        max_request_size: 1 << 20,
        max_in_flight: 5,
        delivery_timeout: Duration::from_secs(120),
    }
}

fn record(value: usize) -> ProducerRecord {
    ProducerRecord::new("t", vec![b'v'; value])
}

/// A drained batch as the sender leaves it once sent: encoded with its
/// stamp, one attempt made.
fn sent(mut batch: ProducerBatch, stamp: Stamp) -> ProducerBatch {
    batch.attempts += 1;
    batch
        .encoded(stamp, false, Compression::None, None, &mut None)
        .expect("encodes");
    batch
}

fn append(acc: &Accumulator, partition: i32, value: usize) -> crate::producer::DeliveryFuture {
    let r = record(value);
    let m = record_memory(&r);
    acc.append(partition, r, 0, m).expect("append").future
}

#[tokio::test(start_paused = true)]
async fn batches_fill_up_to_batch_size() {
    let acc = Accumulator::new(limits());
    for _ in 0..40 {
        append(&acc, 0, 100);
    }
    let state = acc.lock();
    let q = &state
        .partitions
        .get(&(Arc::from("t"), 0))
        .expect("partition")
        .queue;
    // 109 bytes a record (a 107-byte body and its length): 8 fit after the 61-byte header, 933 bytes.
    assert_eq!(
        q.iter().map(|b| b.count()).collect::<Vec<_>>(),
        [8, 8, 8, 8, 8]
    );
    assert!(q.iter().all(|b| b.size() == 933));
    assert!(q.iter().take(4).all(|b| b.closed));
    assert!(!q[4].closed, "the last batch stays open");
}

#[tokio::test(start_paused = true)]
async fn a_batch_waits_for_linger_unless_full_or_flushed() {
    let acc = Accumulator::new(limits());
    append(&acc, 0, 10);
    let leader = |_: &_| Some(1);
    let (drained, _) = acc.drain(Instant::now(), None, leader, |_| true);
    assert!(drained.is_empty(), "not ready before linger.ms");
    tokio::time::advance(Duration::from_millis(30)).await;
    assert!(
        acc.drain(Instant::now(), None, leader, |_| true)
            .0
            .is_empty()
    );
    tokio::time::advance(Duration::from_millis(25)).await;
    let (drained, _) = acc.drain(Instant::now(), None, leader, |_| true);
    assert_eq!(drained.len(), 1, "ready once linger.ms passed");

    // A full batch is ready at once; so is everything while flushing.
    for _ in 0..10 {
        append(&acc, 1, 100);
    }
    let (drained, _) = acc.drain(Instant::now(), None, leader, |_| true);
    assert_eq!(
        drained.iter().map(|d| d.batch.tp.1).collect::<Vec<_>>(),
        [1],
        "only the full batch; one batch per partition per drain"
    );
    append(&acc, 2, 10);
    let (drained, _) = acc.drain(Instant::now(), None, |_| Some(2), |_| true);
    assert!(drained.is_empty(), "two batches, neither ready");
    acc.begin_flush();
    let (drained, _) = acc.drain(Instant::now(), None, leader, |_| true);
    let mut parts: Vec<i32> = drained.iter().map(|d| d.batch.tp.1).collect();
    parts.sort();
    assert_eq!(parts, [1, 2]);
    acc.end_flush();
}

/// A batch that is not full leaves within its `linger.ms`, not after it:
/// the sender sleeps until the deadline the accumulator gives, and tokio's
/// timer fires up to two whole milliseconds after a deadline (rounded up
/// to a tick, then parked for whole ticks from the tick the driver is in;
/// the paused clock keeps both). Each case makes the batch at one fraction
/// of a millisecond and parks at another, as the sender does, which parks
/// whenever its drain ends. Control: lingering for `linger.ms` itself, the
/// same batches wait past it.
#[tokio::test(start_paused = true)]
async fn a_lingering_batch_leaves_within_linger_ms_not_after_it() {
    let leader = |_: &_| Some(1);
    let base = Instant::now();
    let tick = Duration::from_millis(1);
    // Advances the clock to the next instant `frac` past a whole millisecond.
    let to_fraction = |frac: Duration| async move {
        let into = (Instant::now() - base).as_nanos() % tick.as_nanos();
        let into = Duration::from_nanos(into as u64);
        tokio::time::advance(tick - into + frac).await;
    };
    let fractions = [10, 500, 990].map(Duration::from_micros);
    let mut control_late = 0;
    for aimed_early in [true, false] {
        for linger_ms in [5u64, 50] {
            let linger = Duration::from_millis(linger_ms);
            let acc = Accumulator::new(Limits {
                linger: if aimed_early {
                    linger_wait(linger)
                } else {
                    linger
                },
                ..limits()
            });
            for made in fractions {
                for parked in fractions {
                    to_fraction(made).await;
                    let created = Instant::now();
                    append(&acc, 0, 10);
                    assert!(acc.drain(created, None, leader, |_| true).0.is_empty());
                    let deadline = acc.next_deadline().expect("a lingering batch");
                    to_fraction(parked).await;
                    tokio::time::sleep_until(deadline).await;
                    let drained = acc.drain(Instant::now(), None, leader, |_| true).0;
                    let waited = created.elapsed();
                    let case = format!(
                        "linger {linger_ms} ms, made at +{made:?}, parked at +{parked:?}: \
                         waited {waited:?}"
                    );
                    if aimed_early {
                        assert_eq!(drained.len(), 1, "{case}");
                        assert!(waited <= linger, "{case}");
                        assert!(waited >= linger - 2 * tick, "{case}");
                    } else if drained.is_empty() || waited > linger {
                        control_late += 1;
                    }
                    // The batch completes before the next case, so the
                    // partition has nothing in flight.
                    let mut done = drained;
                    if done.is_empty() {
                        acc.begin_flush();
                        done = acc.drain(Instant::now(), None, leader, |_| true).0;
                        acc.end_flush();
                    }
                    for d in done {
                        acc.complete(d.batch, Ok((0, -1)));
                    }
                }
            }
        }
    }
    assert_eq!(
        control_late, 18,
        "control: aimed at the linger's end, every batch waits past it"
    );
    let ms = Duration::from_millis;
    assert_eq!(linger_wait(Duration::ZERO), Duration::ZERO);
    assert_eq!(
        linger_wait(Duration::from_micros(500)),
        Duration::from_micros(500)
    );
    assert_eq!(linger_wait(ms(1)), ms(1));
    assert_eq!(linger_wait(ms(2)), ms(1));
    assert_eq!(linger_wait(ms(3)), ms(1));
    assert_eq!(linger_wait(ms(5)), ms(3));
    assert_eq!(linger_wait(ms(100)), ms(98));
}

/// A broker that is sent a ready batch takes the first batch of its other
/// partitions too, lingering or not (the Java client drains every
/// partition of a ready node); a broker with nothing ready, or that may
/// not be sent to, takes nothing.
#[tokio::test(start_paused = true)]
async fn a_ready_broker_takes_its_lingering_partitions_along() {
    let acc = Accumulator::new(limits());
    // Partitions 0 and 2 on broker 1, partitions 1 and 3 on broker 2.
    let leader = |tp: &(Arc<str>, i32)| Some(1 + tp.1 % 2);
    append(&acc, 0, 10);
    append(&acc, 1, 10);
    tokio::time::advance(Duration::from_millis(30)).await;
    append(&acc, 2, 10);
    append(&acc, 3, 10);
    let (drained, _) = acc.drain(Instant::now(), None, leader, |_| true);
    assert!(drained.is_empty(), "nothing is ready yet");
    // Partitions 0 and 1 reach linger.ms, 2 and 3 have 30 ms to go; broker
    // 2 may not be sent to.
    tokio::time::advance(Duration::from_millis(20)).await;
    let parts = |d: Vec<crate::producer::accumulator::Drained>| {
        let mut v: Vec<(i32, i32)> = d.iter().map(|d| (d.broker, d.batch.tp.1)).collect();
        v.sort();
        v
    };
    let (drained, _) = acc.drain(Instant::now(), None, leader, |b| b == 1);
    assert_eq!(parts(drained), [(1, 0), (1, 2)], "2 goes along with 0");
    let (drained, _) = acc.drain(Instant::now(), None, leader, |_| true);
    assert_eq!(parts(drained), [(2, 1), (2, 3)], "3 goes along with 1");
}

/// A new batch's buffer follows the partition's last batch, not
/// `batch.size`: a partition that sends a few records per linger.ms holds
/// a few hundred bytes, not 128 KiB.
#[tokio::test(start_paused = true)]
async fn a_new_batch_is_sized_by_the_last_one() {
    assert_eq!(batch_capacity(0, 131_072), 16 * 1024, "the first batch");
    assert_eq!(batch_capacity(0, 1024), 1024, "never above batch.size");
    assert_eq!(batch_capacity(1000, 131_072), 1250);
    assert_eq!(batch_capacity(131_072, 131_072), 131_072);
    assert_eq!(batch_capacity(10, 131_072), HEADER, "room for the header");

    let acc = Accumulator::new(Limits {
        linger: Duration::ZERO,
        ..limits()
    });
    append(&acc, 0, 10);
    let (drained, _) = acc.drain(Instant::now(), None, |_| Some(1), |_| true);
    let sent = drained[0].batch.size();
    assert!(sent < 100, "{sent}");
    append(&acc, 0, 10);
    let state = acc.lock();
    let ps = &state
        .partitions
        .get(&(Arc::from("t"), 0))
        .expect("partition");
    assert_eq!(ps.last_batch_bytes, sent);
    let capacity = ps.queue[0].capacity();
    assert!(
        (batch_capacity(sent, 1024)..1024).contains(&capacity),
        "{capacity}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_stays_within_max_request_size() {
    let acc = Accumulator::new(Limits {
        max_request_size: 2500,
        ..limits()
    });
    for p in 0..4 {
        for _ in 0..9 {
            append(&acc, p, 100);
        }
    }
    // Four full batches of 933 bytes: two fit one request to broker 1.
    let (drained, _) = acc.drain(Instant::now(), None, |_| Some(1), |_| true);
    // Each partition holds a full batch of 8 and one of 1 behind it. The
    // full ones are equally old; ties go in the order the partitions were
    // first looked up.
    let taken: Vec<_> = drained
        .iter()
        .map(|d| (d.batch.tp.1, d.batch.count()))
        .collect();
    assert_eq!(taken, [(0, 8), (1, 8)]);
    let total: usize = drained.iter().map(|d| d.batch.size()).sum();
    assert!(total <= 2500, "{total}");
    // With partitions spread over two brokers, each broker gets its share:
    // its full batch left, and along with it the batch of 1 behind the
    // partition drained first.
    let (drained, _) = acc.drain(
        Instant::now(),
        None,
        |tp: &(Arc<str>, i32)| Some(tp.1 % 2),
        |_| true,
    );
    let mut taken: Vec<_> = drained
        .iter()
        .map(|d| (d.broker, d.batch.tp.1, d.batch.count()))
        .collect();
    taken.sort_unstable();
    assert_eq!(taken, [(0, 0, 1), (0, 2, 8), (1, 1, 1), (1, 3, 8)]);
    // A broker at its in-flight limit gets nothing.
    assert!(
        acc.drain(Instant::now(), None, |_| Some(1), |_| false)
            .0
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn memory_is_held_until_the_batch_completes() {
    let acc = Accumulator::new(Limits {
        buffer_memory: 1000,
        linger: Duration::ZERO,
        ..limits()
    });
    let r = record(400);
    let need = record_memory(&r);
    acc.reserve(need).await.expect("room");
    let f = acc.append(0, r, 0, need).expect("append").future;
    acc.reserve(need).await.expect("room for a second");
    // A third does not fit: with blocking, send waits...
    let waiting = tokio::time::timeout(Duration::from_millis(100), acc.reserve(need)).await;
    assert!(waiting.is_err(), "waits while the buffer is full");
    acc.release(need, 1); // the second reservation, unused
    // ...and gets room once the first batch completes.
    let (mut drained, _) = acc.drain(Instant::now(), None, |_| Some(1), |_| true);
    let batch = drained.pop().expect("ready").batch;
    acc.reserve(need).await.expect("room after release");
    acc.complete(batch, Ok((0, -1)));
    assert!(f.await.is_ok());
    acc.reserve(need)
        .await
        .expect("the batch's memory came back");
}

/// `max.buffered.records` bounds records whatever their bytes: with room
/// for three, a fourth send waits (and times out naming the bound, or fails
/// at once when told not to block) until a batch completes and gives its
/// records' permits back. The control: the same sends under the default
/// bound all get room at once.
#[tokio::test(start_paused = true)]
async fn records_are_bounded_by_count_until_their_batch_completes() {
    let bounded = Limits {
        max_records: 3,
        linger: Duration::ZERO,
        max_block: Duration::from_millis(200),
        ..limits()
    };
    let acc = Accumulator::new(bounded.clone());
    let need = record_memory(&record(10));
    let mut futures = Vec::new();
    for _ in 0..3 {
        acc.reserve(need).await.expect("room");
        futures.push(acc.append(0, record(10), 0, need).expect("append").future);
    }
    // Bytes to spare (1 MiB), records not: the fourth waits, then times out.
    let started = Instant::now();
    let err = acc.reserve(need).await.expect_err("no record to spare");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(started.elapsed(), Duration::from_millis(200));
    assert!(err.to_string().contains("max.buffered.records"), "{err}");
    assert!(!err.to_string().contains("buffer.memory"), "{err}");
    // A waiting send gets room when the batch of three completes.
    let (mut drained, _) = acc.drain(Instant::now(), None, |_| Some(1), |_| true);
    let batch = drained.pop().expect("ready").batch;
    assert_eq!(batch.count(), 3);
    let waiting = acc.reserve(need);
    let completes = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        acc.complete(batch, Ok((0, -1)));
    };
    let (room, ()) = tokio::join!(waiting, completes);
    room.expect("room once the batch completed");
    for f in futures {
        assert!(f.await.is_ok());
    }
    // Two of the three permits are free: two more fit, a third does not.
    acc.reserve(need).await.expect("second");
    acc.reserve(need).await.expect("third");
    assert!(acc.reserve(need).await.is_err(), "the bound is three again");

    // Told not to block, a full count fails at once, naming the bound.
    let fast = Accumulator::new(Limits {
        block_on_full: false,
        ..bounded
    });
    for _ in 0..3 {
        fast.reserve(need).await.expect("room");
    }
    let started = Instant::now();
    let err = fast.reserve(need).await.expect_err("full");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(err.to_string().contains("max.buffered.records"), "{err}");
    // Giving back one record makes room for one.
    fast.release(need, 1);
    fast.reserve(need).await.expect("room after release");

    // The control: the default bound lets the same sends through at once.
    let control = Accumulator::new(Limits {
        block_on_full: false,
        linger: Duration::ZERO,
        ..limits()
    });
    for _ in 0..4 {
        control
            .reserve(need)
            .await
            .expect("room under the default bound");
    }
}

/// A completed batch's buffer is where the next new batch writes, once
/// nothing else holds its bytes; the control is a request still holding
/// them (a connection that has not written it yet), whose buffer is left
/// alone.
#[tokio::test(start_paused = true)]
async fn a_completed_batchs_buffer_is_used_again_once_nothing_holds_it() {
    let acc = Accumulator::new(Limits {
        linger: Duration::ZERO,
        ..limits()
    });
    // Where the open batch writes, and its room: a new batch asks for a
    // quarter more than the last batch's bytes (here far less than the
    // first batch's 1,024), a reused buffer keeps its own.
    let open_batch = |acc: &Accumulator| {
        acc.lock()
            .partitions
            .get(&(Arc::from("t"), 0))
            .expect("partition")
            .queue
            .back()
            .map(|b| (b.buffer_ptr(), b.capacity()))
            .expect("an open batch")
    };
    let take = |acc: &Accumulator| {
        let (mut drained, _) = acc.drain(Instant::now(), None, |_| Some(1), |_| true);
        let d = drained.pop().expect("a ready batch");
        sent(d.batch, d.stamp)
    };

    // The first batch has the whole 1,024 bytes of batch.size.
    append(&acc, 0, 100);
    let free = take(&acc);
    let freed_at = free.buffer_ptr();
    acc.complete(free, Ok((0, -1)));
    append(&acc, 0, 100);
    assert_eq!(open_batch(&acc), (freed_at, 1024), "the same buffer again");

    let mut held = take(&acc);
    assert_eq!(held.count(), 1, "holding only its own record");
    let request = held
        .encoded(
            held.stamp.expect("stamped"),
            false,
            Compression::None,
            None,
            &mut None,
        )
        .expect("the bytes a request holds");
    acc.complete(held, Ok((1, -1)));
    append(&acc, 0, 100);
    let (at, room) = open_batch(&acc);
    assert_ne!(at, request.as_ptr(), "still in a request");
    assert_eq!(room, batch_capacity(HEADER + 109, 1024), "a new buffer");
    drop(request);
}

#[tokio::test(start_paused = true)]
async fn a_full_buffer_times_out_after_max_block_or_fails_fast() {
    let blocking = Accumulator::new(Limits {
        buffer_memory: 100,
        max_block: Duration::from_millis(200),
        ..limits()
    });
    blocking.reserve(80).await.expect("room");
    let err = blocking.reserve(80).await.expect_err("full");
    assert_eq!(err.kind(), ErrorKind::Timeout);

    let fast = Accumulator::new(Limits {
        buffer_memory: 100,
        block_on_full: false,
        ..limits()
    });
    fast.reserve(80).await.expect("room");
    let started = Instant::now();
    let err = fast.reserve(80).await.expect_err("full");
    // A full buffer is a state of the producer, not a configuration error.
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.config_key(), None);
    assert!(err.to_string().contains("buffer.memory"), "{err}");
    assert_eq!(started.elapsed(), Duration::ZERO, "fails at once");
    // A record larger than the whole buffer can never fit.
    let err = fast.reserve(101).await.expect_err("too large");
    assert_eq!(err.config_key(), Some("buffer.memory"));
}

#[tokio::test(start_paused = true)]
async fn sequences_follow_batches_and_survive_retries() {
    let acc = Accumulator::new(Limits {
        linger: Duration::ZERO,
        ..limits()
    });
    let ids = Some((1000, 0));
    // A first batch, acknowledged: from then on batches go out together.
    append(&acc, 0, 10);
    let (mut warm, _) = acc.drain(Instant::now(), ids, |_| Some(1), |_| true);
    let warm = warm.pop().expect("first batch");
    assert_eq!(warm.stamp.base_sequence, 0);
    acc.complete(sent(warm.batch, warm.stamp), Ok((0, -1)));
    for _ in 0..12 {
        append(&acc, 0, 100); // batches of 8 and 4 records
    }
    let (mut first, _) = acc.drain(Instant::now(), ids, |_| Some(1), |_| true);
    let (mut second, _) = acc.drain(Instant::now(), ids, |_| Some(1), |_| true);
    let a = first.pop().expect("first batch");
    let b = second.pop().expect("second batch");
    assert_eq!(a.stamp.base_sequence, 1);
    assert_eq!(b.stamp.base_sequence, 9);
    // Both fail; they come back in creation order whatever order the
    // answers arrive in, keeping their sequence numbers.
    acc.requeue(sent(b.batch, b.stamp), Duration::ZERO);
    acc.requeue(sent(a.batch, a.stamp), Duration::ZERO);
    let (mut again, _) = acc.drain(Instant::now(), ids, |_| Some(1), |_| true);
    let retried = again.pop().expect("retry");
    assert_eq!(retried.stamp.base_sequence, 1, "the older batch first");
    // Retrying: one batch at a time until the retried ones are through.
    assert!(
        acc.drain(Instant::now(), ids, |_| Some(1), |_| true)
            .0
            .is_empty()
    );
    acc.complete(retried.batch, Ok((0, -1)));
    let (mut next, _) = acc.drain(Instant::now(), ids, |_| Some(1), |_| true);
    let next = next.pop().expect("the second retry");
    assert_eq!(
        next.stamp.base_sequence, 9,
        "same sequence: duplicates are caught"
    );
    acc.complete(next.batch, Ok((8, -1)));

    // A new epoch: sequence numbers start again at 0 for queued batches.
    append(&acc, 0, 10);
    acc.reset_sequences();
    let (mut after, _) = acc.drain(Instant::now(), Some((1000, 1)), |_| Some(1), |_| true);
    let after = after.pop().expect("batch");
    assert_eq!(
        after.stamp,
        Stamp {
            producer_id: 1000,
            epoch: 1,
            base_sequence: 0
        }
    );
}

#[tokio::test(start_paused = true)]
async fn one_in_flight_holds_a_partition_until_its_batch_completes() {
    let acc = Accumulator::new(Limits {
        max_in_flight: 1,
        linger: Duration::ZERO,
        ..limits()
    });
    for _ in 0..20 {
        append(&acc, 0, 100); // three batches
    }
    let (mut first, _) = acc.drain(Instant::now(), None, |_| Some(1), |_| true);
    let first = first.pop().expect("first batch");
    // Even to another broker (a leader move), nothing more goes out.
    assert!(
        acc.drain(Instant::now(), None, |_| Some(2), |_| true)
            .0
            .is_empty()
    );
    acc.complete(first.batch, Ok((0, -1)));
    let (next, _) = acc.drain(Instant::now(), None, |_| Some(2), |_| true);
    assert_eq!(next.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn queued_batches_expire_at_the_delivery_timeout() {
    let acc = Accumulator::new(Limits {
        delivery_timeout: Duration::from_secs(1),
        ..limits()
    });
    let f = append(&acc, 0, 10);
    assert!(acc.expire(Instant::now()).is_empty());
    tokio::time::advance(Duration::from_secs(1)).await;
    let expired = acc.expire(Instant::now());
    assert_eq!(expired.len(), 1);
    for b in expired {
        acc.complete(
            b,
            Err(crate::Error::Timeout {
                what: "delivery".into(),
                after: Duration::from_secs(1),
            }),
        );
    }
    assert_eq!(f.await.err().map(|e| e.kind()), Some(ErrorKind::Timeout));
    assert_eq!(acc.pending(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_closed_accumulator_refuses_records_and_returns_their_memory() {
    let acc = Accumulator::new(Limits {
        buffer_memory: 200,
        block_on_full: false,
        ..limits()
    });
    acc.close();
    acc.reserve(150).await.expect("room");
    let err = acc.append(0, record(10), 0, 150).err().expect("closed");
    assert_eq!(err.kind(), crate::error::ErrorKind::State, "{err}");
    assert_eq!(err.to_string(), "not allowed now: the producer is closed");
    acc.reserve(150).await.expect("the memory came back");
}

#[tokio::test(start_paused = true)]
async fn a_partition_sends_one_batch_at_a_time_until_one_is_acknowledged_under_its_epoch() {
    let limits = Limits {
        linger: Duration::ZERO,
        ..limits()
    };
    let drain = |acc: &Accumulator, ids| acc.drain(Instant::now(), ids, |_| Some(1), |_| true).0;
    // Control: without idempotence there are no sequences to protect.
    let plain = Accumulator::new(limits.clone());
    for _ in 0..16 {
        append(&plain, 0, 100); // two full batches
    }
    assert_eq!(drain(&plain, None).len() + drain(&plain, None).len(), 2);

    let acc = Accumulator::new(limits);
    let ids = Some((1000, 0));
    for _ in 0..24 {
        append(&acc, 0, 100); // three full batches
    }
    let first = drain(&acc, ids).pop().expect("the first batch");
    assert!(drain(&acc, ids).is_empty(), "alone until acknowledged");
    acc.requeue(sent(first.batch, first.stamp), Duration::ZERO);
    let first = drain(&acc, ids).pop().expect("retried");
    acc.complete(
        sent(first.batch, first.stamp),
        Err(crate::Error::Aborted { reason: "x".into() }),
    );
    let second = drain(&acc, ids).pop().expect("the second batch");
    assert!(
        drain(&acc, ids).is_empty(),
        "a failed batch acknowledges nothing"
    );
    acc.complete(sent(second.batch, second.stamp), Ok((0, -1)));
    for _ in 0..8 {
        append(&acc, 0, 100);
    }
    let flying = [drain(&acc, ids), drain(&acc, ids)];
    assert!(
        flying.iter().all(|d| d.len() == 1),
        "acknowledged: several in flight"
    );
    for d in flying.into_iter().flatten() {
        acc.complete(sent(d.batch, d.stamp), Ok((8, -1)));
    }
    // A new epoch: the broker may know nothing of it yet.
    acc.reset_sequences();
    for _ in 0..16 {
        append(&acc, 0, 100);
    }
    let next = Some((1000, 1));
    let d = drain(&acc, next).pop().expect("a batch");
    assert_eq!(d.stamp.base_sequence, 0);
    assert!(
        drain(&acc, next).is_empty(),
        "alone again under the new epoch"
    );
}

#[tokio::test(start_paused = true)]
async fn the_pieces_of_a_split_batch_take_its_place_and_its_sequence_range() {
    let acc = Accumulator::new(Limits {
        linger: Duration::ZERO,
        ..limits()
    });
    let drain = |ids| acc.drain(Instant::now(), ids, |_| Some(1), |_| true).0;
    let ids = Some((1000, 0));
    append(&acc, 0, 10);
    let warm = drain(ids).pop().expect("first batch");
    acc.complete(sent(warm.batch, warm.stamp), Ok((0, -1)));
    // A and B (8 records each) and C (4).
    let futures: Vec<_> = (0..20).map(|_| append(&acc, 0, 100)).collect();
    let a = drain(ids).pop().expect("A");
    let b = drain(ids).pop().expect("B");
    assert_eq!((a.stamp.base_sequence, b.stamp.base_sequence), (1, 9));
    // The broker refuses A as too large; B, which overtook it, as out of
    // order.
    let a = sent(a.batch, a.stamp);
    let (at, pieces) = a.split().expect("splits");
    assert_eq!(at, 4, "eight records of one size halve");
    acc.split(a, at, pieces);
    assert_eq!(acc.pending(), 4, "two pieces, B and C");
    assert!(drain(ids).is_empty(), "B is still in flight");
    acc.requeue(sent(b.batch, b.stamp), Duration::ZERO);
    // The pieces go first, one at a time, with A's sequences; then B with
    // its own; then C.
    let mut order = Vec::new();
    let mut offset = 1;
    while let Some(d) = drain(ids).pop() {
        assert!(drain(ids).is_empty(), "one at a time while retrying");
        order.push((d.stamp.base_sequence, d.batch.count()));
        let n = i64::from(d.batch.count());
        acc.complete(sent(d.batch, d.stamp), Ok((offset, -1)));
        offset += n;
    }
    assert_eq!(order, [(1, 4), (5, 4), (9, 8), (17, 4)]);
    assert_eq!(acc.pending(), 0);
    let offsets: Vec<i64> = futures
        .into_iter()
        .map(|f| f.try_result().and_then(|r| r.ok()).map_or(-1, |m| m.offset))
        .collect();
    assert_eq!(
        offsets,
        (1..21).collect::<Vec<i64>>(),
        "each record once, in order"
    );
}

/// When the sender is told to look again: at a batch's linger end; not
/// while the broker of a ready batch is busy (its answer wakes the sender),
/// only at the batch's delivery deadline; at once when a ready batch did
/// not fit the request.
#[tokio::test(start_paused = true)]
async fn the_sender_looks_again_only_when_a_batch_could_go() {
    let acc = Accumulator::new(limits());
    let start = Instant::now();
    let linger = limits().linger;
    append(&acc, 0, 10);
    let drain =
        |open: bool| acc.drain_where(Instant::now(), None, false, |_| true, |_| Some(1), |_| open);
    let d = drain(true);
    assert!(d.batches.is_empty());
    assert_eq!(d.wake_at, Some(start + linger), "lingering");

    tokio::time::advance(linger).await;
    let d = drain(false);
    assert!(d.batches.is_empty());
    assert_eq!(
        d.wake_at,
        Some(start + limits().delivery_timeout),
        "ready, but its broker takes nothing now"
    );

    let d = drain(true);
    assert_eq!(d.batches.len(), 1);
    assert_eq!(d.wake_at, None, "nothing left");

    // Two ready partitions, room for one batch per request.
    let acc = Accumulator::new(Limits {
        max_request_size: 1,
        linger: Duration::ZERO,
        ..limits()
    });
    append(&acc, 0, 10);
    append(&acc, 1, 10);
    let now = Instant::now();
    let d = acc.drain_where(now, None, false, |_| true, |_| Some(1), |_| true);
    assert_eq!(d.batches.len(), 1);
    assert_eq!(d.wake_at, Some(now), "the other goes in the next request");
}

/// When a request has room for one batch of three ready partitions, the
/// oldest batch goes first: a partition that keeps refilling does not
/// shut the others out.
#[tokio::test(start_paused = true)]
async fn a_full_request_takes_the_oldest_ready_batches_first() {
    let acc = Accumulator::new(Limits {
        max_request_size: 1,
        linger: Duration::ZERO,
        ..limits()
    });
    for p in 0..3 {
        append(&acc, p, 10);
        tokio::time::advance(Duration::from_millis(1)).await;
    }
    let mut served = Vec::new();
    for _ in 0..3 {
        let (mut drained, _) = acc.drain(Instant::now(), None, |_| Some(1), |_| true);
        assert_eq!(drained.len(), 1, "one batch fits a request");
        let d = drained.pop().expect("a batch");
        let p = d.batch.tp.1;
        served.push(p);
        acc.complete(d.batch, Ok((0, -1)));
        // The partition just served has a new batch at once.
        append(&acc, p, 10);
        tokio::time::advance(Duration::from_millis(1)).await;
    }
    assert_eq!(served, [0, 1, 2]);
}
