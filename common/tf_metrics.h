/*
 * tf_metrics.h - a small thread-safe metrics registry (counters, gauges,
 * histograms with fixed buckets, optional labels) rendered in the Prometheus
 * text exposition format 0.0.4.
 *
 * Life cycle: tf_metrics_new() makes a registry; tf_metrics_counter(),
 * tf_metrics_gauge() and tf_metrics_histogram() register a metric family and
 * return a handle that the registry owns: it stays valid until
 * tf_metrics_free(), which frees every family and series at once. Nothing is
 * unregistered one by one.
 *
 * Labels: label names are given at registration as a NULL-terminated array
 * (NULL for a metric without labels); every update of a labelled family
 * passes as many label values, in the same order. A series (one combination
 * of values) is created by its first update and lives until removed with
 * tf_metrics_remove_labels() or tf_metrics_clear(). A series the registry
 * could not allocate is silently not updated (updates cannot fail).
 *
 * Threads: every function may be called from any thread at any time, also
 * while another thread renders. Updates of a metric without labels are
 * lock-free for counters and gauges; histograms and labelled series take the
 * family's mutex.
 *
 * NULL handles: every update function accepts a NULL metric and then does
 * nothing, so a program whose metrics are switched off can keep its calls.
 *
 * Errors: registration returns NULL and fills errstr (invalid name, label
 * name or buckets; the same name registered with another type, labels or
 * buckets; out of memory). Nothing here prints or exits.
 *
 * Numbers are formatted with the C library's printf: keep LC_NUMERIC "C"
 * (the default of a program that never calls setlocale).
 */
#ifndef TF_METRICS_H
#define TF_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "tf_buf.h"

typedef struct tf_metrics tf_metrics_t;
typedef struct tf_metric tf_metric_t;

typedef enum tf_metric_type {
    TF_METRIC_COUNTER = 0,
    TF_METRIC_GAUGE = 1,
    TF_METRIC_HISTOGRAM = 2,
} tf_metric_type_t;

/* The Content-Type of tf_metrics_render()'s output. */
#define TF_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A new empty registry, or NULL when memory runs out. Free it with
 * tf_metrics_free(). */
tf_metrics_t *tf_metrics_new(void);

/* Frees the registry, its families and their series. Every tf_metric_t of
 * this registry is invalid afterwards: stop the threads that update them (and
 * the HTTP server that renders them) first. NULL is a no-op. */
void tf_metrics_free(tf_metrics_t *m);

/* Registers a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* and not start with "__"; help is free text (may be
 * NULL). Registering the same name again with the same type, label names
 * (and buckets) returns the existing handle. The strings are copied. */
tf_metric_t *tf_metrics_counter(tf_metrics_t *m, const char *name, const char *help,
                                const char *const *label_names, char *errstr, size_t errlen);
tf_metric_t *tf_metrics_gauge(tf_metrics_t *m, const char *name, const char *help,
                              const char *const *label_names, char *errstr, size_t errlen);
/* bounds: nbounds finite upper bounds in strictly increasing order (the +Inf
 * bucket is implicit); the label name "le" is reserved. */
tf_metric_t *tf_metrics_histogram(tf_metrics_t *m, const char *name, const char *help,
                                  const double *bounds, size_t nbounds,
                                  const char *const *label_names, char *errstr, size_t errlen);

/* Counters count events; their value only goes up. */
void tf_metrics_counter_add(tf_metric_t *c, uint64_t n);
void tf_metrics_counter_add_labels(tf_metric_t *c, const char *const *values, uint64_t n);
/* Copies a counter that is kept elsewhere (e.g. librdkafka's totals). Only
 * for that: a counter that goes down reads as a restart to Prometheus. */
void tf_metrics_counter_set(tf_metric_t *c, uint64_t v);
void tf_metrics_counter_set_labels(tf_metric_t *c, const char *const *values, uint64_t v);

/* Gauges hold a value that goes up and down. */
void tf_metrics_gauge_set(tf_metric_t *g, double v);
void tf_metrics_gauge_add(tf_metric_t *g, double delta);
void tf_metrics_gauge_set_labels(tf_metric_t *g, const char *const *values, double v);
void tf_metrics_gauge_add_labels(tf_metric_t *g, const char *const *values, double delta);

/* Histograms count observations into their fixed buckets (v <= bound) and
 * keep their sum and count. NaN is ignored. */
void tf_metrics_hist_observe(tf_metric_t *h, double v);
void tf_metrics_hist_observe_labels(tf_metric_t *h, const char *const *values, double v);

/* Removes one series of a labelled family (e.g. a partition no longer
 * assigned); returns 1 if it existed, 0 if not. */
int tf_metrics_remove_labels(tf_metric_t *f, const char *const *values);
/* Removes every series of a labelled family; a family without labels is reset
 * to zero instead. */
void tf_metrics_clear(tf_metric_t *f);

/* Reads back a value (tests, readiness checks). A series that does not exist
 * reads as 0; for a histogram, the counter/gauge readers return its count and
 * its sum. */
uint64_t tf_metrics_counter_value(tf_metric_t *c, const char *const *values_or_NULL);
double tf_metrics_gauge_value(tf_metric_t *g, const char *const *values_or_NULL);
/* Number of series of a family (1 for a family without labels). */
size_t tf_metrics_series_count(tf_metric_t *f);

/* Appends the whole registry to out in the text exposition format 0.0.4:
 * families in registration order, each with its HELP and TYPE lines, series
 * in creation order. Returns 0, or -1 when memory runs out (out may then
 * hold a partial text). */
int tf_metrics_render(tf_metrics_t *m, tf_buf_t *out);

/* Formats v the way the exposition format wants it (shortest text that reads
 * back as the same double; "NaN", "+Inf", "-Inf"). Returns buf. */
char *tf_metrics_format_double(double v, char *buf, size_t len);

/* ------------------------------------------------------------------------
 * tradeflow's own metrics (docs/metrics.md), registered in one call so that
 * wiring them into a program is a few lines. Members that the selected parts
 * do not include stay NULL, and updating them is a no-op.
 */
enum {
    TF_METRICS_STD_CONSUMER = 1 << 0, /* records_*, batch_*, pg_commit_seconds */
    TF_METRICS_STD_ALERTS = 1 << 1,   /* alerts_raised, alerts_relayed */
    TF_METRICS_STD_PRODUCER = 1 << 2, /* producer_delivered/failed/rejected */
};

typedef struct tf_metrics_std {
    /* Always: tradeflow_up (1) and tradeflow_build_info{program,version} (1). */
    tf_metric_t *up;
    tf_metric_t *build_info;
    /* TF_METRICS_STD_CONSUMER */
    tf_metric_t *records_consumed;      /* counter: messages taken from Kafka */
    tf_metric_t *records_applied;       /* counter: new records and higher revisions */
    tf_metric_t *records_duplicate;     /* counter: same or lower revision, no effect */
    tf_metric_t *records_superseded;    /* counter: revisions that replaced another */
    tf_metric_t *records_dead_lettered; /* counter: poison messages sent to the DLQ */
    tf_metric_t *batch_records;         /* histogram: records per applied batch */
    tf_metric_t *batch_apply_seconds;   /* histogram: time to apply one batch */
    tf_metric_t *pg_commit_seconds;     /* histogram: PostgreSQL COMMIT latency */
    tf_metric_t *last_settle_seconds;   /* gauge: Unix time of the last settle point */
    tf_metric_t *pg_errors;        /* counter{class}: failed transaction attempts */
    tf_metric_t *batch_retries;    /* counter: batch transactions retried */
    tf_metric_t *batch_splits;     /* counter: sub-transactions isolating bad records */
    tf_metric_t *records_rejected; /* counter: records refused by the database (DLQ) */
    /* TF_METRICS_STD_ALERTS */
    tf_metric_t *alerts_raised;  /* counter: ranking-shift alerts written */
    tf_metric_t *alerts_relayed; /* counter: alerts published to Kafka */
    /* TF_METRICS_STD_PRODUCER */
    tf_metric_t *producer_delivered; /* counter: delivery reports without error */
    tf_metric_t *producer_failed;    /* counter: delivery reports with an error */
    tf_metric_t *producer_rejected;  /* counter: input records failing validation */
} tf_metrics_std_t;

/* Registers the parts of tradeflow's metric set selected by `parts` in m and
 * fills *out (zeroed first). program and version label tradeflow_build_info.
 * Returns 0, or -1 with errstr filled. */
int tf_metrics_std_register(tf_metrics_t *m, unsigned parts, const char *program,
                            const char *version, tf_metrics_std_t *out, char *errstr,
                            size_t errlen);

#endif
