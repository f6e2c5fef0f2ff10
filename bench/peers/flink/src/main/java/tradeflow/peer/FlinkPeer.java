// FlinkPeer - the Flink peer of tradeflow-aggregate (issue 20): reads the
// customs topic (Avro single-object encoding) from the beginning to the
// offsets at job start, computes reporting.partner_ranking with the Flink
// SQL of partner_ranking.sql and writes it with the JDBC connector in upsert
// mode. Runs in a local MiniCluster in this JVM; exits when the job has
// finished (source at the end offsets = lag 0, last sink flush done) and
// prints one JSON line of statistics on stdout.
//
// Usage: FlinkPeer --brokers B --topic T --group G --schema-file AVSC
//          --sql FILE --jdbc-url URL --sink-table SCHEMA.TABLE
//          [--parallelism 2] [--state-backend hashmap|rocksdb]
//          [--checkpoint-ms 60000 (0 = off)] [--checkpoint-dir DIR]
//          [--mini-batch-ms 1000] [--mini-batch-size 5000]
//          [--rank-fn ROW_NUMBER|RANK] [--top-n 100000]
//          [--flush-rows 5000] [--flush-interval 1s] [--rest-port 0]
//          [--threads-out FILE (CPU seconds per thread group)] [--explain 1]
// The PostgreSQL user and password come from PGUSER / PGPASSWORD.
package tradeflow.peer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.types.Row;

public final class FlinkPeer {
    private FlinkPeer() {}

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        a.put("parallelism", "2");
        a.put("state-backend", "hashmap");
        a.put("checkpoint-ms", "60000");
        a.put("checkpoint-dir", "/tmp/tradeflow-flink-peer-checkpoints");
        a.put("mini-batch-ms", "1000");
        a.put("mini-batch-size", "5000");
        a.put("rank-fn", "ROW_NUMBER");
        a.put("top-n", "100000");
        a.put("flush-rows", "5000");
        a.put("flush-interval", "1s");
        a.put("rest-port", "0");
        a.put("explain", "0");
        for (int i = 0; i < argv.length; i += 2) {
            if (!argv[i].startsWith("--") || i + 1 >= argv.length) {
                System.err.println("FlinkPeer: bad argument " + argv[i]);
                System.exit(64);
            }
            a.put(argv[i].substring(2), argv[i + 1]);
        }
        for (String k : new String[] {"brokers", "topic", "group", "schema-file", "sql", "jdbc-url", "sink-table"}) {
            if (!a.containsKey(k)) {
                System.err.println("FlinkPeer: --" + k + " is required");
                System.exit(64);
            }
        }
        int par = Integer.parseInt(a.get("parallelism"));

        Configuration conf = new Configuration();
        conf.setString("rest.port", a.get("rest-port"));
        conf.setString("rest.bind-address", "127.0.0.1");
        conf.setString("rest.address", "127.0.0.1");
        conf.setString("taskmanager.numberOfTaskSlots", Integer.toString(par));
        conf.setString("state.backend.type", a.get("state-backend"));
        conf.setString("pipeline.object-reuse", "true");
        long cpMs = Long.parseLong(a.get("checkpoint-ms"));
        if (cpMs > 0) {
            conf.setString("execution.checkpointing.interval", cpMs + " ms");
            conf.setString("execution.checkpointing.dir", "file://" + a.get("checkpoint-dir"));
            conf.setString("execution.checkpointing.mode", "AT_LEAST_ONCE");
        }
        if ("rocksdb".equals(a.get("state-backend"))) {
            conf.setString("state.backend.rocksdb.predefined-options", "SPINNING_DISK_OPTIMIZED_HIGH_MEM");
            conf.setString("state.backend.rocksdb.memory.managed", "true");
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(par, conf);
        StreamTableEnvironment tEnv = StreamTableEnvironment.create(env);
        Configuration tc = tEnv.getConfig().getConfiguration();
        // Flink's performance tuning guide: mini-batch aggregation, local-global
        // aggregation (two-phase), no state TTL (results must stay exact).
        tc.setString("table.exec.mini-batch.enabled", "true");
        tc.setString("table.exec.mini-batch.allow-latency", a.get("mini-batch-ms") + " ms");
        tc.setString("table.exec.mini-batch.size", a.get("mini-batch-size"));
        tc.setString("table.optimizer.agg-phase-strategy", "TWO_PHASE");
        tc.setString("table.exec.state.ttl", "0 ms");
        tc.setString("table.exec.sink.upsert-materialize", "AUTO");

        String schemaJson = Files.readString(Path.of(a.get("schema-file")), StandardCharsets.UTF_8);
        KafkaSource<Row> source = KafkaSource.<Row>builder()
                .setBootstrapServers(a.get("brokers"))
                .setTopics(a.get("topic"))
                .setGroupId(a.get("group"))
                .setStartingOffsets(OffsetsInitializer.earliest())
                .setBounded(OffsetsInitializer.latest())
                .setProperty("isolation.level", "read_committed")
                .setProperty("partition.discovery.interval.ms", "-1")
                .setValueOnlyDeserializer(new CustomsDeserializer(schemaJson))
                .build();
        DataStream<Row> rows = env.fromSource(source, WatermarkStrategy.noWatermarks(), "kafka:" + a.get("topic"));
        tEnv.createTemporaryView("src", tEnv.fromDataStream(rows));

        String script = Files.readString(Path.of(a.get("sql")), StandardCharsets.UTF_8);
        Map<String, String> vars = new HashMap<>();
        vars.put("JDBC_URL", a.get("jdbc-url"));
        vars.put("SINK_TABLE", a.get("sink-table"));
        vars.put("JDBC_USER", System.getenv().getOrDefault("PGUSER", System.getProperty("user.name")));
        vars.put("JDBC_PASSWORD", System.getenv().getOrDefault("PGPASSWORD", ""));
        vars.put("RANK_FN", a.get("rank-fn"));
        vars.put("TOP_N", a.get("top-n"));
        vars.put("FLUSH_ROWS", a.get("flush-rows"));
        vars.put("FLUSH_INTERVAL", a.get("flush-interval"));
        vars.put("SINK_PARALLELISM", Integer.toString(par));
        for (Map.Entry<String, String> e : vars.entrySet()) {
            script = script.replace("${" + e.getKey() + "}", e.getValue());
        }
        ThreadCpu threads = new ThreadCpu();
        threads.start();
        long t0 = System.nanoTime();
        TableResult result = null;
        for (String stmt : script.split(";\\s*\\n")) {
            String s = stmt.replaceAll("(?m)^\\s*--.*$", "").trim();
            if (s.isEmpty()) {
                continue;
            }
            if (s.startsWith("INSERT") && !"0".equals(a.get("explain"))) {
                System.err.println(tEnv.explainSql(s));
            }
            result = tEnv.executeSql(s);
        }
        if (result == null || !result.getJobClient().isPresent()) {
            System.err.println("FlinkPeer: the SQL script has no INSERT");
            System.exit(1);
        }
        JobExecutionResult jr = result.getJobClient().get().getJobExecutionResult().get();
        double wall = (System.nanoTime() - t0) / 1e9;
        String cpu = threads.report(Integer.parseInt(a.getOrDefault("threads", "14")));
        if (a.containsKey("threads-out")) {
            Files.writeString(Path.of(a.get("threads-out")), cpu, StandardCharsets.UTF_8);
        }
        System.out.printf("{\"job_s\": %.3f, \"net_runtime_ms\": %d, \"parallelism\": %d, \"state_backend\": \"%s\", "
                + "\"checkpoint_ms\": %d, \"mini_batch_ms\": %s, \"rank_fn\": \"%s\"}%n",
                wall, jr.getNetRuntime(), par, a.get("state-backend"), cpMs, a.get("mini-batch-ms"), a.get("rank-fn"));
        System.exit(0);
    }
}
