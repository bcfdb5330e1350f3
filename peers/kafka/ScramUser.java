// Creates or updates SCRAM credentials through the Admin API
// (AlterUserScramCredentials, KIP-554). scripts/kafka runs it with Java's
// single-file launcher for users whose names or passwords the format tool's
// --add-scram syntax cannot carry (commas, '=' and spaces).
//
//   java -cp '<kafka libs>/*' ScramUser.java BOOTSTRAP USER PASSWORD [ITERATIONS]

import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;

public class ScramUser {
    public static void main(String[] args) throws Exception {
        if (args.length < 3 || args.length > 4) {
            System.err.println("usage: ScramUser BOOTSTRAP USER PASSWORD [ITERATIONS]");
            System.exit(2);
        }
        int iterations = args.length == 4 ? Integer.parseInt(args[3]) : 4096;
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        try (Admin admin = Admin.create(props)) {
            // One mechanism per request: a request may alter a user only once.
            for (ScramMechanism mechanism : List.of(ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)) {
                admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(
                                args[1], new ScramCredentialInfo(mechanism, iterations), args[2])))
                        .all().get();
            }
        }
        System.err.println("SCRAM-SHA-256/512 credentials set for " + args[1]);
    }
}
