// Starts mongo-java-server with its H2 (MVStore) backend on a chosen host and port.
//
// Run in single-file source mode: java -cp "<mongo libs>/*" MongoLauncher.java <host> <port> <file.mv>
//
// Why a launcher instead of de.bwaldvogel.mongo.H2MongoServer:
// - H2MongoServer binds localhost:27017 only;
// - its built-in ServerVersion enum tops out at wire version 8 (MongoDB 4.2), and PyMongo >= 4.14
//   refuses servers below wire version 9 (MongoDB 4.4); we announce MongoDB 6.0 (wire 17);
// - MVStore commits only every second by default; we commit after each command so an
//   acknowledged write is on disk when the client hears about it;
// - findAndModify with returnDocument=AFTER can answer with a live document that a concurrent
//   update changes before the reply is encoded (25 concurrent $inc upserts returned duplicate
//   values). Commands run one at a time here and reply with a deep copy, which restores the
//   MongoDB guarantee that each caller sees its own post-image.
//
// Since commands run one at a time, this server's capacity is the time each command holds that
// lock. The command {standInStats: 1} answers it per namespace and command since start:
// {namespaces: {"<db>.<collection> <command>": {commands, busy_ms, waited_ms}}} (busy: under
// the lock, its commit included; waited: for the lock). benchmarks/pipeline.py prints it.
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

public class MongoLauncher {

    /** The server version announced in the handshake (hello / isMaster / buildInfo). */
    enum AnnouncedVersion implements MongoVersion {
        MONGO_6_0;

        @Override
        public List<Integer> getVersionArray() {
            return List.of(6, 0, 0, 0);
        }

        @Override
        public int getWireVersion() {
            return 17;
        }
    }

    /**
     * H2 backend that runs one command at a time, answers with a deep copy of the result, and
     * commits the MVStore after every command (a no-op when nothing changed). Clients batch
     * their writes (insertMany, bulkWrite), so a commit is already shared by many documents; a
     * group commit across commands here was tried and was slower (the waiters' hand-offs cost
     * more than the commits they saved).
     */
    static final class CommittingH2Backend extends H2Backend {
        static final String STATS_COMMAND = "standInStats";

        /** Per "<db>.<collection> <command>": commands, ns under the lock, ns waiting for it. */
        private final Map<String, long[]> lockTime = new ConcurrentHashMap<>();
        private final Object commandLock = new Object();

        CommittingH2Backend(String fileName) {
            super(fileName);
        }

        @Override
        public Document handleCommand(Channel channel, String database, String command, Document query) {
            if (STATS_COMMAND.equals(command)) {
                return stats();
            }
            long asked = System.nanoTime();
            synchronized (commandLock) {
                long started = System.nanoTime();
                try {
                    return super.handleCommand(channel, database, command, query).cloneDeeply();
                } finally {
                    commit();
                    count(namespace(database, command, query), started - asked, System.nanoTime() - started);
                }
            }
        }

        private static String namespace(String database, String command, Document query) {
            Object collection = query.get(command);
            return database + "." + (collection instanceof String ? collection : "$cmd") + " " + command;
        }

        private void count(String key, long waited, long busy) {
            long[] totals = lockTime.computeIfAbsent(key, k -> new long[3]);
            synchronized (totals) {
                totals[0] += 1;
                totals[1] += busy;
                totals[2] += waited;
            }
        }

        private Document stats() {
            Map<String, Document> sorted = new TreeMap<>();
            lockTime.forEach((key, totals) -> {
                synchronized (totals) {
                    sorted.put(key, new Document("commands", totals[0])
                        .append("busy_ms", totals[1] / 1e6)
                        .append("waited_ms", totals[2] / 1e6));
                }
            });
            return new Document("namespaces", new Document(sorted)).append("ok", 1.0);
        }
    }

    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: MongoLauncher <host> <port> <file.mv>");
            System.exit(2);
        }
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        CommittingH2Backend backend = new CommittingH2Backend(args[2]);
        backend.version(AnnouncedVersion.MONGO_6_0);
        MongoServer server = new MongoServer(backend);
        server.bind(host, port);
        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow, "mongo-shutdown"));
        System.out.println("mongo-java-server listening on " + host + ":" + port + " data=" + args[2]);
    }
}
