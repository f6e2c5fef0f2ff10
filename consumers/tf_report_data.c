/*
 * tf_report_data.c - reads one partner report from the reporting views.
 */
#include "tf_report_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The scope's five columns are always parameters $1..$5 in this order. */
#define SCOPE_WHERE(t)                                                                             \
    t "dataset = $1 AND " t "reporter = $2 AND " t "flow = $3 AND " t "basis = $4 AND " t          \
      "level = $5"

static void copy_str(char *dst, size_t dstlen, const char *src)
{
    snprintf(dst, dstlen, "%s", src ? src : "");
}

/* Runs a parameterised query that returns rows; NULL + errstr on failure. */
static PGresult *query(PGconn *c, const char *what, const char *sql, int n,
                       const char *const *params, char *errstr, size_t errlen)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *msg = PQresultErrorMessage(res);
        snprintf(errstr, errlen, "%s: %s", what,
                 msg && *msg ? msg : PQerrorMessage(c));
        /* libpq's messages end with a newline: keep errstr one line. */
        size_t len = strlen(errstr);
        while (len > 0 && (errstr[len - 1] == '\n' || errstr[len - 1] == '\r'))
            errstr[--len] = '\0';
        PQclear(res);
        return NULL;
    }
    return res;
}

static int command(PGconn *c, const char *sql, char *errstr, size_t errlen)
{
    PGresult *res = PQexec(c, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        snprintf(errstr, errlen, "%s: %s", sql, PQerrorMessage(c));
        size_t len = strlen(errstr);
        while (len > 0 && errstr[len - 1] == '\n')
            errstr[--len] = '\0';
    }
    PQclear(res);
    return ok ? 0 : -1;
}

static double to_double(const char *s)
{
    if (!s || !*s)
        return NAN;
    return strtod(s, NULL);
}

/* Index of period p in the sorted array a[n], or -1. */
static long find_period(const int32_t *a, size_t n, int32_t p)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && a[lo] == p ? (long)lo : -1;
}

static int parse_period_cell(const char *s, int32_t *out, char *errstr, size_t errlen)
{
    char e[128];
    if (tf_period_parse(s, out, e, sizeof(e)) != 0) {
        snprintf(errstr, errlen, "unexpected period from the database: %s", e);
        return -1;
    }
    return 0;
}

void tf_report_destroy(tf_report_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nseries; i++) {
        free(r->series[i].ranks);
        free(r->series[i].shares);
    }
    free(r->series);
    free(r->rows);
    free(r->rank_periods);
    free(r->share_periods);
    free(r->alerts);
    free(r);
}

/* Chooses the x periods of both charts from all periods of the scope up to
 * the report's period (sorted ascending). */
static int choose_periods(tf_report_t *r, const tf_report_query_t *q, const int32_t *all,
                          size_t nall)
{
    /* Rank history. */
    r->rank_periods = calloc(nall ? nall : 1, sizeof(int32_t));
    r->share_periods = calloc(nall ? nall : 1, sizeof(int32_t));
    if (!r->rank_periods || !r->share_periods)
        return -1;
    if (strcmp(q->basis, "ytd") == 0) {
        /* Each earlier year's last YTD period (its full year when December
         * was published), then the report's period: like-for-like years
         * and the year so far. At most the last 10 years. */
        size_t n = 0;
        for (size_t i = 0; i < nall; i++) {
            int32_t p = all[i];
            if (p == r->period) {
                r->rank_periods[n++] = p;
                break;
            }
            int last_of_year = i + 1 == nall || tf_period_year(all[i + 1]) != tf_period_year(p);
            if (last_of_year && tf_period_year(p) < tf_period_year(r->period))
                r->rank_periods[n++] = p;
        }
        size_t keep = n > 10 ? 10 : n;
        memmove(r->rank_periods, r->rank_periods + (n - keep), keep * sizeof(int32_t));
        r->nrank_periods = keep;
    } else {
        size_t keep = nall > (size_t)q->history_months ? (size_t)q->history_months : nall;
        memcpy(r->rank_periods, all + (nall - keep), keep * sizeof(int32_t));
        r->nrank_periods = keep;
    }
    size_t keep = nall > (size_t)q->share_months ? (size_t)q->share_months : nall;
    memcpy(r->share_periods, all + (nall - keep), keep * sizeof(int32_t));
    r->nshare_periods = keep;
    return 0;
}

static int load_table(PGconn *c, tf_report_t *r, const char *const *p, char *errstr,
                      size_t errlen)
{
    static const char sql[] =
        "SELECT coalesce(rank, 0), partner, value_usd::text,"
        "       coalesce(prev_year_value_usd::text, ''), coalesce(yoy_pct::text, ''),"
        "       coalesce(share_pct::text, ''), coalesce(share_change_pp::text, ''),"
        "       round(value_usd / 1e9, 2)::text, coalesce(round(yoy_pct, 1)::text, ''),"
        "       coalesce(round(share_pct, 1)::text, ''),"
        "       coalesce(round(share_change_pp, 1)::text, '')"
        "  FROM reporting.partner_ranking"
        " WHERE " SCOPE_WHERE("") " AND period = $6::date"
        "   AND (rank <= $7::integer OR partner = 'WLD')"
        " ORDER BY rank NULLS LAST, partner";
    PGresult *res = query(c, "reading the top partners", sql, 7, p, errstr, errlen);
    if (!res)
        return -1;
    int n = PQntuples(res);
    r->rows = calloc(n ? (size_t)n : 1, sizeof(*r->rows));
    if (!r->rows) {
        PQclear(res);
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    r->nrows = (size_t)n;
    size_t nranked = 0;
    for (int i = 0; i < n; i++) {
        tf_report_row_t *row = &r->rows[i];
        row->rank = atoi(PQgetvalue(res, i, 0));
        copy_str(row->partner, sizeof(row->partner), PQgetvalue(res, i, 1));
        copy_str(row->value_usd, sizeof(row->value_usd), PQgetvalue(res, i, 2));
        copy_str(row->prev_year_value_usd, sizeof(row->prev_year_value_usd),
                 PQgetvalue(res, i, 3));
        copy_str(row->yoy_pct, sizeof(row->yoy_pct), PQgetvalue(res, i, 4));
        copy_str(row->share_pct, sizeof(row->share_pct), PQgetvalue(res, i, 5));
        copy_str(row->share_change_pp, sizeof(row->share_change_pp), PQgetvalue(res, i, 6));
        copy_str(row->value_bn, sizeof(row->value_bn), PQgetvalue(res, i, 7));
        copy_str(row->yoy_1, sizeof(row->yoy_1), PQgetvalue(res, i, 8));
        copy_str(row->share_1, sizeof(row->share_1), PQgetvalue(res, i, 9));
        copy_str(row->share_change_1, sizeof(row->share_change_1), PQgetvalue(res, i, 10));
        row->share = to_double(row->share_pct);
        if (row->rank > 0)
            nranked++;
    }
    PQclear(res);

    /* One series per ranked row of the table. */
    r->series = calloc(nranked ? nranked : 1, sizeof(*r->series));
    if (!r->series) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < r->nrows; i++) {
        if (r->rows[i].rank == 0)
            continue;
        tf_report_series_t *s = &r->series[r->nseries++];
        copy_str(s->partner, sizeof(s->partner), r->rows[i].partner);
        s->ranks = calloc(r->nrank_periods ? r->nrank_periods : 1, sizeof(int));
        s->shares = calloc(r->nshare_periods ? r->nshare_periods : 1, sizeof(double));
        if (!s->ranks || !s->shares) {
            snprintf(errstr, errlen, "out of memory");
            return -1;
        }
        for (size_t k = 0; k < r->nshare_periods; k++)
            s->shares[k] = NAN;
    }
    return 0;
}

static int load_history(PGconn *c, tf_report_t *r, const char *const *scope, char *errstr,
                        size_t errlen)
{
    if (r->nseries == 0)
        return 0;
    int32_t first = r->period;
    if (r->nrank_periods && r->rank_periods[0] < first)
        first = r->rank_periods[0];
    if (r->nshare_periods && r->share_periods[0] < first)
        first = r->share_periods[0];
    char from[16];
    tf_period_format(first, from, sizeof(from));
    strcat(from, "-01");
    const char *p[8] = {scope[0], scope[1], scope[2], scope[3], scope[4], scope[5], from, scope[6]};
    static const char sql[] =
        "SELECT to_char(h.period, 'YYYY-MM'), h.partner, coalesce(h.rank, 0),"
        "       coalesce(h.share_pct::text, '')"
        "  FROM reporting.partner_ranking h"
        " WHERE " SCOPE_WHERE("h.") " AND h.period <= $6::date AND h.period >= $7::date"
        "   AND h.partner IN (SELECT t.partner FROM reporting.partner_ranking t"
        "                      WHERE " SCOPE_WHERE("t.") " AND t.period = $6::date"
        "                        AND t.rank <= $8::integer)";
    PGresult *res = query(c, "reading the rank and share history", sql, 8, p, errstr, errlen);
    if (!res)
        return -1;
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        int32_t per;
        if (parse_period_cell(PQgetvalue(res, i, 0), &per, errstr, errlen) != 0) {
            PQclear(res);
            return -1;
        }
        const char *partner = PQgetvalue(res, i, 1);
        tf_report_series_t *s = NULL;
        for (size_t k = 0; k < r->nseries; k++) {
            if (strcmp(r->series[k].partner, partner) == 0) {
                s = &r->series[k];
                break;
            }
        }
        if (!s)
            continue; /* ranked within top N, but cut off by table ties: cannot happen */
        long ri = find_period(r->rank_periods, r->nrank_periods, per);
        if (ri >= 0)
            s->ranks[ri] = atoi(PQgetvalue(res, i, 2));
        long si = find_period(r->share_periods, r->nshare_periods, per);
        if (si >= 0)
            s->shares[si] = to_double(PQgetvalue(res, i, 3));
    }
    PQclear(res);
    return 0;
}

static int load_alerts(PGconn *c, tf_report_t *r, const char *const *scope, int limit,
                       char *errstr, size_t errlen)
{
    if (limit <= 0)
        return 0;
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *p[7] = {scope[0], scope[1], scope[2], scope[3], scope[4], scope[5], lim};
    /* Shifts still standing: a shift later retracted (a retraction row names
     * it in `retracts`) is left out, and so are the retractions. */
    static const char sql[] =
        "SELECT a.alert_id, to_char(a.period, 'YYYY-MM'), a.partner,"
        "       coalesce(a.old_rank, 0), coalesce(a.new_rank, 0),"
        "       coalesce(round(a.value_usd / 1e9, 2)::text, ''),"
        "       to_char(a.detected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC'"
        "  FROM reporting.ranking_alerts a"
        " WHERE " SCOPE_WHERE("a.") " AND a.kind = 'shift' AND a.period <= $6::date"
        "   AND NOT EXISTS (SELECT 1 FROM reporting.ranking_alerts x"
        "                    WHERE x.retracts = a.alert_id)"
        " ORDER BY a.period DESC, a.alert_id DESC"
        " LIMIT $7::integer";
    PGresult *res = query(c, "reading the ranking-shift alerts", sql, 7, p, errstr, errlen);
    if (!res)
        return -1;
    int n = PQntuples(res);
    r->alerts = calloc(n ? (size_t)n : 1, sizeof(*r->alerts));
    if (!r->alerts) {
        PQclear(res);
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        tf_report_alert_t *a = &r->alerts[i];
        a->alert_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        if (parse_period_cell(PQgetvalue(res, i, 1), &a->period, errstr, errlen) != 0) {
            PQclear(res);
            return -1;
        }
        copy_str(a->partner, sizeof(a->partner), PQgetvalue(res, i, 2));
        a->old_rank = atoi(PQgetvalue(res, i, 3));
        a->new_rank = atoi(PQgetvalue(res, i, 4));
        copy_str(a->value_bn, sizeof(a->value_bn), PQgetvalue(res, i, 5));
        copy_str(a->detected_at, sizeof(a->detected_at), PQgetvalue(res, i, 6));
        r->nalerts++;
    }
    PQclear(res);
    return 0;
}

/* Everything after BEGIN; returns 0, 1 (no data) or -1. */
static int load_in_tx(PGconn *c, const tf_report_query_t *q, tf_report_t *r, char *errstr,
                      size_t errlen)
{
    char period[16] = "", top[16];
    snprintf(top, sizeof(top), "%d", q->top);
    const char *scope[7] = {q->dataset, q->reporter, q->flow, q->basis, q->level, period, top};
    char what[160];
    snprintf(what, sizeof(what), "%s %s %s %s %s", q->dataset, q->reporter, q->flow, q->basis,
             q->level);

    if (q->period < 0) {
        static const char sql[] = "SELECT to_char(max(period), 'YYYY-MM')"
                                  "  FROM reporting.partner_ranking WHERE " SCOPE_WHERE("");
        PGresult *res = query(c, "finding the latest period", sql, 5, scope, errstr, errlen);
        if (!res)
            return -1;
        if (PQgetisnull(res, 0, 0)) {
            PQclear(res);
            snprintf(errstr, errlen, "no data for %s", what);
            return 1;
        }
        int rc = parse_period_cell(PQgetvalue(res, 0, 0), &r->period, errstr, errlen);
        PQclear(res);
        if (rc != 0)
            return -1;
    } else {
        r->period = q->period;
    }
    tf_period_format(r->period, period, sizeof(period));
    strcat(period, "-01");

    {
        static const char sql[] = "SELECT count(*), count(rank) FROM reporting.partner_ranking"
                                  " WHERE " SCOPE_WHERE("") " AND period = $6::date";
        PGresult *res = query(c, "counting the partners", sql, 6, scope, errstr, errlen);
        if (!res)
            return -1;
        long all = atol(PQgetvalue(res, 0, 0));
        r->nranked_total = (size_t)atol(PQgetvalue(res, 0, 1));
        PQclear(res);
        if (all == 0) {
            /* Say where data is: a GACC-style feed has no January, and a
             * user asking for 2021-01 wants to hear about 2020-12. */
            static const char near_sql[] =
                "SELECT coalesce(to_char(max(period) FILTER (WHERE period < $6::date), 'YYYY-MM'), ''),"
                "       coalesce(to_char(min(period) FILTER (WHERE period > $6::date), 'YYYY-MM'), '')"
                "  FROM reporting.partner_ranking WHERE " SCOPE_WHERE("");
            char pbuf[8], hint[64] = "";
            tf_period_format(r->period, pbuf, sizeof(pbuf));
            PGresult *near = query(c, "finding the nearest periods", near_sql, 6, scope, errstr,
                                   errlen);
            if (!near)
                return -1;
            const char *before = PQgetvalue(near, 0, 0), *after = PQgetvalue(near, 0, 1);
            if (*before || *after)
                snprintf(hint, sizeof(hint), " (nearest with data:%s%s%s%s)", *before ? " " : "",
                         before, *after ? " " : "", after);
            else
                snprintf(hint, sizeof(hint), " (the scope has no data at all)");
            PQclear(near);
            snprintf(errstr, errlen, "no data for %s in %s%s", what, pbuf, hint);
            return 1;
        }
    }

    /* All periods of the scope up to the report's period. */
    {
        static const char sql[] =
            "SELECT to_char(period, 'YYYY-MM') FROM"
            " (SELECT DISTINCT period FROM reporting.partner_ranking"
            "   WHERE " SCOPE_WHERE("") " AND period <= $6::date) p"
            " ORDER BY period";
        PGresult *res = query(c, "listing the periods", sql, 6, scope, errstr, errlen);
        if (!res)
            return -1;
        size_t n = (size_t)PQntuples(res);
        int32_t *all = calloc(n ? n : 1, sizeof(int32_t));
        if (!all) {
            PQclear(res);
            snprintf(errstr, errlen, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            if (parse_period_cell(PQgetvalue(res, (int)i, 0), &all[i], errstr, errlen) != 0) {
                free(all);
                PQclear(res);
                return -1;
            }
        }
        PQclear(res);
        int rc = choose_periods(r, q, all, n);
        free(all);
        if (rc != 0) {
            snprintf(errstr, errlen, "out of memory");
            return -1;
        }
    }

    if (load_table(c, r, scope, errstr, errlen) != 0)
        return -1;
    if (load_history(c, r, scope, errstr, errlen) != 0)
        return -1;
    if (load_alerts(c, r, scope, q->alerts, errstr, errlen) != 0)
        return -1;
    return 0;
}

int tf_report_load(PGconn *c, const tf_report_query_t *q, tf_report_t **out, char *errstr,
                   size_t errlen)
{
    *out = NULL;
    if (q->top < 1 || q->alerts < 0 || q->history_months < 1 || q->share_months < 1) {
        snprintf(errstr, errlen, "invalid report query (top, alerts or history out of range)");
        return -1;
    }
    tf_report_t *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    copy_str(r->dataset, sizeof(r->dataset), q->dataset);
    copy_str(r->reporter, sizeof(r->reporter), q->reporter);
    copy_str(r->flow, sizeof(r->flow), q->flow);
    copy_str(r->level, sizeof(r->level), q->level);
    copy_str(r->basis, sizeof(r->basis), q->basis);
    copy_str(r->database, sizeof(r->database), PQdb(c));
    r->top = q->top;

    /* One snapshot for every query of the report. */
    if (command(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", errstr, errlen) != 0) {
        tf_report_destroy(r);
        return -1;
    }
    int rc = load_in_tx(c, q, r, errstr, errlen);
    char ignore[256];
    if (rc == 0 && command(c, "COMMIT", errstr, errlen) != 0)
        rc = -1;
    else if (rc != 0)
        command(c, "ROLLBACK", ignore, sizeof(ignore));
    if (rc != 0) {
        tf_report_destroy(r);
        return rc;
    }
    *out = r;
    return 0;
}
