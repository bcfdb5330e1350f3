package dev.klamm.peer;

import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The peer's rebalance-time mode, the Java consumer's side of klamm's
 * examples/rebalance_time.rs, measured the same way: members-1 KafkaConsumers (one thread
 * each) share a topic while a producer writes a record to every partition every 10 ms; once
 * every partition is being read and no assignment changed for 2 s, one more member joins.
 * For each partition, the time from the join until its final owner delivers a record of it
 * under the assignment it ends with; the largest is the run's figure. Prints one
 * "REBALANCE {json}" line with every run's figure and their median.
 */
final class RebalanceTime {
    record Options(String bootstrap, String topic, int partitions, int members, String protocol,
            String assignor, int runs) {}

    private final Options o;
    private final PrintStream out;

    /** What every member saw; guarded by this object's monitor. */
    private final Map<Long, Long> assignedAt = new HashMap<>(); // key(member, p) -> nanos
    private final Map<Integer, Integer> owner = new HashMap<>();
    private final Map<Long, List<Long>> deliveries = new HashMap<>();
    private long lastChange = Long.MIN_VALUE;
    private boolean changed;

    RebalanceTime(Options o, PrintStream out) {
        this.o = o;
        this.out = out;
    }

    private static long key(int member, int partition) {
        return ((long) member << 32) | (partition & 0xffffffffL);
    }

    boolean run() throws Exception {
        ensureTopic();
        AtomicBoolean producing = new AtomicBoolean(true);
        Thread producer = new Thread(() -> produce(producing), "rebalance-producer");
        producer.start();
        List<Long> figures = new ArrayList<>();
        try {
            for (int run = 0; run < o.runs(); run++) {
                figures.add(oneRun(run));
            }
        } finally {
            producing.set(false);
            producer.join();
        }
        List<Long> sorted = new ArrayList<>(figures);
        sorted.sort(null);
        long median = sorted.get(sorted.size() / 2);
        out.println("REBALANCE {\"client\":\"java\",\"protocol\":\"" + o.protocol() + "\",\"assignor\":\""
                + o.assignor() + "\",\"members\":" + o.members() + ",\"partitions\":" + o.partitions()
                + ",\"runs_ms\":" + figures + ",\"median_ms\":" + median + "}");
        return true;
    }

    private void ensureTopic() throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", o.bootstrap());
        try (Admin admin = Admin.create(p)) {
            try {
                admin.createTopics(List.of(new NewTopic(o.topic(), o.partitions(), (short) -1))).all().get();
            } catch (java.util.concurrent.ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw e;
                }
            }
            int n = admin.describeTopics(List.of(o.topic())).allTopicNames().get().get(o.topic()).partitions().size();
            if (n != o.partitions()) {
                throw new IllegalStateException("topic " + o.topic() + " has " + n + " partitions");
            }
        }
    }

    private void produce(AtomicBoolean producing) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, o.bootstrap());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        byte[] x = {'x'};
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            long next = System.nanoTime();
            while (producing.get()) {
                for (int part = 0; part < o.partitions(); part++) {
                    producer.send(new ProducerRecord<>(o.topic(), part, null, x));
                }
                next += 10_000_000L;
                long wait = next - System.nanoTime();
                if (wait > 0) {
                    Thread.sleep(wait / 1_000_000L, (int) (wait % 1_000_000L));
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private long oneRun(int run) throws Exception {
        synchronized (this) {
            assignedAt.clear();
            owner.clear();
            deliveries.clear();
            lastChange = Long.MIN_VALUE;
            changed = false;
        }
        String group = "java-rebalance-" + o.protocol() + "-" + o.assignor() + "-" + run + "-"
                + ProcessHandle.current().pid();
        AtomicBoolean stop = new AtomicBoolean();
        List<Thread> threads = new ArrayList<>();
        for (int id = 0; id < o.members() - 1; id++) {
            threads.add(startMember(id, group, stop));
        }
        settle(System.nanoTime(), o.members() - 1);
        long join = System.nanoTime();
        threads.add(startMember(o.members() - 1, group, stop));
        long[] perPartition = settle(join, o.members());
        stop.set(true);
        for (Thread t : threads) {
            t.join(60_000);
        }
        long worst = 0;
        for (long d : perPartition) {
            worst = Math.max(worst, d);
        }
        long[] sorted = perPartition.clone();
        java.util.Arrays.sort(sorted);
        System.err.printf("java rebalance-time: run %d: all %d partitions consumed again %d ms after the join "
                + "(median partition %d ms)%n", run, o.partitions(), worst / 1_000_000L,
                sorted[sorted.length / 2] / 1_000_000L);
        return worst / 1_000_000L;
    }

    /** Waits until `members` members own their share, every partition delivered under its
     * owner's current assignment since `join`, and nothing changed for 2 s; returns each
     * partition's time from `join` in nanoseconds. */
    private long[] settle(long join, int members) throws InterruptedException {
        long deadline = System.nanoTime() + 120_000_000_000L;
        int share = o.partitions() / members;
        while (true) {
            Thread.sleep(50);
            synchronized (this) {
                long now = System.nanoTime();
                boolean quiet = changed && lastChange >= join && now - lastChange > 2_000_000_000L;
                boolean shared = true;
                for (int m = 0; m < members; m++) {
                    int count = 0;
                    for (int w : owner.values()) {
                        if (w == m) {
                            count++;
                        }
                    }
                    shared &= count >= share;
                }
                long[] resumed = quiet && shared ? resumed(join) : null;
                if (resumed != null) {
                    return resumed;
                }
                if (now > deadline) {
                    throw new IllegalStateException("not settled within 120 s: " + owner.size() + " of "
                            + o.partitions() + " partitions owned: " + owner);
                }
            }
        }
    }

    private long[] resumed(long join) {
        long[] out = new long[o.partitions()];
        for (int p = 0; p < o.partitions(); p++) {
            Integer m = owner.get(p);
            if (m == null) {
                return null;
            }
            Long at = assignedAt.get(key(m, p));
            List<Long> ds = deliveries.get(key(m, p));
            if (at == null || ds == null) {
                return null;
            }
            long since = Math.max(at, join);
            Long first = null;
            for (long t : ds) {
                if (t >= since) {
                    first = t;
                    break;
                }
            }
            if (first == null) {
                return null;
            }
            out[p] = first - join;
        }
        return out;
    }

    private Thread startMember(int id, String group, AtomicBoolean stop) {
        Thread t = new Thread(() -> member(id, group, stop), "member-" + id);
        t.start();
        return t;
    }

    private void member(int id, String group, AtomicBoolean stop) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, o.bootstrap());
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, o.protocol());
        if (o.protocol().equals("consumer")) {
            p.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, o.assignor());
        } else {
            p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, switch (o.assignor()) {
                case "range" -> "org.apache.kafka.clients.consumer.RangeAssignor";
                case "roundrobin" -> "org.apache.kafka.clients.consumer.RoundRobinAssignor";
                case "sticky" -> "org.apache.kafka.clients.consumer.StickyAssignor";
                case "cooperative-sticky" -> "org.apache.kafka.clients.consumer.CooperativeStickyAssignor";
                default -> throw new IllegalArgumentException("unknown assignor " + o.assignor());
            });
        }
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            c.subscribe(List.of(o.topic()), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                    gone(id, parts);
                }

                @Override
                public void onPartitionsLost(Collection<TopicPartition> parts) {
                    gone(id, parts);
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                    long now = System.nanoTime();
                    synchronized (RebalanceTime.this) {
                        for (TopicPartition tp : parts) {
                            assignedAt.put(key(id, tp.partition()), now);
                            owner.put(tp.partition(), id);
                        }
                        if (!parts.isEmpty()) {
                            lastChange = now;
                            changed = true;
                        }
                    }
                }
            });
            while (!stop.get()) {
                ConsumerRecords<byte[], byte[]> records = c.poll(Duration.ofMillis(100));
                if (records.isEmpty()) {
                    continue;
                }
                long now = System.nanoTime();
                Set<TopicPartition> parts = records.partitions();
                synchronized (this) {
                    for (TopicPartition tp : parts) {
                        deliveries.computeIfAbsent(key(id, tp.partition()), k -> new ArrayList<>()).add(now);
                    }
                }
            }
        }
    }

    private void gone(int id, Collection<TopicPartition> parts) {
        long now = System.nanoTime();
        synchronized (this) {
            for (TopicPartition tp : parts) {
                if (Integer.valueOf(id).equals(owner.get(tp.partition()))) {
                    owner.remove(tp.partition());
                }
            }
            if (!parts.isEmpty()) {
                lastChange = now;
                changed = true;
            }
        }
    }
}
