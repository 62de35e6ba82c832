/*
 * WithholdingGroupLeader.java - a consumer group leader that, once a second
 * member has joined, never sends the group's assignment, for
 * test_eo_consumer: the other member then holds a JoinGroup answer and
 * never a SyncGroup one, the state librdkafka 2.0.2 could not destroy a
 * cooperative-sticky consumer in (#4312).
 *
 * Kafka's classic group protocol gives the assignment to the leader, the
 * first member to join, and holds every other member's SyncGroup until
 * the leader's arrives. The Java consumer computes it inside poll() with
 * the assignor it is configured with, so an assignor that blocks holds the
 * whole group at that point, from a real client, against the real broker.
 * Its heartbeats go on (they are a thread of their own), so the broker
 * keeps the leader and never moves on.
 *
 * Usage: java -cp <kafka libs>/'*' WithholdingGroupLeader.java GROUP TOPIC
 * Reads BLAZZ_KAFKA_BROKERS, BLAZZ_KAFKA_SECURITY_PROTOCOL,
 * BLAZZ_KAFKA_SASL_USERNAME and BLAZZ_KAFKA_SASL_PASSWORD_FILE (the
 * password never on the command line). Prints "leading" once it owns the
 * topic alone and "withholding the assignment of N members" when it stops.
 */
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.Cluster;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class WithholdingGroupLeader {
    /* Same name and protocol as librdkafka's cooperative-sticky, so both
     * clients agree on it when they join. */
    public static class WithholdingAssignor extends CooperativeStickyAssignor {
        @Override
        public GroupAssignment assign(Cluster metadata, GroupSubscription group) {
            int members = group.groupSubscription().size();
            if (members > 1) {
                System.out.println("withholding the assignment of " + members + " members");
                System.out.flush();
                try {
                    Thread.sleep(Long.MAX_VALUE);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return super.assign(metadata, group);
        }
    }

    private static String env(String name) {
        String v = System.getenv(name);
        if (v == null || v.isEmpty())
            throw new IllegalStateException(name + " is not set");
        return v;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2)
            throw new IllegalArgumentException("usage: WithholdingGroupLeader GROUP TOPIC");
        String password = Files.readString(Path.of(env("BLAZZ_KAFKA_SASL_PASSWORD_FILE"))).strip();
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, env("BLAZZ_KAFKA_BROKERS"));
        p.put("security.protocol", env("BLAZZ_KAFKA_SECURITY_PROTOCOL").toUpperCase());
        p.put("sasl.mechanism", "SCRAM-SHA-512");
        p.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule "
                + "required username=\"" + env("BLAZZ_KAFKA_SASL_USERNAME") + "\" password=\""
                + password + "\";");
        String ca = System.getenv("BLAZZ_KAFKA_SSL_CA_LOCATION");
        if (ca != null && !ca.isEmpty()) {
            p.put("ssl.truststore.type", "PEM");
            p.put("ssl.truststore.location", ca);
        }
        p.put(ConsumerConfig.GROUP_ID_CONFIG, args[0]);
        /* the class itself: a name would be looked up in a class loader that
         * does not see a class compiled from a source file */
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
              List.of(WithholdingAssignor.class));
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        /* the broker must keep it as leader for the whole test */
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "45000");
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG,
              ByteArrayDeserializer.class.getName());
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            consumer.subscribe(List.of(args[1]));
            boolean announced = false;
            for (;;) {
                consumer.poll(Duration.ofMillis(200));
                if (!announced && !consumer.assignment().isEmpty()) {
                    System.out.println("leading");
                    System.out.flush();
                    announced = true;
                }
            }
        }
    }
}
