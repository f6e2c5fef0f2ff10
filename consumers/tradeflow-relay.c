/*
 * tradeflow-relay - publishes the ranking-shift alerts of the PostgreSQL
 * outbox (tradeflow.alerts, written by tradeflow-aggregate) to the Kafka
 * topic tradeflow.alerts, each alert exactly once, in alert_id order; and
 * hosts the HTTP delivery to Alertmanager and webhooks (tf_deliver.h: its own
 * threads, PostgreSQL connections and cursors, beside the Kafka sessions).
 *
 *   tradeflow-relay [options]                 run (daemon; SIGINT/SIGTERM stop)
 *   tradeflow-relay --exit-when-idle          stop once everything is published
 *
 * Exactly once, across crashes:
 *   - One active relay per topic: a session advisory lock in PostgreSQL. A
 *     second instance waits, says so, and takes over when the first dies.
 *   - Kafka transactions with a fixed transactional.id: a new instance's
 *     init_transactions fences any zombie producer of an earlier one, so no
 *     message of a dead relay can land after the new one looked at the topic.
 *   - The topic has one partition, written in alert_id order. On start the
 *     relay reads its last committed message (read_committed) and marks every
 *     alert up to that id as published: a crash between Kafka's commit and
 *     the UPDATE of published_at never publishes an alert twice.
 *   - published_at is set only after the Kafka transaction committed.
 *   - Alerts are read through a gap-free cursor (tf_alerts_feed.h), so an
 *     alert that commits late with a lower id is not skipped.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "tf_alerts_feed.h"
#include "tf_codec.h"
#include "tf_deliver.h"
#include "tf_http.h"
#include "tf_kafka.h"
#include "tf_err.h"
#include "tf_log.h"
#include "tf_config.h"
#include "tf_pg.h"

#define EXIT_USAGE 64
#define BATCH_MAX 500

typedef struct relay {
    /* options */
    const char *brokers, *pg, *topic, *txn_id, *schema_dir, *registry_url, *registry_user,
        *registry_ca;
    tf_config_t *cfg; /* owns the option strings above; kafka.* for librdkafka */
    int exit_when_idle;
    /* state */
    PGconn *conn;
    rd_kafka_t *rk;
    tf_codec_t *codec;
    tf_alerts_feed_t *feed;
    uint64_t published, marked;
    volatile int auth_failed; /* set by kafka_error_cb: a rejected SASL login */
    long startup_ms;          /* startup.timeout */
    int up;                   /* a session has reached both servers once */
    int exit_code;            /* for a fatal session (-2): TF_EXIT_*, 0 = 1 */
    /* HTTP delivery (deliver.NAME.*) and the operations endpoint; NULL when off */
    tf_deliver_t *deliver;
    tf_http_t *http;
    tf_metric_t *relayed; /* tradeflow_alerts_relayed_total */
} relay_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: tradeflow-relay [OPTIONS]\n"
        "\n"
        "Publishes every ranking-shift alert of PostgreSQL's outbox (tradeflow.alerts)\n"
        "that is not suppressed to a one-partition Kafka topic, exactly once and in\n"
        "alert_id order (Avro RankingAlert, key dataset|reporter, Kafka transactions),\n"
        "and marks it published once Kafka committed it. One relay is active at a\n"
        "time; others wait. It also posts the alerts to HTTP destinations (settings\n"
        "deliver.NAME.*: Alertmanager, Slack, Teams, CloudEvents, JSON), in alert_id\n"
        "order, at least once each with an Idempotency-Key, from a durable cursor per\n"
        "destination; 4xx answers are parked, other failures retried.\n"
        "\n"
        "Kafka:\n"
        "  -b, --brokers LIST     bootstrap servers (default: $TRADEFLOW_BROKERS)\n"
        "  -t, --topic TOPIC      alerts topic (default: tradeflow.alerts); created\n"
        "                         with one partition if missing\n"
        "  -X KEY=VALUE           librdkafka property; repeatable\n"
        "  -F FILE                librdkafka properties file (key=value lines)\n"
        "      --transactional-id ID  (default: tradeflow-relay.<topic>)\n"
        "      --schema-dir DIR   Avro schemas (default: the installed ones)\n"
        "      --registry-url URL Confluent-compatible schema registry (Confluent framing)\n"
        "      --registry-user U:P  basic auth for the registry\n"
        "      --registry-ca FILE CA certificate for the registry's TLS\n"
        "PostgreSQL:\n"
        "      --pg CONNINFO      libpq conninfo or URI (default: the PG* variables)\n"
        "HTTP delivery (docs/alerts.md; one or more destinations NAME):\n"
        "  -D NAME.KEY=VALUE      sets deliver.NAME.KEY, e.g. -D am.kind=alertmanager\n"
        "                         -D am.url=http://127.0.0.1:9093; repeatable\n"
        "      --no-kafka         deliver over HTTP only, publish nothing to Kafka\n"
        "Running:\n"
        "      --exit-when-idle   exit 0 once every publishable alert is published and\n"
        "                         every destination has caught up\n"
        "      --metrics-addr ADDR  serve /metrics, /healthz, /readyz on HOST:PORT\n"
        "      --startup-timeout S  wait at most S s at start for the servers (default: 30)\n"
        "      --log-level L      emerg..debug or 0..7 (default: info)\n"
        "      --log-format F     text or json (default: text)\n"
        "  -c, --config FILE      key = value settings (default: $TRADEFLOW_CONFIG);\n"
        "                         precedence: defaults < file < TRADEFLOW_<KEY> < flags\n"
        "      --print-config     print the effective settings (secrets masked), exit\n"
        "      --help-config      print the reference of every setting, exit\n"
        "  -h, --help             this help\n"
        "      --version          print the version\n"
        "\n"
        "At start Kafka and PostgreSQL must answer within --startup-timeout S seconds\n"
        "(default 30; then exit 69); later outages are retried with backoff. A refused\n"
        "login (SASL or PostgreSQL authentication, TLS) is fatal at any time: exit 77.\n"
        "Exit status: 0 stopped (signal or --exit-when-idle), 1 failure (bad\n"
        "configuration, a topic with more than one partition, or a topic whose last\n"
        "alert is newer than the database's newest), 64 usage error, 69 a server\n"
        "unreachable at start, 77 a server refused the login.\n");
}

/* Sleeps ms milliseconds unless a stop is requested. */
static void nap(int ms)
{
    while (ms > 0 && !stop_requested) {
        int step = ms < 100 ? ms : 100;
        usleep((useconds_t)step * 1000);
        ms -= step;
    }
}

/* ---- PostgreSQL -------------------------------------------------------- */

static void pg_close(relay_t *r)
{
    if (r->conn)
        PQfinish(r->conn);
    r->conn = NULL;
}

/* Connects, takes the relay lock (waiting while another relay holds it) and
 * LISTENs. Returns 0, 1 if a stop was requested while waiting, -1 on error. */
static int pg_open(relay_t *r, char *errstr, size_t errlen)
{
    int refused = 0;
    /* At start, wait up to startup.timeout for PostgreSQL; later sessions
     * try once (the caller backs off). A refusal (wrong password, ...) is a
     * configuration error at any time: stop (77), like the other programs. */
    r->conn = r->up ? tf_pg_connect(r->pg, "tradeflow-relay", errstr, errlen)
                    : tf_pg_connect_wait(r->pg, "tradeflow-relay", (int)r->startup_ms,
                                         &stop_requested, &refused, errstr, errlen);
    if (!r->conn) {
        if (refused || tf_pg_refusal(errstr)) {
            r->exit_code = TF_EXIT_NOPERM;
            return -2;
        }
        if (!r->up && !stop_requested) {
            r->exit_code = TF_EXIT_UNAVAILABLE;
            return -2;
        }
        return -1;
    }
    const char *p[1] = {r->topic};
    int waited = 0;
    for (;;) {
        PGresult *res = PQexecParams(
            r->conn, "SELECT pg_try_advisory_lock(hashtextextended('tradeflow-relay|' || $1, 0))",
            1, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            snprintf(errstr, errlen, "relay lock: %s", PQresultErrorMessage(res));
            PQclear(res);
            pg_close(r);
            return -1;
        }
        int got = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (got)
            break;
        if (!waited)
            TF_LOG(TF_LOG_NOTICE, "relay",
                   "another relay for topic %s is active; waiting to take over", r->topic);
        waited = 1;
        nap(1000);
        if (stop_requested) {
            pg_close(r);
            return 1;
        }
        if (PQstatus(r->conn) != CONNECTION_OK) {
            snprintf(errstr, errlen, "PostgreSQL connection lost while waiting for the lock");
            pg_close(r);
            return -1;
        }
    }
    if (waited)
        TF_LOG(TF_LOG_NOTICE, "relay", "took over as the active relay for %s", r->topic);
    if (tf_pg_exec(r->conn, "LISTEN tradeflow_alerts", errstr, errlen) != 0) {
        pg_close(r);
        return -1;
    }
    return 0;
}

/* Marks alerts published: ids given as a PostgreSQL array literal, or all
 * publishable ones up to upto_id when ids is NULL. */
static int mark_published(relay_t *r, const char *ids, int64_t upto_id, uint64_t *count,
                          char *errstr, size_t errlen)
{
    char upto[24];
    PGresult *res;
    if (ids) {
        const char *p[1] = {ids};
        res = PQexecParams(r->conn,
                           "UPDATE tradeflow.alerts SET published_at = now() "
                           "WHERE alert_id = ANY($1::bigint[]) AND published_at IS NULL",
                           1, NULL, p, NULL, NULL, 0);
    } else {
        snprintf(upto, sizeof(upto), "%" PRId64, upto_id);
        const char *p[1] = {upto};
        res = PQexecParams(r->conn,
                           "UPDATE tradeflow.alerts SET published_at = now() "
                           "WHERE alert_id <= $1::bigint AND published_at IS NULL "
                           "AND NOT suppressed",
                           1, NULL, p, NULL, NULL, 0);
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        snprintf(errstr, errlen, "marking alerts published: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    if (count)
        *count = strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

/* ---- Kafka -------------------------------------------------------------- */

static void kafka_close(relay_t *r)
{
    if (r->rk) {
        rd_kafka_purge(r->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy(r->rk);
    }
    r->rk = NULL;
}

/* Number of partitions of the topic, or -1. */
static int topic_partitions(rd_kafka_t *rk, const char *topic, char *errstr, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) {
        snprintf(errstr, errlen, "topic handle: %s", rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (err) {
        snprintf(errstr, errlen, "metadata of %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    int n = -1;
    if (md->topic_cnt == 1 && !md->topics[0].err)
        n = md->topics[0].partition_cnt;
    else
        snprintf(errstr, errlen, "metadata of %s: %s", topic,
                 md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "missing");
    rd_kafka_metadata_destroy(md);
    return n;
}

/* Reads the alert_id of the topic's last committed message into *last (0 if
 * the topic holds none). Reads a window at the end of the partition, wider
 * each time it holds no data message (transaction markers take offsets). */
static int read_last_alert_id(relay_t *r, int64_t *last, char *errstr, size_t errlen)
{
    rd_kafka_conf_t *conf = tf_kafka_conf_new(r->brokers, errstr, errlen);
    rd_kafka_t *c = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    int rc = -1;
    if (!conf)
        return -1;
    if (tf_kafka_conf_from_config(conf, r->cfg, errstr, errlen) != 0 ||
        tf_kafka_conf_set(conf, "isolation.level=read_committed", errstr, errlen) != 0 ||
        tf_kafka_conf_set(conf, "enable.partition.eof=true", errstr, errlen) != 0 ||
        tf_kafka_conf_set(conf, "enable.auto.commit=false", errstr, errlen) != 0 ||
        tf_kafka_conf_set(conf, "group.id=tradeflow-relay-recovery", errstr, errlen) != 0) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errlen);
    if (!c) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    int64_t lo, hi;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(c, r->topic, 0, &lo, &hi, 10000);
    if (err) {
        snprintf(errstr, errlen, "watermarks of %s: %s", r->topic, rd_kafka_err2str(err));
        goto out;
    }
    *last = 0;
    for (int64_t window = 16; hi > lo; window *= 4) {
        int64_t start = hi - window > lo ? hi - window : lo;
        parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, r->topic, 0)->offset = start;
        if ((err = rd_kafka_assign(c, parts))) {
            snprintf(errstr, errlen, "assign %s: %s", r->topic, rd_kafka_err2str(err));
            goto out;
        }
        rd_kafka_topic_partition_list_destroy(parts);
        parts = NULL;
        int eof = 0;
        for (int idle = 0; !eof;) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 1000);
            if (!m) {
                if (++idle >= 30 || stop_requested) {
                    snprintf(errstr, errlen, "no end of %s within 30 s", r->topic);
                    goto out;
                }
                continue;
            }
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                eof = 1;
            } else if (m->err) {
                snprintf(errstr, errlen, "reading %s: %s", r->topic, rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                goto out;
            } else {
                tf_alert_t a;
                char derr[256];
                if (tf_codec_decode_alert(r->codec, m->payload, m->len, &a, derr,
                                          sizeof(derr)) != 0) {
                    snprintf(errstr, errlen, "%s offset %" PRId64 " is not a RankingAlert: %s",
                             r->topic, (int64_t)m->offset, derr);
                    rd_kafka_message_destroy(m);
                    goto out;
                }
                if (a.alert_id > *last)
                    *last = a.alert_id;
            }
            rd_kafka_message_destroy(m);
        }
        if (*last > 0 || start == lo)
            break;
    }
    rc = 0;
out:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return rc;
}

/* A rejected SASL login is a configuration error, not an outage: remember
 * it so that kafka_open gives up instead of retrying forever. */
static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    relay_t *r = opaque;
    const char *hint = err == RD_KAFKA_RESP_ERR__AUTHENTICATION ? tf_kafka_auth_hint(rk) : NULL;
    TF_LOG(err == RD_KAFKA_RESP_ERR__AUTHENTICATION ? TF_LOG_CRIT : TF_LOG_WARNING, "kafka",
           "%s: %s%s%s", rd_kafka_err2name(err), reason, hint ? "; " : "", hint ? hint : "");
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION)
        r->auth_failed = 1;
}

/* Creates the transactional producer, checks the topic and fences earlier
 * instances. Returns 0, -1 on a retryable error, -2 on a fatal one. */
static int kafka_open(relay_t *r, char *errstr, size_t errlen)
{
    char txn[512];
    rd_kafka_conf_t *conf = tf_kafka_conf_new(r->brokers, errstr, errlen);
    if (!conf)
        return -2;
    snprintf(txn, sizeof(txn), "transactional.id=%s%s", r->txn_id ? "" : "tradeflow-relay.",
             r->txn_id ? r->txn_id : r->topic);
    if (tf_kafka_conf_from_config(conf, r->cfg, errstr, errlen) != 0 ||
        tf_kafka_conf_set(conf, txn, errstr, errlen) != 0 ||
        tf_kafka_conf_set(conf, "enable.idempotence=true", errstr, errlen) != 0 ||
        tf_kafka_conf_set(conf, "acks=all", errstr, errlen) != 0 ||
        tf_kafka_conf_set(conf, "linger.ms=0", errstr, errlen) != 0) {
        rd_kafka_conf_destroy(conf);
        return -2;
    }
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
    rd_kafka_conf_set_opaque(conf, r);
    r->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errlen);
    if (!r->rk) {
        rd_kafka_conf_destroy(conf);
        return -2;
    }
    if (!r->up) { /* at start: a broker within startup.timeout, or stop */
        int w = tf_kafka_wait_ready(r->rk, (int)r->startup_ms, (const int *)&r->auth_failed,
                                    &stop_requested, errstr, errlen);
        if (w == -1 || (w == -2 && r->auth_failed)) {
            r->exit_code = w == -1 ? TF_EXIT_UNAVAILABLE : TF_EXIT_NOPERM;
            if (w == -2)
                snprintf(errstr, errlen, "Kafka rejected the SASL credentials (see the log)");
            kafka_close(r);
            return -2;
        }
        if (w)
            goto retry;
    }
    if (tf_kafka_create_topic(r->rk, r->topic, 1, -1, 15000, errstr, errlen) != 0)
        goto retry;
    int np = topic_partitions(r->rk, r->topic, errstr, errlen);
    if (np < 0)
        goto retry;
    if (np != 1) {
        snprintf(errstr, errlen,
                 "topic %s has %d partitions: the alerts topic must have exactly one "
                 "(alert_id order)", r->topic, np);
        kafka_close(r);
        return -2;
    }
    rd_kafka_error_t *e = rd_kafka_init_transactions(r->rk, 30000);
    if (e) {
        snprintf(errstr, errlen, "init_transactions: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        kafka_close(r);
        return -1;
    }
    return 0;
retry:
    rd_kafka_poll(r->rk, 0); /* serves kafka_error_cb */
    kafka_close(r);
    if (r->auth_failed) {
        snprintf(errstr, errlen, "Kafka rejected the SASL credentials (see the log)");
        r->exit_code = TF_EXIT_NOPERM;
        return -2;
    }
    return -1;
}

/* Publishes rows (already filtered: not suppressed, not published) in one
 * Kafka transaction. Returns 0 once committed, -1 on error (the transaction
 * is aborted if it can be; the caller then starts a new session, whose
 * init_transactions aborts it otherwise). */
static int publish(relay_t *r, const tf_alert_row_t *const *rows, size_t n, char *errstr,
                   size_t errlen)
{
    tf_buf_t val = {0};
    rd_kafka_error_t *e;
    int rc = -1;
    if ((e = rd_kafka_begin_transaction(r->rk))) {
        snprintf(errstr, errlen, "begin_transaction: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const tf_alert_row_t *row = rows[i];
        char key[64], retracts[24], derr[256];
        snprintf(key, sizeof(key), "%s|%s", tf_dataset_name(row->a.dataset), row->a.reporter);
        snprintf(retracts, sizeof(retracts), "%" PRId64, row->retracts);
        tf_buf_reset(&val);
        if (tf_codec_encode_alert(r->codec, r->topic, &row->a, &val, derr, sizeof(derr)) != 0) {
            snprintf(errstr, errlen, "encoding alert %" PRId64 ": %s", row->a.alert_id, derr);
            goto abort;
        }
        rd_kafka_resp_err_t err;
        do {
            /* The retracted alert's id travels in a header: RankingAlert
             * has no field for it, and alert_id must stay the outbox id
             * (the topic's order and the relay's recovery depend on it). */
            rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
            rd_kafka_header_add(hdrs, "tf.kind", -1, tf_alerts_kind_name(row->a.kind), -1);
            if (row->retracts)
                rd_kafka_header_add(hdrs, "tf.retracts", -1, retracts, -1);
            err = rd_kafka_producev(
                r->rk, RD_KAFKA_V_TOPIC(r->topic), RD_KAFKA_V_PARTITION(0),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, strlen(key)),
                RD_KAFKA_V_VALUE(val.data, val.len), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
            if (err) /* on success the message owns the headers */
                rd_kafka_headers_destroy(hdrs);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(r->rk, 100);
        } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (err) {
            snprintf(errstr, errlen, "producing alert %" PRId64 ": %s", row->a.alert_id,
                     rd_kafka_err2str(err));
            goto abort;
        }
    }
    for (int attempt = 0;; attempt++) {
        e = rd_kafka_commit_transaction(r->rk, 60000);
        if (!e)
            break;
        snprintf(errstr, errlen, "commit_transaction: %s", rd_kafka_error_string(e));
        if (rd_kafka_error_is_retriable(e) && attempt < 5 && !stop_requested) {
            rd_kafka_error_destroy(e);
            continue;
        }
        int abortable = rd_kafka_error_txn_requires_abort(e);
        rd_kafka_error_destroy(e);
        if (abortable)
            goto abort;
        goto out;
    }
    rc = 0;
    goto out;
abort:
    if ((e = rd_kafka_abort_transaction(r->rk, 60000)))
        rd_kafka_error_destroy(e);
out:
    tf_buf_free(&val);
    return rc;
}

/* Waits up to ms for a notification on the PostgreSQL connection (any
 * notification is only a wake-up: the table is the truth). -1 if the
 * connection broke. */
static int wait_notify(relay_t *r, int ms)
{
    return tf_alerts_feed_wait(r->conn, ms);
}

/* One session: connect, recover, relay until an error or a stop.
 * Returns 0 (stop or idle), -1 (retry after a backoff), -2 (fatal). */
static int session(relay_t *r)
{
    char errstr[1024];
    int64_t last = 0;
    int rc = pg_open(r, errstr, sizeof(errstr));
    if (rc == 1)
        return 0;
    if (rc < 0) {
        TF_LOG(rc == -2 ? TF_LOG_CRIT : TF_LOG_WARNING, "pg", "%s", errstr);
        return rc;
    }
    rc = kafka_open(r, errstr, sizeof(errstr));
    if (rc < 0) {
        TF_LOG(rc == -2 ? TF_LOG_CRIT : TF_LOG_WARNING, "kafka", "%s", errstr);
        pg_close(r);
        return rc;
    }
    r->up = 1;
    if (read_last_alert_id(r, &last, errstr, sizeof(errstr)) != 0) {
        TF_LOG(TF_LOG_WARNING, "kafka", "%s", errstr);
        goto retry;
    }
    /* Every alert on the topic was committed in PostgreSQL first, so a
     * topic that is ahead of the table belongs to another database (or one
     * restored from an older backup): marking "up to its last id" would
     * then mark alerts published that never were. */
    int64_t newest = 0;
    if (tf_alerts_feed_max_id(r->conn, &newest, errstr, sizeof(errstr)) != 0) {
        TF_LOG(TF_LOG_WARNING, "pg", "%s", errstr);
        goto retry;
    }
    if (last > newest) {
        TF_LOG(TF_LOG_ERR, "relay",
               "topic %s ends with alert %" PRId64 " but the newest alert in PostgreSQL is %" PRId64
               ": the topic and the database do not belong together; refusing to relay",
               r->topic, last, newest);
        kafka_close(r);
        pg_close(r);
        return -2;
    }
    uint64_t marked = 0;
    if (last > 0 && mark_published(r, NULL, last, &marked, errstr, sizeof(errstr)) != 0) {
        TF_LOG(TF_LOG_WARNING, "pg", "%s", errstr);
        goto retry;
    }
    r->marked += marked;
    TF_LOG(TF_LOG_INFO, "relay",
           "active for topic %s: last alert on the topic %" PRId64
           ", %" PRIu64 " alert(s) found published but unmarked",
           r->topic, last, marked);
    tf_alerts_feed_destroy(r->feed);
    r->feed = tf_alerts_feed_new(last, errstr, sizeof(errstr));
    if (!r->feed) {
        TF_LOG(TF_LOG_ERR, "relay", "%s", errstr);
        goto retry;
    }

    const tf_alert_row_t *unsent[BATCH_MAX];
    tf_buf_t ids = {0};
    uint64_t reported = r->published;
    time_t last_report = time(NULL);
    while (!stop_requested) {
        const tf_alert_row_t *rows;
        size_t n, k = 0;
        int held = 0;
        if (tf_alerts_feed_fetch(r->feed, r->conn, BATCH_MAX, &rows, &n, &held, errstr,
                                 sizeof(errstr)) != 0) {
            TF_LOG(TF_LOG_WARNING, "pg", "%s", errstr);
            tf_buf_free(&ids);
            goto retry;
        }
        /* The ids to mark, as a PostgreSQL array literal (NUL-terminated:
         * tf_buf_appendf keeps a NUL after len). */
        int oom = 0;
        tf_buf_reset(&ids);
        oom |= tf_buf_appendf(&ids, "{");
        for (size_t i = 0; i < n; i++)
            if (!rows[i].suppressed && !rows[i].published) {
                unsent[k] = &rows[i];
                oom |= tf_buf_appendf(&ids, "%s%" PRId64, k ? "," : "", rows[i].a.alert_id);
                k++;
            }
        oom |= tf_buf_appendf(&ids, "}");
        if (oom) {
            TF_LOG(TF_LOG_ERR, "relay", "out of memory");
            tf_buf_free(&ids);
            goto retry;
        }
        if (k > 0) {
            if (publish(r, unsent, k, errstr, sizeof(errstr)) != 0) {
                TF_LOG(TF_LOG_WARNING, "kafka", "%s", errstr);
                tf_buf_free(&ids);
                goto retry;
            }
            uint64_t cnt = 0;
            /* A crash here is covered by the recovery at the next start. */
            if (mark_published(r, (const char *)ids.data, 0, &cnt, errstr, sizeof(errstr)) != 0) {
                TF_LOG(TF_LOG_WARNING, "pg", "%s", errstr);
                tf_buf_free(&ids);
                goto retry;
            }
            r->published += k;
            tf_metrics_counter_add(r->relayed, k);
            TF_LOG(TF_LOG_DEBUG, "relay", "published %zu alert(s) up to %" PRId64, k,
                   unsent[k - 1]->a.alert_id);
        }
        if (r->published != reported && time(NULL) - last_report >= 60) {
            TF_LOG(TF_LOG_INFO, "relay", "%" PRIu64 " alert(s) published so far, up to %" PRId64,
                   r->published, tf_alerts_feed_cursor(r->feed));
            reported = r->published;
            last_report = time(NULL);
        }
        if (n > 0)
            tf_alerts_feed_advance(r->feed, rows[n - 1].a.alert_id);
        tf_http_heartbeat(r->http);
        rd_kafka_poll(r->rk, 0);
        if (n == BATCH_MAX)
            continue;
        if (n == 0 && !held && r->exit_when_idle)
            break;
        if (n == 0 && wait_notify(r, held ? 50 : 1000) != 0) {
            TF_LOG(TF_LOG_WARNING, "pg", "connection lost: %s", PQerrorMessage(r->conn));
            tf_buf_free(&ids);
            goto retry;
        }
    }
    tf_buf_free(&ids);
    kafka_close(r);
    pg_close(r);
    return 0;
retry:
    kafka_close(r);
    pg_close(r);
    return -1;
}

enum {
    O_PG = 256,
    O_TXN,
    O_SCHEMA,
    O_REG_URL,
    O_REG_USER,
    O_REG_CA,
    O_IDLE,
    O_LOG_LEVEL,
    O_LOG_FORMAT,
    O_VERSION,
    O_PRINT,
    O_HELPCFG,
    O_STARTUP,
    O_METRICS,
    O_NO_KAFKA
};

/* The configuration table (docs/configuration.md is generated from it). */
static const tf_cfg_prop_t relay_props[] = {
    {"brokers", TF_CFG_STRING, NULL, 0, 0, NULL, 0, "Kafka bootstrap servers"},
    {"topic", TF_CFG_STRING, "tradeflow.alerts", 0, 0, NULL, 0,
     "the alerts topic (one partition: alert_id order)"},
    {"pg", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "libpq conninfo or URI; unset = the PG* variables (password masked in output)"},
    {"transactional.id", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "transactional.id (default: tradeflow-relay.TOPIC)"},
    {"schema.dir", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "directory of the Avro schemas (default: the installed ones)"},
    {"registry.url", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "Confluent-compatible schema registry; switches to Confluent framing"},
    {"registry.user", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "registry basic auth as user:password (password masked in output)"},
    {"registry.ca", TF_CFG_STRING, NULL, 0, 0, NULL, 0, "CA certificate file for the registry"},
    {"exit.when.idle", TF_CFG_BOOL, "false", 0, 0, NULL, 0,
     "exit 0 once every alert is published and every destination has caught up"},
    {"publish.kafka", TF_CFG_BOOL, "true", 0, 0, NULL, 0,
     "publish to the Kafka topic; false = HTTP delivery (deliver.*) only"},
    {"metrics.addr", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "serve /metrics, /healthz, /readyz on HOST:PORT (:PORT = 127.0.0.1); unset = off"},
    {"startup.timeout", TF_CFG_INT, "30", 1, 3600, NULL, 0,
     "seconds to wait at start for PostgreSQL and a Kafka broker to answer; then exit 69 "
     "(a refusal, e.g. a wrong password: exit 77 at once)"},
    {"log.level", TF_CFG_ENUM, "info", 0, 0,
     "emerg|alert|crit|error|err|warning|warn|notice|info|debug|0|1|2|3|4|5|6|7", 0, "log level"},
    {"log.format", TF_CFG_ENUM, "text", 0, 0, "text|json", 0, "log format"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL}};

/* Settings, the assembled conninfo and the destinations, freed at exit on
 * every path. */
static tf_config_t *g_cfg;
static char *g_pg;
static tf_deliver_conf_t g_dests;

static void free_config(void)
{
    tf_config_destroy(g_cfg);
    free(g_pg);
    tf_deliver_conf_free(&g_dests);
}

/* The reference of the deliver.NAME.* keys (after the relay's own table). */
static void deliver_reference(FILE *out)
{
    static const char *types[] = {"string", "integer", "boolean", "choice", "period YYYY-MM",
                                  "list"};
    fprintf(out, "### tradeflow-relay: HTTP destinations (`deliver.NAME.*`)\n\n"
                 "Set in the configuration file or with `-D NAME.KEY=VALUE`; not read from "
                 "the environment. NAME is the destination's name (its cursor's key).\n\n"
                 "| key | type | default | description |\n|---|---|---|---|\n");
    for (const tf_cfg_prop_t *p = tf_deliver_props; p->key; p++) {
        fprintf(out, "| `%s` | %s", p->key, types[p->type]);
        if (p->type == TF_CFG_INT)
            fprintf(out, " %ld..%ld", p->min, p->max);
        if (p->type == TF_CFG_ENUM)
            fprintf(out, " (%s)", p->choices);
        fprintf(out, " | %s%s%s | %s%s |\n", p->def ? "`" : "", p->def ? p->def : "—",
                p->def ? "`" : "", p->desc, (p->flags & TF_CFG_SECRET) ? " (secret: masked)" : "");
    }
    fprintf(out, "\n");
}

/* -D NAME.KEY=VALUE and --help-config (the relay's table plus the
 * destinations' keys). */
static int relay_other(int code, const char *arg, int pass, void *std)
{
    tf_cfg_std_t *s = std;
    char key[256], err[512];
    if (code == O_HELPCFG) {
        if (pass == 1) {
            tf_config_reference(s->program, s->props, stdout);
            deliver_reference(stdout);
            s->exit_code = 0;
            return -1;
        }
        return 0;
    }
    if (code != 'D')
        return pass == 1 ? 0 : -1;
    if (pass == 1)
        return 0;
    /* Messages name the key, never the value (it may be a secret). */
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || (size_t)(eq - arg) > sizeof(key) - 9) {
        fprintf(stderr, "tradeflow-relay: -D: expected NAME.KEY=VALUE\n");
        return -1;
    }
    snprintf(key, sizeof(key), "deliver.%.*s", (int)(eq - arg), arg);
    if (tf_config_set(g_cfg, key, eq + 1, "command line", err, sizeof(err)) != 0) {
        fprintf(stderr, "tradeflow-relay: -D %s=...: %s\n", key + 8, err);
        return -1;
    }
    return 0;
}

/* /readyz: every destination caught up (the Kafka side has its own logs). */
static int ready_cb(void *arg, char *reason, size_t len)
{
    relay_t *r = arg;
    if (r->deliver && !tf_deliver_idle(r->deliver)) {
        snprintf(reason, len, "delivering: a destination is behind or failing");
        return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    relay_t r = {0};
    char errstr[1024];
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"brokers", required_argument, 0, 'b'},
        {"topic", required_argument, 0, 't'},
        {"pg", required_argument, 0, O_PG},
        {"transactional-id", required_argument, 0, O_TXN},
        {"schema-dir", required_argument, 0, O_SCHEMA},
        {"registry-url", required_argument, 0, O_REG_URL},
        {"registry-user", required_argument, 0, O_REG_USER},
        {"registry-ca", required_argument, 0, O_REG_CA},
        {"exit-when-idle", no_argument, 0, O_IDLE},
        {"startup-timeout", required_argument, 0, O_STARTUP},
        {"metrics-addr", required_argument, 0, O_METRICS},
        {"no-kafka", no_argument, 0, O_NO_KAFKA},
        {"log-level", required_argument, 0, O_LOG_LEVEL},
        {"log-format", required_argument, 0, O_LOG_FORMAT},
        {"print-config", no_argument, 0, O_PRINT},
        {"help-config", no_argument, 0, O_HELPCFG},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0}};
    static const tf_cfg_flag_t flags[] = {
        {'b', "brokers", NULL},           {'t', "topic", NULL},
        {O_PG, "pg", NULL},               {O_TXN, "transactional.id", NULL},
        {O_SCHEMA, "schema.dir", NULL},   {O_REG_URL, "registry.url", NULL},
        {O_REG_USER, "registry.user", NULL}, {O_REG_CA, "registry.ca", NULL},
        {O_IDLE, "exit.when.idle", "true"}, {O_STARTUP, "startup.timeout", NULL},
        {O_LOG_LEVEL, "log.level", NULL}, {O_LOG_FORMAT, "log.format", NULL},
        {O_METRICS, "metrics.addr", NULL}, {O_NO_KAFKA, "publish.kafka", "false"},
        {0, NULL, NULL}};
    tf_cfg_std_t cli = {.program = "tradeflow-relay", .version = TF_VERSION,
                        .props = relay_props, .usage = usage, .code_version = O_VERSION,
                        .code_help_config = -2, .code_print_config = O_PRINT,
                        .other = relay_other, .exit_code = -1};
    if (!(g_cfg = tf_config_new("tradeflow-relay", relay_props)) ||
        tf_config_allow_prefix(g_cfg, "deliver.") != 0) {
        fprintf(stderr, "tradeflow-relay: out of memory\n");
        return 1;
    }
    atexit(free_config);
    if (tf_config_parse_args(g_cfg, argc, argv, "c:b:t:X:F:D:h", opts, flags,
                             tf_config_std_other, &cli, errstr, sizeof(errstr)) != 0) {
        if (cli.exit_code >= 0)
            return cli.exit_code;
        if (errstr[0])
            fprintf(stderr, "tradeflow-relay: %s\n", errstr);
        return EXIT_USAGE;
    }
    /* pg.* keys as libpq will take them, for --print-config as for a run */
    if (tf_pg_check_config(g_cfg, errstr, sizeof(errstr))) {
        fprintf(stderr, "tradeflow-relay: %s\n", errstr);
        return EXIT_USAGE;
    }
    if (tf_deliver_conf_parse(g_cfg, &g_dests, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "tradeflow-relay: %s\n", errstr);
        return EXIT_USAGE;
    }
    if (cli.print_config) {
        tf_config_print(g_cfg, stdout);
        return 0;
    }
    if (!tf_config_bool(g_cfg, "publish.kafka") && g_dests.n == 0) {
        fprintf(stderr, "tradeflow-relay: --no-kafka (publish.kafka = false) without any "
                        "deliver.NAME destination: nothing to do\n");
        return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "tradeflow-relay: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    r.cfg = g_cfg;
    r.brokers = tf_config_str(g_cfg, "brokers");
    r.topic = tf_config_str(g_cfg, "topic");
    g_pg = tf_config_pg_conninfo(g_cfg);
    r.pg = g_pg;
    r.txn_id = tf_config_str(g_cfg, "transactional.id");
    r.schema_dir = tf_config_str(g_cfg, "schema.dir");
    r.registry_url = tf_config_str(g_cfg, "registry.url");
    r.registry_user = tf_config_str(g_cfg, "registry.user");
    r.registry_ca = tf_config_str(g_cfg, "registry.ca");
    r.exit_when_idle = tf_config_bool(g_cfg, "exit.when.idle");
    r.startup_ms = 1000 * tf_config_int(g_cfg, "startup.timeout");
    int log_level = tf_log_level_parse(tf_config_str(g_cfg, "log.level"));
    tf_log_format_t log_format =
        strcmp(tf_config_str(g_cfg, "log.format"), "json") == 0 ? TF_LOG_JSON : TF_LOG_TEXT;
    tf_log_init("tradeflow-relay", log_level, log_format);

    /* Check the Kafka configuration once, up front: a typo is fatal, an
     * unreachable broker is not. */
    rd_kafka_conf_t *probe = tf_kafka_conf_new(r.brokers, errstr, sizeof(errstr));
    if (!probe || tf_kafka_conf_from_config(probe, r.cfg, errstr, sizeof(errstr)) != 0) {
        TF_LOG(TF_LOG_ERR, "kafka", "%s", errstr);
        if (probe)
            rd_kafka_conf_destroy(probe);
        return 1;
    }
    rd_kafka_conf_destroy(probe);
    r.codec = tf_codec_new(r.schema_dir, NULL, errstr, sizeof(errstr));
    if (!r.codec) {
        TF_LOG(TF_LOG_ERR, "codec", "%s", errstr);
        return 1;
    }
    if (r.registry_url && tf_codec_use_registry(r.codec, r.registry_url, r.registry_user,
                                                r.registry_ca, errstr, sizeof(errstr)) != 0) {
        TF_LOG(TF_LOG_ERR, "codec", "%s", errstr);
        tf_codec_destroy(r.codec);
        return 1;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The operations endpoint and the HTTP destinations run on their own
     * threads, beside the Kafka sessions below. */
    tf_metrics_t *metrics = NULL;
    const char *metrics_addr = tf_config_str(g_cfg, "metrics.addr");
    if (metrics_addr && *metrics_addr) {
        tf_metrics_std_t std;
        if (!(metrics = tf_metrics_new()) ||
            tf_metrics_std_register(metrics, TF_METRICS_STD_ALERTS, "tradeflow-relay", TF_VERSION,
                                    &std, errstr, sizeof(errstr)) != 0) {
            TF_LOG(TF_LOG_ERR, "http", "metrics: %s", metrics ? errstr : "out of memory");
            tf_metrics_free(metrics);
            tf_codec_destroy(r.codec);
            return 1;
        }
        r.relayed = std.alerts_relayed;
    }
    if (g_dests.n > 0 || metrics) {
        r.deliver = tf_deliver_start(&g_dests, r.pg, metrics, errstr, sizeof(errstr));
        if (!r.deliver) {
            TF_LOG(TF_LOG_ERR, "deliver", "%s", errstr);
            tf_metrics_free(metrics);
            tf_codec_destroy(r.codec);
            return 1;
        }
    }
    if (metrics) {
        if (!(r.http = tf_http_start(metrics_addr, metrics, ready_cb, &r, errstr,
                                     sizeof(errstr)))) {
            TF_LOG(TF_LOG_ERR, "http", "%s", errstr);
            tf_deliver_stop(r.deliver);
            tf_metrics_free(metrics);
            tf_codec_destroy(r.codec);
            return 1;
        }
        /* A Kafka session can spend a minute in one call (recovery reads,
         * init_transactions): a generous bound. */
        tf_http_set_stale_ms(r.http, 120000);
        TF_LOG(TF_LOG_NOTICE, "http", "metrics and health on port %d", tf_http_port(r.http));
    }
    for (size_t i = 0; i < g_dests.n; i++)
        TF_LOG(TF_LOG_INFO, "deliver", "destination %s: %s", g_dests.dests[i].name,
               tf_deliver_kind_name(g_dests.dests[i].kind));

    int rc = 0, backoff = 200;
    while (!stop_requested && tf_config_bool(g_cfg, "publish.kafka")) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = session(&r);
        if (rc == 0 || rc == -2)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > 30) /* it worked for a while: start over */
            backoff = 200;
        TF_LOG(TF_LOG_NOTICE, "relay", "retrying in %d ms", backoff);
        nap(backoff);
        if (backoff < 10000)
            backoff *= 2;
    }
    /* Without Kafka, or once Kafka is idle (--exit-when-idle): wait for the
     * destinations, or for the stop. */
    while (rc == 0 && !stop_requested &&
           (!r.exit_when_idle || (r.deliver && !tf_deliver_idle(r.deliver)))) {
        tf_http_heartbeat(r.http);
        nap(100);
    }
    tf_http_stop(r.http);
    tf_deliver_stop(r.deliver);
    tf_metrics_free(metrics);
    TF_LOG(TF_LOG_INFO, "relay",
           "stopped: %" PRIu64 " alert(s) published, %" PRIu64 " marked after recovery",
           r.published, r.marked);
    tf_alerts_feed_destroy(r.feed);
    tf_codec_destroy(r.codec);
    return rc == -2 ? (r.exit_code ? r.exit_code : 1) : 0;
}
