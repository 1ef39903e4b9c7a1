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
// - H2's default ObjectDataType stores each document with Java serialization (a new
//   ObjectOutputStream, class descriptors and all, per document and page write) and orders
//   unique-index keys (KeyValue, not Comparable) by serialising both sides of every comparison.
//   Here documents are stored as BSON (mongo-java-server's own wire codec) and index keys are
//   compared by value: about half the server's CPU per write (docs/performance.md, "Fifth round").
//   A data file written in the earlier layout is refused with a message (make infra-reset).
//
// Since commands run one at a time, this server's capacity is the time each command holds that
// lock. The command {standInStats: 1} answers it per namespace and command since start:
// {namespaces: {"<db>.<collection> <command>": {commands, busy_ms, waited_ms, commit_ms}}}
// (busy: under the lock, its commit included; waited: for the lock; commit: the part of busy
// spent committing). benchmarks/pipeline.py prints it.
import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.KeyValue;
import de.bwaldvogel.mongo.backend.ValueComparator;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.h2.H2Collection;
import de.bwaldvogel.mongo.backend.h2.H2Database;
import de.bwaldvogel.mongo.backend.h2.H2UniqueIndex;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.wire.bson.BsonDecoder;
import de.bwaldvogel.mongo.wire.bson.BsonEncoder;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import java.lang.reflect.Constructor;
import java.nio.ByteBuffer;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import org.h2.mvstore.DataUtils;
import org.h2.mvstore.MVMap;
import org.h2.mvstore.MVStore;
import org.h2.mvstore.WriteBuffer;
import org.h2.mvstore.type.BasicDataType;
import org.h2.mvstore.type.ObjectDataType;

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
     * more than the commits they saved). Committing after the lock instead was tried too: the
     * lock was held 30–40% less, the pipeline was not faster (docs/performance.md, "Sixth
     * round"), and a client could read a write not yet in the file; not kept.
     */
    static final class CommittingH2Backend extends H2Backend {
        static final String STATS_COMMAND = "standInStats";

        /** Per "<db>.<collection> <command>": commands, ns under the lock, ns waiting for it. */
        private final Map<String, long[]> lockTime = new ConcurrentHashMap<>();
        private final Object commandLock = new Object();

        CommittingH2Backend(MVStore store) {
            super(store);
        }

        @Override
        protected MongoDatabase openOrCreateDatabase(String databaseName) {
            // Also called from H2Backend's constructor, for the databases already in the file.
            return new BsonH2Database(databaseName, getMvStore(), getCursorRegistry());
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
                    long committing = System.nanoTime();
                    commit();
                    long done = System.nanoTime();
                    count(namespace(database, command, query), started - asked, done - started, done - committing);
                }
            }
        }

        private static String namespace(String database, String command, Document query) {
            Object collection = query.get(command);
            return database + "." + (collection instanceof String ? collection : "$cmd") + " " + command;
        }

        private void count(String key, long waited, long busy, long committing) {
            long[] totals = lockTime.computeIfAbsent(key, k -> new long[4]);
            synchronized (totals) {
                totals[0] += 1;
                totals[1] += busy;
                totals[2] += waited;
                totals[3] += committing;
            }
        }

        private Document stats() {
            Map<String, Document> sorted = new TreeMap<>();
            lockTime.forEach((key, totals) -> {
                synchronized (totals) {
                    sorted.put(key, new Document("commands", totals[0])
                        .append("busy_ms", totals[1] / 1e6)
                        .append("waited_ms", totals[2] / 1e6)
                        .append("commit_ms", totals[3] / 1e6));
                }
            });
            return new Document("namespaces", new Document(sorted)).append("ok", 1.0);
        }
    }

    /**
     * H2Database with the same map names (databases.&lt;ns&gt;, meta.&lt;ns&gt;, &lt;ns&gt;._index_&lt;name&gt;),
     * but documents stored as BSON and unique-index keys compared by value.
     */
    static final class BsonH2Database extends H2Database {
        /** Set before the first database opens: H2Database's constructor opens collections. */
        static volatile MVStore store;

        BsonH2Database(String databaseName, MVStore store, CursorRegistry cursors) {
            super(databaseName, openedWith(store), cursors);
        }

        private static MVStore openedWith(MVStore opened) {
            store = opened;
            return opened;
        }

        @Override
        protected MongoCollection<Object> openOrCreateCollection(String collectionName, CollectionOptions options) {
            String namespace = getFullCollectionNamespace(collectionName);
            MVMap<Object, Document> data = store.openMap("databases." + namespace,
                new MVMap.Builder<Object, Document>().valueType(BsonDocumentType.INSTANCE));
            MVMap<String, Object> meta = store.openMap("meta." + namespace);
            return new H2Collection(this, collectionName, options, data, meta, cursorRegistry);
        }

        @Override
        protected Index<Object> openOrCreateUniqueIndex(String collectionName, String indexName, List<IndexKey> keys, boolean sparse) {
            String mapName = getFullCollectionNamespace(collectionName) + "._index_" + indexName;
            MVMap<KeyValue, Object> map = store.openMap(mapName,
                new MVMap.Builder<KeyValue, Object>().keyType(KeyValueType.INSTANCE));
            try {  // H2UniqueIndex's constructor is package-private
                Constructor<H2UniqueIndex> index = H2UniqueIndex.class.getDeclaredConstructor(
                    MVMap.class, String.class, List.class, boolean.class);
                index.setAccessible(true);
                return index.newInstance(map, indexName, keys, sparse);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("cannot open unique index " + mapName, e);
            }
        }
    }

    /** A document as its BSON bytes (what the wire carries anyway), not Java serialization. */
    static final class BsonDocumentType extends BasicDataType<Document> {
        static final BsonDocumentType INSTANCE = new BsonDocumentType();

        @Override
        public int getMemory(Document document) {
            return estimate(document);
        }

        /** About the value's heap size: MVStore splits and evicts pages by this estimate. */
        static int estimate(Object value) {
            if (value instanceof String text) {
                return 48 + 2 * text.length();
            }
            if (value instanceof Map<?, ?> map) {
                int size = 64;
                for (Map.Entry<?, ?> entry : map.entrySet()) {
                    size += 32 + estimate(entry.getKey()) + estimate(entry.getValue());
                }
                return size;
            }
            if (value instanceof Collection<?> items) {
                int size = 48;
                for (Object item : items) {
                    size += 8 + estimate(item);
                }
                return size;
            }
            if (value instanceof byte[] bytes) {
                return 24 + bytes.length;
            }
            return 24;
        }

        @Override
        public void write(WriteBuffer buffer, Document document) {
            ByteBuf bson = Unpooled.buffer(256);
            try {
                BsonEncoder.encodeDocument(document, bson);
                int length = bson.readableBytes();
                buffer.putVarInt(length);
                buffer.put(bson.array(), bson.arrayOffset() + bson.readerIndex(), length);
            } finally {
                bson.release();
            }
        }

        @Override
        public Document read(ByteBuffer buffer) {
            byte[] bson = new byte[DataUtils.readVarInt(buffer)];
            buffer.get(bson);
            return BsonDecoder.decodeBson(Unpooled.wrappedBuffer(bson));
        }

        @Override
        public Document[] createStorage(int size) {
            return new Document[size];
        }
    }

    /**
     * Unique-index keys ordered by value (mongo-java-server's ValueComparator, element by
     * element); keys that compare equal but are not equal fall back to their serialized bytes,
     * so that the order stays consistent with KeyValue.equals. Stored Java-serialized as before.
     */
    static final class KeyValueType extends BasicDataType<KeyValue> {
        static final KeyValueType INSTANCE = new KeyValueType();
        private static final ObjectDataType SERIALIZED = new ObjectDataType();
        private static final ValueComparator VALUES = ValueComparator.ascWithoutListHandling();

        @Override
        public int compare(KeyValue a, KeyValue b) {
            int shared = Math.min(a.size(), b.size());
            for (int i = 0; i < shared; i++) {
                int order = VALUES.compare(a.get(i), b.get(i));
                if (order != 0) {
                    return order;
                }
            }
            if (a.size() != b.size()) {
                return Integer.compare(a.size(), b.size());
            }
            return Objects.equals(a, b) ? 0 : SERIALIZED.compare(a, b);
        }

        @Override
        public int getMemory(KeyValue key) {
            int size = 48;
            for (Object value : key) {
                size += 8 + BsonDocumentType.estimate(value);
            }
            return size;
        }

        @Override
        public void write(WriteBuffer buffer, KeyValue key) {
            SERIALIZED.write(buffer, key);
        }

        @Override
        public KeyValue read(ByteBuffer buffer) {
            return (KeyValue) SERIALIZED.read(buffer);
        }

        @Override
        public KeyValue[] createStorage(int size) {
            return new KeyValue[size];
        }
    }

    static final String FORMAT_MAP = "launcher.format";
    static final String FORMAT = "bson-documents-1";

    /**
     * Opens the data file, refusing one written by an earlier launcher (Java-serialized
     * documents, which this one cannot read) instead of failing on its first read.
     */
    static MVStore openStore(String fileName) {
        MVStore store = MVStore.open(fileName);
        MVMap<String, String> format = store.openMap(FORMAT_MAP);
        String found = format.get("layout");
        boolean hasData = store.getMapNames().stream().anyMatch(name -> name.startsWith("databases."));
        if (found == null && hasData) {
            store.close();
            System.err.println("mongo-java-server: " + fileName + " was written by an earlier launcher"
                + " (Java-serialized documents), which this one cannot read. Its data is local test data:"
                + " run `make infra-reset` to start from an empty database.");
            System.exit(3);
        }
        if (found != null && !FORMAT.equals(found)) {
            store.close();
            System.err.println("mongo-java-server: " + fileName + " has layout " + found + ", this launcher writes "
                + FORMAT + ": run `make infra-reset` to start from an empty database.");
            System.exit(3);
        }
        if (found == null) {
            format.put("layout", FORMAT);
            store.commit();
        }
        return store;
    }

    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: MongoLauncher <host> <port> <file.mv>");
            System.exit(2);
        }
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        CommittingH2Backend backend = new CommittingH2Backend(openStore(args[2]));
        backend.version(AnnouncedVersion.MONGO_6_0);
        MongoServer server = new MongoServer(backend);
        server.bind(host, port);
        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow, "mongo-shutdown"));
        System.out.println("mongo-java-server listening on " + host + ":" + port + " data=" + args[2]);
    }
}
