#include "tf_agg.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tf_buf.h"
#include "tf_clock.h"
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

/* A batch: the records (deduplicated per record_id) and where they came from. */
typedef struct batch {
    staged_t *recs;
    size_t nrecs, caprecs;
    uint32_t *slots; /* open addressing: index+1 into recs, 0 = empty */
    size_t nslots;
    position_t *pos;
    size_t npos, cappos;
    size_t nmsgs; /* messages buffered (records + skipped) */
} batch_t;

struct tf_agg {
    PGconn *conn; /* used by the apply thread while a batch is BUSY, else by the caller */
    char *conninfo;
    char *group_id;
    batch_t cur; /* being filled (caller's thread) */
    batch_t fly; /* in flight (the apply thread's while BUSY) */
    int fly_settle;
    int fly_unsettled; /* the settle point left reporters pending (locked elsewhere) */
    tf_buf_t cur_copy, fly_copy; /* COPY text of each batch */
    int cur_copy_ok;             /* cur_copy is up to date */
    rd_kafka_topic_partition_list_t *committed;
    tf_agg_stats_t stats;
    char top_n[16];
    char alerts_from[32]; /* YYYY-MM-01 */
    char settle_budget[16]; /* ms; "" = no limit (SQL NULL) */

    /* Hand-over between the caller and the apply thread. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int thread_started;
    int go;   /* a batch to apply (set by submit/retry, cleared by the thread) */
    int quit; /* tf_agg_destroy */
    tf_agg_state_t state;
    tf_agg_stats_t fly_delta; /* the thread's counts for the batch in flight */
    char fly_err[1024];
    /* Isolating records (apply thread while BUSY, caller's while REJECTED):
     * where each fact's line starts in fly_copy (nfacts + 1 entries), the
     * record of each line (release markers have no line), and the records
     * refused. */
    size_t *lines, *line_rec;
    size_t caplines, nlines;
    tf_agg_reject_t *rejects;
    size_t nrejects, caprejects;
    char settle_err[1024]; /* the last settle point's data error (stats.settle_errors) */
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
    /* prepare_release_session (009): the staging table of release markers. */
    return tf_pg_exec(a->conn,
                      "SELECT tradeflow.prepare_session(); "
                      "SELECT tradeflow.prepare_release_session()",
                      errstr, errlen);
}

static int batch_init(batch_t *b)
{
    b->nslots = 1024;
    b->slots = calloc(b->nslots, sizeof(*b->slots));
    return b->slots ? 0 : -1;
}

static void batch_free(batch_t *b)
{
    for (size_t i = 0; i < b->npos; i++)
        free(b->pos[i].topic);
    free(b->pos);
    free(b->recs);
    free(b->slots);
}

/* Empties a batch, keeping its memory for the next one. */
static void batch_reset(batch_t *b)
{
    for (size_t i = 0; i < b->npos; i++)
        free(b->pos[i].topic);
    b->npos = 0;
    b->nrecs = 0;
    b->nmsgs = 0;
    memset(b->slots, 0, b->nslots * sizeof(*b->slots));
}

static void *apply_thread(void *arg);

tf_agg_t *tf_agg_new(const char *conninfo, const char *group_id, int skip_migrate,
                     char *errstr, size_t errlen)
{
    tf_agg_t *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->conninfo = strdup(conninfo ? conninfo : "");
    a->group_id = strdup(group_id);
    snprintf(a->top_n, sizeof(a->top_n), "10");
    snprintf(a->alerts_from, sizeof(a->alerts_from), "1900-01-01");
    if (!a->conninfo || !a->group_id || batch_init(&a->cur) || batch_init(&a->fly)) {
        snprintf(errstr, errlen, "out of memory");
        goto fail;
    }
    if (!(a->conn = tf_pg_connect(a->conninfo, "tradeflow-aggregate", errstr, errlen)))
        goto fail;
    if (prepare(a, !skip_migrate, errstr, errlen))
        goto fail;
    if (pthread_create(&a->thread, NULL, apply_thread, a) != 0) {
        snprintf(errstr, errlen, "cannot start the apply thread");
        goto fail;
    }
    a->thread_started = 1;
    return a;
fail:
    tf_agg_destroy(a);
    return NULL;
}

void tf_agg_destroy(tf_agg_t *a)
{
    if (!a)
        return;
    if (a->thread_started) {
        pthread_mutex_lock(&a->mu);
        a->quit = 1;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    if (a->conn)
        PQfinish(a->conn);
    batch_free(&a->cur);
    batch_free(&a->fly);
    free(a->conninfo);
    free(a->group_id);
    tf_buf_free(&a->cur_copy);
    tf_buf_free(&a->fly_copy);
    free(a->lines);
    free(a->rejects);
    free(a->line_rec);
    if (a->committed)
        rd_kafka_topic_partition_list_destroy(a->committed);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

int tf_agg_set_settle_budget(tf_agg_t *a, int budget_ms, char *errstr, size_t errlen)
{
    if (budget_ms < 0) {
        snprintf(errstr, errlen, "settle budget: %d ms is negative", budget_ms);
        return -1;
    }
    if (budget_ms == 0)
        a->settle_budget[0] = 0;
    else
        snprintf(a->settle_budget, sizeof(a->settle_budget), "%d", budget_ms);
    return 0;
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

const tf_agg_stats_t *tf_agg_stats(const tf_agg_t *a)
{
    return &a->stats;
}

size_t tf_agg_pending(const tf_agg_t *a)
{
    return a->cur.nmsgs;
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

/* Waits until no batch is being applied (the connection is the caller's). */
static void wait_not_busy(tf_agg_t *a)
{
    pthread_mutex_lock(&a->mu);
    while (a->state == TF_AGG_BUSY)
        pthread_cond_wait(&a->cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
}

int tf_agg_load_offsets(tf_agg_t *a, rd_kafka_topic_partition_list_t *parts, char *errstr,
                        size_t errlen)
{
    wait_not_busy(a);
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

static int note_position(batch_t *b, const char *topic, int32_t partition, int64_t offset,
                         uint32_t *idx)
{
    size_t i;
    for (i = 0; i < b->npos; i++)
        if (b->pos[i].partition == partition && strcmp(b->pos[i].topic, topic) == 0)
            break;
    if (i == b->npos) {
        if (b->npos == b->cappos) {
            size_t cap = b->cappos ? b->cappos * 2 : 16;
            position_t *np = realloc(b->pos, cap * sizeof(*np));
            if (!np)
                return -1;
            b->pos = np;
            b->cappos = cap;
        }
        b->pos[i].topic = strdup(topic);
        if (!b->pos[i].topic)
            return -1;
        b->pos[i].partition = partition;
        b->pos[i].next_offset = offset + 1;
        b->npos++;
    } else if (b->pos[i].next_offset < offset + 1) {
        b->pos[i].next_offset = offset + 1;
    }
    *idx = (uint32_t)i;
    b->nmsgs++;
    return 0;
}

static void rehash(batch_t *b)
{
    memset(b->slots, 0, b->nslots * sizeof(*b->slots));
    for (size_t i = 0; i < b->nrecs; i++) {
        size_t h = rec_hash(&b->recs[i].rec) & (b->nslots - 1);
        while (b->slots[h])
            h = (h + 1) & (b->nslots - 1);
        b->slots[h] = (uint32_t)i + 1;
    }
}

static int grow_slots(batch_t *b)
{
    size_t n = b->nslots * 2;
    uint32_t *s = calloc(n, sizeof(*s));
    if (!s)
        return -1;
    free(b->slots);
    b->slots = s;
    b->nslots = n;
    rehash(b);
    return 0;
}

int tf_agg_skip(tf_agg_t *a, const char *topic, int32_t partition, int64_t offset)
{
    uint32_t idx;
    a->cur_copy_ok = 0;
    return note_position(&a->cur, topic, partition, offset, &idx);
}

int tf_agg_add(tf_agg_t *a, const tf_record_t *r, const char *topic, int32_t partition,
               int64_t offset)
{
    batch_t *b = &a->cur;
    uint32_t idx;
    a->cur_copy_ok = 0;
    if (note_position(b, topic, partition, offset, &idx))
        return -1;
    if ((b->nrecs + 1) * 2 > b->nslots && grow_slots(b))
        return -1;
    size_t h = rec_hash(r) & (b->nslots - 1);
    while (b->slots[h]) {
        staged_t *s = &b->recs[b->slots[h] - 1];
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
        h = (h + 1) & (b->nslots - 1);
    }
    if (b->nrecs == b->caprecs) {
        size_t cap = b->caprecs ? b->caprecs * 2 : 1024;
        staged_t *nr = realloc(b->recs, cap * sizeof(*nr));
        if (!nr)
            return -1;
        b->recs = nr;
        b->caprecs = cap;
    }
    b->recs[b->nrecs].rec = *r;
    b->recs[b->nrecs].pos = idx;
    b->recs[b->nrecs].offset = offset;
    b->nrecs++;
    b->slots[h] = (uint32_t)b->nrecs;
    return 0;
}

/* ---- the COPY text ------------------------------------------------------ */

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

/* Appends an integer. */
static void copy_int(tf_buf_t *b, long long v)
{
    char d[24];
    tf_buf_append(b, d, (size_t)tf_decimal_format(v, 0, d, sizeof(d)));
}

/* Writes the COPY text of batch bt (one row per fact; release markers are
 * staged apart, see apply_once) into b. */
static int build_copy(const batch_t *bt, tf_buf_t *b)
{
    tf_buf_reset(b);
    for (size_t i = 0; i < bt->nrecs; i++) {
        const tf_record_t *r = &bt->recs[i].rec;
        char num[48];
        if (r->kind == TF_KIND_RELEASE)
            continue;
        copy_text(b, tf_dataset_name(r->dataset));
        tf_buf_append(b, "\t", 1);
        copy_text(b, r->record_id);
        tf_buf_append(b, "\t", 1);
        copy_int(b, (long long)r->revision);
        tf_buf_append(b, "\t", 1);
        copy_text(b, r->reporter);
        tf_buf_append(b, "\t", 1);
        copy_text(b, r->partner);
        tf_buf_append(b, "\t", 1);
        copy_text(b, tf_flow_name(r->flow));
        tf_buf_append(b, "\t", 1);
        int ym = tf_period_year(r->period) * 100 + tf_period_month(r->period);
        char per[11] = {(char)('0' + ym / 100000 % 10), (char)('0' + ym / 10000 % 10),
                        (char)('0' + ym / 1000 % 10), (char)('0' + ym / 100 % 10), '-',
                        (char)('0' + ym / 10 % 10), (char)('0' + ym % 10), '-', '0', '1', '\t'};
        tf_buf_append(b, per, sizeof(per));
        tf_buf_append(b, num, (size_t)tf_decimal_format(r->value_cents, 2, num, sizeof(num)));
        tf_buf_append(b, "\t", 1);
        copy_opt(b, r->hs_code);
        tf_buf_append(b, "\t", 1);
        if (r->has_quantity)
            tf_buf_append(b, num,
                          (size_t)tf_decimal_format(r->quantity_milli, 3, num, sizeof(num)));
        else
            tf_buf_append(b, "\\N", 2);
        tf_buf_append(b, "\t", 1);
        copy_opt(b, r->unit);
        tf_buf_append(b, "\t", 1);
        copy_opt(b, r->sector);
        tf_buf_append(b, "\t", 1);
        const position_t *p = &bt->pos[bt->recs[i].pos];
        copy_text(b, p->topic);
        tf_buf_append(b, "/", 1);
        copy_int(b, p->partition);
        tf_buf_append(b, "/", 1);
        copy_int(b, (long long)bt->recs[i].offset);
        if (tf_buf_append(b, "\n", 1))
            return -1;
    }
    return 0;
}

/* ---- the transaction (apply thread) ------------------------------------- */

/* Runs one statement; on failure fills errstr and *sqlstate (state[6]). */
static int run(PGresult *r, ExecStatusType want, const char *what, char *state, char *errstr,
               size_t errlen)
{
    if (PQresultStatus(r) == want)
        return 0;
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, 6, "%s", st ? st : "");
    char msg[400];
    snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(r));
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    snprintf(errstr, errlen, "%s: %s", what, msg);
    return -1;
}

/* Stages fly_copy's lines lo..hi (all of it when whole) and applies them
 * with apply_stage, adding its counts to *delta. split: a sub-transaction
 * of the isolation, tf_stage is emptied first (the rows of the last range). */
static int stage_range(tf_agg_t *a, size_t lo, size_t hi, int whole, int split, int careful,
                       size_t nmarks, char *sqlstate, tf_agg_stats_t *delta, char *errstr, size_t errlen)
{
    const char *data = (const char *)a->fly_copy.data + (whole ? 0 : a->lines[lo]);
    size_t len = whole ? a->fly_copy.len : a->lines[hi] - a->lines[lo];
    PGresult *r = NULL;
    int rc = -1;
    if (split) {
        r = PQexec(a->conn, "DELETE FROM tf_stage");
        if (run(r, PGRES_COMMAND_OK, "staging", sqlstate, errstr, errlen))
            goto out;
        PQclear(r);
    }
    r = PQexec(a->conn, "COPY tf_stage (dataset, record_id, revision, reporter, partner, "
                        "flow, period, value_usd, hs_code, quantity, unit, sector, source) "
                        "FROM STDIN");
    if (run(r, PGRES_COPY_IN, "COPY", sqlstate, errstr, errlen))
        goto out;
    if (PQputCopyData(a->conn, data, (int)len) != 1 || PQputCopyEnd(a->conn, NULL) != 1) {
        snprintf(errstr, errlen, "COPY: %s", PQerrorMessage(a->conn));
        goto out;
    }
    PQclear(r);
    r = PQgetResult(a->conn);
    if (run(r, PGRES_COMMAND_OK, "COPY", sqlstate, errstr, errlen))
        goto out;
    while (r) { /* drain */
        PQclear(r);
        r = PQgetResult(a->conn);
    }
    if (nmarks) { /* the markers' reporters are locked with the facts' ones, in order */
        r = PQexec(a->conn, "SELECT tradeflow.release_lock()");
        if (run(r, PGRES_TUPLES_OK, "release locks", sqlstate, errstr, errlen))
            goto out;
        PQclear(r);
    }
    r = PQexec(a->conn, careful ? "SELECT applied, superseded, duplicates "
                                  "FROM tradeflow.apply_stage(true)"
                                : "SELECT applied, superseded, duplicates "
                                  "FROM tradeflow.apply_stage()");
    if (run(r, PGRES_TUPLES_OK, "apply", sqlstate, errstr, errlen))
        goto out;
    delta->applied += strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    delta->superseded += strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    delta->duplicates += strtoull(PQgetvalue(r, 0, 2), NULL, 10);
    /* Facts below their scope's release watermark and the batch's markers:
     * correcting deltas through the same path (009). Per staged range: it
     * reads the range's tf_stage/tf_old; the markers take effect at the
     * first call, and later ranges' facts are measured against them, as
     * facts of a later batch would be. */
    PQclear(r);
    r = PQexec(a->conn, "SELECT withdrawn, restored, marks FROM tradeflow.apply_releases()");
    if (run(r, PGRES_TUPLES_OK, "releases", sqlstate, errstr, errlen))
        goto out;
    if (strcmp(PQgetvalue(r, 0, 0), "0") || strcmp(PQgetvalue(r, 0, 2), "0"))
        TF_LOG(TF_LOG_INFO, "aggregate", "releases: %s withdrawn, %s restored, %s marks raised",
               PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
    rc = 0;
out:
    while (r) { /* (a failed COPY leaves its end result behind) */
        PQclear(r);
        r = PQgetResult(a->conn);
    }
    return rc;
}

static int exec_ok(tf_agg_t *a, const char *sql, char *sqlstate, char *errstr, size_t errlen)
{
    PGresult *r = PQexec(a->conn, sql);
    int rc = run(r, PGRES_COMMAND_OK, sql, sqlstate, errstr, errlen);
    PQclear(r);
    return rc;
}

/* Notes the record of fly_copy's line i as refused. 0 or -1 (out of memory). */
static int add_reject(tf_agg_t *a, size_t i, const char *sqlstate, const char *why)
{
    if (a->nrejects == a->caprejects) {
        size_t cap = a->caprejects ? a->caprejects * 2 : 16;
        tf_agg_reject_t *n = realloc(a->rejects, cap * sizeof(*n));
        if (!n)
            return -1;
        a->rejects = n;
        a->caprejects = cap;
    }
    const staged_t *st = &a->fly.recs[a->line_rec[i]];
    const position_t *p = &a->fly.pos[st->pos];
    tf_agg_reject_t *x = &a->rejects[a->nrejects++];
    x->rec = &st->rec;
    x->topic = p->topic;
    x->partition = p->partition;
    x->offset = st->offset;
    snprintf(x->sqlstate, sizeof(x->sqlstate), "%s", sqlstate);
    snprintf(x->reason, sizeof(x->reason), "%s", why);
    return 0;
}

/* Applies records lo..hi under a savepoint; when that fails with a data
 * error (TF_PG_ERR_DATA), rolls back to it and halves the range, down to
 * single records, which are refused (add_reject). 0, or -1 for any other
 * failure (the transaction is then aborted: the attempt failed). */
static int isolate(tf_agg_t *a, size_t lo, size_t hi, int careful, size_t nmarks, char *sqlstate,
                   tf_agg_stats_t *delta, char *errstr, size_t errlen)
{
    tf_agg_stats_t part = {0};
    if (exec_ok(a, "SAVEPOINT tf_split", sqlstate, errstr, errlen))
        return -1;
    delta->splits++;
    if (stage_range(a, lo, hi, 0, 1, careful, nmarks, sqlstate, &part, errstr, errlen) == 0) {
        delta->applied += part.applied;
        delta->superseded += part.superseded;
        delta->duplicates += part.duplicates;
        return exec_ok(a, "RELEASE SAVEPOINT tf_split", sqlstate, errstr, errlen);
    }
    if (tf_pg_classify(sqlstate) != TF_PG_ERR_DATA || PQstatus(a->conn) != CONNECTION_OK)
        return -1;
    char state[6], why[480];
    snprintf(state, sizeof(state), "%s", sqlstate);
    snprintf(why, sizeof(why), "%s", errstr);
    if (exec_ok(a, "ROLLBACK TO SAVEPOINT tf_split", sqlstate, errstr, errlen) ||
        exec_ok(a, "RELEASE SAVEPOINT tf_split", sqlstate, errstr, errlen))
        return -1;
    if (hi - lo == 1) {
        if (add_reject(a, lo, state, why)) {
            snprintf(errstr, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    size_t mid = lo + (hi - lo) / 2;
    if (isolate(a, lo, mid, careful, nmarks, sqlstate, delta, errstr, errlen))
        return -1;
    return isolate(a, mid, hi, careful, nmarks, sqlstate, delta, errstr, errlen);
}

/* Where each fact's line starts in fly_copy (COPY text escapes newlines:
 * one line per fact; release markers have none), and which record it is.
 * 0 or -1 (out of memory). */
static int index_lines(tf_agg_t *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->fly.nrecs; i++)
        n += a->fly.recs[i].rec.kind != TF_KIND_RELEASE;
    if (a->caplines < n + 1) {
        size_t *l = realloc(a->lines, (n + 1) * sizeof(*l));
        if (!l)
            return -1;
        a->lines = l;
        size_t *m = realloc(a->line_rec, (n + 1) * sizeof(*m));
        if (!m)
            return -1;
        a->line_rec = m;
        a->caplines = n + 1;
    }
    for (size_t i = 0, k = 0; i < a->fly.nrecs; i++)
        if (a->fly.recs[i].rec.kind != TF_KIND_RELEASE)
            a->line_rec[k++] = i;
    const char *d = (const char *)a->fly_copy.data;
    size_t k = 0;
    a->lines[k++] = 0;
    for (size_t i = 0; i < a->fly_copy.len && k <= n; i++)
        if (d[i] == '\n')
            a->lines[k++] = i + 1;
    a->nlines = n;
    return k == n + 1 ? 0 : -1;
}

/* Where an attempt failed. */
enum { AT_BEGIN, AT_RECORDS, AT_AFTER, AT_SETTLE };

/* One attempt at the batch in flight's transaction. careful: a retry, asks
 * apply_stage to lock the stored reporters of the batch's record_ids too
 * (needed when a revision moves a record to another reporter; see
 * 006_fast_apply.sql). split: isolate the records that fail (isolate());
 * if any do, the transaction is rolled back and 1 returned (a->rejects).
 * no_settle: without the batch's settle point (it failed with a data error).
 * 0 committed, -1 failed (*stage says where). */
static int apply_once(tf_agg_t *a, int careful, int split, int no_settle, char *sqlstate,
                      int *stage, tf_agg_stats_t *delta, char *errstr, size_t errlen)
{
    const batch_t *bt = &a->fly;
    PGresult *r = NULL;
    int rc = -1;
    sqlstate[0] = 0;
    /* Release markers (009_releases.sql): a few per file, staged in
     * tf_release; the batch's facts go to tf_stage (stage_range). */
    size_t nmarks = 0;
    tf_buf_t mk = {0};
    for (size_t i = 0; i < bt->nrecs; i++) {
        const tf_record_t *m = &bt->recs[i].rec;
        if (m->kind != TF_KIND_RELEASE)
            continue;
        nmarks++;
        copy_text(&mk, tf_dataset_name(m->dataset));
        tf_buf_append(&mk, "\t", 1);
        copy_text(&mk, m->record_id);
        tf_buf_append(&mk, "\t", 1);
        copy_int(&mk, (long long)m->revision);
        tf_buf_append(&mk, "\n", 1);
    }
    *stage = AT_BEGIN;
    a->nrejects = 0;
    if (exec_ok(a, "BEGIN", sqlstate, errstr, errlen))
        goto out;
    *stage = AT_RECORDS;
    if (nmarks) {
        r = PQexec(a->conn, "COPY tf_release (dataset, scope, revision) FROM STDIN");
        if (run(r, PGRES_COPY_IN, "COPY markers", sqlstate, errstr, errlen))
            goto out;
        if (PQputCopyData(a->conn, (const char *)mk.data, (int)mk.len) != 1 ||
            PQputCopyEnd(a->conn, NULL) != 1) {
            snprintf(errstr, errlen, "COPY markers: %s", PQerrorMessage(a->conn));
            goto out;
        }
        PQclear(r);
        r = PQgetResult(a->conn);
        if (run(r, PGRES_COMMAND_OK, "COPY markers", sqlstate, errstr, errlen))
            goto out;
        while (r) {
            PQclear(r);
            r = PQgetResult(a->conn);
        }
    }
    if (bt->nrecs) {
        if (split) {
            if (index_lines(a)) {
                snprintf(errstr, errlen, "out of memory (or a malformed COPY text)");
                goto out;
            }
            /* (The whole batch has just failed: start with its halves.) */
            size_t n = a->nlines, mid = n > 1 ? n / 2 : n;
            if ((n && isolate(a, 0, mid, careful, nmarks, sqlstate, delta, errstr, errlen)) ||
                (mid < n &&
                 isolate(a, mid, n, careful, nmarks, sqlstate, delta, errstr, errlen)))
                goto out;
            if (!n && stage_range(a, 0, 0, 1, 0, careful, nmarks, sqlstate, delta, errstr,
                                  errlen))
                goto out;
            if (a->nrejects) {
                rc = 1;
                goto out;
            }
        } else if (stage_range(a, 0, bt->nrecs, 1, 0, careful, nmarks, sqlstate, delta, errstr,
                               errlen)) {
            goto out;
        }
    }
    *stage = AT_AFTER;
    if (bt->npos) {
        tf_buf_t t = {0}, p = {0}, o = {0};
        tf_buf_append(&t, "{", 1);
        tf_buf_append(&p, "{", 1);
        tf_buf_append(&o, "{", 1);
        int n = 0;
        for (size_t i = 0; i < bt->npos; i++) {
            if (bt->pos[i].next_offset < 0) /* forgotten partition */
                continue;
            const char *sep = n++ ? "," : "";
            tf_buf_appendf(&t, "%s\"%s\"", sep, bt->pos[i].topic); /* names: [A-Za-z0-9._-] */
            tf_buf_appendf(&p, "%s%d", sep, (int)bt->pos[i].partition);
            tf_buf_appendf(&o, "%s%lld", sep, (long long)bt->pos[i].next_offset);
        }
        tf_buf_append(&t, "}", 2);
        tf_buf_append(&p, "}", 2);
        tf_buf_append(&o, "}", 2);
        const char *params[] = {a->group_id, (char *)t.data, (char *)p.data, (char *)o.data};
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
        if (run(r, PGRES_COMMAND_OK, "storing offsets", sqlstate, errstr, errlen))
            goto out;
    }
    if (a->fly_settle && !no_settle) {
        const char *params[] = {a->top_n, a->alerts_from,
                                a->settle_budget[0] ? a->settle_budget : NULL};
        PQclear(r);
        *stage = AT_SETTLE;
        int64_t s0 = tf_mono_us();
        r = PQexecParams(a->conn,
                         "SELECT evaluated, raised, remaining "
                         "FROM tradeflow.settle_alerts($1::int, $2::date, $3::int)",
                         3, NULL, params, NULL, NULL, 0);
        if (run(r, PGRES_TUPLES_OK, "settling alerts", sqlstate, errstr, errlen))
            goto out;
        delta->settles = 1;
        delta->alerts = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
        delta->settle_remaining = strtoull(PQgetvalue(r, 0, 2), NULL, 10);
        delta->last_settle_us = (uint64_t)(tf_mono_us() - s0);
        /* Vintages of the refreshed rankings (009). */
        PQclear(r);
        r = PQexec(a->conn, "SELECT tradeflow.record_vintages()");
        if (run(r, PGRES_TUPLES_OK, "recording vintages", sqlstate, errstr, errlen))
            goto out;
        /* settle_alerts skips reporters another transaction holds (a
         * consumer that died mid-settle, until PostgreSQL ends its session)
         * and does not count them in `remaining`: then this was not a
         * complete settle point either, and the caller settles again
         * (--exit-at-end waits for it). */
        if (delta->settle_remaining == 0) { /* (a backlog is settled again anyway) */
            PQclear(r);
            r = PQexec(a->conn, "SELECT EXISTS (SELECT 1 FROM tradeflow.settle_pending)");
            if (run(r, PGRES_TUPLES_OK, "settle check", sqlstate, errstr, errlen))
                goto out;
            a->fly_unsettled = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        }
    }
    PQclear(r);
    *stage = AT_AFTER; /* (a deferred check failing at COMMIT is not the settle point's) */
    int64_t c0 = tf_mono_us();
    r = PQexec(a->conn, "COMMIT");
    if (run(r, PGRES_COMMAND_OK, "COMMIT", sqlstate, errstr, errlen))
        goto out;
    delta->last_commit_us = (uint64_t)(tf_mono_us() - c0);
    rc = 0;
out:
    PQclear(r);
    tf_buf_free(&mk);
    if (rc != 0 && PQstatus(a->conn) == CONNECTION_OK &&
        PQtransactionStatus(a->conn) != PQTRANS_IDLE) {
        PGresult *rb = PQexec(a->conn, "ROLLBACK");
        PQclear(rb);
    }
    return rc;
}

/* Applies the batch in flight, retrying serialisation failures and a
 * connection that went stale while idle, and isolating the records of a
 * data error (see tf_agg.h). 0 committed, 1 rejects (a->rejects), -1 failed
 * (errstr). d->retries, pg_errors and splits count every attempt. */
static int apply_batch(tf_agg_t *a, tf_agg_stats_t *d, char *errstr, size_t errlen)
{
    int split = 0, no_settle = 0;
    for (int attempt = 1;; attempt++) {
        if (ensure_conn(a, errstr, errlen)) {
            d->pg_errors[TF_PG_ERR_TRANSIENT]++;
            return -1;
        }
        char sqlstate[6];
        int stage;
        tf_agg_stats_t one = {0};
        int rc = apply_once(a, attempt > 1, split, no_settle, sqlstate, &stage, &one, errstr,
                            errlen);
        d->splits += one.splits;
        if (rc >= 0) {
            one.settle_errors = (uint64_t)no_settle;
            one.retries = d->retries; /* (the counts kept across attempts) */
            one.splits = d->splits;
            memcpy(one.pg_errors, d->pg_errors, sizeof(one.pg_errors));
            if (rc == 1) /* (nothing of it committed: only the counts above) */
                one.applied = one.superseded = one.duplicates = 0;
            *d = one;
            return rc;
        }
        tf_pg_errclass_t cls =
            PQstatus(a->conn) != CONNECTION_OK ? TF_PG_ERR_TRANSIENT : tf_pg_classify(sqlstate);
        d->pg_errors[cls]++;
        if (PQstatus(a->conn) != CONNECTION_OK) {
            /* A connection that went stale while idle (server restarted):
             * reconnect and retry at once; if PostgreSQL is really down,
             * ensure_conn fails and the caller backs off. */
            if (attempt >= 2)
                return -1;
            d->retries++;
            continue;
        }
        if (cls == TF_PG_ERR_DATA && stage == AT_RECORDS && !split) {
            /* Deterministic and caused by records: find them. */
            TF_LOG(TF_LOG_WARNING, "pg",
                   "batch of %zu records refused (%s): isolating the records at fault: %s",
                   a->fly.nrecs, sqlstate, errstr);
            split = 1;
            continue;
        }
        if (cls == TF_PG_ERR_DATA && stage == AT_SETTLE && !no_settle) {
            /* The settle point's own data error must not stall the records:
             * the batch again without it (settle_pending keeps what it had
             * to do for the next one). (Not under a savepoint: settle_alerts
             * notifies the alerts of the top-level transaction, by xmin.) */
            snprintf(a->settle_err, sizeof(a->settle_err), "%s", errstr);
            no_settle = 1;
            continue;
        }
        if (cls == TF_PG_ERR_DATA) /* (not in the records: storing offsets) */
            TF_LOG(TF_LOG_ERR, "pg", "data error outside the records of the batch (%s)",
                   sqlstate);
        if (cls != TF_PG_ERR_RETRY || attempt >= MAX_TX_ATTEMPTS)
            return -1;
        d->retries++;
        TF_LOG(TF_LOG_INFO, "pg", "retrying batch (attempt %d): %s", attempt + 1, errstr);
        usleep((useconds_t)(1000 * (attempt * 5 + tf_mono_us() % 20)));
    }
}

static void *apply_thread(void *arg)
{
    tf_agg_t *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->go && !a->quit)
            pthread_cond_wait(&a->cv, &a->mu);
        if (!a->go) /* quit, nothing to do */
            break;
        a->go = 0;
        pthread_mutex_unlock(&a->mu);

        char errstr[sizeof(a->fly_err)];
        tf_agg_stats_t d = {0};
        int64_t t0 = tf_mono_us();
        int rc = apply_batch(a, &d, errstr, sizeof(errstr));
        d.last_apply_us = (uint64_t)(tf_mono_us() - t0);

        pthread_mutex_lock(&a->mu);
        a->fly_delta = d;
        if (rc == 0) {
            a->state = TF_AGG_DONE;
        } else if (rc == 1) {
            snprintf(a->fly_err, sizeof(a->fly_err), "%zu record(s) refused by the database",
                     a->nrejects);
            a->state = TF_AGG_REJECTED;
        } else {
            snprintf(a->fly_err, sizeof(a->fly_err), "%s", errstr);
            a->state = TF_AGG_FAILED;
        }
        pthread_cond_broadcast(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- hand-over (caller's thread) ---------------------------------------- */

int tf_agg_prepare(tf_agg_t *a)
{
    if (!a->cur_copy_ok) {
        if (build_copy(&a->cur, &a->cur_copy))
            return -1;
        a->cur_copy_ok = 1;
    }
    return 0;
}

int tf_agg_submit(tf_agg_t *a, int settle)
{
    if (tf_agg_prepare(a))
        return -1;
    pthread_mutex_lock(&a->mu);
    if (a->state != TF_AGG_IDLE) {
        pthread_mutex_unlock(&a->mu);
        return -1;
    }
    batch_t t = a->fly; /* empty, reset when its batch was done */
    a->fly = a->cur;
    a->cur = t;
    tf_buf_t c = a->fly_copy;
    a->fly_copy = a->cur_copy;
    a->cur_copy = c;
    a->cur_copy_ok = 0;
    a->fly_settle = settle;
    a->fly_unsettled = 0;
    memset(&a->fly_delta, 0, sizeof(a->fly_delta));
    a->state = TF_AGG_BUSY;
    a->go = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

/* Drops the rejected records from the batch in flight (their positions
 * stay: the offsets are stored with the rest) and rebuilds its COPY text. */
static int drop_rejects(tf_agg_t *a)
{
    batch_t *b = &a->fly;
    size_t keep = 0, k = 0;
    for (size_t i = 0; i < b->nrecs; i++) {
        if (k < a->nrejects && a->rejects[k].rec == &b->recs[i].rec) {
            k++;
            continue;
        }
        b->recs[keep++] = b->recs[i];
    }
    b->nrecs = keep;
    a->stats.rejected += a->nrejects;
    a->nrejects = 0;
    return build_copy(b, &a->fly_copy);
}

const char *tf_agg_settle_error(const tf_agg_t *a)
{
    return a->settle_err;
}

const tf_agg_reject_t *tf_agg_rejects(const tf_agg_t *a, size_t *n)
{
    int rej = a->state == TF_AGG_REJECTED; /* (only the caller changes it from there) */
    *n = rej ? a->nrejects : 0;
    return rej ? a->rejects : NULL;
}

int tf_agg_retry(tf_agg_t *a)
{
    pthread_mutex_lock(&a->mu);
    tf_agg_state_t st = a->state;
    pthread_mutex_unlock(&a->mu);
    if (st != TF_AGG_FAILED && st != TF_AGG_REJECTED)
        return -1;
    if (st == TF_AGG_REJECTED && drop_rejects(a))
        return -1;
    pthread_mutex_lock(&a->mu);
    if (st == TF_AGG_FAILED)
        a->stats.retries++;
    a->state = TF_AGG_BUSY;
    a->go = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

tf_agg_state_t tf_agg_poll(tf_agg_t *a, int wait_ms,
                           const rd_kafka_topic_partition_list_t **committed, int *settled,
                           char *errstr, size_t errlen)
{
    if (committed)
        *committed = NULL;
    if (settled)
        *settled = 0;
    pthread_mutex_lock(&a->mu);
    if (a->state == TF_AGG_BUSY && wait_ms < 0) {
        while (a->state == TF_AGG_BUSY)
            pthread_cond_wait(&a->cv, &a->mu);
    } else if (a->state == TF_AGG_BUSY && wait_ms > 0) {
        struct timespec until = tf_deadline_ms(wait_ms);
        while (a->state == TF_AGG_BUSY &&
               pthread_cond_timedwait(&a->cv, &a->mu, &until) == 0)
            ;
    }
    tf_agg_state_t st = a->state;
    if (st == TF_AGG_FAILED || st == TF_AGG_REJECTED) {
        snprintf(errstr, errlen, "%s", a->fly_err);
        /* The attempts' counts, booked once (the batch may never commit). */
        tf_agg_stats_t *d = &a->fly_delta;
        a->stats.retries += d->retries;
        a->stats.splits += d->splits;
        for (int i = 0; i < 4; i++)
            a->stats.pg_errors[i] += d->pg_errors[i];
        d->retries = d->splits = 0;
        memset(d->pg_errors, 0, sizeof(d->pg_errors));
    }
    pthread_mutex_unlock(&a->mu);
    if (st != TF_AGG_DONE)
        return st;

    /* Committed: count it, list the stored offsets, empty the batch. */
    batch_t *b = &a->fly;
    const tf_agg_stats_t *d = &a->fly_delta;
    a->stats.batches++;
    a->stats.records += b->nrecs;
    a->stats.applied += d->applied;
    a->stats.superseded += d->superseded;
    a->stats.duplicates += d->duplicates;
    a->stats.retries += d->retries;
    a->stats.splits += d->splits;
    for (int i = 0; i < 4; i++)
        a->stats.pg_errors[i] += d->pg_errors[i];
    a->stats.settles += d->settles;
    a->stats.settle_errors += d->settle_errors;
    a->stats.alerts += d->alerts;
    if (d->settles) {
        a->stats.settle_remaining = d->settle_remaining;
        a->stats.last_settle_us = d->last_settle_us;
    }
    a->stats.last_commit_us = d->last_commit_us;
    a->stats.last_apply_us = d->last_apply_us;
    if (a->committed)
        rd_kafka_topic_partition_list_destroy(a->committed);
    a->committed = rd_kafka_topic_partition_list_new((int)b->npos);
    for (size_t i = 0; i < b->npos; i++)
        if (b->pos[i].next_offset >= 0)
            rd_kafka_topic_partition_list_add(a->committed, b->pos[i].topic,
                                              b->pos[i].partition)
                ->offset = b->pos[i].next_offset;
    if (committed)
        *committed = a->committed;
    if (settled)
        *settled = a->fly_settle && !a->fly_unsettled;
    batch_reset(b);
    pthread_mutex_lock(&a->mu);
    a->state = TF_AGG_IDLE;
    pthread_mutex_unlock(&a->mu);
    return TF_AGG_DONE;
}

/* Drops the records of parts from a batch; their positions stay (records
 * point at them by index) but are not stored: next_offset -1. */
static void batch_forget(batch_t *b, const rd_kafka_topic_partition_list_t *parts)
{
    size_t keep = 0;
    for (size_t i = 0; i < b->nrecs; i++) {
        const position_t *p = &b->pos[b->recs[i].pos];
        if (rd_kafka_topic_partition_list_find(parts, p->topic, p->partition))
            continue;
        b->recs[keep++] = b->recs[i];
    }
    b->nrecs = keep;
    rehash(b);
    for (size_t i = 0; i < b->npos; i++)
        if (rd_kafka_topic_partition_list_find(parts, b->pos[i].topic, b->pos[i].partition))
            b->pos[i].next_offset = -1;
    b->nmsgs = b->nrecs;
}

void tf_agg_forget(tf_agg_t *a, const rd_kafka_topic_partition_list_t *parts)
{
    batch_forget(&a->cur, parts);
    pthread_mutex_lock(&a->mu);
    if (a->state == TF_AGG_REJECTED) { /* (the rejects point into the batch) */
        a->nrejects = 0;
        a->state = TF_AGG_FAILED;
    }
    int failed = a->state == TF_AGG_FAILED;
    pthread_mutex_unlock(&a->mu);
    a->cur_copy_ok = 0;
    if (failed) {
        batch_forget(&a->fly, parts);
        if (build_copy(&a->fly, &a->fly_copy)) /* (then the old text is applied: the */
            TF_LOG(TF_LOG_ERR, "agg",             /* dropped records are idempotent) */
                   "out of memory rebuilding the batch");
    }
}
