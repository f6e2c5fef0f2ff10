/*
 * tradeflow-aggregate - consumes customs and investment records from Kafka
 * and maintains exact totals, YTD, rankings, YoY and shares in PostgreSQL
 * with an exactly-once effect: every batch is one PostgreSQL transaction that
 * also stores the Kafka offsets it consumed; on assignment the consumer seeks
 * to the stored offsets. Poison messages go to a dead-letter topic.
 *
 *   tradeflow-aggregate [options]            run (daemon; SIGINT/SIGTERM stop)
 *   tradeflow-aggregate --exit-at-end        stop once caught up and committed
 *   tradeflow-aggregate migrate              apply the SQL migrations and exit
 *   tradeflow-aggregate rebuild              recompute the group level + rankings
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "tf_agg.h"
#include "tf_clock.h"
#include "tf_config.h"
#include "tf_http.h"
#include "tf_metrics.h"
#include "tf_rdstats.h"
#include "tf_codec.h"
#include "tf_kafka.h"
#include "tf_err.h"
#include "tf_log.h"
#include "tf_pg.h"

#define EXIT_USAGE 64
#define SETTLE_MIN_MS 250 /* least time between two settle points */

typedef struct app {
    /* options */
    const char *brokers, *group, *pg, *dlq_topic, *schema_dir, *registry_url, *registry_user,
        *registry_ca;
    char *topics[16];
    int ntopics;
    int exit_at_end, no_migrate;
    long startup_ms;  /* startup.timeout */
    int startup_exit; /* exit status for a failed start (TF_EXIT_*), 0 = 1 */
    long batch_size, batch_ms;
    tf_config_t *cfg;  /* owns the strings above that point into it */
    char *pg_conninfo; /* owned */
    /* state */
    rd_kafka_t *rk, *dlq;
    rd_kafka_topic_t *rkts[16]; /* owned: the subscribed topics, see warm_topics() */
    tf_agg_t *agg;
    tf_codec_t *codec;
    rd_kafka_topic_partition_list_t *assigned; /* .offset used as the EOF flag */
    int64_t batch_started_ms;
    int64_t last_settle_ms;
    int paused;            /* partitions paused: a batch failed, retried at retry_at */
    int64_t retry_at, backoff_ms;
    long settle_ms, alert_top, settle_budget_ms;
    const char *alerts_from;
    int need_settle; /* batches committed since the last settle point, or the last
                      * one left work pending (settle_backlog) */
    int settle_backlog; /* the last settle point ran out of its budget: settle
                         * again with the next batch until nothing is pending */
    /* --exit-at-end: when others_caught_up() last said yes (0: not since the
     * last assignment change) and when it was last asked; see others_done() */
    int64_t others_done_ms, others_checked_ms;
    uint64_t consumed, dead_lettered, dlq_failed;
    int fatal;
    /* metrics and health (--metrics-addr); all NULL when off */
    tf_metrics_t *metrics;
    tf_metrics_std_t m;
    tf_rdstats_t *rdstats;
    tf_http_t *http;
    long ready_lag;
    tf_agg_stats_t reported; /* tf_agg's counters as last added to the metrics */
} app_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* librdkafka's statistics, on the polling thread: lag gauges etc. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    app_t *app = opaque;
    char errstr[256];
    if (app->rdstats && tf_rdstats_update(app->rdstats, json, len, errstr, sizeof(errstr)))
        TF_LOG(TF_LOG_WARNING, "stats", "%s", errstr);
    return 0;
}

/* /readyz, on the HTTP thread: reads only tf_rdstats (thread-safe). */
static int ready_cb(void *arg, char *reason, size_t len)
{
    app_t *app = arg;
    return tf_rdstats_caught_up(app->rdstats, app->ready_lag, 15000, reason, len);
}

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: tradeflow-aggregate [OPTIONS]\n"
        "       tradeflow-aggregate migrate [--pg CONNINFO]\n"
        "       tradeflow-aggregate rebuild [--pg CONNINFO]\n"
        "\n"
        "Consumes tradeflow records from Kafka and maintains totals, YTD, rankings,\n"
        "YoY and shares in PostgreSQL, exactly once (offsets are stored in PostgreSQL\n"
        "in the transaction of each batch).\n"
        "\n"
        "Kafka:\n"
        "  -b, --brokers LIST     bootstrap servers (default: $TRADEFLOW_BROKERS)\n"
        "  -g, --group ID         consumer group (default: tradeflow-aggregate)\n"
        "  -t, --topic TOPIC      topic to consume; repeatable (default:\n"
        "                         tradeflow.customs and tradeflow.investment)\n"
        "  -X KEY=VALUE           librdkafka property; repeatable\n"
        "  -F FILE                librdkafka properties file (key=value lines)\n"
        "      --dlq-topic TOPIC  dead-letter topic (default: tradeflow.dlq)\n"
        "      --schema-dir DIR   Avro schemas (default: the installed ones)\n"
        "      --registry-url URL Confluent-compatible schema registry (Confluent framing)\n"
        "      --registry-user U:P  basic auth for the registry\n"
        "      --registry-ca FILE CA certificate for the registry's TLS\n"
        "PostgreSQL:\n"
        "      --pg CONNINFO      libpq conninfo or URI (default: the PG* variables)\n"
        "      --no-migrate       do not apply migrations at start\n"
        "Batching:\n"
        "      --batch-size N     records per transaction, at most (default: 20000)\n"
        "      --batch-ms N       commit a partial batch after N ms (default: 500)\n"
        "Alerts:\n"
        "      --alert-top N      ranks watched for shifts (default: 10)\n"
        "      --settle-interval S  evaluate shifts at least every S seconds while\n"
        "                         not caught up (default: 60); always when caught up\n"
        "      --settle-budget MS  ranking work per settle point; the rest follows with\n"
        "                         the next batches (default: 250; 0 = no limit)\n"
        "      --alerts-from YYYY-MM  older shifts go to the table only, not to\n"
        "                         NOTIFY or Kafka (for backfills)\n"
        "Running:\n"
        "      --startup-timeout S  wait at most S seconds at start for PostgreSQL and\n"
        "                         a Kafka broker (default: 30)\n"
        "      --exit-at-end      exit 0 once every assigned partition is at its end\n"
        "                         and everything is committed (like kcat -e)\n"
        "      --log-level L      emerg..debug or 0..7 (default: info)\n"
        "      --log-format F     text or json (default: text)\n"
        "      --metrics-addr ADDR  serve /metrics, /healthz, /readyz on HOST:PORT\n"
        "                         (:PORT binds 127.0.0.1; default: off)\n"
        "Configuration:\n"
        "  -c, --config FILE      key = value settings (default: $TRADEFLOW_CONFIG);\n"
        "                         kafka.* go to librdkafka, pg.* to libpq\n"
        "      --print-config     print the effective settings (secrets masked), exit\n"
        "      --help-config      print the reference of every setting, exit\n"
        "  -h, --help             this help\n"
        "      --version          print the version\n"
        "\n"
        "Precedence: defaults < configuration file < environment (TRADEFLOW_<KEY>,\n"
        "e.g. TRADEFLOW_BATCH_SIZE; TRADEFLOW_BROKERS; libpq's PG*) < flags.\n"
        "Exit status: 0 success, 1 runtime failure (see the log), 64 usage error,\n"
        "66 --exit-at-end with a topic that does not exist, 69 PostgreSQL or Kafka\n"
        "unreachable within startup.timeout, 77 a server refused the login.\n");
}

/* ---- dead letters ------------------------------------------------------- */

static void dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    app_t *app = opaque;
    if (m->err) {
        app->dlq_failed++;
        TF_LOG(TF_LOG_ERR, "dlq", "dead letter not delivered: %s", rd_kafka_err2str(m->err));
    }
}

/* Queues one dead letter: the message (or a record's re-encoding) with
 * why and where it came from in headers; sqlstate (may be NULL) is the
 * database's code for a record PostgreSQL refused. 0 or -1. */
static int dead_letter_raw(app_t *app, const char *topic, int32_t partition, int64_t offset,
                           const void *key, size_t keylen, const void *payload, size_t len,
                           const char *reason, const char *sqlstate)
{
    char part[16], off[24];
    snprintf(part, sizeof(part), "%d", (int)partition);
    snprintf(off, sizeof(off), "%lld", (long long)offset);
    TF_LOG(TF_LOG_WARNING, "dlq", "%s [%d] @%lld: %s", topic, (int)partition, (long long)offset,
           reason);
    rd_kafka_headers_t *h = rd_kafka_headers_new(6);
    rd_kafka_header_add(h, "tf.reason", -1, reason, -1);
    rd_kafka_header_add(h, "tf.source.topic", -1, topic, -1);
    rd_kafka_header_add(h, "tf.source.partition", -1, part, -1);
    rd_kafka_header_add(h, "tf.source.offset", -1, off, -1);
    if (sqlstate) {
        rd_kafka_header_add(h, "tf.sqlstate", -1, sqlstate, -1);
        /* The payload is the decoded record encoded again (current schema):
         * replayable, but not the original bytes. */
        rd_kafka_header_add(h, "tf.payload", -1, "re-encoded", -1);
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        app->dlq, RD_KAFKA_V_TOPIC(app->dlq_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key, keylen), RD_KAFKA_V_VALUE((void *)payload, len),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(h); /* (producev owns them only on success) */
        TF_LOG(TF_LOG_ERR, "dlq", "cannot queue dead letter: %s", rd_kafka_err2str(err));
        return -1;
    }
    app->dead_lettered++;
    tf_metrics_counter_add(app->m.records_dead_lettered, 1);
    return 0;
}

static int dead_letter(app_t *app, const rd_kafka_message_t *m, const char *reason)
{
    return dead_letter_raw(app, rd_kafka_topic_name(m->rkt), m->partition, m->offset, m->key,
                           m->key_len, m->payload, m->len, reason, NULL);
}

/* Waits for the dead letters queued so far. 0 when all were delivered. */
static int dlq_delivered(app_t *app)
{
    rd_kafka_flush(app->dlq, 30000);
    return rd_kafka_outq_len(app->dlq) > 0 || app->dlq_failed ? -1 : 0;
}

/* A batch the database refused records of (TF_AGG_REJECTED): each record
 * goes to the dead-letter topic with the database's reason, re-encoded
 * (the original bytes are not kept past decoding), keyed reporter|partner
 * like the producer's; then the rest of the batch is applied. */
static int reject_records(app_t *app)
{
    size_t n;
    const tf_agg_reject_t *rj = tf_agg_rejects(app->agg, &n);
    tf_buf_t enc = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char errstr[512], reason[640], key[2 * TF_CODE_MAX + 2];
        tf_buf_reset(&enc);
        if (tf_codec_encode_record(app->codec, rj[i].topic, rj[i].rec, &enc, errstr,
                                   sizeof(errstr)))
            tf_buf_reset(&enc); /* (then the dead letter has an empty payload) */
        snprintf(reason, sizeof(reason), "refused by the database: SQLSTATE %s: %s",
                 rj[i].sqlstate, rj[i].reason);
        int kl = snprintf(key, sizeof(key), "%s|%s", rj[i].rec->reporter, rj[i].rec->partner);
        rc = dead_letter_raw(app, rj[i].topic, rj[i].partition, rj[i].offset, key, (size_t)kl,
                             enc.data, enc.len, reason, rj[i].sqlstate);
        tf_metrics_counter_add(app->m.records_rejected, 1);
    }
    tf_buf_free(&enc);
    if (rc == 0 && dlq_delivered(app) != 0)
        rc = -1;
    if (rc) {
        TF_LOG(TF_LOG_CRIT, "dlq",
               "dead letters could not be delivered; stopping without committing "
               "(the batch will be read again)");
        app->fatal = 1;
        return -1;
    }
    if (tf_agg_retry(app->agg) != 0) {
        TF_LOG(TF_LOG_CRIT, "agg", "out of memory rebuilding the batch");
        app->fatal = 1;
        return -1;
    }
    return 0;
}

/* ---- partitions ------------------------------------------------------- */

static void mark_eof(app_t *app, const char *topic, int32_t partition, int eof)
{
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_find(app->assigned, topic, partition);
    if (tp)
        tp->offset = eof;
}

static int all_eof(const app_t *app)
{
    if (app->assigned->cnt == 0)
        return 0;
    for (int i = 0; i < app->assigned->cnt; i++)
        if (!app->assigned->elems[i].offset)
            return 0;
    return 1;
}

/* Caught up for a settle point: every assigned partition is at its end,
 * either by an end-of-partition event or because the position reached the
 * end offset of the last fetch (librdkafka's cached watermark, no request).
 * The second test matters for a steady live feed, which almost never
 * produces an end-of-partition event on every partition at once. */
static int settle_caught_up(app_t *app)
{
    if (app->assigned->cnt == 0)
        return 0;
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(app->assigned);
    rd_kafka_position(app->rk, pos);
    int ok = 1;
    for (int i = 0; ok && i < pos->cnt; i++) {
        if (app->assigned->elems[i].offset) /* the EOF flag */
            continue;
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(app->rk, pos->elems[i].topic, pos->elems[i].partition,
                                           &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            hi < 0 || pos->elems[i].offset < 0 || pos->elems[i].offset < hi)
            ok = 0;
    }
    rd_kafka_topic_partition_list_destroy(pos);
    return ok;
}

static int flush_sync(app_t *app, int settle);

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    app_t *app = opaque;
    char errstr[512];
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;

    app->others_done_ms = 0; /* the partitions of "other members" change */

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        int backoff = 200;
        while (tf_agg_load_offsets(app->agg, parts, errstr, sizeof(errstr)) != 0) {
            TF_LOG(TF_LOG_WARNING, "pg", "cannot load stored offsets (retrying in %d ms): %s",
                   backoff, errstr);
            if (stop_requested)
                break;
            usleep((useconds_t)backoff * 1000);
            if (backoff < 10000)
                backoff *= 2;
        }
        for (int i = 0; i < parts->cnt; i++) {
            /* (Never-committed partitions start at the logical BEGINNING.
             * Starting them at offset 0 instead saved a ListOffsets round
             * trip, but one CI run then lost the message at offset 0 of a
             * partition whose producer had just committed: reverted until
             * understood.) */
            TF_LOG(TF_LOG_INFO, "kafka", "assigned %s [%d] from offset %s%lld",
                   parts->elems[i].topic, (int)parts->elems[i].partition,
                   parts->elems[i].offset < 0 ? "(beginning) " : "",
                   (long long)parts->elems[i].offset);
            rd_kafka_topic_partition_list_add(app->assigned, parts->elems[i].topic,
                                              parts->elems[i].partition)
                ->offset = 0;
        }
        rd_kafka_error_t *e = NULL;
        if (cooperative)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (e) {
            TF_LOG(TF_LOG_ERR, "kafka", "assign failed: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            app->fatal = 1;
        }
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* Commit what was read from these partitions before giving them up;
         * if PostgreSQL is unreachable, drop it: the next owner re-reads it
         * from the stored offsets. */
        if (flush_sync(app, 0) != 0)
            tf_agg_forget(app->agg, parts);
        for (int i = 0; i < parts->cnt; i++) {
            TF_LOG(TF_LOG_INFO, "kafka", "revoked %s [%d]", parts->elems[i].topic,
                   (int)parts->elems[i].partition);
            rd_kafka_topic_partition_list_del(app->assigned, parts->elems[i].topic,
                                              parts->elems[i].partition);
        }
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            if (e)
                rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(rk, NULL);
        }
    } else {
        TF_LOG(TF_LOG_ERR, "kafka", "rebalance error: %s", rd_kafka_err2str(err));
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            if (e)
                rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(rk, NULL);
        }
    }
}

/* ---- batches ---------------------------------------------------------- */

/* Bookkeeping for a batch tf_agg committed: metrics, settle state, resume
 * after an outage, and Kafka's copy of the offsets. */
static void batch_committed(app_t *app, const rd_kafka_topic_partition_list_t *committed,
                            int settled)
{
    /* Deltas since the last report: tf_agg also counts in-batch duplicates
     * and replaced revisions when records are added, before the flush. */
    const tf_agg_stats_t *now = tf_agg_stats(app->agg), *was = &app->reported;
    tf_metrics_counter_add(app->m.records_applied, now->applied - was->applied);
    tf_metrics_counter_add(app->m.records_duplicate, now->duplicates - was->duplicates);
    tf_metrics_counter_add(app->m.records_superseded, now->superseded - was->superseded);
    tf_metrics_counter_add(app->m.alerts_raised, now->alerts - was->alerts);
    if (now->records > was->records) {
        tf_metrics_hist_observe(app->m.batch_records, (double)(now->records - was->records));
        tf_metrics_hist_observe(app->m.batch_apply_seconds, (double)now->last_apply_us / 1e6);
    }
    tf_metrics_hist_observe(app->m.pg_commit_seconds, (double)now->last_commit_us / 1e6);
    TF_LOG(TF_LOG_DEBUG, "pg", "batch committed: %llu records, %.1f ms%s",
           (unsigned long long)(now->records - was->records), now->last_apply_us / 1000.0,
           settled ? ", settle point" : "");
    /* (Committed without its settle point: the records flow on, rankings
     * wait for a settle point that succeeds; the next is tried as if this
     * one had been made, not at once again.) */
    int settle_failed = settled && now->settle_errors > was->settle_errors;
    if (settle_failed)
        TF_LOG(TF_LOG_ERR, "pg", "settle point failed, batch committed without it: %s",
               tf_agg_settle_error(app->agg));
    if (settled) {
        TF_LOG(TF_LOG_DEBUG, "alerts", "settle point: %.1f ms, %llu (scope, period)s left",
               now->last_settle_us / 1000.0, (unsigned long long)now->settle_remaining);
        app->last_settle_ms = tf_mono_ms();
        /* Rankings are settled as of now only when nothing was left. */
        app->settle_backlog = now->settle_remaining > 0;
        if (!settle_failed && !app->settle_backlog)
            tf_metrics_gauge_set(app->m.last_settle_seconds, (double)time(NULL));
        app->need_settle = app->settle_backlog;
        if (now->alerts > was->alerts)
            TF_LOG(TF_LOG_INFO, "alerts", "settle point: %llu alert(s) raised",
                   (unsigned long long)(now->alerts - was->alerts));
    } else {
        app->need_settle = 1;
    }
    app->reported = *now;
    if (app->paused) {
        rd_kafka_resume_partitions(app->rk, app->assigned);
        TF_LOG(TF_LOG_NOTICE, "pg", "PostgreSQL is back; resumed consuming");
        app->paused = 0;
    }
    app->backoff_ms = 0;
    app->retry_at = 0;
    /* Also tell Kafka (asynchronously), so that lag tools see our progress.
     * PostgreSQL stays the source of truth for where to resume. */
    if (committed && committed->cnt)
        rd_kafka_commit(app->rk, committed, 1);
}

/* The counts of failed attempts (also of batches not committed yet) into
 * the metrics. */
static void book_errors(app_t *app)
{
    const tf_agg_stats_t *now = tf_agg_stats(app->agg);
    tf_agg_stats_t *was = &app->reported;
    for (int i = 0; i < 4; i++)
        if (now->pg_errors[i] > was->pg_errors[i]) {
            const char *cls[] = {tf_pg_errclass_name((tf_pg_errclass_t)i)};
            tf_metrics_counter_add_labels(app->m.pg_errors, cls,
                                          now->pg_errors[i] - was->pg_errors[i]);
            was->pg_errors[i] = now->pg_errors[i];
        }
    tf_metrics_counter_add(app->m.batch_retries, now->retries - was->retries);
    tf_metrics_counter_add(app->m.batch_splits, now->splits - was->splits);
    was->retries = now->retries;
    was->splits = now->splits;
    was->rejected = now->rejected;
}

/* The batch in flight: waits up to wait_ms (-1: until it is not busy),
 * books it when committed (then TF_AGG_IDLE), and when it failed pauses the
 * partitions and schedules a retry with backoff (app->retry_at). */
static tf_agg_state_t inflight(app_t *app, int wait_ms)
{
    char errstr[1024];
    const rd_kafka_topic_partition_list_t *committed;
    int settled;
    tf_agg_state_t st =
        tf_agg_poll(app->agg, wait_ms, &committed, &settled, errstr, sizeof(errstr));
    book_errors(app);
    if (st == TF_AGG_REJECTED) {
        TF_LOG(TF_LOG_WARNING, "pg", "batch not committed: %s; dead-lettering them", errstr);
        if (reject_records(app) != 0)
            return TF_AGG_REJECTED; /* (app->fatal: stop without committing) */
        return TF_AGG_BUSY;
    }
    if (st == TF_AGG_DONE) {
        batch_committed(app, committed, settled);
        return TF_AGG_IDLE;
    }
    if (st == TF_AGG_FAILED && app->retry_at == 0) {
        /* Keep the batch, stop fetching, retry with backoff. */
        TF_LOG(TF_LOG_WARNING, "pg", "batch not committed: %s", errstr);
        app->backoff_ms = app->backoff_ms ? (app->backoff_ms < 15000 ? app->backoff_ms * 2 : 30000)
                                          : 250;
        app->retry_at = tf_mono_ms() + app->backoff_ms;
        if (!app->paused) {
            rd_kafka_pause_partitions(app->rk, app->assigned);
            app->paused = 1;
        }
        TF_LOG(TF_LOG_WARNING, "pg", "retrying in %lld ms", (long long)app->backoff_ms);
    }
    return st;
}

/* Hands the buffered batch (and, with settle, a settle point) to tf_agg's
 * apply thread. Dead letters of the batch are delivered first, so that a
 * committed offset never skips a message that is in neither place. Only
 * with no batch in flight. */
static int submit_batch(app_t *app, int settle)
{
    if (app->dead_lettered) {
        if (dlq_delivered(app) != 0) {
            TF_LOG(TF_LOG_CRIT, "dlq",
                   "dead letters could not be delivered; stopping without committing "
                   "(the batch will be read again)");
            app->fatal = 1;
            return -1;
        }
    }
    TF_LOG(TF_LOG_DEBUG, "pg", "batch submitted: %zu messages%s", tf_agg_pending(app->agg),
           settle ? ", settle point" : "");
    app->batch_started_ms = 0;
    if (tf_agg_submit(app->agg, settle) != 0) { /* (only ever called when idle) */
        TF_LOG(TF_LOG_CRIT, "agg", "out of memory building the batch");
        app->fatal = 1;
        return -1;
    }
    return 0;
}

/* inflight() until the batch is not busy (rejected records are
 * dead-lettered and the rest applied on the way). */
static tf_agg_state_t inflight_wait(app_t *app)
{
    tf_agg_state_t st;
    while ((st = inflight(app, -1)) == TF_AGG_BUSY && !app->fatal)
        ;
    return st;
}

/* Synchronous, for a revoke and the exit: waits for the batch in flight
 * (retrying it once now if it had failed), then applies the buffer (if any,
 * or a settle point) and waits for it. 0 when everything read is committed. */
static int flush_sync(app_t *app, int settle)
{
    tf_agg_state_t st = inflight_wait(app);
    if (app->fatal || st == TF_AGG_REJECTED)
        return -1;
    if (st == TF_AGG_FAILED) {
        tf_agg_retry(app->agg);
        app->retry_at = 0;
        if (inflight_wait(app) != TF_AGG_IDLE)
            return -1;
    }
    if (tf_agg_pending(app->agg) == 0 && !settle)
        return 0;
    if (submit_batch(app, settle))
        return -1;
    return inflight_wait(app) == TF_AGG_IDLE ? 0 : -1;
}

static void handle_message(app_t *app, rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        mark_eof(app, topic, m->partition, 1);
        /* m->offset is the end (past transaction markers): store it, so that
         * a caught-up partition's stored offset equals its end offset. */
        if (m->offset > 0 && tf_agg_skip(app->agg, topic, m->partition, m->offset - 1) != 0)
            app->fatal = 1;
        return;
    }
    if (m->err) {
        /* A rejected login is a configuration error, not an outage. */
        int fatal = m->err == RD_KAFKA_RESP_ERR__FATAL || m->err == RD_KAFKA_RESP_ERR__AUTHENTICATION;
        TF_LOG(fatal ? TF_LOG_CRIT : TF_LOG_WARNING, "kafka", "%s: %s", topic ? topic : "-",
               rd_kafka_message_errstr(m));
        if (fatal)
            app->fatal = 1;
        return;
    }
    mark_eof(app, topic, m->partition, 0);
    app->consumed++;
    tf_metrics_counter_add(app->m.records_consumed, 1);
    if (app->batch_started_ms == 0)
        app->batch_started_ms = tf_mono_ms();

    tf_record_t rec;
    char errstr[512], reason[640];
    const char *column = NULL;
    if (tf_codec_decode_record(app->codec, m->payload, m->len, &rec, errstr, sizeof(errstr))) {
        snprintf(reason, sizeof(reason), "undecodable: %s", errstr);
    } else if (tf_record_validate(&rec, &column, errstr, sizeof(errstr))) {
        snprintf(reason, sizeof(reason), "invalid %s: %s", column, errstr);
    } else {
        if (tf_agg_add(app->agg, &rec, topic, m->partition, m->offset)) {
            TF_LOG(TF_LOG_CRIT, "agg", "out of memory");
            app->fatal = 1;
        }
        return;
    }
    if (dead_letter(app, m, reason) != 0 ||
        tf_agg_skip(app->agg, topic, m->partition, m->offset) != 0)
        app->fatal = 1;
}

/* For --exit-at-end: true when every partition of the subscribed topics that
 * is NOT assigned to this member has its stored offset (in PostgreSQL) at its
 * end. Without this, a member whose group still holds a crashed member's
 * partitions (until its session times out) would exit with them unread. */
static int others_caught_up(app_t *app)
{
    char errstr[512];
    int ok = 0;
    rd_kafka_topic_partition_list_t *rest = rd_kafka_topic_partition_list_new(16);
    for (int t = 0; t < app->ntopics; t++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(app->rk, app->topics[t], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rkt ? rd_kafka_metadata(app->rk, 0, rkt, &md, 5000)
                                      : RD_KAFKA_RESP_ERR__FAIL;
        if (rkt)
            rd_kafka_topic_destroy(rkt);
        if (err) {
            TF_LOG(TF_LOG_DEBUG, "kafka", "metadata for %s: %s", app->topics[t],
                   rd_kafka_err2str(err));
            goto out;
        }
        for (int i = 0; i < md->topic_cnt; i++)
            for (int p = 0; p < md->topics[i].partition_cnt; p++)
                if (!rd_kafka_topic_partition_list_find(app->assigned, md->topics[i].topic,
                                                        md->topics[i].partitions[p].id))
                    rd_kafka_topic_partition_list_add(rest, md->topics[i].topic,
                                                      md->topics[i].partitions[p].id);
        rd_kafka_metadata_destroy(md);
    }
    if (rest->cnt && tf_agg_load_offsets(app->agg, rest, errstr, sizeof(errstr)) != 0)
        goto out;
    for (int i = 0; i < rest->cnt; i++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(app->rk, rest->elems[i].topic,
                                             rest->elems[i].partition, &lo, &hi, 5000))
            goto out;
        int64_t stored = rest->elems[i].offset < 0 ? lo : rest->elems[i].offset;
        if (stored < hi) {
            TF_LOG(TF_LOG_DEBUG, "main", "waiting for %s [%d]: stored %lld, end %lld",
                   rest->elems[i].topic, (int)rest->elems[i].partition, (long long)stored,
                   (long long)hi);
            goto out;
        }
    }
    ok = 1;
out:
    rd_kafka_topic_partition_list_destroy(rest);
    return ok;
}

/* others_caught_up(), asked at most once a second; a yes holds for a second
 * (or until the next rebalance). */
static int others_done(app_t *app)
{
    int64_t now = tf_mono_ms();
    if (app->others_done_ms && now - app->others_done_ms < 1000)
        return 1;
    if (now - app->others_checked_ms < 1000)
        return 0;
    app->others_checked_ms = now;
    if (!others_caught_up(app))
        return 0;
    app->others_done_ms = tf_mono_ms();
    return 1;
}

/* ---- setup ------------------------------------------------------------ */


/* librdkafka's client-level errors (served from consumer_poll / poll). A
 * rejected SASL login is a configuration error, not an outage: stop. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    app_t *app = opaque;
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__FATAL) {
        const char *hint = err == RD_KAFKA_RESP_ERR__AUTHENTICATION ? tf_kafka_auth_hint(rk) : NULL;
        TF_LOG(TF_LOG_CRIT, "kafka", "%s: %s%s%s", rd_kafka_err2name(err), reason,
               hint ? "; " : "", hint ? hint : "");
        app->fatal = 1;
    } else {
        TF_LOG(TF_LOG_WARNING, "kafka", "%s: %s", rd_kafka_err2name(err), reason);
    }
}

/* Makes librdkafka know the subscribed topics' partitions and their leaders
 * before the group assigns them. Otherwise the partitions are created by the
 * assignment itself, their first offset lookup (BEGINNING, for partitions
 * without a stored offset) finds no leader yet, and librdkafka retries it
 * only after a fixed 500 ms: in about half the starts, half a second
 * without fetching. The handles are kept (app->rkts) so that the partitions
 * stay known; a topic that does not exist yet is only logged. */
static void warm_topics(app_t *app)
{
    for (int t = 0; t < app->ntopics; t++) {
        const struct rd_kafka_metadata *md = NULL;
        app->rkts[t] = rd_kafka_topic_new(app->rk, app->topics[t], NULL);
        rd_kafka_resp_err_t err = app->rkts[t]
                                      ? rd_kafka_metadata(app->rk, 0, app->rkts[t], &md, 2000)
                                      : rd_kafka_last_error();
        if (err)
            TF_LOG(TF_LOG_DEBUG, "kafka", "metadata for %s: %s", app->topics[t],
                   rd_kafka_err2str(err));
        else
            rd_kafka_metadata_destroy(md);
    }
}

/* KIP-848 (docs/stack.md): the consumer group protocol when the linked
 * librdkafka has it GA (>= 2.12) and the broker offers it, the classic one
 * otherwise; a group.protocol of the user's always wins. The broker is asked
 * (tf_kafka_probe_consumer_protocol) only when the answer matters and its
 * listener speaks no TLS (PLAINTEXT, SASL_PLAINTEXT: ApiVersions comes
 * before the login); behind TLS its support counts as unknown (classic). Returns 1 to ask for the consumer protocol. */
/* The kafka.* settings choose_group_protocol needs (pass-through keys are
 * not in tf_config_str: the last one set wins, as in librdkafka). */
struct gp_keys {
    const char *group_protocol, *security_protocol, *bootstrap;
};

static int gp_key(const char *name, const char *value, void *arg)
{
    struct gp_keys *k = arg;
    if (strcmp(name, "group.protocol") == 0)
        k->group_protocol = value;
    else if (strcmp(name, "security.protocol") == 0)
        k->security_protocol = value;
    else if (strcmp(name, "bootstrap.servers") == 0 || strcmp(name, "metadata.broker.list") == 0)
        k->bootstrap = value;
    return 0;
}

static int choose_group_protocol(const app_t *app)
{
    struct gp_keys k = {NULL, NULL, NULL};
    tf_config_foreach(app->cfg, "kafka.", gp_key, &k);
    const char *user = k.group_protocol;
    int cgh = -1;
    char why_probe[256] = "";
    if (!(user && *user) && rd_kafka_version() >= TF_RDKAFKA_KIP848_GA) {
        const char *proto = k.security_protocol;
        const char *bs = k.bootstrap;
        if (!bs || !*bs)
            bs = app->brokers && *app->brokers ? app->brokers : getenv(TF_KAFKA_BROKERS_ENV);
        /* ApiVersions is answered before any SASL login; TLS is not spoken. */
        if (proto && *proto && strcasecmp(proto, "plaintext") != 0 &&
            strcasecmp(proto, "sasl_plaintext") != 0)
            snprintf(why_probe, sizeof(why_probe), "security.protocol %s is not probed", proto);
        else if ((cgh = tf_kafka_probe_consumer_protocol(bs, 3000, why_probe,
                                                          sizeof(why_probe))) < 0)
            TF_LOG(TF_LOG_WARNING, "kafka", "consumer group protocol probe: %s", why_probe);
        else
            why_probe[0] = '\0';
    }
    const char *why = "";
    int use = tf_kafka_use_kip848(user, rd_kafka_version(), cgh, &why);
    TF_LOG(TF_LOG_INFO, "kafka", "consumer group protocol: %s (librdkafka %s: %s%s%s)",
           user && *user ? user : use ? "consumer" : "classic", rd_kafka_version_str(), why,
           why_probe[0] ? "; " : "", why_probe);
    return use;
}

static int setup_kafka(app_t *app, char *errstr, size_t errlen)
{
    static const char *defaults[] = {
        "enable.auto.commit=false",        "enable.auto.offset.store=false",
        "isolation.level=read_committed",  "auto.offset.reset=earliest",
        "enable.partition.eof=true",       "partition.assignment.strategy=cooperative-sticky",
        "session.timeout.ms=10000",
        /* librdkafka prefetches up to 64 MiB by default: bound it (8 MiB in
         * the consumer queue, 1 MiB per fetch response) so that memory stays
         * flat however large the backlog, but above what the next batch
         * takes (~3 MiB at 20,000 records): with a 1 MiB queue it ran dry
         * while a batch was applied and fetching stalled for ~0.6 s each
         * time. Responses of 4 MiB overshot the queue bound: peak RSS varied
         * between 70 and 91 MB from run to run (1 MiB: 74 MB, and 5% faster
         * in bench_aggregate.sh). */
        "queued.max.messages.kbytes=8192", "fetch.max.bytes=1048576",
        /* A caught-up consumer's fetch waits on the broker for new data and
         * requests queued behind it on the connection (metadata, watermarks
         * for --exit-at-end) wait with it: 100 ms, not 500. */
        "fetch.wait.max.ms=100", NULL};
    int kip848 = choose_group_protocol(app);
    rd_kafka_conf_t *conf = tf_kafka_conf_new(app->brokers, errstr, errlen);
    if (!conf)
        return -1;
    char kv[512];
    snprintf(kv, sizeof(kv), "group.id=%s", app->group);
    if (tf_kafka_conf_set(conf, kv, errstr, errlen))
        goto fail;
    for (int i = 0; defaults[i]; i++) {
        /* The consumer protocol assigns on the broker and has no client
         * session timeout: librdkafka refuses these two with it. */
        if (kip848 && (strncmp(defaults[i], "partition.assignment.strategy=", 30) == 0 ||
                       strncmp(defaults[i], "session.timeout.ms=", 19) == 0))
            continue;
        if (tf_kafka_conf_set(conf, defaults[i], errstr, errlen))
            goto fail;
    }
    if (kip848 && tf_kafka_conf_set(conf, "group.protocol=consumer", errstr, errlen))
        goto fail;
    /* Statistics feed the lag gauges; -X statistics.interval.ms overrides. */
    if (app->rdstats) {
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
        if (tf_kafka_conf_set(conf, "statistics.interval.ms=5000", errstr, errlen))
            goto fail;
    }
    if (tf_kafka_conf_from_config(conf, app->cfg, errstr, errlen))
        goto fail;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, app);
    app->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errlen);
    if (!app->rk)
        goto fail;
    conf = NULL;
    /* A broker answers within startup.timeout, or a clear exit (before
     * poll_set_consumer: the wait polls the main queue for error_cb). */
    int w = tf_kafka_wait_ready(app->rk, (int)app->startup_ms, &app->fatal, &stop_requested,
                                errstr, errlen);
    if (w) {
        app->startup_exit = stop_requested ? 1 : w == -1 ? TF_EXIT_UNAVAILABLE : TF_EXIT_NOPERM;
        if (w == -2 && app->fatal)
            snprintf(errstr, errlen, "Kafka refused the connection (see the log)");
        return -1;
    }
    /* --exit-at-end waits for the end of the topics: one that does not
     * exist has none (66, EX_NOINPUT). */
    for (int i = 0; app->exit_at_end && i < app->ntopics; i++) {
        int ex = tf_kafka_topic_exists(app->rk, app->topics[i], (int)app->startup_ms, errstr,
                                       errlen);
        if (ex == 0) {
            snprintf(errstr, errlen,
                     "topic %s does not exist (--exit-at-end: nothing to wait for)",
                     app->topics[i]);
            app->startup_exit = 66;
        }
        if (ex <= 0) {
            if (!app->startup_exit)
                app->startup_exit = TF_EXIT_UNAVAILABLE;
            return -1;
        }
    }
    rd_kafka_poll_set_consumer(app->rk);

    /* The dead-letter producer: idempotent, acks=all. */
    conf = tf_kafka_conf_new(app->brokers, errstr, errlen);
    if (!conf)
        return -1;
    if (tf_kafka_conf_set(conf, "enable.idempotence=true", errstr, errlen) ||
        tf_kafka_conf_from_config(conf, app->cfg, errstr, errlen))
        goto fail;
    /* Consumer-only properties given with -X are harmless here. */
    rd_kafka_conf_set_dr_msg_cb(conf, dlq_dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, app);
    app->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errlen);
    if (!app->dlq)
        goto fail;
    conf = NULL;

    warm_topics(app);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(app->ntopics);
    for (int i = 0; i < app->ntopics; i++)
        rd_kafka_topic_partition_list_add(sub, app->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(app->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err) {
        snprintf(errstr, errlen, "subscribe: %s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    return -1;
}

static int run_admin(app_t *app, const char *cmd)
{
    char errstr[1024];
    int refused;
    PGconn *c = tf_pg_connect_wait(app->pg, "tradeflow-aggregate", (int)app->startup_ms, NULL,
                                   &refused, errstr, sizeof(errstr));
    if (!c) {
        TF_LOG(TF_LOG_CRIT, "pg", "%s", errstr);
        return refused ? TF_EXIT_NOPERM : TF_EXIT_UNAVAILABLE;
    }
    int rc = 1, n = 0;
    if (tf_pg_migrate(c, NULL, &n, errstr, sizeof(errstr)) != 0) {
        TF_LOG(TF_LOG_ERR, "pg", "%s", errstr);
        goto out;
    }
    if (strcmp(cmd, "migrate") == 0) {
        TF_LOG(TF_LOG_NOTICE, "pg", "%d migration(s) applied; schema is up to date", n);
        rc = 0;
    } else {
        PGresult *r = PQexec(c, "SELECT tradeflow.rebuild_groups()");
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            TF_LOG(TF_LOG_NOTICE, "pg", "rebuilt the group level and %s scope-years",
                   PQgetvalue(r, 0, 0));
            rc = 0;
        } else {
            TF_LOG(TF_LOG_ERR, "pg", "rebuild failed: %s", PQresultErrorMessage(r));
        }
        PQclear(r);
    }
out:
    PQfinish(c);
    return rc;
}


/* The configuration table: one entry per setting, shared by the file, the
 * environment, the flags, --print-config and docs/configuration.md. */
static const tf_cfg_prop_t agg_props[] = {
    {"brokers", TF_CFG_STRING, NULL, 0, 0, NULL, 0, "Kafka bootstrap servers"},
    {"group", TF_CFG_STRING, "tradeflow-aggregate", 0, 0, NULL, 0,
     "consumer group; also keys the offsets stored in PostgreSQL"},
    {"topics", TF_CFG_LIST, "tradeflow.customs,tradeflow.investment", 0, 0, NULL, 0,
     "topics to consume (comma-separated; -t repeats)"},
    {"pg", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "libpq conninfo or URI; unset = the PG* variables (password masked in output)"},
    {"migrate", TF_CFG_BOOL, "true", 0, 0, NULL, 0, "apply pending SQL migrations at start"},
    {"batch.size", TF_CFG_INT, "20000", 1, 1000000, NULL, 0,
     "records per transaction, at most (a backlog is applied in batches this large)"},
    {"batch.ms", TF_CFG_INT, "500", 1, 3600000, NULL, 0,
     "commit a partial batch after this many milliseconds"},
    {"dlq.topic", TF_CFG_STRING, "tradeflow.dlq", 0, 0, NULL, 0, "dead-letter topic"},
    {"schema.dir", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "directory of the Avro schemas (default: the installed ones)"},
    {"registry.url", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "Confluent-compatible schema registry; switches to Confluent framing"},
    {"registry.user", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "registry basic auth as user:password (password masked in output)"},
    {"registry.ca", TF_CFG_STRING, NULL, 0, 0, NULL, 0, "CA certificate file for the registry"},
    {"alert.top", TF_CFG_INT, "10", 1, 1000, NULL, 0, "ranks watched for shifts"},
    {"settle.interval", TF_CFG_INT, "60", 1, 86400, NULL, 0,
     "seconds between settle points at the latest while not caught up"},
    {"settle.budget.ms", TF_CFG_INT, "250", 0, 3600000, NULL, 0,
     "ms of ranking work per settle point before the rest waits for the next batch (0 = none)"},
    {"alerts.from", TF_CFG_PERIOD, NULL, 0, 0, NULL, 0,
     "shifts of earlier periods go to the table only (not NOTIFY/Kafka)"},
    {"exit.at.end", TF_CFG_BOOL, "false", 0, 0, NULL, 0,
     "exit 0 once caught up and committed (like kcat -e)"},
    {"startup.timeout", TF_CFG_INT, "30", 1, 3600, NULL, 0,
     "seconds to wait at start for PostgreSQL and a Kafka broker to answer; then exit 69 "
     "(a refusal, e.g. a wrong password: exit 77 at once)"},
    {"log.level", TF_CFG_ENUM, "info", 0, 0,
     "emerg|alert|crit|error|err|warning|warn|notice|info|debug|0|1|2|3|4|5|6|7", 0,
     "log level"},
    {"log.format", TF_CFG_ENUM, "text", 0, 0, "text|json", 0, "log format"},
    {"metrics.addr", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "serve /metrics, /healthz, /readyz on HOST:PORT (:PORT = 127.0.0.1); unset = off"},
    {"ready.max.lag", TF_CFG_INT, "1000", 0, 1000000000, NULL, 0,
     "/readyz: most messages a partition may be behind and still be ready"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL}};

/* Frees what the settings own (the config, the conninfo). */
static void release_config(app_t *app)
{
    free(app->pg_conninfo);
    app->pg_conninfo = NULL;
    tf_config_destroy(app->cfg);
    app->cfg = NULL;
}

/* Flags that are not settings: answered in the first pass (--help etc.)
 * or noted (--print-config). exit_code >= 0 means "stop with this status". */
enum { O_PG = 256, O_EXIT, O_BSIZE, O_BMS, O_DLQ, O_SCHEMA, O_REG, O_REGUSER, O_REGCA,
       O_LOGL, O_LOGF, O_VERSION, O_NOMIG, O_TOP, O_SETTLE, O_AFROM, O_PRINT, O_HELPCFG,
       O_METRICS, O_STARTUP, O_SBUDGET };

int main(int argc, char **argv)
{
    app_t app = {.need_settle = 1};
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"brokers", required_argument, 0, 'b'},   {"group", required_argument, 0, 'g'},
        {"topic", required_argument, 0, 't'},     {"pg", required_argument, 0, O_PG},
        {"exit-at-end", no_argument, 0, O_EXIT},  {"batch-size", required_argument, 0, O_BSIZE},
        {"batch-ms", required_argument, 0, O_BMS}, {"dlq-topic", required_argument, 0, O_DLQ},
        {"schema-dir", required_argument, 0, O_SCHEMA},
        {"registry-url", required_argument, 0, O_REG},
        {"registry-user", required_argument, 0, O_REGUSER},
        {"registry-ca", required_argument, 0, O_REGCA},
        {"log-level", required_argument, 0, O_LOGL},
        {"log-format", required_argument, 0, O_LOGF},
        {"no-migrate", no_argument, 0, O_NOMIG},
        {"alert-top", required_argument, 0, O_TOP},
        {"settle-interval", required_argument, 0, O_SETTLE},
        {"settle-budget", required_argument, 0, O_SBUDGET},
        {"alerts-from", required_argument, 0, O_AFROM},
        {"print-config", no_argument, 0, O_PRINT},
        {"metrics-addr", required_argument, 0, O_METRICS},
        {"startup-timeout", required_argument, 0, O_STARTUP},
        {"help-config", no_argument, 0, O_HELPCFG},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, O_VERSION},   {0, 0, 0, 0}};
    static const char *const optstr = "c:b:g:t:X:F:h";
    static const tf_cfg_flag_t flags[] = {
        {'b', "brokers", NULL},          {'g', "group", NULL},
        {'t', "topics", NULL},           {O_PG, "pg", NULL},
        {O_EXIT, "exit.at.end", "true"}, {O_BSIZE, "batch.size", NULL},
        {O_BMS, "batch.ms", NULL},       {O_DLQ, "dlq.topic", NULL},
        {O_SCHEMA, "schema.dir", NULL},  {O_REG, "registry.url", NULL},
        {O_REGUSER, "registry.user", NULL}, {O_REGCA, "registry.ca", NULL},
        {O_LOGL, "log.level", NULL},     {O_LOGF, "log.format", NULL},
        {O_NOMIG, "migrate", "false"},   {O_TOP, "alert.top", NULL},
        {O_SETTLE, "settle.interval", NULL}, {O_AFROM, "alerts.from", NULL},
        {O_SBUDGET, "settle.budget.ms", NULL},
        {O_METRICS, "metrics.addr", NULL}, {O_STARTUP, "startup.timeout", NULL},
        {0, NULL, NULL}};
    char errstr[1024];

    tf_config_t *cfg = tf_config_new("tradeflow-aggregate", agg_props);
    if (!cfg) {
        fprintf(stderr, "tradeflow-aggregate: out of memory\n");
        return 1;
    }
    app.cfg = cfg;
    tf_cfg_std_t cli = {.program = "tradeflow-aggregate", .version = TF_VERSION,
                        .props = agg_props, .usage = usage, .code_version = O_VERSION,
                        .code_help_config = O_HELPCFG, .code_print_config = O_PRINT,
                        .exit_code = -1};
    if (tf_config_parse_args(cfg, argc, argv, optstr, opts, flags, tf_config_std_other, &cli,
                             errstr, sizeof(errstr))) {
        if (cli.exit_code >= 0) {
            tf_config_destroy(cfg);
            return cli.exit_code;
        }
        if (errstr[0])
            fprintf(stderr, "tradeflow-aggregate: %s\n", errstr);
        tf_config_destroy(cfg);
        return EXIT_USAGE;
    }
    /* pg.* keys as libpq will take them, for --print-config as for a run */
    if (tf_pg_check_config(cfg, errstr, sizeof(errstr))) {
        fprintf(stderr, "tradeflow-aggregate: %s\n", errstr);
        tf_config_destroy(cfg);
        return EXIT_USAGE;
    }
    if (cli.print_config) {
        tf_config_print(cfg, stdout);
        release_config(&app);
        return 0;
    }

    /* The effective settings. */
    app.brokers = tf_config_str(cfg, "brokers");
    app.group = tf_config_str(cfg, "group");
    app.pg_conninfo = tf_config_pg_conninfo(cfg);
    app.pg = app.pg_conninfo;
    app.dlq_topic = tf_config_str(cfg, "dlq.topic");
    app.schema_dir = tf_config_str(cfg, "schema.dir");
    app.registry_url = tf_config_str(cfg, "registry.url");
    app.registry_user = tf_config_str(cfg, "registry.user");
    app.registry_ca = tf_config_str(cfg, "registry.ca");
    app.exit_at_end = tf_config_bool(cfg, "exit.at.end");
    app.startup_ms = 1000 * tf_config_int(cfg, "startup.timeout");
    app.no_migrate = !tf_config_bool(cfg, "migrate");
    app.batch_size = tf_config_int(cfg, "batch.size");
    app.batch_ms = tf_config_int(cfg, "batch.ms");
    app.alert_top = tf_config_int(cfg, "alert.top");
    app.settle_ms = 1000 * tf_config_int(cfg, "settle.interval");
    app.settle_budget_ms = tf_config_int(cfg, "settle.budget.ms");
    app.alerts_from = tf_config_str(cfg, "alerts.from");
    app.ntopics = 0;
    for (size_t i = 0; i < tf_config_list_len(cfg, "topics") && app.ntopics < 16; i++)
        app.topics[app.ntopics++] = (char *)tf_config_list_item(cfg, "topics", i);
    int log_level = tf_log_level_parse(tf_config_str(cfg, "log.level"));
    tf_log_init("tradeflow-aggregate", log_level < 0 ? TF_LOG_INFO : log_level,
                strcmp(tf_config_str(cfg, "log.format"), "json") == 0 ? TF_LOG_JSON
                                                                      : TF_LOG_TEXT);
    if (optind < argc) {
        const char *cmd = argv[optind];
        int rc = EXIT_USAGE;
        if ((strcmp(cmd, "migrate") == 0 || strcmp(cmd, "rebuild") == 0) && optind + 1 == argc)
            rc = run_admin(&app, cmd);
        else
            fprintf(stderr, "tradeflow-aggregate: unknown command \"%s\" (try --help)\n", cmd);
        release_config(&app);
        return rc;
    }
    if (app.ntopics == 0) {
        fprintf(stderr, "tradeflow-aggregate: no topics to consume\n");
        release_config(&app);
        return EXIT_USAGE;
    }

    int rc = 1;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    app.assigned = rd_kafka_topic_partition_list_new(16);
    if (!(app.codec = tf_codec_new(app.schema_dir, NULL, errstr, sizeof(errstr)))) {
        TF_LOG(TF_LOG_ERR, "codec", "%s", errstr);
        goto out;
    }
    if (app.registry_url &&
        tf_codec_use_registry(app.codec, app.registry_url, app.registry_user, app.registry_ca,
                              errstr, sizeof(errstr))) {
        TF_LOG(TF_LOG_ERR, "codec", "%s", errstr);
        goto out;
    }
    {
        /* Reachable and willing within startup.timeout, or a clear exit. */
        int refused;
        PGconn *probe = tf_pg_connect_wait(app.pg, "tradeflow-aggregate", (int)app.startup_ms,
                                           &stop_requested, &refused, errstr, sizeof(errstr));
        if (!probe) {
            TF_LOG(TF_LOG_CRIT, "pg", "%s", errstr);
            rc = refused ? TF_EXIT_NOPERM : TF_EXIT_UNAVAILABLE;
            goto out;
        }
        PQfinish(probe);
    }
    if (!(app.agg = tf_agg_new(app.pg, app.group, app.no_migrate, errstr, sizeof(errstr)))) {
        TF_LOG(TF_LOG_ERR, "pg", "%s", errstr);
        goto out;
    }
    if (tf_agg_set_alerts(app.agg, (int)app.alert_top, app.alerts_from, errstr,
                          sizeof(errstr))) {
        TF_LOG(TF_LOG_ERR, "alerts", "--alerts-from: %s", errstr);
        rc = EXIT_USAGE;
        goto out;
    }
    if (tf_agg_set_settle_budget(app.agg, (int)app.settle_budget_ms, errstr, sizeof(errstr))) {
        TF_LOG(TF_LOG_ERR, "alerts", "--settle-budget: %s", errstr);
        rc = EXIT_USAGE;
        goto out;
    }
    app.last_settle_ms = tf_mono_ms();
    const char *metrics_addr = tf_config_str(cfg, "metrics.addr");
    app.ready_lag = tf_config_int(cfg, "ready.max.lag");
    if (metrics_addr && *metrics_addr) {
        if (!(app.metrics = tf_metrics_new()) ||
            tf_metrics_std_register(app.metrics, TF_METRICS_STD_CONSUMER | TF_METRICS_STD_ALERTS,
                                    "tradeflow-aggregate", TF_VERSION, &app.m, errstr,
                                    sizeof(errstr)) ||
            !(app.rdstats = tf_rdstats_new(app.metrics, errstr, sizeof(errstr)))) {
            TF_LOG(TF_LOG_ERR, "metrics", "%s", app.metrics ? errstr : "out of memory");
            goto out;
        }
    }
    if (setup_kafka(&app, errstr, sizeof(errstr))) {
        TF_LOG(app.startup_exit ? TF_LOG_CRIT : TF_LOG_ERR, "kafka", "%s", errstr);
        if (app.startup_exit)
            rc = app.startup_exit;
        goto out;
    }
    if (app.metrics) {
        if (!(app.http = tf_http_start(metrics_addr, app.metrics, ready_cb, &app, errstr,
                                       sizeof(errstr)))) {
            TF_LOG(TF_LOG_ERR, "http", "--metrics-addr: %s", errstr);
            goto out;
        }
        TF_LOG(TF_LOG_NOTICE, "http", "metrics and health on port %d", tf_http_port(app.http));
    }
    if (tf_kafka_create_topic(app.dlq, app.dlq_topic, 1, -1, 10000, errstr, sizeof(errstr)))
        TF_LOG(TF_LOG_WARNING, "dlq", "cannot create the dead-letter topic %s: %s",
               app.dlq_topic, errstr);

    TF_LOG(TF_LOG_NOTICE, "main", "consuming as group %s; batches of up to %ld records / %ld ms",
           app.group, app.batch_size, app.batch_ms);
    int64_t last_report = tf_mono_ms();
    while (!stop_requested && !app.fatal) {
        tf_http_heartbeat(app.http);
        /* The batch in flight: booked when committed; when it failed, retried
         * with backoff while the partitions stay paused. */
        tf_agg_state_t st = inflight(&app, 0);
        if (st == TF_AGG_FAILED && tf_mono_ms() >= app.retry_at) {
            tf_agg_retry(app.agg);
            app.retry_at = 0;
            st = TF_AGG_BUSY;
        }
        /* The next batch is full while one is in flight: wait for it
         * (PostgreSQL is the bottleneck; librdkafka's prefetch is bounded). */
        if (st == TF_AGG_BUSY && tf_agg_pending(app.agg) >= (size_t)app.batch_size) {
            tf_agg_prepare(app.agg); /* (its COPY text, meanwhile) */
            inflight(&app, 1000);
            continue;
        }
        /* With a batch open, wait only briefly: a pause in the stream (or a
         * drained local queue) ends the batch at once, so batches grow with
         * the rate instead of waiting out batch.ms. */
        int pending_before = tf_agg_pending(app.agg) > 0;
        /* At the end of every partition with only the batch in flight left
         * to do: look for messages without waiting, then wait for the batch
         * (its commit is what --exit-at-end and the next settle check wait
         * for; a 50 ms message wait would delay them for nothing). */
        int wait_batch = st == TF_AGG_BUSY && !pending_before && !app.paused && all_eof(&app);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(
            app.rk, app.paused ? 100 : pending_before ? 5 : wait_batch ? 0 : 50);
        int idle = m == NULL;
        if (m) {
            handle_message(&app, m);
            rd_kafka_message_destroy(m);
        } else if (wait_batch) {
            /* (The partitions of other members do not depend on this
             * batch: check them now instead of after its commit; the check
             * waits behind a fetch on the broker connection, up to 100 ms,
             * and for this batch if it reads stored offsets.) */
            if (app.exit_at_end)
                others_done(&app);
            inflight(&app, 50);
        }
        rd_kafka_poll(app.dlq, 0);
        st = inflight(&app, 0); /* (a revoke may have flushed in consumer_poll) */
        size_t pending = tf_agg_pending(app.agg);
        int64_t t = tf_mono_ms();
        /* A batch also ends when the stream pauses. It is only submitted
         * when none is in flight, so while one is applied the next grows with
         * the rate: a continuous feed is not applied in tiny transactions. */
        int due = pending >= (size_t)app.batch_size ||
                  (pending && t - app.batch_started_ms >= app.batch_ms) ||
                  (pending && (idle || all_eof(&app)));
        /* Nothing to submit (or not now): skip the settle checks below. */
        if (st != TF_AGG_IDLE || app.paused || (!due && (pending || !app.need_settle)))
            goto report;
        /* (Checked only when a settle point could be due: it asks librdkafka
         * for every partition's position, too costly for every message.) */
        int caught_up = t - app.last_settle_ms >= SETTLE_MIN_MS &&
                        (all_eof(&app) || settle_caught_up(&app));
        /* Settle points: when caught up (at most every SETTLE_MIN_MS, so that a
         * live feed that is always nearly caught up does not evaluate shifts
         * on every batch), and at the latest every settle.interval. */
        int settle_due =
            caught_up || app.settle_backlog || t - app.last_settle_ms >= app.settle_ms;
        /* A settle point without a batch: caught up (or the interval passed)
         * with batches committed since the last one. */
        if (!due && !pending && app.need_settle && settle_due)
            due = 1;
        if (due)
            submit_batch(&app, settle_due);
    report:
        if (t - last_report >= 10000) {
            const tf_agg_stats_t *s = tf_agg_stats(app.agg);
            TF_LOG(TF_LOG_INFO, "stats",
                   "consumed %llu, applied %llu, superseded %llu, duplicates %llu, "
                   "dead-lettered %llu, batches %llu",
                   (unsigned long long)app.consumed, (unsigned long long)s->applied,
                   (unsigned long long)s->superseded, (unsigned long long)s->duplicates,
                   (unsigned long long)app.dead_lettered, (unsigned long long)s->batches);
            last_report = t;
        }
        if (app.exit_at_end && st == TF_AGG_IDLE && all_eof(&app) &&
            tf_agg_pending(app.agg) == 0 && !app.need_settle && others_done(&app)) {
            TF_LOG(TF_LOG_DEBUG, "main", "at the end of every partition; leaving");
            break;
        }
    }
    rc = app.fatal ? 1 : 0;
    /* Commit what was read before leaving; give PostgreSQL a few seconds if
     * it is briefly away (nothing is lost otherwise: it is read again). */
    /* After a signal: three attempts within a second, not the back-off of
     * a normal end (a stop must not wait out an outage; nothing uncommitted
     * is lost, it is read again). */
    for (int i = 0; !app.fatal;) {
        /* (A settle backlog is worked off before --exit-at-end leaves, but
         * not after a stop request: it stays in tradeflow.settle_pending for
         * the next run, after one settle point.) */
        if (inflight_wait(&app) == TF_AGG_IDLE && tf_agg_pending(app.agg) == 0 &&
            (!app.need_settle || (stop_requested && app.settle_backlog)))
            break;
        if (flush_sync(&app, 1) == 0)
            continue;
        if (++i == (stop_requested ? 3 : 6)) {
            TF_LOG(TF_LOG_ERR, "pg", "could not commit the last batch; it will be read again");
            rc = 1;
            break;
        }
        int64_t nap = stop_requested ? 250 * i : 250 << i;
        for (int64_t until = tf_mono_ms() + nap; tf_mono_ms() < until;)
            usleep(20000);
    }

out:
    /* The HTTP thread reads app.rdstats: stop it first. */
    tf_http_stop(app.http);
    if (app.rk) {
        rd_kafka_consumer_close(app.rk);
        for (int t = 0; t < app.ntopics; t++)
            if (app.rkts[t])
                rd_kafka_topic_destroy(app.rkts[t]);
        rd_kafka_destroy(app.rk);
    }
    if (app.dlq) {
        rd_kafka_flush(app.dlq, 10000);
        rd_kafka_destroy(app.dlq);
    }
    if (app.agg) {
        const tf_agg_stats_t *s = tf_agg_stats(app.agg);
        TF_LOG(TF_LOG_NOTICE, "stats",
               "done: consumed %llu, applied %llu, superseded %llu, duplicates %llu, "
               "dead-lettered %llu (refused by the database %llu), batches %llu, retries %llu, "
               "split transactions %llu, alerts %llu",
               (unsigned long long)app.consumed, (unsigned long long)s->applied,
               (unsigned long long)s->superseded, (unsigned long long)s->duplicates,
               (unsigned long long)app.dead_lettered, (unsigned long long)s->rejected,
               (unsigned long long)s->batches, (unsigned long long)s->retries,
               (unsigned long long)s->splits, (unsigned long long)s->alerts);
    }
    tf_agg_destroy(app.agg);
    tf_codec_destroy(app.codec);
    rd_kafka_topic_partition_list_destroy(app.assigned);
    release_config(&app);
    tf_rdstats_free(app.rdstats);
    tf_metrics_free(app.metrics);
    return rc;
}
