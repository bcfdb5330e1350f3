package dev.klamm.peer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.security.token.delegation.DelegationToken;

/**
 * The Java admin client as an independent witness of klamm's admin tests: runs a script of
 * operations, one per line, and prints one JSON line per operation, {"type":"admin","op":..,
 * "result":..} or {"type":"admin","op":..,"error":"KAFKA_ERROR_NAME"}.
 *
 * <pre>
 * admin --bootstrap B --timeout-ms MS --script "OP ARGS\nOP ARGS..." [--config "k=v\nk=v"]
 *   list-topics                           names (internal too)
 *   describe-topics T [T...]              per topic: id, internal, partitions (leader, replicas, isr)
 *   create-topic T P RF [k=v...]          create with configs
 *   create-partitions T TOTAL
 *   delete-topic T
 *   describe-configs TYPE NAME            TYPE: topic|broker|broker-logger|group; name -> value,source
 *   set-config TYPE NAME k=v              incremental SET
 *   describe-acls                         every ACL as "principal|permission|operation|type|name|pattern|host"
 *   create-acl PRINCIPAL TYPE NAME PATTERN OP PERMISSION
 *   list-offsets T P SPEC                 SPEC: earliest|latest|max-timestamp|<ms>
 *   describe-cluster                      cluster id, controller, brokers
 *   describe-features                     finalized levels
 *   describe-quorum                       leader, voters, observers
 *   describe-log-dirs BROKER              dir -> partitions
 *   list-reassignments
 *   describe-quotas                       entity -> key -> value
 *   set-quota TYPE NAME KEY VALUE         (NAME "-" is the default entity)
 *   describe-scram                        user -> [mechanism:iterations]
 *   describe-producers T P
 *   describe-transactions ID
 *   list-transactions
 *   describe-tokens
 *   list-groups                           group -> state, type
 *   describe-group G                      state, type, members with their partitions
 *   group-offsets G                       committed offsets
 * </pre>
 */
final class AdminProbe {
    private final Admin admin;
    private final long timeoutMs;

    AdminProbe(String bootstrap, String config, long timeoutMs) {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) Math.min(timeoutMs, 30_000));
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) timeoutMs);
        if (config != null && !config.isEmpty()) {
            for (String kv : config.split("\n")) {
                int eq = kv.indexOf('=');
                props.put(kv.substring(0, eq), kv.substring(eq + 1));
            }
        }
        this.admin = Admin.create(props);
        this.timeoutMs = timeoutMs;
    }

    /** Runs every line of the script; false when an operation could not be run at all. */
    boolean run(String script, java.io.PrintStream out) {
        boolean ok = true;
        try {
            for (String line : script.split("\n")) {
                String[] w = line.trim().split("\\s+");
                if (w.length == 0 || w[0].isEmpty()) {
                    continue;
                }
                Object result;
                try {
                    result = op(w);
                } catch (ExecutionException e) {
                    Throwable cause = e.getCause();
                    out.println(Json.obj("type", "admin", "op", line.trim(), "error",
                            Errors.forException(cause).name(), "message", String.valueOf(cause)));
                    continue;
                } catch (IllegalArgumentException e) {
                    throw e;
                } catch (Exception e) {
                    out.println(Json.obj("type", "admin", "op", line.trim(), "error", "EXCEPTION",
                            "message", e.toString()));
                    ok = false;
                    continue;
                }
                out.println(Json.obj("type", "admin", "op", line.trim(), "result", result));
            }
        } finally {
            admin.close(java.time.Duration.ofSeconds(5));
        }
        return ok;
    }

    private <T> T get(KafkaFuture<T> f) throws Exception {
        return f.get(timeoutMs, TimeUnit.MILLISECONDS);
    }

    private Object op(String[] w) throws Exception {
        String[] a = Arrays.copyOfRange(w, 1, w.length);
        switch (w[0]) {
            case "list-topics": {
                return new ArrayList<>(new java.util.TreeSet<>(
                        get(admin.listTopics(new ListTopicsOptions().listInternal(true)).names())));
            }
            case "describe-topics": {
                Map<String, Object> out = new TreeMap<>();
                Map<String, KafkaFuture<TopicDescription>> futures =
                        admin.describeTopics(Arrays.asList(a)).topicNameValues();
                for (String t : a) {
                    try {
                        out.put(t, topic(get(futures.get(t))));
                    } catch (ExecutionException e) {
                        out.put(t, Map.of("error", Errors.forException(e.getCause()).name()));
                    }
                }
                return out;
            }
            case "create-topic": {
                NewTopic t = new NewTopic(a[0], Integer.parseInt(a[1]), Short.parseShort(a[2]));
                Map<String, String> configs = new HashMap<>();
                for (int n = 3; n < a.length; n++) {
                    String[] kv = a[n].split("=", 2);
                    configs.put(kv[0], kv[1]);
                }
                t.configs(configs);
                get(admin.createTopics(List.of(t)).all());
                return "created";
            }
            case "create-partitions": {
                get(admin.createPartitions(Map.of(a[0], NewPartitions.increaseTo(Integer.parseInt(a[1])))).all());
                return "created";
            }
            case "delete-topic": {
                get(admin.deleteTopics(List.of(a[0])).all());
                return "deleted";
            }
            case "describe-configs": {
                ConfigResource r = new ConfigResource(resourceType(a[0]), a.length > 1 ? a[1] : "");
                Config c = get(admin.describeConfigs(List.of(r)).all()).get(r);
                Map<String, Object> out = new TreeMap<>();
                for (ConfigEntry e : c.entries()) {
                    Map<String, Object> v = new LinkedHashMap<>();
                    v.put("value", e.value());
                    v.put("source", e.source().name());
                    v.put("read_only", e.isReadOnly());
                    v.put("sensitive", e.isSensitive());
                    out.put(e.name(), v);
                }
                return out;
            }
            case "set-config": {
                ConfigResource r = new ConfigResource(resourceType(a[0]), a[1]);
                String[] kv = a[2].split("=", 2);
                AlterConfigOp op = new AlterConfigOp(new ConfigEntry(kv[0], kv[1]), AlterConfigOp.OpType.SET);
                get(admin.incrementalAlterConfigs(Map.of(r, List.of(op))).all());
                return "set";
            }
            case "describe-acls": {
                List<String> out = new ArrayList<>();
                for (AclBinding b : get(admin.describeAcls(AclBindingFilter.ANY).values())) {
                    out.add(acl(b));
                }
                out.sort(null);
                return out;
            }
            case "create-acl": {
                AclBinding b = new AclBinding(
                        new ResourcePattern(ResourceType.fromString(a[1]), a[2], PatternType.fromString(a[3])),
                        new AccessControlEntry(a[0], "*", AclOperation.fromString(a[4]),
                                AclPermissionType.fromString(a[5])));
                get(admin.createAcls(List.of(b)).all());
                return "created";
            }
            case "list-offsets": {
                TopicPartition tp = new TopicPartition(a[0], Integer.parseInt(a[1]));
                OffsetSpec spec = switch (a[2]) {
                    case "earliest" -> OffsetSpec.earliest();
                    case "latest" -> OffsetSpec.latest();
                    case "max-timestamp" -> OffsetSpec.maxTimestamp();
                    default -> OffsetSpec.forTimestamp(Long.parseLong(a[2]));
                };
                ListOffsetsResult.ListOffsetsResultInfo info = get(admin.listOffsets(Map.of(tp, spec)).partitionResult(tp));
                return Map.of("offset", info.offset(), "timestamp", info.timestamp());
            }
            case "describe-cluster": {
                DescribeClusterResult r = admin.describeCluster();
                List<Object> brokers = new ArrayList<>();
                for (Node n : get(r.nodes())) {
                    brokers.add(Map.of("id", n.id(), "host", n.host(), "port", n.port()));
                }
                Node controller = get(r.controller());
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("cluster_id", get(r.clusterId()));
                out.put("controller", controller == null ? null : controller.id());
                out.put("brokers", brokers);
                return out;
            }
            case "describe-features": {
                Map<String, Object> out = new TreeMap<>();
                get(admin.describeFeatures().featureMetadata()).finalizedFeatures()
                        .forEach((k, v) -> out.put(k, (int) v.maxVersionLevel()));
                return out;
            }
            case "describe-quorum": {
                QuorumInfo q = get(admin.describeMetadataQuorum().quorumInfo());
                List<Integer> voters = new ArrayList<>();
                q.voters().forEach(v -> voters.add(v.replicaId()));
                List<Integer> observers = new ArrayList<>();
                q.observers().forEach(v -> observers.add(v.replicaId()));
                voters.sort(null);
                observers.sort(null);
                return Map.of("leader", q.leaderId(), "voters", voters, "observers", observers);
            }
            case "describe-log-dirs": {
                int broker = Integer.parseInt(a[0]);
                Map<String, LogDirDescription> dirs = get(admin.describeLogDirs(List.of(broker)).allDescriptions()).get(broker);
                Map<String, Object> out = new TreeMap<>();
                for (Map.Entry<String, LogDirDescription> d : dirs.entrySet()) {
                    Map<String, Object> parts = new TreeMap<>();
                    for (Map.Entry<TopicPartition, ReplicaInfo> r : d.getValue().replicaInfos().entrySet()) {
                        parts.put(r.getKey().toString(), r.getValue().size());
                    }
                    out.put(d.getKey(), parts);
                }
                return out;
            }
            case "list-reassignments": {
                Map<String, Object> out = new TreeMap<>();
                for (Map.Entry<TopicPartition, PartitionReassignment> r : get(admin.listPartitionReassignments().reassignments()).entrySet()) {
                    out.put(r.getKey().toString(), Map.of("replicas", r.getValue().replicas(),
                            "adding", r.getValue().addingReplicas(), "removing", r.getValue().removingReplicas()));
                }
                return out;
            }
            case "describe-quotas": {
                Map<String, Object> out = new TreeMap<>();
                for (Map.Entry<ClientQuotaEntity, Map<String, Double>> e : get(admin.describeClientQuotas(ClientQuotaFilter.all()).entities()).entrySet()) {
                    out.put(quotaEntity(e.getKey()), new TreeMap<>(e.getValue()));
                }
                return out;
            }
            case "set-quota": {
                Map<String, String> entity = new HashMap<>();
                entity.put(a[0], a[1].equals("-") ? null : a[1]);
                ClientQuotaAlteration alt = new ClientQuotaAlteration(new ClientQuotaEntity(entity),
                        List.of(new ClientQuotaAlteration.Op(a[2], Double.parseDouble(a[3]))));
                get(admin.alterClientQuotas(List.of(alt)).all());
                return "set";
            }
            case "describe-scram": {
                Map<String, Object> out = new TreeMap<>();
                for (Map.Entry<String, UserScramCredentialsDescription> e : get(admin.describeUserScramCredentials().all()).entrySet()) {
                    List<String> infos = new ArrayList<>();
                    for (ScramCredentialInfo i : e.getValue().credentialInfos()) {
                        infos.add(i.mechanism().mechanismName() + ":" + i.iterations());
                    }
                    infos.sort(null);
                    out.put(e.getKey(), infos);
                }
                return out;
            }
            case "describe-producers": {
                TopicPartition tp = new TopicPartition(a[0], Integer.parseInt(a[1]));
                List<Object> out = new ArrayList<>();
                for (ProducerState s : get(admin.describeProducers(List.of(tp)).partitionResult(tp)).activeProducers()) {
                    out.add(Map.of("producer_id", s.producerId(), "epoch", s.producerEpoch(),
                            "txn_start", s.currentTransactionStartOffset().orElse(-1)));
                }
                return out;
            }
            case "describe-transactions": {
                TransactionDescription d = get(admin.describeTransactions(List.of(a[0])).description(a[0]));
                List<String> parts = new ArrayList<>();
                d.topicPartitions().forEach(tp -> parts.add(tp.toString()));
                parts.sort(null);
                return Map.of("state", d.state().toString(), "producer_id", d.producerId(),
                        "epoch", d.producerEpoch(), "partitions", parts);
            }
            case "list-transactions": {
                Map<String, Object> out = new TreeMap<>();
                for (TransactionListing l : get(admin.listTransactions().all())) {
                    out.put(l.transactionalId(), Map.of("producer_id", l.producerId(), "state", l.state().toString()));
                }
                return out;
            }
            case "describe-tokens": {
                List<Object> out = new ArrayList<>();
                for (DelegationToken t : get(admin.describeDelegationToken().delegationTokens())) {
                    out.add(Map.of("token_id", t.tokenInfo().tokenId(), "owner", t.tokenInfo().owner().toString(),
                            "expiry", t.tokenInfo().expiryTimestamp()));
                }
                return out;
            }
            case "list-groups": {
                Map<String, Object> out = new TreeMap<>();
                for (GroupListing g : get(admin.listGroups().all())) {
                    out.put(g.groupId(), Map.of(
                            "state", g.groupState().map(Object::toString).orElse("-"),
                            "type", g.type().map(Object::toString).orElse("-")));
                }
                return out;
            }
            case "describe-group": {
                ConsumerGroupDescription g = get(admin.describeConsumerGroups(List.of(a[0])).describedGroups().get(a[0]));
                List<Object> members = new ArrayList<>();
                for (MemberDescription m : g.members()) {
                    List<String> parts = new ArrayList<>();
                    m.assignment().topicPartitions().forEach(tp -> parts.add(tp.toString()));
                    parts.sort(null);
                    members.add(Map.of("client_id", m.clientId(), "partitions", parts));
                }
                return Map.of("state", g.groupState().toString(), "type", g.type().toString(), "members", members);
            }
            case "group-offsets": {
                Map<String, Object> out = new TreeMap<>();
                for (Map.Entry<TopicPartition, OffsetAndMetadata> e : get(admin.listConsumerGroupOffsets(a[0]).partitionsToOffsetAndMetadata()).entrySet()) {
                    out.put(e.getKey().toString(), e.getValue() == null ? null : e.getValue().offset());
                }
                return out;
            }
            default:
                throw new IllegalArgumentException("unknown admin operation '" + w[0] + "'");
        }
    }

    private static ConfigResource.Type resourceType(String s) {
        return switch (s) {
            case "topic" -> ConfigResource.Type.TOPIC;
            case "broker" -> ConfigResource.Type.BROKER;
            case "broker-logger" -> ConfigResource.Type.BROKER_LOGGER;
            case "group" -> ConfigResource.Type.GROUP;
            case "client-metrics" -> ConfigResource.Type.CLIENT_METRICS;
            default -> throw new IllegalArgumentException("unknown config resource type '" + s + "'");
        };
    }

    private static Map<String, Object> topic(TopicDescription d) {
        List<Object> parts = new ArrayList<>();
        for (TopicPartitionInfo p : d.partitions()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("partition", p.partition());
            m.put("leader", p.leader() == null ? null : p.leader().id());
            m.put("replicas", ids(p.replicas()));
            m.put("isr", ids(p.isr()));
            parts.add(m);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("id", d.topicId().toString());
        out.put("internal", d.isInternal());
        out.put("partitions", parts);
        return out;
    }

    private static List<Integer> ids(Collection<Node> nodes) {
        List<Integer> out = new ArrayList<>();
        nodes.forEach(n -> out.add(n.id()));
        return out;
    }

    static String acl(AclBinding b) {
        AccessControlEntry e = b.entry();
        ResourcePattern p = b.pattern();
        return String.join("|", e.principal(), e.permissionType().name(), e.operation().name(),
                p.resourceType().name(), p.name(), p.patternType().name(), e.host());
    }

    private static String quotaEntity(ClientQuotaEntity e) {
        List<String> parts = new ArrayList<>();
        new TreeMap<>(e.entries()).forEach((k, v) -> parts.add(k + "=" + (v == null ? "<default>" : v)));
        return String.join(",", parts);
    }
}
