package dev.klamm.peer;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * The peer's share-consume mode: one member of a share group (KafkaShareConsumer, KIP-932)
 * with explicit acknowledgement. Every record it gets is printed as a "record" line with its
 * delivery count and accepted; after each poll with records it commits (commitSync) and
 * prints an "ack_error" line per partition whose acknowledgements the broker refused,
 * naming the offsets of that poll in that partition. It runs until its stdin reaches its end
 * (the test closes the pipe) or until --timeout-ms passes (then it is not ok), then closes.
 */
final class ShareConsume {
    record Options(String bootstrap, String group, String topic, int maxRecords,
            String acquireMode, long timeoutMs) {}

    private final Options o;
    private final PrintStream out;
    private final AtomicBoolean stop = new AtomicBoolean();

    ShareConsume(Options o, PrintStream out) {
        this.o = o;
        this.out = out;
    }

    boolean run() {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, o.bootstrap());
        props.put(ConsumerConfig.GROUP_ID_CONFIG, o.group());
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "klamm-java-share-peer");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, Integer.toString(o.maxRecords()));
        props.put("share.acknowledgement.mode", "explicit");
        props.put("share.acquire.mode", o.acquireMode());
        Thread watcher = new Thread(() -> {
            try (InputStream in = System.in) {
                byte[] buf = new byte[256];
                while (in.read(buf) >= 0) {
                    // Anything written is ignored; the end of stdin stops the run.
                }
            } catch (IOException e) {
                // A closed stdin stops the run as its end does.
            }
            stop.set(true);
        }, "klamm-share-peer-stdin");
        watcher.setDaemon(true);
        watcher.start();
        long deadline = System.nanoTime() + o.timeoutMs() * 1_000_000;
        long records = 0;
        long ackErrors = 0;
        boolean timedOut = false;
        try (KafkaShareConsumer<byte[], byte[]> consumer = new KafkaShareConsumer<>(props)) {
            consumer.subscribe(List.of(o.topic()));
            while (!stop.get()) {
                if (System.nanoTime() > deadline) {
                    timedOut = true;
                    break;
                }
                ConsumerRecords<byte[], byte[]> polled = consumer.poll(Duration.ofMillis(200));
                if (polled.isEmpty()) {
                    continue;
                }
                Map<Integer, List<Long>> offsets = new HashMap<>();
                for (ConsumerRecord<byte[], byte[]> r : polled) {
                    out.println(Json.obj("type", "record", "topic", r.topic(), "partition", r.partition(),
                            "offset", r.offset(), "delivery_count", r.deliveryCount().map(Short::intValue).orElse(-1)));
                    consumer.acknowledge(r, AcknowledgeType.ACCEPT);
                    offsets.computeIfAbsent(r.partition(), p -> new ArrayList<>()).add(r.offset());
                    records++;
                }
                Map<TopicIdPartition, Optional<KafkaException>> result = consumer.commitSync();
                for (Map.Entry<TopicIdPartition, Optional<KafkaException>> e : result.entrySet()) {
                    if (e.getValue().isPresent()) {
                        ackErrors++;
                        int p = e.getKey().partition();
                        out.println(Json.obj("type", "ack_error", "partition", p,
                                "offsets", offsets.getOrDefault(p, List.of()),
                                "error", e.getValue().get().toString()));
                    }
                }
                out.flush();
            }
        }
        out.println(Json.obj("type", "summary", "mode", "share-consume", "ok", !timedOut,
                "records", records, "ack_errors", ackErrors));
        out.flush();
        return !timedOut;
    }
}
