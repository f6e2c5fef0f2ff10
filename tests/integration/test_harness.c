/*
 * test_harness - the first integration test: proves that the project's C
 * code reaches the real stack (deploy/stack.sh) and that a test fails loudly
 * when a server is missing.
 *
 *   test_harness [-n MESSAGES] [-T SECONDS]
 *
 * Servers come from the environment as set by `eval "$(deploy/stack.sh env)"`:
 * TRADEFLOW_BROKERS for Kafka, libpq's PG* variables for PostgreSQL.
 *
 * Both servers are checked first, each within a bounded time; if either does
 * not answer, the program says which one and exits 1 before doing anything
 * else (tests/integration/harness_down.sh relies on that). Then:
 *
 *  1. Kafka: creates its own topic (3 partitions, unique name) through the
 *     Admin API, produces MESSAGES keyed messages with an idempotent,
 *     acks=all producer, and checks every delivery report; consumes the
 *     topic back with a fresh consumer group and checks that every payload
 *     arrives exactly once, intact, at the partition and offset its delivery
 *     report gave, and in offset order within each partition.
 *  2. PostgreSQL: creates its own database (unique name), COPYs the consumed
 *     messages into a table, reads them back with a binary-result query and
 *     compares them field by field; then drops the database.
 *  3. Deletes its topic.
 *
 * Prints "N passed, N failed" (tests/tf_test.h) and exits non-zero on any
 * failure. TF_SANITIZE=ON in the environment triples every timeout.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "tf_kafka.h"
#include "tf_log.h"
#include "tf_test.h"

#define TOPIC_PARTITIONS 3

/* What the delivery report said about message i, and what the consumer saw. */
typedef struct msg_state {
    int32_t dr_partition;
    int64_t dr_offset;
    rd_kafka_resp_err_t dr_err;
    int delivered; /* delivery reports received for this message */
    int consumed;  /* times the consumer saw it */
    int32_t c_partition;
    int64_t c_offset;
} msg_state_t;

static msg_state_t *g_msgs;
static int g_nmsgs;
static int g_scale = 1;
static char g_nonce[32];

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fatal: the harness cannot go on. Says so in one clear line, exits 1. */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("test_harness: FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    printf("%d passed, %d failed\n", tf_test_passed, tf_test_failed + 1);
    exit(1);
}

static void payload_for(int i, char *buf, size_t len)
{
    /* The nonce ties the payload to this run; the tail makes the sizes vary. */
    snprintf(buf, len, "harness|%s|%d|%.*s", g_nonce, i, i % 50,
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    intptr_t i = (intptr_t)m->_private;
    if (i < 0 || i >= g_nmsgs)
        return;
    g_msgs[i].delivered++;
    g_msgs[i].dr_err = m->err;
    g_msgs[i].dr_partition = m->partition;
    g_msgs[i].dr_offset = m->offset;
}

static rd_kafka_conf_t *kafka_conf(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = tf_kafka_conf_new(NULL, errstr, sizeof(errstr));
    if (!conf)
        die("Kafka configuration: %s", errstr);
    char setup[64];
    /* A closed port is refused at once, a dead host is not: bound both. */
    snprintf(setup, sizeof(setup), "socket.connection.setup.timeout.ms=%d", 5000 * g_scale);
    if (tf_kafka_conf_set(conf, setup, errstr, sizeof(errstr)))
        die("%s", errstr);
    return conf;
}

/* Returns NULL with a reason when the brokers do not answer a metadata
 * request within timeout_ms. */
static rd_kafka_t *kafka_connect(int timeout_ms, char *why, size_t whylen)
{
    char errstr[512];
    rd_kafka_conf_t *conf = kafka_conf();
    if (tf_kafka_conf_set(conf, "enable.idempotence=true", errstr, sizeof(errstr)) ||
        tf_kafka_conf_set(conf, "acks=all", errstr, sizeof(errstr)))
        die("%s", errstr);
    char mt[64];
    snprintf(mt, sizeof(mt), "message.timeout.ms=%d", 30000 * g_scale);
    if (tf_kafka_conf_set(conf, mt, errstr, sizeof(errstr)))
        die("%s", errstr);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        die("rd_kafka_new: %s", errstr);
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
    if (err) {
        snprintf(why, whylen, "%s", rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return NULL;
    }
    rd_kafka_metadata_destroy(md);
    return rk;
}

static PGconn *pg_connect(const char *dbname, int timeout_s)
{
    char ct[16];
    snprintf(ct, sizeof(ct), "%d", timeout_s);
    /* Everything else (host, port, user) comes from libpq's PG* variables. */
    const char *keys[] = {"connect_timeout", "application_name", dbname ? "dbname" : NULL, NULL};
    const char *vals[] = {ct, "tradeflow-test-harness", dbname, NULL};
    return PQconnectdbParams(keys, vals, 0);
}

static void produce_all(rd_kafka_t *rk, const char *topic)
{
    char payload[128], key[16];
    int produce_failed = 0;
    for (int i = 0; i < g_nmsgs; i++) {
        payload_for(i, payload, sizeof(payload));
        snprintf(key, sizeof(key), "k%d", i % 17);
        rd_kafka_resp_err_t err;
        for (;;) {
            err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                    RD_KAFKA_V_KEY(key, strlen(key)),
                                    RD_KAFKA_V_VALUE(payload, strlen(payload)),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_OPAQUE((void *)(intptr_t)i), RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(rk, 100);
        }
        if (err && produce_failed++ < 5)
            fprintf(stderr, "produce %d: %s\n", i, rd_kafka_err2str(err));
        rd_kafka_poll(rk, 0);
    }
    CHECK_INT(produce_failed, 0);
    rd_kafka_resp_err_t ferr = rd_kafka_flush(rk, 30000 * g_scale);
    CHECK_MSG(ferr == RD_KAFKA_RESP_ERR_NO_ERROR, "flush: %s", rd_kafka_err2str(ferr));

    int delivered = 0, failed = 0;
    for (int i = 0; i < g_nmsgs; i++) {
        if (g_msgs[i].delivered == 1 && g_msgs[i].dr_err == RD_KAFKA_RESP_ERR_NO_ERROR &&
            g_msgs[i].dr_offset >= 0)
            delivered++;
        else if (failed++ < 5)
            fprintf(stderr, "message %d: %d delivery report(s), %s\n", i, g_msgs[i].delivered,
                    rd_kafka_err2str(g_msgs[i].dr_err));
    }
    CHECK_INT(delivered, g_nmsgs);
}

static void consume_all(const char *topic)
{
    char errstr[512], group[160];
    rd_kafka_conf_t *conf = kafka_conf();
    snprintf(group, sizeof(group), "%s.group", topic);
    if (rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)))
        die("consumer configuration: %s", errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        die("rd_kafka_new(consumer): %s", errstr);
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    CHECK_MSG(err == RD_KAFKA_RESP_ERR_NO_ERROR, "subscribe: %s", rd_kafka_err2str(err));

    int64_t last_offset[TOPIC_PARTITIONS] = {-1, -1, -1};
    int got = 0, bad = 0, out_of_order = 0;
    long long deadline = now_ms() + 60000LL * g_scale;
    char expect[128];
    while (got < g_nmsgs && now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "consumer: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        /* Parse "harness|NONCE|i|..." and compare with what was produced. */
        char buf[128];
        size_t len = m->len < sizeof(buf) - 1 ? m->len : sizeof(buf) - 1;
        memcpy(buf, m->payload, len);
        buf[len] = '\0';
        int i = -1;
        char nonce[32] = "";
        if (sscanf(buf, "harness|%31[^|]|%d|", nonce, &i) != 2 || strcmp(nonce, g_nonce) ||
            i < 0 || i >= g_nmsgs) {
            if (bad++ < 5)
                fprintf(stderr, "consumer: unexpected payload \"%s\"\n", buf);
        } else {
            payload_for(i, expect, sizeof(expect));
            if (m->len != strlen(expect) || memcmp(m->payload, expect, m->len)) {
                if (bad++ < 5)
                    fprintf(stderr, "consumer: payload of %d is \"%s\", want \"%s\"\n", i, buf,
                            expect);
            }
            msg_state_t *s = &g_msgs[i];
            if (s->consumed++ == 0)
                got++;
            s->c_partition = m->partition;
            s->c_offset = m->offset;
            if (m->partition >= 0 && m->partition < TOPIC_PARTITIONS) {
                if (m->offset <= last_offset[m->partition])
                    out_of_order++;
                last_offset[m->partition] = m->offset;
            }
        }
        rd_kafka_message_destroy(m);
    }
    CHECK_MSG(got == g_nmsgs, "consumed %d of %d distinct messages within %d s", got, g_nmsgs,
              60 * g_scale);
    CHECK_INT(bad, 0);
    CHECK_INT(out_of_order, 0);
    int dup = 0, misplaced = 0;
    for (int i = 0; i < g_nmsgs; i++) {
        if (g_msgs[i].consumed > 1)
            dup++;
        if (g_msgs[i].consumed &&
            (g_msgs[i].c_partition != g_msgs[i].dr_partition ||
             g_msgs[i].c_offset != g_msgs[i].dr_offset))
            misplaced++;
    }
    CHECK_MSG(dup == 0, "%d messages consumed more than once", dup);
    CHECK_MSG(misplaced == 0, "%d messages not at the partition/offset of their delivery report",
              misplaced);
    err = rd_kafka_consumer_close(rk);
    CHECK_MSG(err == RD_KAFKA_RESP_ERR_NO_ERROR, "consumer close: %s", rd_kafka_err2str(err));
    rd_kafka_destroy(rk);
}

static int pg_ok(PGconn *c, PGresult *r, ExecStatusType want, const char *what)
{
    if (PQresultStatus(r) == want)
        return 1;
    fprintf(stderr, "PostgreSQL %s: %s", what, PQerrorMessage(c));
    return 0;
}

/* A big-endian signed integer of n bytes (PostgreSQL's binary format). */
static int64_t be_int(const char *p, int n)
{
    uint64_t v = (p[0] & 0x80) ? ~(uint64_t)0 : 0;
    for (int k = 0; k < n; k++)
        v = (v << 8) | (unsigned char)p[k];
    return (int64_t)v;
}

/* Writes the consumed messages with COPY and reads them back. */
static void pg_roundtrip(const char *dbname)
{
    PGconn *c = pg_connect(dbname, 10 * g_scale);
    if (PQstatus(c) != CONNECTION_OK) {
        CHECK_MSG(0, "connect to database %s: %s", dbname, PQerrorMessage(c));
        PQfinish(c);
        return;
    }
    PGresult *r = PQexec(c, "CREATE TABLE harness (idx integer PRIMARY KEY, part integer NOT "
                            "NULL, off bigint NOT NULL, payload text NOT NULL)");
    CHECK(pg_ok(c, r, PGRES_COMMAND_OK, "CREATE TABLE"));
    PQclear(r);

    r = PQexec(c, "COPY harness (idx, part, off, payload) FROM STDIN");
    CHECK(pg_ok(c, r, PGRES_COPY_IN, "COPY"));
    PQclear(r);
    char line[256], payload[128];
    int copy_ok = 1;
    for (int i = 0; i < g_nmsgs && copy_ok; i++) {
        if (!g_msgs[i].consumed)
            continue;
        /* Payloads hold no tab, newline or backslash: no COPY escaping. */
        payload_for(i, payload, sizeof(payload));
        int n = snprintf(line, sizeof(line), "%d\t%" PRId32 "\t%" PRId64 "\t%s\n", i,
                         g_msgs[i].c_partition, g_msgs[i].c_offset, payload);
        copy_ok = PQputCopyData(c, line, n) == 1;
    }
    CHECK_MSG(copy_ok && PQputCopyEnd(c, NULL) == 1, "COPY: %s", PQerrorMessage(c));
    r = PQgetResult(c);
    CHECK(pg_ok(c, r, PGRES_COMMAND_OK, "COPY end"));
    int expected_rows = 0;
    for (int i = 0; i < g_nmsgs; i++)
        expected_rows += g_msgs[i].consumed ? 1 : 0;
    CHECK_INT(atoi(PQcmdTuples(r)), expected_rows);
    PQclear(r);
    while ((r = PQgetResult(c)))
        PQclear(r);

    /* Binary results: integers come back in network byte order. */
    r = PQexecParams(c, "SELECT idx, part, off, payload FROM harness ORDER BY idx", 0, NULL, NULL,
                     NULL, NULL, 1);
    if (pg_ok(c, r, PGRES_TUPLES_OK, "SELECT")) {
        int rows = PQntuples(r), mismatched = 0;
        CHECK_INT(rows, expected_rows);
        for (int row = 0; row < rows; row++) {
            int i = (int)be_int(PQgetvalue(r, row, 0), 4);
            int32_t part = (int32_t)be_int(PQgetvalue(r, row, 1), 4);
            int64_t off = be_int(PQgetvalue(r, row, 2), 8);
            if (i < 0 || i >= g_nmsgs) {
                mismatched++;
                continue;
            }
            payload_for(i, payload, sizeof(payload));
            if (part != g_msgs[i].c_partition || off != g_msgs[i].c_offset ||
                PQgetlength(r, row, 3) != (int)strlen(payload) ||
                memcmp(PQgetvalue(r, row, 3), payload, strlen(payload))) {
                if (mismatched++ < 5)
                    fprintf(stderr, "PostgreSQL row %d differs from message %d\n", row, i);
            }
        }
        CHECK_INT(mismatched, 0);
    } else {
        CHECK(0);
    }
    PQclear(r);
    PQfinish(c);
}

static void delete_topic(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000 * g_scale);
    CHECK_MSG(ev && !rd_kafka_event_error(ev), "delete topic %s: %s", topic,
              ev ? rd_kafka_event_error_string(ev) : "no answer");
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteTopic_destroy(dt);
}

int main(int argc, char **argv)
{
    int opt, probe_s = 5;
    g_nmsgs = 1000;
    while ((opt = getopt(argc, argv, "n:T:")) != -1) {
        switch (opt) {
        case 'n':
            g_nmsgs = atoi(optarg);
            break;
        case 'T':
            probe_s = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: test_harness [-n MESSAGES] [-T PROBE-SECONDS]\n");
            return 2;
        }
    }
    if (g_nmsgs < 1 || g_nmsgs > 1000000 || probe_s < 1) {
        fprintf(stderr, "test_harness: bad -n or -T\n");
        return 2;
    }
    const char *san = getenv("TF_SANITIZE");
    if (san && (!strcasecmp(san, "ON") || !strcmp(san, "1") || !strcasecmp(san, "TRUE")))
        g_scale = 3;
    tf_log_init("test_harness", TF_LOG_WARNING, TF_LOG_TEXT);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    srand((unsigned)(ts.tv_nsec ^ getpid()));
    snprintf(g_nonce, sizeof(g_nonce), "%d.%d", (int)getpid(), rand() % 1000000);
    char topic[128], dbname[64];
    snprintf(topic, sizeof(topic), "tft.harness.%s", g_nonce);
    snprintf(dbname, sizeof(dbname), "tft_harness_%d_%d", (int)getpid(), rand() % 1000000);

    /* Both servers are probed before any work so that a missing one is
     * reported at once, by name, within the probe time. */
    const char *brokers = getenv(TF_KAFKA_BROKERS_ENV);
    char why[512] = "";
    long long t0 = now_ms();
    rd_kafka_t *rk = NULL;
    if (!brokers || !*brokers)
        snprintf(why, sizeof(why), "TRADEFLOW_BROKERS is not set (eval \"$(deploy/stack.sh env)\")");
    else
        rk = kafka_connect(probe_s * 1000 * g_scale, why, sizeof(why));
    char kafka_down[700] = "";
    if (!rk)
        snprintf(kafka_down, sizeof(kafka_down), "Kafka at %s is unreachable: %s (%.1f s)",
                 brokers ? brokers : "?", why, (now_ms() - t0) / 1000.0);

    t0 = now_ms();
    PGconn *admin = pg_connect(NULL, probe_s * g_scale);
    char pg_down[700] = "";
    if (PQstatus(admin) != CONNECTION_OK) {
        const char *host = getenv("PGHOST"), *port = getenv("PGPORT");
        char msg[400];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(admin));
        /* libpq's message ends in a newline and may span lines: one line. */
        for (char *p = msg; *p; p++)
            if (*p == '\n' || *p == '\t')
                *p = ' ';
        for (size_t n = strlen(msg); n > 0 && msg[n - 1] == ' '; n--)
            msg[n - 1] = '\0';
        snprintf(pg_down, sizeof(pg_down), "PostgreSQL at %s:%s is unreachable: %s (%.1f s)",
                 host ? host : "(default)", port ? port : "(default)", msg,
                 (now_ms() - t0) / 1000.0);
    }
    if (*kafka_down || *pg_down) {
        PQfinish(admin);
        if (rk)
            rd_kafka_destroy(rk);
        die("%s%s%s", kafka_down, *kafka_down && *pg_down ? "; " : "", pg_down);
    }

    g_msgs = calloc((size_t)g_nmsgs, sizeof(*g_msgs));
    if (!g_msgs)
        die("out of memory");

    char errstr[512];
    long long tk = now_ms();
    int created = tf_kafka_create_topic(rk, topic, TOPIC_PARTITIONS, -1, 30000 * g_scale, errstr,
                                        sizeof(errstr)) == 0;
    CHECK_MSG(created, "create topic: %s", errstr);
    if (created) {
        produce_all(rk, topic);
        consume_all(topic);
    }
    fprintf(stderr, "-- kafka: %d messages through %s in %.2f s\n", g_nmsgs, topic,
            (now_ms() - tk) / 1000.0);

    long long tp = now_ms();
    char sql[160];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
    PGresult *r = PQexec(admin, sql);
    int db_ok = pg_ok(admin, r, PGRES_COMMAND_OK, "CREATE DATABASE");
    CHECK(db_ok);
    PQclear(r);
    if (db_ok) {
        pg_roundtrip(dbname);
        snprintf(sql, sizeof(sql), "DROP DATABASE %s", dbname);
        r = PQexec(admin, sql);
        CHECK(pg_ok(admin, r, PGRES_COMMAND_OK, "DROP DATABASE"));
        PQclear(r);
    }
    fprintf(stderr, "-- postgresql: %d rows through database %s in %.2f s\n", g_nmsgs, dbname,
            (now_ms() - tp) / 1000.0);
    PQfinish(admin);

    if (created)
        delete_topic(rk, topic);
    rd_kafka_destroy(rk);
    free(g_msgs);
    return TF_TEST_REPORT();
}
