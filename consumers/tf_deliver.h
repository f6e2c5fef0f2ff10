/*
 * tf_deliver.h - delivery of ranking-shift alerts to HTTP destinations, once
 * per destination, hosted by tradeflow-relay (docs/alerts.md, "Delivery to
 * Alertmanager and webhooks").
 *
 * Kinds of destination:
 *   alertmanager  Prometheus Alertmanager, POST {url}/api/v2/alerts: a shift
 *                 fires (labels = the shift's identity), its retraction
 *                 resolves the same alert (same labels, endsAt = now)
 *   slack         Slack incoming webhook: {"text", "blocks"}
 *   teams         Microsoft Teams Workflows webhook: an Adaptive Card message
 *   cloudevents   CloudEvents 1.0, structured mode (application/cloudevents+json),
 *                 id = the alert's id
 *   json          the alert as tradeflow-alerts --json prints it, plus
 *                 "summary" and "idempotency_key"
 * Every request carries the header "Idempotency-Key: <alert_id>" and the same
 * key in its body, so that a receiver can drop a repeat.
 *
 * Two layers:
 *   - configuration and payloads, pure functions without I/O (unit-tested in
 *     tests/unit/test_deliver.c): tf_deliver_conf_parse(), tf_deliver_payload(),
 *     tf_deliver_summary(), tf_deliver_classify();
 *   - the runner: tf_deliver_start() runs one thread per destination. Each
 *     thread has its own PostgreSQL connection, holds the session advisory
 *     lock hashtextextended('tradeflow-deliver|' || name, 0) (one active
 *     deliverer per destination; another relay's thread waits), reads the
 *     outbox through the gap-free cursor (tf_alerts_feed.h) from the
 *     destination's durable cursor (tradeflow.delivery_cursors, migration
 *     010), posts each matching alert in alert_id order and moves the cursor
 *     after the receiver's 2xx. 5xx, 408, 429, timeouts and connection or TLS
 *     errors are retried with backoff, honouring Retry-After (the same alert,
 *     so order holds); any
 *     other status parks the alert (tradeflow.delivery_parked, cursor moved
 *     in the same transaction). A crash between the 2xx and the cursor
 *     update sends the alert again: at least once, with the idempotency key.
 *
 * Threads: the runner's threads log through tf_log (facility "deliver") - the
 * only place their errors can go; they never exit the program. The metrics
 * registry given to tf_deliver_start() is updated from those threads (it is
 * thread-safe). tf_deliver_idle() may be called from any thread.
 *
 * Errors: functions returning int return 0 or -1 and fill errstr; constructors
 * return NULL and fill errstr.
 */
#ifndef TF_DELIVER_H
#define TF_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tf_alerts_format.h"
#include "tf_config.h"
#include "tf_metrics.h"

typedef enum tf_deliver_kind {
    TF_DELIVER_ALERTMANAGER = 0,
    TF_DELIVER_SLACK,
    TF_DELIVER_TEAMS,
    TF_DELIVER_CLOUDEVENTS,
    TF_DELIVER_JSON,
} tf_deliver_kind_t;

/* The longest destination name (letters, digits, '_' and '-'). */
#define TF_DELIVER_NAME_MAX 48

/* One destination, as configured by the keys deliver.NAME.*. Every string is
 * owned by the destination (freed by tf_deliver_conf_free()); the filter's
 * reporter and partner point into filter_reporter / filter_partner. */
typedef struct tf_deliver_dest {
    char name[TF_DELIVER_NAME_MAX + 1];
    tf_deliver_kind_t kind;
    char *url;         /* the request URL (alertmanager: with /api/v2/alerts) */
    char *auth_header; /* "Name: value" sent verbatim (a secret), or NULL */
    char *ca_file;     /* CA certificate(s) for https, or NULL (system store) */
    char *source;      /* cloudevents "source" */
    long timeout_ms;   /* whole request */
    long backoff_max_ms;
    long hold_s;       /* alertmanager: how long a shift fires */
    bool start_latest; /* a new cursor starts after the newest alert, not at 0 */
    tf_alerts_filter_t filter;
    char *filter_reporter, *filter_partner;
} tf_deliver_dest_t;

typedef struct tf_deliver_conf {
    tf_deliver_dest_t *dests; /* owned array */
    size_t n;
} tf_deliver_conf_t;

/* The keys of one destination (for --help-config and docs/configuration.md):
 * a table like a program's, with "NAME" standing for the destination's name. */
extern const tf_cfg_prop_t tf_deliver_props[];

/* Reads every deliver.NAME.KEY setting of cfg (pass-through keys) into *out
 * (zeroed first). KEY is one of tf_deliver_props; url and kind are required.
 * Errors name the key: "deliver.slack.kind: unknown kind \"x\" (alertmanager|
 * slack|teams|cloudevents|json)". On error *out is left empty. The caller
 * frees *out with tf_deliver_conf_free(). */
int tf_deliver_conf_parse(const tf_config_t *cfg, tf_deliver_conf_t *out, char *errstr,
                          size_t errlen);
void tf_deliver_conf_free(tf_deliver_conf_t *c);

/* "alertmanager", "slack", ...; tf_deliver_kind_parse returns 0 or -1. */
const char *tf_deliver_kind_name(tf_deliver_kind_t k);
int tf_deliver_kind_parse(const char *s, tf_deliver_kind_t *out);

/* The one-line summary of an alert:
 *   ASEAN rose to #1 of CHN's partners, Jan-Nov 2020 YTD, US$609.58 bn
 *   EU fell to #2 of CHN's partners, Jan-Nov 2020 YTD, US$586.00 bn
 *   VNM entered CHN's top export partners at #9, Mar 2020, US$3.10 bn
 *   USA dropped out of CHN's top partners (was #10), Mar 2020, US$1.20 bn
 *   Withdrawn: ASEAN rose to #1 of CHN's partners, Jan-Nov 2020 YTD - no
 *     longer holds (US$576.58 bn; alert 21)
 * Returns what snprintf returns. */
int tf_deliver_summary(const tf_alert_row_t *row, char *buf, size_t len);

/* The request body of one alert for destination d. now_us (Unix time in
 * microseconds) is the sending time: alertmanager's endsAt is derived from it
 * (a shift: max(detected_at + hold, now + 10 min); a retraction: now).
 * shift_detected_us is, for a retraction, the detected_at of the shift it
 * withdraws (its alertmanager startsAt; 0 = unknown, then the retraction's
 * own). *content_type receives a static string. The caller frees the result
 * with free(); NULL when memory runs out. */
char *tf_deliver_payload(const tf_deliver_dest_t *d, const tf_alert_row_t *row,
                         int64_t shift_detected_us, int64_t now_us, const char **content_type);

typedef enum tf_deliver_verdict {
    TF_DELIVER_DONE = 0, /* 2xx: delivered */
    TF_DELIVER_RETRY,    /* 5xx, 408, 429, or a transport error: try again later */
    TF_DELIVER_PARK,     /* any other status: the receiver refuses it; park it */
} tf_deliver_verdict_t;

/* What to do after an attempt: http_status is the response's status, or 0
 * when there was no response (timeout, connection or TLS error). */
tf_deliver_verdict_t tf_deliver_classify(long http_status);

typedef struct tf_deliver tf_deliver_t;

/* Starts one delivery thread per destination of conf (borrowed: it must
 * outlive the runner). conninfo (copied; NULL = the PG* variables) is the
 * PostgreSQL connection; m (borrowed, may be NULL) receives the
 * tradeflow_delivery_* metrics (docs/metrics.md). The caller stops and frees
 * the runner with tf_deliver_stop(). A conf without destinations gives a
 * runner that does nothing and is always idle. */
tf_deliver_t *tf_deliver_start(const tf_deliver_conf_t *conf, const char *conninfo,
                               tf_metrics_t *m, char *errstr, size_t errlen);

/* True when every destination has caught up: its thread holds its lock, no
 * deliverable alert is left after its cursor and none is being retried
 * (parked alerts count as handled). For --exit-when-idle. */
bool tf_deliver_idle(const tf_deliver_t *d);

/* Asks the threads to stop (an HTTP request in flight is aborted; its alert
 * stays after the cursor, so it is sent again at the next start), joins them
 * and frees the runner. NULL is a no-op. */
void tf_deliver_stop(tf_deliver_t *d);

#endif
