package dev.klamm.peer;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.clients.consumer.StickyAssignor;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * The peer's group-consume mode: one member of a consumer group (KafkaConsumer with
 * subscribe), printing what the group does to it as JSON lines (peers/PATTERN.md, "Group
 * members"). It runs until its stdin reaches its end (the test closes the pipe), or until it
 * has processed --max-records records, or until --timeout-ms passes (then it is not ok), and
 * then commits and closes, which leaves the group.
 *
 * <p>Auto-commit is off: the member commits, synchronously, exactly the offsets after the
 * records it printed (its own record of what it processed, per partition it owns), when
 * partitions are revoked and at the end, and prints each successful commit as a
 * "committed" line before the "revoked" one.
 */
final class GroupConsume {
    /** The arguments of the mode; defaults are the short timings of klamm's group tests. */
    record Options(String bootstrap, String group, List<String> topics, String protocol,
            String strategy, String remoteAssignor, int sessionTimeoutMs, int heartbeatIntervalMs,
            int maxPollIntervalMs, String clientId, long maxRecords, long timeoutMs) {}

    private final Options o;
    private final PrintStream out;
    private final AtomicBoolean stop = new AtomicBoolean();
    private long records;
    private long revocations;
    private long assignments;
    private long lostEvents;
    private long commitErrors;
    /** Per owned partition, the offset after the last record printed in this ownership. */
    private final Map<TopicPartition, Long> processed = new HashMap<>();
    /** Per owned partition, what this member last committed for it. */
    private final Map<TopicPartition, Long> committed = new HashMap<>();

    GroupConsume(Options o, PrintStream out) {
        this.o = o;
        this.out = out;
    }

    static String assignorClass(String strategy) {
        return switch (strategy) {
            case "range" -> RangeAssignor.class.getName();
            case "roundrobin" -> RoundRobinAssignor.class.getName();
            case "sticky" -> StickyAssignor.class.getName();
            case "cooperative-sticky" -> CooperativeStickyAssignor.class.getName();
            default -> throw new IllegalArgumentException("unknown strategy '" + strategy + "'");
        };
    }

    Properties props() {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, o.bootstrap());
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, o.clientId());
        props.put(ConsumerConfig.GROUP_ID_CONFIG, o.group());
        props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, o.protocol());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "100");
        props.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, Integer.toString(o.maxPollIntervalMs()));
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        switch (o.protocol()) {
            case "classic" -> {
                if (o.remoteAssignor() != null) {
                    throw new IllegalArgumentException("--remote-assignor needs --protocol consumer");
                }
                props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignorClass(o.strategy()));
                props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, Integer.toString(o.sessionTimeoutMs()));
                props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, Integer.toString(o.heartbeatIntervalMs()));
            }
            // KIP-848: the coordinator assigns, and session and heartbeat timings are the
            // broker's (the client refuses the classic settings).
            case "consumer" -> {
                if (o.remoteAssignor() != null) {
                    props.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, o.remoteAssignor());
                }
            }
            default -> throw new IllegalArgumentException("unknown protocol '" + o.protocol() + "'");
        }
        return props;
    }

    private static long nowUs() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000L + now.getNano() / 1_000;
    }

    private static List<Object> partitionList(Collection<TopicPartition> tps) {
        List<TopicPartition> sorted = new ArrayList<>(tps);
        sorted.sort(Comparator.comparing(TopicPartition::topic).thenComparingInt(TopicPartition::partition));
        List<Object> list = new ArrayList<>();
        for (TopicPartition tp : sorted) {
            list.add(List.of(tp.topic(), tp.partition()));
        }
        return list;
    }

    private void event(String kind, KafkaConsumer<byte[], byte[]> consumer, Collection<TopicPartition> tps,
            String commitError) {
        long us = nowUs();
        ConsumerGroupMetadata meta = consumer.groupMetadata();
        out.println(Json.obj("type", "group", "event", kind, "ts_ms", us / 1000, "ts_us", us,
                "partitions", partitionList(tps), "generation", meta.generationId(),
                "member_id", meta.memberId(), "commit_error", commitError));
        out.flush();
    }

    /**
     * Commits the offsets after what was processed of {@code partitions} (those with records
     * in this ownership), synchronously, and prints them as a "committed" line; the error as
     * text, else null.
     */
    private String commit(KafkaConsumer<byte[], byte[]> consumer, Collection<TopicPartition> partitions) {
        return commit(consumer, partitions, false);
    }

    /** Like {@link #commit(KafkaConsumer, Collection)}; with {@code rethrowRebalance} a
     * RebalanceInProgressException is thrown to the caller instead of counted. */
    private String commit(KafkaConsumer<byte[], byte[]> consumer, Collection<TopicPartition> partitions,
            boolean rethrowRebalance) {
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        for (TopicPartition tp : partitions) {
            Long next = processed.get(tp);
            if (next != null && !next.equals(committed.get(tp))) {
                offsets.put(tp, new OffsetAndMetadata(next));
            }
        }
        if (offsets.isEmpty()) {
            return null;
        }
        try {
            consumer.commitSync(offsets, Duration.ofSeconds(10));
        } catch (RebalanceInProgressException e) {
            if (rethrowRebalance) {
                throw e;
            }
            commitErrors++;
            System.err.println("klamm-java-peer: commit failed: " + e);
            return e.toString();
        } catch (RuntimeException e) {
            commitErrors++;
            System.err.println("klamm-java-peer: commit failed: " + e);
            return e.toString();
        }
        offsets.forEach((tp, o) -> committed.put(tp, o.offset()));
        List<TopicPartition> sorted = new ArrayList<>(offsets.keySet());
        sorted.sort(Comparator.comparing(TopicPartition::topic).thenComparingInt(TopicPartition::partition));
        List<Object> list = new ArrayList<>();
        for (TopicPartition tp : sorted) {
            list.add(List.of(tp.topic(), tp.partition(), offsets.get(tp).offset()));
        }
        long us = nowUs();
        out.println(Json.obj("type", "group", "event", "committed", "ts_ms", us / 1000, "ts_us", us,
                "offsets", list, "generation", consumer.groupMetadata().generationId()));
        out.flush();
        return null;
    }

    private final class Listener implements ConsumerRebalanceListener {
        private final KafkaConsumer<byte[], byte[]> consumer;

        Listener(KafkaConsumer<byte[], byte[]> consumer) {
            this.consumer = consumer;
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            // What was processed of them is committed before the group moves them on;
            // the line is printed after the commit, when this member lets go.
            String error = commit(consumer, partitions);
            revocations++;
            event("revoked", consumer, partitions, error);
            partitions.forEach(tp -> {
                processed.remove(tp);
                committed.remove(tp);
            });
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            assignments++;
            event("assigned", consumer, partitions, null);
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            lostEvents++;
            event("lost", consumer, partitions, null);
            partitions.forEach(tp -> {
                processed.remove(tp);
                committed.remove(tp);
            });
        }
    }

    /** Sets the stop flag when stdin reaches its end (or fails). */
    private void watchStdin() {
        Thread t = new Thread(() -> {
            InputStream in = System.in;
            byte[] buf = new byte[256];
            try {
                while (in.read(buf) >= 0) {
                    // Input is ignored; only its end matters.
                }
            } catch (IOException e) {
                System.err.println("klamm-java-peer: stdin: " + e);
            }
            stop.set(true);
        }, "klamm-peer-stdin");
        t.setDaemon(true);
        t.start();
    }

    /** One poll: every record it returns is printed (processed). */
    private void pollOnce(KafkaConsumer<byte[], byte[]> consumer) {
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
            long us = nowUs();
            String value = r.value() == null ? null : new String(r.value(), StandardCharsets.UTF_8);
            out.println(Json.obj("type", "group", "event", "record", "ts_ms", us / 1000, "ts_us", us,
                    "topic", r.topic(), "partition", r.partition(), "offset", r.offset(), "value", value));
            records++;
            processed.put(new TopicPartition(r.topic(), r.partition()), r.offset() + 1);
        }
        out.flush();
    }

    boolean run() {
        long started = System.nanoTime();
        long deadline = started + o.timeoutMs() * 1_000_000;
        Properties props = props();
        watchStdin();
        boolean timedOut = false;
        String endCommitError;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(o.topics(), new Listener(consumer));
            while (!stop.get()) {
                if (System.nanoTime() > deadline) {
                    timedOut = true;
                    break;
                }
                pollOnce(consumer);
                if (o.maxRecords() > 0 && records >= o.maxRecords()) {
                    break;
                }
            }
            // Everything polled was processed (printed): commit it, then close, which
            // revokes (the listener prints it) and leaves the group. A rebalance under way
            // refuses the commit (cooperative protocol); poll, which takes part in it, and
            // try again, for up to 15 s.
            long endBy = System.nanoTime() + 15_000_000_000L;
            while (true) {
                try {
                    endCommitError = commit(consumer, consumer.assignment(), true);
                    break;
                } catch (RebalanceInProgressException e) {
                    if (System.nanoTime() > endBy) {
                        commitErrors++;
                        endCommitError = e.toString();
                        break;
                    }
                    System.err.println("klamm-java-peer: rebalance under way at the end; polling again");
                    pollOnce(consumer);
                }
            }
        }
        boolean ok = !timedOut && lostEvents == 0 && commitErrors == 0;
        out.println(Json.obj("type", "summary", "mode", "group-consume", "ok", ok, "protocol", o.protocol(),
                "strategy", o.protocol().equals("classic") ? o.strategy() : o.remoteAssignor(),
                "records", records, "assignments", assignments, "revocations", revocations, "lost", lostEvents,
                "commit_errors", commitErrors, "end_commit_error", endCommitError, "timed_out", timedOut,
                "ms", (System.nanoTime() - started) / 1_000_000));
        return ok;
    }
}
