/*
 * tf_report_data.h - the data of one partner report, read from the stable
 * reporting views (reporting.partner_ranking, reporting.ranking_alerts) and
 * nothing else, so that it works as the read-only role tradeflow_reader.
 *
 * One report covers one scope (dataset, reporter, flow, level, basis) and one
 * period: the top partners of that period, their rank and share history, and
 * the latest ranking-shift alerts of the scope. Every query is parameterised
 * and all of them run in one READ ONLY REPEATABLE READ transaction, so the
 * table, the charts and the alerts show the same snapshot even while
 * tradeflow-aggregate keeps committing batches.
 *
 * The loaded report is a plain read-only structure (like librdkafka's
 * metadata): tf_report_load() allocates it, the caller reads its fields and
 * frees the whole of it with tf_report_destroy(). Nothing here prints or
 * exits.
 */
#ifndef TF_REPORT_DATA_H
#define TF_REPORT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "tf_record.h"

/* Numbers are kept as the exact decimal text PostgreSQL returns; "" = SQL
 * NULL. 48 bytes hold any numeric(22,2) and any 4-decimal percentage. */
#define TF_REPORT_NUM_MAX 48

/* What to report. The strings are borrowed for the duration of the load. */
typedef struct tf_report_query {
    const char *dataset;  /* "customs" | "investment" */
    const char *reporter; /* e.g. "CHN" */
    const char *flow;     /* "export" | "import" | "total" | "outward" | "inward" */
    const char *level;    /* "partner" | "group" */
    const char *basis;    /* "month" | "ytd" */
    int32_t period;       /* tf_period (year*12 + month-1); -1 = the latest with data */
    int top;              /* partners ranked 1..top (ties may add more), >= 1 */
    int alerts;           /* latest alerts to read, >= 0 */
    int history_months;   /* month basis: months of rank history, >= 1 */
    int share_months;     /* months in the shares chart, >= 1 */
} tf_report_query_t;

/* One row of the top-partner table, from reporting.partner_ranking. */
typedef struct tf_report_row {
    int rank; /* 0 for WLD, which is never ranked */
    char partner[TF_CODE_MAX + 1];
    char value_usd[TF_REPORT_NUM_MAX];           /* exact, e.g. "609580000000.00" */
    char prev_year_value_usd[TF_REPORT_NUM_MAX]; /* exact, "" = none */
    char yoy_pct[TF_REPORT_NUM_MAX];             /* exact (4 decimals), "" = none */
    char share_pct[TF_REPORT_NUM_MAX];           /* exact (4 decimals), "" = none */
    char share_change_pp[TF_REPORT_NUM_MAX];     /* exact (4 decimals), "" = none */
    /* The same rounded half away from zero by PostgreSQL, for display:
     * US$ bn with 2 decimals, percentages with 1. */
    char value_bn[TF_REPORT_NUM_MAX];
    char yoy_1[TF_REPORT_NUM_MAX];
    char share_1[TF_REPORT_NUM_MAX];
    char share_change_1[TF_REPORT_NUM_MAX];
    double share; /* share_pct as a double, for drawing only; NAN = none */
} tf_report_row_t;

/* One partner's history over the report's periods. */
typedef struct tf_report_series {
    char partner[TF_CODE_MAX + 1];
    int *ranks;     /* [nrank_periods]; 0 = no data in that period */
    double *shares; /* [nshare_periods], for drawing; NAN = no data */
} tf_report_series_t;

/* A ranking shift (kind 'shift', not retracted) from reporting.ranking_alerts. */
typedef struct tf_report_alert {
    int64_t alert_id;
    int32_t period;
    char partner[TF_CODE_MAX + 1];
    int old_rank, new_rank; /* 0 = outside the top N the aggregator watched */
    char value_bn[TF_REPORT_NUM_MAX];
    char detected_at[32]; /* "YYYY-MM-DD HH:MM UTC" */
} tf_report_alert_t;

typedef struct tf_report {
    /* The scope, copied from the query. */
    char dataset[16], reporter[TF_CODE_MAX + 1], flow[16], level[16], basis[16];
    int32_t period; /* the resolved period */
    int top;
    char database[64]; /* PQdb() of the connection, for the footer */

    /* The table: ranked partners (rank <= top) in rank order, then WLD if
     * present. */
    tf_report_row_t *rows;
    size_t nrows;
    size_t nranked_total; /* partners ranked in that period, all ranks */

    /* Rank history (bump chart): the x periods. YTD basis: each earlier
     * year's last period with data, then the report's period; month basis:
     * the last history_months periods with data up to the report's period. */
    int32_t *rank_periods;
    size_t nrank_periods;
    /* Shares over time: the last share_months periods with data. */
    int32_t *share_periods;
    size_t nshare_periods;
    /* One series per ranked partner of the table, in table order. */
    tf_report_series_t *series;
    size_t nseries;

    tf_report_alert_t *alerts; /* newest period first */
    size_t nalerts;
} tf_report_t;

/* Reads the report. Returns 0 and sets *out (caller frees with
 * tf_report_destroy), 1 if the scope has no data (for that period), with the
 * reason in errstr, or -1 on error (errstr). c must be idle (no transaction
 * open); it is left idle. */
int tf_report_load(PGconn *c, const tf_report_query_t *q, tf_report_t **out, char *errstr,
                   size_t errlen);

/* Frees a report and everything in it. NULL is fine. */
void tf_report_destroy(tf_report_t *r);

#endif
