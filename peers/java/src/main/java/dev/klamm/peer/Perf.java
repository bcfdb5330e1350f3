package dev.klamm.peer;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java client under the perf protocol of benches/peers/PERF.md, so that
 * scripts/perf-compare runs it next to klamm, rdkafka, Sarama and franz-go with the
 * same workload.
 *
 * <pre>
 * Perf --brokers B --topic T --mode produce|consume --records N --partitions P --size S
 *      --payloads FILE [--rate RECORDS_PER_S] [--timeout-s SECS] [-X key=value]...
 * </pre>
 *
 * The -X properties go to the producer (or consumer) as they are, after the perf
 * protocol's defaults (acks=all, enable.idempotence=false). Stdout carries one PERF line.
 * Exit status 0 when every record was delivered (or read), 1 when not, 2 for bad
 * arguments.
 */
public final class Perf {
    private Perf() {}

    private static final class Args {
        String brokers;
        String topic;
        String mode;
        int records = 1_000_000;
        int partitions = 6;
        int size = 100;
        String payloads;
        long timeoutMs = 300_000;
        double rate;
        final Map<String, String> x = new LinkedHashMap<>();
        byte[][] values;
    }

    public static void main(String[] argv) throws Exception {
        Args a;
        try {
            a = parse(argv);
        } catch (IllegalArgumentException e) {
            System.err.println("perf: " + e.getMessage());
            System.exit(2);
            return;
        }
        try {
            if (a.mode.equals("produce")) {
                produce(a);
            } else {
                consume(a);
            }
        } catch (RuntimeException e) {
            System.err.println("perf: java " + a.mode + ": " + e);
            System.exit(1);
        }
    }

    private static Args parse(String[] argv) throws java.io.IOException {
        Args a = new Args();
        for (int i = 0; i < argv.length; i++) {
            String flag = argv[i];
            if (i + 1 >= argv.length) {
                throw new IllegalArgumentException(flag + " needs a value");
            }
            String v = argv[++i];
            switch (flag) {
                case "--brokers" -> a.brokers = v;
                case "--topic" -> a.topic = v;
                case "--mode" -> a.mode = v;
                case "--records" -> a.records = Integer.parseInt(v);
                case "--partitions" -> a.partitions = Integer.parseInt(v);
                case "--size" -> a.size = Integer.parseInt(v);
                case "--payloads" -> a.payloads = v;
                case "--timeout-s" -> a.timeoutMs = Long.parseLong(v) * 1000;
                case "--rate" -> a.rate = Double.parseDouble(v);
                case "-X" -> {
                    int eq = v.indexOf('=');
                    if (eq < 0) {
                        throw new IllegalArgumentException("-X " + v + ": want key=value");
                    }
                    a.x.put(v.substring(0, eq), v.substring(eq + 1));
                }
                default -> throw new IllegalArgumentException("unknown argument " + flag);
            }
        }
        if (a.brokers == null || a.topic == null || a.payloads == null || a.mode == null) {
            throw new IllegalArgumentException("--brokers, --topic, --mode and --payloads are required");
        }
        if (!a.mode.equals("produce") && !a.mode.equals("consume")) {
            throw new IllegalArgumentException("unknown --mode " + a.mode);
        }
        if (a.records < 1 || a.partitions < 1 || a.size < 1) {
            throw new IllegalArgumentException("--records, --partitions and --size must be positive");
        }
        byte[] data = Files.readAllBytes(Path.of(a.payloads));
        if (data.length == 0 || data.length % a.size != 0) {
            throw new IllegalArgumentException(a.payloads + ": " + data.length
                    + " bytes is not a whole number of " + a.size + "-byte payloads");
        }
        a.values = new byte[data.length / a.size][];
        for (int k = 0; k < a.values.length; k++) {
            a.values[k] = Arrays.copyOfRange(data, k * a.size, (k + 1) * a.size);
        }
        return a;
    }

    /** The process's CPU time in seconds, every thread (nanosecond clock). */
    private static double cpuSeconds() {
        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        return os.getProcessCpuTime() / 1e9;
    }

    static long checksum(byte[] v) {
        if (v == null || v.length == 0) {
            return 0;
        }
        return 131L * v.length + 7L * (v[0] & 0xff) + (v[v.length - 1] & 0xff);
    }

    /** The delivery report of one record: its latency goes into the shared array. */
    private static final class Report implements Callback {
        private final long[] lat;
        private final int index;
        private final long sentNs;
        private final AtomicReference<Exception> failed;

        Report(long[] lat, int index, long sentNs, AtomicReference<Exception> failed) {
            this.lat = lat;
            this.index = index;
            this.sentNs = sentNs;
            this.failed = failed;
        }

        @Override
        public void onCompletion(RecordMetadata metadata, Exception e) {
            if (e != null) {
                failed.compareAndSet(null, e);
                lat[index] = -1;
            } else {
                lat[index] = System.nanoTime() - sentNs;
            }
        }
    }

    private static void produce(Args a) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, a.brokers);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "klamm-perf-java");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
        p.putAll(a.x);
        String codec = a.x.getOrDefault("compression.type", "none");
        long[] lat = new long[a.records];
        AtomicReference<Exception> failed = new AtomicReference<>();
        double cpu0;
        long start;
        double secs;
        double cpu;
        try (var producer = new KafkaProducer<byte[], byte[]>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            // Metadata before the clock starts, as the other clients connect first.
            producer.partitionsFor(a.topic);
            cpu0 = cpuSeconds();
            start = System.nanoTime();
            for (int i = 0; i < a.records; i++) {
                if (a.rate > 0) {
                    // Record i is due i / rate seconds after the start.
                    long wait = start + (long) (i / a.rate * 1e9) - System.nanoTime();
                    if (wait > 0) {
                        java.util.concurrent.locks.LockSupport.parkNanos(wait);
                    }
                }
                var record = new ProducerRecord<byte[], byte[]>(a.topic, i % a.partitions, null, a.values[i % a.values.length]);
                producer.send(record, new Report(lat, i, System.nanoTime(), failed));
            }
            producer.flush();
            secs = (System.nanoTime() - start) / 1e9;
            cpu = cpuSeconds() - cpu0;
        }
        if (failed.get() != null) {
            long n = Arrays.stream(lat).filter(l -> l < 0).count();
            throw new IllegalStateException(n + " records failed, the first: " + failed.get());
        }
        long[] sorted = lat.clone();
        Arrays.sort(sorted);
        report(a, codec, a.records, (long) a.records * a.size, secs, cpu, sorted, 0);
    }

    private static void consume(Args a) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, a.brokers);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "klamm-perf-java");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        String codec = "none";
        for (var e : a.x.entrySet()) {
            // Producer settings name the data's codec; the consumer takes the rest.
            if (e.getKey().equals("compression.type")) {
                codec = e.getValue();
            } else if (ConsumerConfig.configNames().contains(e.getKey())) {
                p.put(e.getKey(), e.getValue());
            }
        }
        long total = 0;
        long bytes = 0;
        long sum = 0;
        long firstNs = -1;
        double cpu0;
        long start;
        double secs;
        double cpu;
        try (var consumer = new KafkaConsumer<byte[], byte[]>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = new ArrayList<>();
            for (int i = 0; i < a.partitions; i++) {
                parts.add(new TopicPartition(a.topic, i));
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            cpu0 = cpuSeconds();
            start = System.nanoTime();
            long deadline = start + a.timeoutMs * 1_000_000L;
            while (total < a.records) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("timed out after " + total + " of " + a.records + " records");
                }
                ConsumerRecords<byte[], byte[]> got = consumer.poll(Duration.ofMillis(100));
                if (firstNs < 0 && !got.isEmpty()) {
                    firstNs = System.nanoTime();
                }
                for (ConsumerRecord<byte[], byte[]> r : got) {
                    byte[] v = r.value();
                    total++;
                    bytes += v == null ? 0 : v.length;
                    sum += checksum(v);
                }
            }
            secs = (System.nanoTime() - start) / 1e9;
            cpu = cpuSeconds() - cpu0;
            System.err.printf("java: first record after %.1f ms%n", (firstNs - start) / 1e6);
        }
        report(a, codec, total, bytes, secs, cpu, new long[0], sum);
    }

    /** The kafka-clients version, from the properties file its jar carries. */
    private static String clientVersion() {
        try (var in = KafkaProducer.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            Properties p = new Properties();
            if (in != null) {
                p.load(in);
            }
            return p.getProperty("version", "unknown");
        } catch (java.io.IOException e) {
            return "unknown";
        }
    }

    private static String pct(long[] sorted, double p) {
        if (sorted.length == 0) {
            return "null";
        }
        int rank = (int) Math.ceil(p / 100.0 * sorted.length);
        rank = Math.max(1, Math.min(sorted.length, rank));
        return String.format("%.3f", sorted[rank - 1] / 1e6);
    }

    private static void report(Args a, String codec, long records, long bytes, double secs, double cpu, long[] sortedLat, long sum) {
        System.err.printf("java %s: %d records in %.3f s, CPU %.3f s%n", a.mode, records, secs, cpu);
        System.out.printf(
                "PERF {\"client\":\"java\",\"version\":\"%s\",\"mode\":\"%s\",\"codec\":\"%s\",\"records\":%d,"
                        + "\"bytes\":%d,\"size\":%d,\"secs\":%.4f,\"cpu_s\":%.4f,\"p50_ms\":%s,\"p99_ms\":%s,"
                        + "\"p999_ms\":%s,\"checksum\":%d}%n",
                clientVersion(), a.mode, codec, records, bytes, a.size, secs, cpu,
                pct(sortedLat, 50), pct(sortedLat, 99), pct(sortedLat, 99.9), sum);
        System.out.flush();
    }
}
