#include "tf_agg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tf_buf.h"
#include "tf_log.h"
#include "tf_pg.h"

#define MAX_TX_ATTEMPTS 20

typedef struct staged {
    tf_record_t rec;
    uint32_t pos;   /* index into a->pos: where the record came from */
    int64_t offset; /* its Kafka offset */
} staged_t;

typedef struct position {
    char *topic;
    int32_t partition;
    int64_t next_offset; /* offset after the last message buffered */
} position_t;

struct tf_agg {
    PGconn *conn;
    char *conninfo;
    char *group_id;
    staged_t *recs;
    size_t nrecs, caprecs;
    uint32_t *slots; /* open addressing: index+1 into recs, 0 = empty */
    size_t nslots;
    position_t *pos;
    size_t npos, cappos;
    size_t nmsgs; /* messages buffered (records + skipped) */
    tf_buf_t copy;
    rd_kafka_topic_partition_list_t *committed;
    tf_agg_stats_t stats;
    char top_n[16];
    char alerts_from[32]; /* YYYY-MM-01 */
};

static uint64_t rec_hash(const tf_record_t *r)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)r->dataset;
    for (const unsigned char *p = (const unsigned char *)r->record_id; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

/* Server notices (e.g. "relation already exists, skipping") go to the log. */
static void on_notice(void *arg, const char *msg)
{
    (void)arg;
    TF_LOG(TF_LOG_DEBUG, "pg", "%s", msg);
}

static int prepare(tf_agg_t *a, int migrate, char *errstr, size_t errlen)
{
    PQsetNoticeProcessor(a->conn, on_notice, NULL);
    if (migrate && tf_pg_migrate(a->conn, NULL, NULL, errstr, errlen))
        return -1;
    return tf_pg_exec(a->conn, "SELECT tradeflow.prepare_session()", errstr, errlen);
}

tf_agg_t *tf_agg_new(const char *conninfo, const char *group_id, int skip_migrate,
                     char *errstr, size_t errlen)
{
    tf_agg_t *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    a->conninfo = strdup(conninfo ? conninfo : "");
    a->group_id = strdup(group_id);
    a->nslots = 1024;
    snprintf(a->top_n, sizeof(a->top_n), "10");
    snprintf(a->alerts_from, sizeof(a->alerts_from), "1900-01-01");
    a->slots = calloc(a->nslots, sizeof(*a->slots));
    if (!a->conninfo || !a->group_id || !a->slots) {
        snprintf(errstr, errlen, "out of memory");
        goto fail;
    }
    if (!(a->conn = tf_pg_connect(a->conninfo, "tradeflow-aggregate", errstr, errlen)))
        goto fail;
    if (prepare(a, !skip_migrate, errstr, errlen))
        goto fail;
    return a;
fail:
    tf_agg_destroy(a);
    return NULL;
}

void tf_agg_destroy(tf_agg_t *a)
{
    if (!a)
        return;
    if (a->conn)
        PQfinish(a->conn);
    for (size_t i = 0; i < a->npos; i++)
        free(a->pos[i].topic);
    free(a->pos);
    free(a->recs);
    free(a->slots);
    free(a->conninfo);
    free(a->group_id);
    tf_buf_free(&a->copy);
    if (a->committed)
        rd_kafka_topic_partition_list_destroy(a->committed);
    free(a);
}

int tf_agg_set_alerts(tf_agg_t *a, int top_n, const char *alerts_from, char *errstr,
                      size_t errlen)
{
    int32_t p;
    if (top_n < 1 || top_n > 1000) {
        snprintf(errstr, errlen, "alert top N must be 1..1000");
        return -1;
    }
    snprintf(a->top_n, sizeof(a->top_n), "%d", top_n);
    if (alerts_from) {
        if (tf_period_parse(alerts_from, &p, errstr, errlen))
            return -1;
        snprintf(a->alerts_from, sizeof(a->alerts_from), "%04d-%02d-01", tf_period_year(p),
                 tf_period_month(p));
    }
    return 0;
}

PGconn *tf_agg_conn(tf_agg_t *a)
{
    return a->conn;
}

const tf_agg_stats_t *tf_agg_stats(const tf_agg_t *a)
{
    return &a->stats;
}

size_t tf_agg_pending(const tf_agg_t *a)
{
    return a->nmsgs;
}

/* Reconnects if the connection was lost. */
static int ensure_conn(tf_agg_t *a, char *errstr, size_t errlen)
{
    if (a->conn && PQstatus(a->conn) == CONNECTION_OK)
        return 0;
    if (a->conn)
        PQfinish(a->conn);
    a->conn = tf_pg_connect(a->conninfo, "tradeflow-aggregate", errstr, errlen);
    if (!a->conn)
        return -1;
    if (prepare(a, 0, errstr, errlen)) {
        PQfinish(a->conn);
        a->conn = NULL;
        return -1;
    }
    TF_LOG(TF_LOG_NOTICE, "pg", "reconnected to PostgreSQL");
    return 0;
}

int tf_agg_load_offsets(tf_agg_t *a, rd_kafka_topic_partition_list_t *parts, char *errstr,
                        size_t errlen)
{
    if (ensure_conn(a, errstr, errlen))
        return -1;
    const char *p[] = {a->group_id};
    PGresult *r = PQexecParams(a->conn,
                               "SELECT topic, partition, next_offset FROM "
                               "tradeflow.consumer_offsets WHERE group_id = $1",
                               1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(errstr, errlen, "loading offsets: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    for (int row = 0; row < PQntuples(r); row++) {
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
            parts, PQgetvalue(r, row, 0), atoi(PQgetvalue(r, row, 1)));
        if (tp)
            tp->offset = strtoll(PQgetvalue(r, row, 2), NULL, 10);
    }
    PQclear(r);
    return 0;
}

static int note_position(tf_agg_t *a, const char *topic, int32_t partition, int64_t offset,
                         uint32_t *idx)
{
    size_t i;
    for (i = 0; i < a->npos; i++)
        if (a->pos[i].partition == partition && strcmp(a->pos[i].topic, topic) == 0)
            break;
    if (i == a->npos) {
        if (a->npos == a->cappos) {
            size_t cap = a->cappos ? a->cappos * 2 : 16;
            position_t *np = realloc(a->pos, cap * sizeof(*np));
            if (!np)
                return -1;
            a->pos = np;
            a->cappos = cap;
        }
        a->pos[i].topic = strdup(topic);
        if (!a->pos[i].topic)
            return -1;
        a->pos[i].partition = partition;
        a->pos[i].next_offset = offset + 1;
        a->npos++;
    } else if (a->pos[i].next_offset < offset + 1) {
        a->pos[i].next_offset = offset + 1;
    }
    *idx = (uint32_t)i;
    a->nmsgs++;
    return 0;
}

static int grow_slots(tf_agg_t *a)
{
    size_t n = a->nslots * 2;
    uint32_t *s = calloc(n, sizeof(*s));
    if (!s)
        return -1;
    for (size_t i = 0; i < a->nrecs; i++) {
        size_t h = rec_hash(&a->recs[i].rec) & (n - 1);
        while (s[h])
            h = (h + 1) & (n - 1);
        s[h] = (uint32_t)i + 1;
    }
    free(a->slots);
    a->slots = s;
    a->nslots = n;
    return 0;
}

int tf_agg_skip(tf_agg_t *a, const char *topic, int32_t partition, int64_t offset)
{
    uint32_t idx;
    return note_position(a, topic, partition, offset, &idx);
}

int tf_agg_add(tf_agg_t *a, const tf_record_t *r, const char *topic, int32_t partition,
               int64_t offset)
{
    uint32_t idx;
    if (note_position(a, topic, partition, offset, &idx))
        return -1;
    if ((a->nrecs + 1) * 2 > a->nslots && grow_slots(a))
        return -1;
    size_t h = rec_hash(r) & (a->nslots - 1);
    while (a->slots[h]) {
        staged_t *s = &a->recs[a->slots[h] - 1];
        if (s->rec.dataset == r->dataset && strcmp(s->rec.record_id, r->record_id) == 0) {
            if (r->revision > s->rec.revision) { /* a higher revision replaces it */
                a->stats.superseded++;
                s->rec = *r;
                s->pos = idx;
                s->offset = offset;
            } else {
                a->stats.duplicates++;
            }
            return 0;
        }
        h = (h + 1) & (a->nslots - 1);
    }
    if (a->nrecs == a->caprecs) {
        size_t cap = a->caprecs ? a->caprecs * 2 : 1024;
        staged_t *nr = realloc(a->recs, cap * sizeof(*nr));
        if (!nr)
            return -1;
        a->recs = nr;
        a->caprecs = cap;
    }
    a->recs[a->nrecs].rec = *r;
    a->recs[a->nrecs].pos = idx;
    a->recs[a->nrecs].offset = offset;
    a->nrecs++;
    a->slots[h] = (uint32_t)a->nrecs;
    return 0;
}

/* Appends s to the COPY text buffer with COPY's escapes. */
static void copy_text(tf_buf_t *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = NULL;
        switch (*s) {
        case '\\': esc = "\\\\"; break;
        case '\t': esc = "\\t"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        default: continue;
        }
        tf_buf_append(b, run, (size_t)(s - run));
        tf_buf_append(b, esc, 2);
        run = s + 1;
    }
    tf_buf_append(b, run, (size_t)(s - run));
}

static void copy_opt(tf_buf_t *b, const char *s)
{
    if (*s)
        copy_text(b, s);
    else
        tf_buf_append(b, "\\N", 2);
}

static int build_copy(tf_agg_t *a)
{
    tf_buf_t *b = &a->copy;
    tf_buf_reset(b);
    for (size_t i = 0; i < a->nrecs; i++) {
        const tf_record_t *r = &a->recs[i].rec;
        char num[48];
        copy_text(b, tf_dataset_name(r->dataset));
        tf_buf_append(b, "\t", 1);
        copy_text(b, r->record_id);
        tf_buf_appendf(b, "\t%lld\t", (long long)r->revision);
        copy_text(b, r->reporter);
        tf_buf_append(b, "\t", 1);
        copy_text(b, r->partner);
        tf_buf_appendf(b, "\t%s\t%04d-%02d-01\t", tf_flow_name(r->flow),
                       tf_period_year(r->period), tf_period_month(r->period));
        tf_decimal_format(r->value_cents, 2, num, sizeof(num));
        tf_buf_appendf(b, "%s\t", num);
        copy_opt(b, r->hs_code);
        tf_buf_append(b, "\t", 1);
        if (r->has_quantity) {
            tf_decimal_format(r->quantity_milli, 3, num, sizeof(num));
            tf_buf_appendf(b, "%s", num);
        } else {
            tf_buf_append(b, "\\N", 2);
        }
        tf_buf_append(b, "\t", 1);
        copy_opt(b, r->unit);
        tf_buf_append(b, "\t", 1);
        copy_opt(b, r->sector);
        tf_buf_append(b, "\t", 1);
        const position_t *p = &a->pos[a->recs[i].pos];
        copy_text(b, p->topic);
        if (tf_buf_appendf(b, "/%d/%lld\n", (int)p->partition, (long long)a->recs[i].offset))
            return -1;
    }
    return 0;
}

/* Runs one statement; on failure fills errstr and *sqlstate (static). */
static int run(tf_agg_t *a, PGresult *r, ExecStatusType want, const char *what,
               const char **sqlstate, char *errstr, size_t errlen)
{
    if (PQresultStatus(r) == want)
        return 0;
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    static char state[6];
    snprintf(state, sizeof(state), "%s", st ? st : "");
    *sqlstate = state;
    char msg[400];
    snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(r));
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    snprintf(errstr, errlen, "%s: %s", what, msg);
    (void)a;
    return -1;
}

/* One attempt at the batch's transaction. careful: a retry, asks apply_stage
 * to lock the stored reporters of the batch's record_ids too (needed when a
 * revision moves a record to another reporter; see 006_fast_apply.sql). */
static int apply_once(tf_agg_t *a, int settle, int careful, const char **sqlstate,
                      tf_agg_stats_t *delta, char *errstr, size_t errlen)
{
    PGresult *r;
    int rc = -1;
    *sqlstate = "";
    r = PQexec(a->conn, "BEGIN");
    if (run(a, r, PGRES_COMMAND_OK, "BEGIN", sqlstate, errstr, errlen))
        goto out;
    if (a->nrecs) {
        PQclear(r);
        r = PQexec(a->conn, "COPY tf_stage (dataset, record_id, revision, reporter, partner, "
                            "flow, period, value_usd, hs_code, quantity, unit, sector, source) "
                            "FROM STDIN");
        if (run(a, r, PGRES_COPY_IN, "COPY", sqlstate, errstr, errlen))
            goto out;
        if (PQputCopyData(a->conn, (const char *)a->copy.data, (int)a->copy.len) != 1 ||
            PQputCopyEnd(a->conn, NULL) != 1) {
            snprintf(errstr, errlen, "COPY: %s", PQerrorMessage(a->conn));
            goto out;
        }
        PQclear(r);
        r = PQgetResult(a->conn);
        if (run(a, r, PGRES_COMMAND_OK, "COPY", sqlstate, errstr, errlen))
            goto out;
        while (r) { /* drain */
            PQclear(r);
            r = PQgetResult(a->conn);
        }
        r = PQexec(a->conn, careful ? "SELECT applied, superseded, duplicates "
                                      "FROM tradeflow.apply_stage(true)"
                                    : "SELECT applied, superseded, duplicates "
                                      "FROM tradeflow.apply_stage()");
        if (run(a, r, PGRES_TUPLES_OK, "apply", sqlstate, errstr, errlen))
            goto out;
        delta->applied = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        delta->superseded = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
        delta->duplicates = strtoull(PQgetvalue(r, 0, 2), NULL, 10);
    }
    if (a->npos) {
        tf_buf_t t = {0}, p = {0}, o = {0};
        tf_buf_append(&t, "{", 1);
        tf_buf_append(&p, "{", 1);
        tf_buf_append(&o, "{", 1);
        int n = 0;
        for (size_t i = 0; i < a->npos; i++) {
            if (a->pos[i].next_offset < 0) /* forgotten partition */
                continue;
            const char *sep = n++ ? "," : "";
            tf_buf_appendf(&t, "%s\"%s\"", sep, a->pos[i].topic); /* topic names: [A-Za-z0-9._-] */
            tf_buf_appendf(&p, "%s%d", sep, (int)a->pos[i].partition);
            tf_buf_appendf(&o, "%s%lld", sep, (long long)a->pos[i].next_offset);
        }
        tf_buf_append(&t, "}", 2);
        tf_buf_append(&p, "}", 2);
        tf_buf_append(&o, "}", 2);
        const char *params[] = {a->group_id, (char *)t.data, (char *)p.data, (char *)o.data};
        PQclear(r);
        r = PQexecParams(
            a->conn,
            "INSERT INTO tradeflow.consumer_offsets (group_id, topic, partition, next_offset) "
            "SELECT $1, u.t, u.p, u.o FROM unnest($2::text[], $3::int[], $4::bigint[]) "
            "AS u(t, p, o) "
            "ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = "
            "greatest(tradeflow.consumer_offsets.next_offset, excluded.next_offset), "
            "updated_at = now()",
            4, NULL, params, NULL, NULL, 0);
        tf_buf_free(&t);
        tf_buf_free(&p);
        tf_buf_free(&o);
        if (run(a, r, PGRES_COMMAND_OK, "storing offsets", sqlstate, errstr, errlen))
            goto out;
    }
    if (settle) {
        const char *params[] = {a->top_n, a->alerts_from};
        PQclear(r);
        r = PQexecParams(a->conn,
                         "SELECT evaluated, raised FROM tradeflow.settle_alerts($1::int, $2::date)",
                         2, NULL, params, NULL, NULL, 0);
        if (run(a, r, PGRES_TUPLES_OK, "settling alerts", sqlstate, errstr, errlen))
            goto out;
        delta->settles = 1;
        delta->alerts = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    }
    PQclear(r);
    struct timespec c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &c0);
    r = PQexec(a->conn, "COMMIT");
    clock_gettime(CLOCK_MONOTONIC, &c1);
    if (run(a, r, PGRES_COMMAND_OK, "COMMIT", sqlstate, errstr, errlen))
        goto out;
    delta->last_commit_us = (uint64_t)((c1.tv_sec - c0.tv_sec) * 1000000LL +
                                       (c1.tv_nsec - c0.tv_nsec) / 1000);
    rc = 0;
out:
    PQclear(r);
    if (rc != 0 && PQstatus(a->conn) == CONNECTION_OK &&
        PQtransactionStatus(a->conn) != PQTRANS_IDLE) {
        PGresult *rb = PQexec(a->conn, "ROLLBACK");
        PQclear(rb);
    }
    return rc;
}

int tf_agg_flush(tf_agg_t *a, int settle, const rd_kafka_topic_partition_list_t **committed,
                 char *errstr, size_t errlen)
{
    if (committed)
        *committed = NULL;
    if (a->nmsgs == 0 && !settle)
        return 0;
    if (build_copy(a)) {
        snprintf(errstr, errlen, "out of memory building the batch");
        return -1;
    }
    for (int attempt = 1;; attempt++) {
        if (ensure_conn(a, errstr, errlen))
            return -1;
        const char *sqlstate;
        tf_agg_stats_t d = {0};
        if (apply_once(a, settle, attempt > 1, &sqlstate, &d, errstr, errlen) == 0) {
            a->stats.batches++;
            a->stats.records += a->nrecs;
            a->stats.applied += d.applied;
            a->stats.superseded += d.superseded;
            a->stats.duplicates += d.duplicates;
            a->stats.settles += d.settles;
            a->stats.alerts += d.alerts;
            a->stats.last_commit_us = d.last_commit_us;
            break;
        }
        if (PQstatus(a->conn) != CONNECTION_OK) {
            /* A connection that went stale while idle (server restarted):
             * reconnect and retry at once; if PostgreSQL is really down,
             * ensure_conn fails and the caller backs off. */
            if (attempt >= 2)
                return -1;
            a->stats.retries++;
            continue;
        }
        if (!tf_pg_sqlstate_retryable(sqlstate) || attempt >= MAX_TX_ATTEMPTS)
            return -1;
        a->stats.retries++;
        TF_LOG(TF_LOG_INFO, "pg", "retrying batch (attempt %d): %s", attempt + 1, errstr);
        usleep((useconds_t)(1000 * (attempt * 5 + rand() % 20)));
    }
    if (a->committed)
        rd_kafka_topic_partition_list_destroy(a->committed);
    a->committed = rd_kafka_topic_partition_list_new((int)a->npos);
    for (size_t i = 0; i < a->npos; i++) {
        if (a->pos[i].next_offset >= 0)
            rd_kafka_topic_partition_list_add(a->committed, a->pos[i].topic,
                                              a->pos[i].partition)
                ->offset = a->pos[i].next_offset;
        free(a->pos[i].topic);
    }
    a->npos = 0;
    a->nrecs = 0;
    a->nmsgs = 0;
    memset(a->slots, 0, a->nslots * sizeof(*a->slots));
    if (committed)
        *committed = a->committed;
    return 0;
}

void tf_agg_forget(tf_agg_t *a, const rd_kafka_topic_partition_list_t *parts)
{
    /* Rebuild the buffer without the records of those partitions. */
    size_t keep = 0;
    for (size_t i = 0; i < a->nrecs; i++) {
        const position_t *p = &a->pos[a->recs[i].pos];
        if (rd_kafka_topic_partition_list_find(parts, p->topic, p->partition))
            continue;
        a->recs[keep++] = a->recs[i];
    }
    a->nrecs = keep;
    memset(a->slots, 0, a->nslots * sizeof(*a->slots));
    for (size_t i = 0; i < a->nrecs; i++) {
        size_t h = rec_hash(&a->recs[i].rec) & (a->nslots - 1);
        while (a->slots[h])
            h = (h + 1) & (a->nslots - 1);
        a->slots[h] = (uint32_t)i + 1;
    }
    /* Positions of forgotten partitions stay (records point at them by index)
     * but are not stored: mark them by an offset of -1. */
    for (size_t i = 0; i < a->npos; i++)
        if (rd_kafka_topic_partition_list_find(parts, a->pos[i].topic, a->pos[i].partition))
            a->pos[i].next_offset = -1;
    a->nmsgs = a->nrecs;
}
