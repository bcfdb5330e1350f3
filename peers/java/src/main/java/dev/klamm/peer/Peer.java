package dev.klamm.peer;

import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * klamm's Java peer: the Apache Kafka Java client on the other side of klamm's interop
 * tests. Records follow the interop pattern (peers/PATTERN.md, {@link Pattern}).
 *
 * <pre>
 * pattern     --partitions P --count N
 *     the pattern's records as JSON lines (offset = index), no broker involved
 * produce     --bootstrap B --topic T --partitions P --count N --codec C --timeout-ms MS
 *     N records per partition, interleaved over partitions 0..P-1; acks=all, idempotent,
 *     compression.type=C (none, gzip, snappy, lz4, zstd)
 * consume     --bootstrap B --topic T --partitions P --count N --timeout-ms MS
 *             [--isolation read_uncommitted|read_committed] [--output dump|verify]
 *             [--max-mismatches M]
 *     reads partitions 0..P-1 from the beginning until each has given N records and the
 *     position reached the end offset (the last stable offset under read_committed), or
 *     until the timeout. dump: one JSON line per record. verify: checks that partition p
 *     holds records 0..N-1 of the pattern at offsets 0..N-1 and prints the first M
 *     mismatches (default 10)
 * txn-produce --bootstrap B --topic T --partitions P --transactional-id ID
 *             --script commit:10,abort:5,... --codec C --timeout-ms MS
 *     one transaction per step (see PATTERN.md); aborted records are flushed before the abort
 * group-consume --bootstrap B --group G --topics T[,T...] --timeout-ms MS
 *             [--protocol classic|consumer] [--strategy range|roundrobin|sticky|cooperative-sticky]
 *             [--remote-assignor uniform|range] [--session-timeout-ms 6000]
 *             [--heartbeat-interval-ms 500] [--max-poll-interval-ms 20000] [--client-id ID]
 *             [--max-records N]
 *     one member of group G subscribed to the topics (see {@link GroupConsume}): a JSON line
 *     per rebalance callback and per record; commits synchronously when partitions are revoked
 *     and at the end; runs until stdin reaches its end, N records were processed, or the
 *     timeout passed (not ok). --strategy (default range) and the session and heartbeat
 *     settings are for the classic protocol, --remote-assignor for the consumer protocol
 * share-consume --bootstrap B --group G --topic T --timeout-ms MS [--max-records 500]
 *             [--acquire-mode batch_optimized|record_limit]
 *     one member of share group G (see {@link ShareConsume}): a JSON line per record (with its
 *     delivery count), each accepted and committed after its poll, an "ack_error" line per
 *     partition whose acknowledgements were refused; runs until stdin reaches its end
 * rebalance-time --bootstrap B --topic T [--partitions 60] [--members 6]
 *             [--protocol classic|consumer] [--assignor range|cooperative-sticky|uniform|...]
 *             [--runs 3]
 *     the Java consumer's side of klamm's examples/rebalance_time.rs (see {@link
 *     RebalanceTime}): the time from a member joining until every partition is consumed
 *     again, one "REBALANCE {json}" line
 * admin --bootstrap B --timeout-ms MS --script "OP ARGS\n..." [--config "k=v\nk=v"]
 *     the Java admin client as a witness: one JSON line per operation (see {@link AdminProbe})
 * </pre>
 *
 * Stdout carries JSON lines only, the last being a "summary" with "ok"; the exit status is
 * 0 when ok, 1 when not, 2 for bad arguments, 3 when the watchdog (the timeout plus 15 s)
 * had to end a run that hung. Diagnostics go to stderr.
 */
public final class Peer {
    private static final PrintStream OUT = new PrintStream(
            new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16), false,
            StandardCharsets.UTF_8);
    private static final long WATCHDOG_GRACE_MS = 15_000;

    private final Map<String, String> args;
    private final long started = System.nanoTime();

    private Peer(Map<String, String> args) {
        this.args = args;
    }

    public static void main(String[] argv) {
        if (argv.length < 1) {
            usage("no mode given");
        }
        String mode = argv[0];
        Map<String, String> args = new HashMap<>();
        for (int n = 1; n < argv.length; n += 2) {
            if (!argv[n].startsWith("--") || n + 1 >= argv.length) {
                usage("expected --name value pairs after the mode, at '" + argv[n] + "'");
            }
            args.put(argv[n].substring(2), argv[n + 1]);
        }
        Peer peer = new Peer(args);
        boolean ok;
        try {
            ok = switch (mode) {
                case "pattern" -> peer.pattern();
                case "produce" -> peer.withWatchdog(peer::produce);
                case "consume" -> peer.withWatchdog(peer::consume);
                case "txn-produce" -> peer.withWatchdog(peer::txnProduce);
                case "group-consume" -> peer.withWatchdog(peer::groupConsume);
                case "rebalance-time" -> peer.rebalanceTime();
                case "share-consume" -> peer.withWatchdog(peer::shareConsume);
                case "admin" -> peer.withWatchdog(peer::admin);
                default -> {
                    usage("unknown mode '" + mode + "'");
                    yield false;
                }
            };
        } catch (IllegalArgumentException e) {
            usage(e.getMessage());
            ok = false;
        } catch (Exception e) {
            e.printStackTrace();
            OUT.println(Json.obj("type", "summary", "mode", mode, "ok", false, "error", e.toString()));
            ok = false;
        }
        OUT.flush();
        System.exit(ok ? 0 : 1);
    }

    private static void usage(String why) {
        System.err.println("klamm-java-peer: " + why);
        System.err.println("usage: klamm-java-peer pattern|produce|consume|txn-produce|group-consume|share-consume|rebalance-time|admin --name value ...");
        System.err.println("       (the modes and their arguments are described in Peer.java)");
        System.exit(2);
    }

    private interface Mode {
        boolean run() throws Exception;
    }

    /** Runs a mode that talks to a broker, ended by the watchdog if it outlives its timeout. */
    private boolean withWatchdog(Mode mode) throws Exception {
        long timeoutMs = timeoutMs();
        ScheduledExecutorService dog = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "klamm-peer-watchdog");
            t.setDaemon(true);
            return t;
        });
        dog.schedule(() -> {
            OUT.println(Json.obj("type", "summary", "ok", false, "error",
                    "watchdog: still running " + WATCHDOG_GRACE_MS + " ms after the timeout of "
                            + timeoutMs + " ms"));
            OUT.flush();
            System.err.println("klamm-java-peer: watchdog ends the run");
            Runtime.getRuntime().halt(3);
        }, timeoutMs + WATCHDOG_GRACE_MS, TimeUnit.MILLISECONDS);
        try {
            return mode.run();
        } finally {
            dog.shutdownNow();
        }
    }

    private boolean admin() {
        boolean ok = new AdminProbe(str("bootstrap"), str("config", ""), timeoutMs())
                .run(str("script"), OUT);
        OUT.println(Json.obj("type", "summary", "mode", "admin", "ok", ok));
        return ok;
    }

    // ---- arguments

    private String str(String name) {
        String v = args.get(name);
        if (v == null) {
            throw new IllegalArgumentException("--" + name + " is required");
        }
        return v;
    }

    private String str(String name, String fallback) {
        return args.getOrDefault(name, fallback);
    }

    private int integer(String name) {
        return Integer.parseInt(str(name));
    }

    private long timeoutMs() {
        return Long.parseLong(str("timeout-ms"));
    }

    private long elapsedMs() {
        return (System.nanoTime() - started) / 1_000_000;
    }

    private String codec() {
        String codec = str("codec", "none");
        if (!List.of("none", "gzip", "snappy", "lz4", "zstd").contains(codec)) {
            throw new IllegalArgumentException("unknown codec '" + codec + "'");
        }
        return codec;
    }

    // ---- output

    private static String recordLine(int partition, long offset, byte[] key, byte[] value,
            List<Pattern.Hdr> headers, long timestamp, String timestampType) {
        List<Object> hs = new ArrayList<>();
        for (Pattern.Hdr h : headers) {
            hs.add(List.of(h.key(), new Json.Raw(Json.b64(h.value()))));
        }
        return Json.obj("type", "record", "partition", partition, "offset", offset,
                "key", new Json.Raw(Json.b64(key)), "value", new Json.Raw(Json.b64(value)),
                "headers", hs, "timestamp", timestamp, "timestampType", timestampType);
    }

    // ---- pattern

    private boolean pattern() {
        int partitions = integer("partitions");
        int count = integer("count");
        for (int p = 0; p < partitions; p++) {
            for (long i = 0; i < count; i++) {
                OUT.println(recordLine(p, i, Pattern.key(p, i), Pattern.value(p, i),
                        Pattern.headers(p, i), Pattern.timestamp(i), "CreateTime"));
            }
        }
        OUT.println(Json.obj("type", "summary", "mode", "pattern", "ok", true,
                "partitions", partitions, "count", count));
        return true;
    }

    // ---- produce

    private Properties producerProps(String codec) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, str("bootstrap"));
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "klamm-java-peer");
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        props.put(ProducerConfig.LINGER_MS_CONFIG, str("linger-ms", "5"));
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, Long.toString(timeoutMs()));
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return props;
    }

    private static ProducerRecord<byte[], byte[]> patternRecord(String topic, int p, long i) {
        List<Header> headers = new ArrayList<>();
        for (Pattern.Hdr h : Pattern.headers(p, i)) {
            headers.add(new RecordHeader(h.key(), h.value()));
        }
        return new ProducerRecord<>(topic, p, Pattern.timestamp(i), Pattern.key(p, i),
                Pattern.value(p, i), headers);
    }

    private boolean produce() throws Exception {
        String topic = str("topic");
        int partitions = integer("partitions");
        int count = integer("count");
        String codec = codec();
        List<List<Future<RecordMetadata>>> sent = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            sent.add(new ArrayList<>(count));
        }
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProps(codec))) {
            for (long i = 0; i < count; i++) {
                for (int p = 0; p < partitions; p++) {
                    sent.get(p).add(producer.send(patternRecord(topic, p, i)));
                }
            }
            producer.flush();
        }
        List<Object> acked = new ArrayList<>();
        int errors = 0;
        String firstError = null;
        for (int p = 0; p < partitions; p++) {
            List<Long> offsets = new ArrayList<>();
            for (Future<RecordMetadata> f : sent.get(p)) {
                try {
                    offsets.add(f.get().offset());
                } catch (ExecutionException e) {
                    errors++;
                    if (firstError == null) {
                        firstError = e.getCause().toString();
                    }
                }
            }
            acked.add(ackSummary(p, offsets));
        }
        boolean ok = errors == 0;
        OUT.println(Json.obj("type", "summary", "mode", "produce", "ok", ok, "topic", topic,
                "codec", codec, "partitions", acked, "count", count,
                "written", (long) count * partitions - errors, "errors", errors,
                "first_error", firstError, "ms", elapsedMs()));
        return ok;
    }

    /** The acknowledged offsets of one partition, in send order. */
    private static Map<String, Object> ackSummary(int p, List<Long> offsets) {
        boolean consecutive = true;
        for (int n = 1; n < offsets.size(); n++) {
            consecutive &= offsets.get(n) == offsets.get(0) + n;
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("partition", p);
        m.put("acked", offsets.size());
        m.put("first_offset", offsets.isEmpty() ? null : offsets.get(0));
        m.put("last_offset", offsets.isEmpty() ? null : offsets.get(offsets.size() - 1));
        m.put("consecutive", consecutive);
        return m;
    }

    // ---- txn-produce

    private boolean txnProduce() throws Exception {
        String topic = str("topic");
        int partitions = integer("partitions");
        String codec = codec();
        List<String[]> steps = new ArrayList<>();
        for (String step : str("script").split(",")) {
            String[] parts = step.split(":");
            if (parts.length != 2 || !(parts[0].equals("commit") || parts[0].equals("abort"))) {
                throw new IllegalArgumentException("bad script step '" + step + "'");
            }
            Integer.parseInt(parts[1]);
            steps.add(parts);
        }
        Properties props = producerProps(codec);
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, str("transactional-id"));
        long committed = 0;
        long aborted = 0;
        long next = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            producer.initTransactions();
            for (int s = 0; s < steps.size(); s++) {
                boolean commit = steps.get(s)[0].equals("commit");
                int n = Integer.parseInt(steps.get(s)[1]);
                List<List<Future<RecordMetadata>>> sent = new ArrayList<>();
                for (int p = 0; p < partitions; p++) {
                    sent.add(new ArrayList<>(n));
                }
                producer.beginTransaction();
                for (long i = next; i < next + n; i++) {
                    for (int p = 0; p < partitions; p++) {
                        sent.get(p).add(producer.send(patternRecord(topic, p, i)));
                    }
                }
                // Written before the abort, so that the aborted records are in the log.
                producer.flush();
                List<Object> written = new ArrayList<>();
                for (int p = 0; p < partitions; p++) {
                    List<Long> offsets = new ArrayList<>();
                    for (Future<RecordMetadata> f : sent.get(p)) {
                        offsets.add(f.get().offset());
                    }
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("partition", p);
                    m.put("offsets", offsets);
                    written.add(m);
                }
                if (commit) {
                    producer.commitTransaction();
                    committed += (long) n * partitions;
                } else {
                    producer.abortTransaction();
                    aborted += (long) n * partitions;
                }
                OUT.println(Json.obj("type", "txn", "step", s, "outcome", commit ? "commit" : "abort",
                        "first_index", next, "count", n, "partitions", written));
                OUT.flush();
                next += n;
            }
        }
        OUT.println(Json.obj("type", "summary", "mode", "txn-produce", "ok", true, "topic", topic,
                "codec", codec, "steps", steps.size(), "committed", committed, "aborted", aborted,
                "ms", elapsedMs()));
        return true;
    }

    // ---- group-consume

    /** The rebalance-time mode (see {@link RebalanceTime}); not under the watchdog: each of its
     * waits is bounded (120 s per settling). */
    private boolean rebalanceTime() throws Exception {
        RebalanceTime.Options o = new RebalanceTime.Options(str("bootstrap"), str("topic"),
                Integer.parseInt(str("partitions", "60")), Integer.parseInt(str("members", "6")),
                str("protocol", "classic"), str("assignor", "range"), Integer.parseInt(str("runs", "3")));
        boolean ok = new RebalanceTime(o, OUT).run();
        OUT.flush();
        return ok;
    }

    private boolean shareConsume() {
        ShareConsume.Options o = new ShareConsume.Options(str("bootstrap"), str("group"), str("topic"),
                Integer.parseInt(str("max-records", "500")), str("acquire-mode", "batch_optimized"),
                timeoutMs());
        return new ShareConsume(o, OUT).run();
    }

    private boolean groupConsume() {
        String protocol = str("protocol", "classic");
        if (protocol.equals("consumer") && args.containsKey("strategy")) {
            throw new IllegalArgumentException("--strategy is for the classic protocol; the consumer "
                    + "protocol takes --remote-assignor");
        }
        List<String> topics = List.of(str("topics").split(","));
        GroupConsume.Options o = new GroupConsume.Options(str("bootstrap"), str("group"), topics, protocol,
                str("strategy", "range"), args.get("remote-assignor"),
                Integer.parseInt(str("session-timeout-ms", "6000")),
                Integer.parseInt(str("heartbeat-interval-ms", "500")),
                Integer.parseInt(str("max-poll-interval-ms", "20000")), str("client-id", "klamm-java-peer"),
                Long.parseLong(str("max-records", "0")), timeoutMs());
        return new GroupConsume(o, OUT).run();
    }

    // ---- consume

    private boolean consume() {
        String topic = str("topic");
        int partitions = integer("partitions");
        int count = integer("count");
        String isolation = str("isolation", "read_uncommitted");
        String output = str("output", "dump");
        int maxMismatches = Integer.parseInt(str("max-mismatches", "10"));
        if (!isolation.equals("read_uncommitted") && !isolation.equals("read_committed")) {
            throw new IllegalArgumentException("unknown isolation '" + isolation + "'");
        }
        if (!output.equals("dump") && !output.equals("verify")) {
            throw new IllegalArgumentException("unknown output '" + output + "'");
        }
        boolean verify = output.equals("verify");
        long deadline = System.nanoTime() + timeoutMs() * 1_000_000;

        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, str("bootstrap"));
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "klamm-java-peer");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "100");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());

        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        long[] seen = new long[partitions];
        long[] firstOffset = new long[partitions];
        long[] lastOffset = new long[partitions];
        java.util.Arrays.fill(firstOffset, -1);
        java.util.Arrays.fill(lastOffset, -1);
        long mismatches = 0;
        long outOfOrder = 0;
        boolean caughtUp = false;
        Map<TopicPartition, Long> end = null;
        long[] position = new long[partitions];
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            while (System.nanoTime() < deadline) {
                long left = Math.max(1, (deadline - System.nanoTime()) / 1_000_000);
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(Math.min(200, left)))) {
                    int p = r.partition();
                    if (lastOffset[p] >= 0 && r.offset() <= lastOffset[p]) {
                        outOfOrder++;
                    }
                    if (firstOffset[p] < 0) {
                        firstOffset[p] = r.offset();
                    }
                    lastOffset[p] = r.offset();
                    List<Pattern.Hdr> headers = new ArrayList<>();
                    for (Header h : r.headers()) {
                        headers.add(new Pattern.Hdr(h.key(), h.value()));
                    }
                    long index = seen[p]++;
                    if (!verify) {
                        OUT.println(recordLine(p, r.offset(), r.key(), r.value(), headers,
                                r.timestamp(), r.timestampType().name));
                        continue;
                    }
                    String diff = r.offset() != index ? "offset: want " + index + " got " + r.offset()
                            : index >= count ? "extra: a record beyond the " + count + " expected"
                            : Pattern.diff(p, index, r.key(), r.value(), headers, r.timestamp());
                    if (diff == null && !r.timestampType().name.equals("CreateTime")) {
                        diff = "timestampType: want CreateTime got " + r.timestampType().name;
                    }
                    if (diff != null && mismatches++ < maxMismatches) {
                        int colon = diff.indexOf(':');
                        OUT.println(Json.obj("type", "mismatch", "partition", p, "offset", r.offset(),
                                "index", index, "field", diff.substring(0, colon),
                                "detail", diff.substring(colon + 2)));
                    }
                }
                boolean all = true;
                for (int p = 0; p < partitions; p++) {
                    all &= seen[p] >= count;
                }
                if (!all) {
                    continue;
                }
                if (end == null) {
                    end = consumer.endOffsets(tps, Duration.ofMillis(left));
                }
                caughtUp = true;
                for (int p = 0; p < partitions; p++) {
                    position[p] = consumer.position(tps.get(p), Duration.ofMillis(left));
                    caughtUp &= position[p] >= end.get(tps.get(p));
                }
                if (caughtUp) {
                    break;
                }
            }
        }
        long extra = 0;
        boolean complete = true;
        List<Object> parts = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            extra += Math.max(0, seen[p] - count);
            complete &= seen[p] >= count;
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("partition", p);
            m.put("count", seen[p]);
            m.put("first_offset", firstOffset[p]);
            m.put("last_offset", lastOffset[p]);
            m.put("end_offset", end == null ? null : end.get(tps.get(p)));
            m.put("position", end == null ? null : position[p]);
            parts.add(m);
        }
        boolean ok = complete && caughtUp && extra == 0 && mismatches == 0 && outOfOrder == 0;
        OUT.println(Json.obj("type", "summary", "mode", "consume", "ok", ok, "topic", topic,
                "isolation", isolation, "output", output, "count", count, "partitions", parts,
                "caught_up", caughtUp, "extra", extra, "mismatches", mismatches,
                "out_of_order", outOfOrder, "timed_out", !caughtUp, "ms", elapsedMs()));
        return ok;
    }
}
