/*
 * tf_alerts_feed.c - see tf_alerts_feed.h for the gap rule.
 */
#include "tf_alerts_feed.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tf_alerts_feed {
    int64_t cursor;       /* every row with alert_id <= cursor was handed out and processed */
    char gap_xid[32];     /* xid8 taken just after the read that saw a hole ("" = none) */
    int64_t gap_max;      /* highest id of that read */
    tf_alert_row_t *rows; /* the last fetch's final rows (owned) */
    size_t cap;
};

static void pg_err(char *errstr, size_t errlen, const char *what, const char *msg)
{
    size_t n;
    snprintf(errstr, errlen, "%s: %s", what, msg ? msg : "(no message)");
    n = strlen(errstr);
    while (n > 0 && (errstr[n - 1] == '\n' || errstr[n - 1] == ' '))
        errstr[--n] = '\0';
}

tf_alerts_feed_t *tf_alerts_feed_new(int64_t after_id, char *errstr, size_t errlen)
{
    tf_alerts_feed_t *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    f->cursor = after_id < 0 ? 0 : after_id;
    return f;
}

void tf_alerts_feed_destroy(tf_alerts_feed_t *f)
{
    if (!f)
        return;
    free(f->rows);
    free(f);
}

int tf_alerts_feed_wait(PGconn *c, int ms)
{
    struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
    if (pfd.fd < 0)
        return -1;
    int n = poll(&pfd, 1, ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    if (n > 0 && !PQconsumeInput(c))
        return -1;
    PGnotify *nt;
    while ((nt = PQnotifies(c)))
        PQfreemem(nt);
    return PQstatus(c) == CONNECTION_OK ? 0 : -1;
}

void tf_alerts_feed_advance(tf_alerts_feed_t *f, int64_t alert_id)
{
    if (alert_id > f->cursor)
        f->cursor = alert_id;
}

int64_t tf_alerts_feed_cursor(const tf_alerts_feed_t *f)
{
    return f->cursor;
}

int tf_alerts_feed_max_id(PGconn *c, int64_t *out, char *errstr, size_t errlen)
{
    PGresult *r =
        PQexec(c, "SELECT coalesce(max(alert_id), 0) FROM reporting.ranking_alerts");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_err(errstr, errlen, "reading the newest alert", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    *out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int tf_alerts_feed_visible_tail(PGconn *c, int window, int64_t *max_id, int64_t **ids, size_t *n,
                                char *errstr, size_t errlen)
{
    char w[16];
    snprintf(w, sizeof(w), "%d", window);
    const char *p[1] = {w};
    /* One statement, one snapshot: the maximum and the list agree. */
    PGresult *r = PQexecParams(
        c,
        "WITH m AS (SELECT coalesce(max(alert_id), 0) AS m FROM reporting.ranking_alerts) "
        "SELECT m.m, a.alert_id FROM m LEFT JOIN reporting.ranking_alerts a "
        "ON a.alert_id > m.m - $1::int ORDER BY a.alert_id",
        1, NULL, p, NULL, NULL, 0);
    *ids = NULL;
    *n = 0;
    *max_id = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_err(errstr, errlen, "reading the newest alerts", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    int rows = PQntuples(r);
    if (rows > 0)
        *max_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    if (rows > 0 && !PQgetisnull(r, 0, 1)) {
        *ids = malloc((size_t)rows * sizeof(**ids));
        if (!*ids) {
            snprintf(errstr, errlen, "out of memory");
            PQclear(r);
            return -1;
        }
        for (int i = 0; i < rows; i++)
            (*ids)[i] = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        *n = (size_t)rows;
    }
    PQclear(r);
    return 0;
}

static const char *const basis_names[] = {"month", "ytd"};
static const char *const level_names[] = {"partner", "group"};
static const char *const kind_names[] = {"shift", "retraction"};

const char *tf_alerts_basis_name(tf_basis_t b)
{
    return (unsigned)b < 2 ? basis_names[b] : "?";
}
const char *tf_alerts_level_name(tf_level_t l)
{
    return (unsigned)l < 2 ? level_names[l] : "?";
}
const char *tf_alerts_kind_name(tf_alert_kind_t k)
{
    return (unsigned)k < 2 ? kind_names[k] : "?";
}

int tf_alerts_basis_parse(const char *s, tf_basis_t *out)
{
    for (int i = 0; i < 2; i++)
        if (strcmp(s, basis_names[i]) == 0) {
            *out = (tf_basis_t)i;
            return 0;
        }
    return -1;
}

int tf_alerts_level_parse(const char *s, tf_level_t *out)
{
    for (int i = 0; i < 2; i++)
        if (strcmp(s, level_names[i]) == 0) {
            *out = (tf_level_t)i;
            return 0;
        }
    return -1;
}

int tf_alerts_flow_parse(const char *s, tf_flow_t *out)
{
    for (int f = TF_FLOW_EXPORT; f <= TF_FLOW_TOTAL; f++)
        if (strcmp(s, tf_flow_name((tf_flow_t)f)) == 0) {
            *out = (tf_flow_t)f;
            return 0;
        }
    return -1;
}

/* Converts one result row (columns as in FETCH_SQL) into *out. */
static int parse_row(PGresult *r, int i, tf_alert_row_t *out, char *errstr, size_t errlen)
{
    char perr[128];
    memset(out, 0, sizeof(*out));
    tf_alert_t *a = &out->a;
    a->alert_id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    if (tf_dataset_parse(PQgetvalue(r, i, 1), &a->dataset) != 0 ||
        tf_alerts_flow_parse(PQgetvalue(r, i, 3), &a->flow) != 0 ||
        tf_alerts_basis_parse(PQgetvalue(r, i, 4), &a->basis) != 0 ||
        tf_alerts_level_parse(PQgetvalue(r, i, 5), &a->level) != 0 ||
        tf_period_parse(PQgetvalue(r, i, 6), &a->period, perr, sizeof(perr)) != 0 ||
        strlen(PQgetvalue(r, i, 2)) > TF_CODE_MAX || strlen(PQgetvalue(r, i, 7)) > TF_CODE_MAX) {
        snprintf(errstr, errlen, "alert %" PRId64 ": unexpected dataset, flow, basis, level, "
                 "period or code", a->alert_id);
        return -1;
    }
    snprintf(a->reporter, sizeof(a->reporter), "%s", PQgetvalue(r, i, 2));
    snprintf(a->partner, sizeof(a->partner), "%s", PQgetvalue(r, i, 7));
    a->old_rank = PQgetisnull(r, i, 8) ? 0 : atoi(PQgetvalue(r, i, 8));
    a->new_rank = PQgetisnull(r, i, 9) ? 0 : atoi(PQgetvalue(r, i, 9));
    if (!PQgetisnull(r, i, 10)) {
        if (tf_decimal_parse(PQgetvalue(r, i, 10), 2, &a->value_cents, perr, sizeof(perr)) != 0) {
            snprintf(errstr, errlen, "alert %" PRId64 ": value_usd %s: %s", a->alert_id,
                     PQgetvalue(r, i, 10), perr);
            return -1;
        }
        out->has_value = true;
    }
    const char *kind = PQgetvalue(r, i, 11);
    if (strcmp(kind, "shift") == 0)
        a->kind = TF_ALERT_SHIFT;
    else if (strcmp(kind, "retraction") == 0)
        a->kind = TF_ALERT_RETRACTION;
    else {
        snprintf(errstr, errlen, "alert %" PRId64 ": unknown kind %s", a->alert_id, kind);
        return -1;
    }
    a->detected_at_us = strtoll(PQgetvalue(r, i, 12), NULL, 10);
    out->retracts = PQgetisnull(r, i, 13) ? 0 : strtoll(PQgetvalue(r, i, 13), NULL, 10);
    out->suppressed = PQgetvalue(r, i, 14)[0] == 't';
    out->published = PQgetvalue(r, i, 15)[0] == 't';
    return 0;
}

#define FETCH_SQL                                                                                  \
    "SELECT alert_id, dataset, reporter, flow, basis, level, to_char(period, 'YYYY-MM'), "         \
    "partner, old_rank, new_rank, value_usd::text, kind, "                                        \
    "(extract(epoch FROM detected_at) * 1000000)::bigint, retracts, suppressed, published "       \
    "FROM reporting.ranking_alerts WHERE alert_id > $1::bigint ORDER BY alert_id LIMIT $2::int"

/* Whether every transaction older than xid $1 (if given) has ended: then
 * every transaction that was running when the hole was seen has. (A
 * snapshot's xip does not list every running transaction - not those that
 * took their xid after the last commit - hence an xid of our own.) */
#define SNAP_SQL                                                                                   \
    "SELECT CASE WHEN $1::text = '' THEN false "                                                   \
    "ELSE pg_snapshot_xmin(pg_current_snapshot()) >= $1::text::xid8 END"

int tf_alerts_feed_fetch(tf_alerts_feed_t *f, PGconn *c, int limit, const tf_alert_row_t **rows,
                         size_t *n, int *held, char *errstr, size_t errlen)
{
    PGresult *r = NULL, *s = NULL;
    int rc = -1, nrows, gap_resolved;
    char cur[24], lim[16];
    *rows = NULL;
    *n = 0;
    if (held)
        *held = 0;

    r = PQexec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        pg_err(errstr, errlen, "reading alerts", PQresultErrorMessage(r));
        goto out;
    }
    PQclear(r);
    const char *sp[1] = {f->gap_xid};
    s = PQexecParams(c, SNAP_SQL, 1, NULL, sp, NULL, NULL, 0);
    if (PQresultStatus(s) != PGRES_TUPLES_OK) {
        pg_err(errstr, errlen, "reading the snapshot", PQresultErrorMessage(s));
        r = NULL;
        goto rollback;
    }
    snprintf(cur, sizeof(cur), "%" PRId64, f->cursor);
    snprintf(lim, sizeof(lim), "%d", limit > 0 ? limit : 1000);
    const char *fp[2] = {cur, lim};
    r = PQexecParams(c, FETCH_SQL, 2, NULL, fp, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_err(errstr, errlen, "reading alerts", PQresultErrorMessage(r));
        goto rollback;
    }
    nrows = PQntuples(r);
    if ((size_t)nrows > f->cap) {
        tf_alert_row_t *nr = realloc(f->rows, (size_t)nrows * sizeof(*nr));
        if (!nr) {
            snprintf(errstr, errlen, "out of memory");
            goto rollback;
        }
        f->rows = nr;
        f->cap = (size_t)nrows;
    }
    gap_resolved = PQgetvalue(s, 0, 0)[0] == 't';

    /* Rows up to `final_upto` are final whatever holes they leave. */
    int64_t final_upto = gap_resolved ? f->gap_max : f->cursor;
    int64_t expect = f->cursor + 1, max_read = f->cursor;
    size_t k = 0;
    int blocked = 0;
    for (int i = 0; i < nrows; i++) {
        tf_alert_row_t row;
        if (parse_row(r, i, &row, errstr, errlen) != 0)
            goto rollback;
        max_read = row.a.alert_id;
        if (blocked)
            continue;
        if (row.a.alert_id == expect || row.a.alert_id <= final_upto) {
            f->rows[k++] = row;
            expect = row.a.alert_id + 1;
        } else {
            blocked = 1;
        }
    }
    if (blocked) {
        /* Take an xid now, after this read's snapshot: every transaction
         * that may still commit an id up to max_read holds an older one.
         * Once all xids below ours have ended, the rows up to max_read are
         * final. A hole still open from an earlier read keeps that (older,
         * hence sooner resolved) xid. */
        if (f->gap_xid[0] == '\0' || gap_resolved) {
            PGresult *x = PQexec(c, "SELECT pg_current_xact_id()::text");
            if (PQresultStatus(x) != PGRES_TUPLES_OK) {
                pg_err(errstr, errlen, "taking a transaction id", PQresultErrorMessage(x));
                PQclear(x);
                goto rollback;
            }
            snprintf(f->gap_xid, sizeof(f->gap_xid), "%s", PQgetvalue(x, 0, 0));
            PQclear(x);
            f->gap_max = max_read;
        }
        if (held)
            *held = 1;
    } else {
        f->gap_xid[0] = '\0';
        f->gap_max = 0;
    }
    PQclear(r);
    r = PQexec(c, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        pg_err(errstr, errlen, "reading alerts", PQresultErrorMessage(r));
        goto out;
    }
    *rows = f->rows;
    *n = k;
    rc = 0;
    goto out;

rollback:
    PQclear(r);
    r = PQexec(c, "ROLLBACK");
out:
    PQclear(r);
    PQclear(s);
    return rc;
}
