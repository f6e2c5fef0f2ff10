/*
 * tf_deliver.c - see tf_deliver.h. Configuration and payloads first (pure),
 * then the runner (threads, libcurl, libpq).
 */
#include "tf_deliver.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "tf_log.h"
#include "tf_pg.h"

/* ---- configuration ------------------------------------------------------ */

const tf_cfg_prop_t tf_deliver_props[] = {
    {"deliver.NAME.kind", TF_CFG_ENUM, NULL, 0, 0, "alertmanager|slack|teams|cloudevents|json",
     0, "kind of destination (required); NAME: letters, digits, _ and -"},
    {"deliver.NAME.url", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "http(s) URL (required); alertmanager: its base URL, /api/v2/alerts is added; the path "
     "and query are masked in --print-config (webhook URLs hold tokens)"},
    {"deliver.NAME.auth_header", TF_CFG_STRING, NULL, 0, 0, NULL, TF_CFG_SECRET,
     "a header sent with every request, \"Name: value\" (e.g. Authorization: Bearer ...)"},
    {"deliver.NAME.ca_file", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "CA certificate file to verify the receiver's TLS certificate (default: the system's)"},
    {"deliver.NAME.timeout_ms", TF_CFG_INT, "10000", 100, 600000, NULL, 0,
     "time limit of one request, connection included"},
    {"deliver.NAME.backoff_max_ms", TF_CFG_INT, "30000", 100, 3600000, NULL, 0,
     "longest wait between retries (the wait starts at 200 ms and doubles)"},
    {"deliver.NAME.start", TF_CFG_ENUM, "earliest", 0, 0, "earliest|latest", 0,
     "where a new destination's cursor starts: the first alert, or after the newest one"},
    {"deliver.NAME.hold_s", TF_CFG_INT, "86400", 60, 31536000, NULL, 0,
     "alertmanager: how long a shift fires before it resolves by itself (endsAt)"},
    {"deliver.NAME.source", TF_CFG_STRING, "/tradeflow/alerts", 0, 0, NULL, 0,
     "cloudevents: the events' source attribute"},
    {"deliver.NAME.filter.reporter", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "only this reporter (as tradeflow-alerts --reporter)"},
    {"deliver.NAME.filter.partner", TF_CFG_STRING, NULL, 0, 0, NULL, 0, "only this partner"},
    {"deliver.NAME.filter.dataset", TF_CFG_ENUM, NULL, 0, 0, "customs|investment", 0,
     "only this dataset"},
    {"deliver.NAME.filter.flow", TF_CFG_ENUM, NULL, 0, 0, "export|import|total|outward|inward", 0,
     "only this flow"},
    {"deliver.NAME.filter.basis", TF_CFG_ENUM, NULL, 0, 0, "month|ytd", 0, "only this basis"},
    {"deliver.NAME.filter.level", TF_CFG_ENUM, NULL, 0, 0, "partner|group", 0, "only this level"},
    {"deliver.NAME.filter.max_rank", TF_CFG_INT, NULL, 1, 1000000, NULL, 0,
     "only shifts whose old or new rank is <= N"},
    {"deliver.NAME.filter.since", TF_CFG_PERIOD, NULL, 0, 0, NULL, 0,
     "only periods >= YYYY-MM"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL}};

static const char *const kind_names[] = {"alertmanager", "slack", "teams", "cloudevents", "json"};

const char *tf_deliver_kind_name(tf_deliver_kind_t k)
{
    return (unsigned)k < 5 ? kind_names[k] : "?";
}

int tf_deliver_kind_parse(const char *s, tf_deliver_kind_t *out)
{
    for (int i = 0; i < 5; i++)
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (tf_deliver_kind_t)i;
            return 0;
        }
    return -1;
}

static void dest_free(tf_deliver_dest_t *d)
{
    free(d->url);
    free(d->auth_header);
    free(d->ca_file);
    free(d->source);
    free(d->filter_reporter);
    free(d->filter_partner);
}

void tf_deliver_conf_free(tf_deliver_conf_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        dest_free(&c->dests[i]);
    free(c->dests);
    c->dests = NULL;
    c->n = 0;
}

typedef struct parse_ctx {
    tf_deliver_conf_t *conf;
    char *errstr;
    size_t errlen;
    bool *has_kind; /* per destination, parallel to conf->dests */
    size_t cap;
} parse_ctx_t;

static int set_str(char **dst, const char *v, parse_ctx_t *p)
{
    free(*dst);
    if (!(*dst = strdup(v))) {
        snprintf(p->errstr, p->errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int parse_long(const char *full, const char *v, long min, long max, long *out,
                      parse_ctx_t *p)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max) {
        snprintf(p->errstr, p->errlen, "%s: \"%.40s\" is not an integer in [%ld, %ld]", full, v,
                 min, max);
        return -1;
    }
    *out = x;
    return 0;
}

/* Finds or adds the destination called name (len bytes). */
static tf_deliver_dest_t *dest_get(parse_ctx_t *p, const char *full, const char *name, size_t len)
{
    tf_deliver_conf_t *c = p->conf;
    for (size_t i = 0; i < c->n; i++)
        if (strlen(c->dests[i].name) == len && memcmp(c->dests[i].name, name, len) == 0)
            return &c->dests[i];
    if (len == 0 || len > TF_DELIVER_NAME_MAX) {
        snprintf(p->errstr, p->errlen, "%s: the destination name must have 1 to %d characters",
                 full, TF_DELIVER_NAME_MAX);
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-')) {
            snprintf(p->errstr, p->errlen,
                     "%s: a destination name has only letters, digits, _ and -", full);
            return NULL;
        }
    }
    if (c->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4;
        tf_deliver_dest_t *nd = realloc(c->dests, cap * sizeof(*nd));
        if (!nd) {
            snprintf(p->errstr, p->errlen, "out of memory");
            return NULL;
        }
        c->dests = nd;
        bool *nk = realloc(p->has_kind, cap * sizeof(*nk));
        if (!nk) {
            snprintf(p->errstr, p->errlen, "out of memory");
            return NULL;
        }
        p->has_kind = nk;
        p->cap = cap;
    }
    tf_deliver_dest_t *d = &c->dests[c->n];
    memset(d, 0, sizeof(*d));
    p->has_kind[c->n] = false;
    c->n++;
    memcpy(d->name, name, len);
    d->name[len] = '\0';
    d->timeout_ms = 10000;
    d->backoff_max_ms = 30000;
    d->hold_s = 86400;
    d->filter.since = -1;
    return d;
}

static int parse_one(const char *key, const char *v, void *arg)
{
    parse_ctx_t *p = arg;
    char full[160];
    snprintf(full, sizeof(full), "deliver.%s", key);
    const char *dot = strchr(key, '.');
    if (!dot) {
        snprintf(p->errstr, p->errlen, "%s: expected deliver.NAME.KEY", full);
        return -1;
    }
    tf_deliver_dest_t *d = dest_get(p, full, key, (size_t)(dot - key));
    if (!d)
        return -1;
    size_t idx = (size_t)(d - p->conf->dests);
    const char *k = dot + 1;
    tf_alerts_filter_t *f = &d->filter;
    long x;
    if (strcmp(k, "kind") == 0) {
        if (tf_deliver_kind_parse(v, &d->kind) != 0) {
            snprintf(p->errstr, p->errlen,
                     "%s: unknown kind \"%.40s\" (alertmanager|slack|teams|cloudevents|json)", full,
                     v);
            return -1;
        }
        p->has_kind[idx] = true;
    } else if (strcmp(k, "url") == 0) {
        if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
            snprintf(p->errstr, p->errlen, "%s: not an http:// or https:// URL", full);
            return -1;
        }
        return set_str(&d->url, v, p);
    } else if (strcmp(k, "auth_header") == 0) {
        const char *colon = strchr(v, ':');
        if (!colon || colon == v || strpbrk(v, "\r\n")) {
            snprintf(p->errstr, p->errlen, "%s: expected \"Name: value\" on one line", full);
            return -1;
        }
        return set_str(&d->auth_header, v, p);
    } else if (strcmp(k, "ca_file") == 0) {
        if (access(v, R_OK) != 0) {
            snprintf(p->errstr, p->errlen, "%s: cannot read %.200s: %s", full, v, strerror(errno));
            return -1;
        }
        return set_str(&d->ca_file, v, p);
    } else if (strcmp(k, "source") == 0) {
        return set_str(&d->source, v, p);
    } else if (strcmp(k, "timeout_ms") == 0) {
        return parse_long(full, v, 100, 600000, &d->timeout_ms, p);
    } else if (strcmp(k, "backoff_max_ms") == 0) {
        return parse_long(full, v, 100, 3600000, &d->backoff_max_ms, p);
    } else if (strcmp(k, "hold_s") == 0) {
        return parse_long(full, v, 60, 31536000, &d->hold_s, p);
    } else if (strcmp(k, "start") == 0) {
        if (strcmp(v, "earliest") != 0 && strcmp(v, "latest") != 0) {
            snprintf(p->errstr, p->errlen, "%s: expected earliest or latest", full);
            return -1;
        }
        d->start_latest = strcmp(v, "latest") == 0;
    } else if (strcmp(k, "filter.reporter") == 0) {
        if (set_str(&d->filter_reporter, v, p) != 0)
            return -1;
        f->reporter = d->filter_reporter;
    } else if (strcmp(k, "filter.partner") == 0) {
        if (set_str(&d->filter_partner, v, p) != 0)
            return -1;
        f->partner = d->filter_partner;
    } else if (strcmp(k, "filter.dataset") == 0) {
        if (tf_dataset_parse(v, &f->dataset) != 0) {
            snprintf(p->errstr, p->errlen, "%s: unknown dataset \"%.40s\"", full, v);
            return -1;
        }
        f->has_dataset = true;
    } else if (strcmp(k, "filter.flow") == 0) {
        if (tf_alerts_flow_parse(v, &f->flow) != 0) {
            snprintf(p->errstr, p->errlen, "%s: unknown flow \"%.40s\"", full, v);
            return -1;
        }
        f->has_flow = true;
    } else if (strcmp(k, "filter.basis") == 0) {
        if (tf_alerts_basis_parse(v, &f->basis) != 0) {
            snprintf(p->errstr, p->errlen, "%s: unknown basis \"%.40s\" (month|ytd)", full, v);
            return -1;
        }
        f->has_basis = true;
    } else if (strcmp(k, "filter.level") == 0) {
        if (tf_alerts_level_parse(v, &f->level) != 0) {
            snprintf(p->errstr, p->errlen, "%s: unknown level \"%.40s\" (partner|group)", full, v);
            return -1;
        }
        f->has_level = true;
    } else if (strcmp(k, "filter.max_rank") == 0) {
        if (parse_long(full, v, 1, 1000000, &x, p) != 0)
            return -1;
        f->max_rank = (int)x;
    } else if (strcmp(k, "filter.since") == 0) {
        char perr[128];
        if (tf_period_parse(v, &f->since, perr, sizeof(perr)) != 0) {
            snprintf(p->errstr, p->errlen, "%s: %s", full, perr);
            return -1;
        }
    } else {
        snprintf(p->errstr, p->errlen, "unknown key \"%.100s\" (see --help-config)", full);
        return -1;
    }
    return 0;
}

int tf_deliver_conf_parse(const tf_config_t *cfg, tf_deliver_conf_t *out, char *errstr,
                          size_t errlen)
{
    memset(out, 0, sizeof(*out));
    parse_ctx_t p = {.conf = out, .errstr = errstr, .errlen = errlen};
    int rc = tf_config_foreach(cfg, "deliver.", parse_one, &p);
    for (size_t i = 0; rc == 0 && i < out->n; i++) {
        tf_deliver_dest_t *d = &out->dests[i];
        if (!p.has_kind[i] || !d->url) {
            snprintf(errstr, errlen, "deliver.%s: both deliver.%s.kind and deliver.%s.url are "
                     "required", d->name, d->name, d->name);
            rc = -1;
            break;
        }
        if (!d->source && set_str(&d->source, "/tradeflow/alerts", &p) != 0) {
            rc = -1;
            break;
        }
        if (d->kind == TF_DELIVER_ALERTMANAGER) {
            /* The base URL: the API path is ours to add. */
            size_t l = strlen(d->url);
            while (l > 0 && d->url[l - 1] == '/')
                d->url[--l] = '\0';
            const char *api = "/api/v2/alerts";
            if (l < strlen(api) || strcmp(d->url + l - strlen(api), api) != 0) {
                char *u = malloc(l + strlen(api) + 1);
                if (!u) {
                    snprintf(errstr, errlen, "out of memory");
                    rc = -1;
                    break;
                }
                memcpy(u, d->url, l);
                strcpy(u + l, api);
                free(d->url);
                d->url = u;
            }
        }
    }
    free(p.has_kind);
    if (rc != 0)
        tf_deliver_conf_free(out);
    return rc;
}

/* ---- payloads ----------------------------------------------------------- */

static const char *const month_abbr[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* "Jan-Nov 2020 YTD", "Jan 2020 YTD", "Nov 2020". */
static void period_text(const tf_alert_t *a, char *buf, size_t len)
{
    int y = tf_period_year(a->period), m = tf_period_month(a->period);
    if (a->basis == TF_BASIS_YTD && m > 1)
        snprintf(buf, len, "Jan-%s %d YTD", month_abbr[m - 1], y);
    else if (a->basis == TF_BASIS_YTD)
        snprintf(buf, len, "Jan %d YTD", y);
    else
        snprintf(buf, len, "%s %d", month_abbr[m - 1], y);
}

/* "partners", "export partners", "outward investment partners". */
static const char *partners_word(tf_flow_t f)
{
    switch (f) {
    case TF_FLOW_EXPORT:
        return "export partners";
    case TF_FLOW_IMPORT:
        return "import partners";
    case TF_FLOW_OUTWARD:
        return "outward investment partners";
    case TF_FLOW_INWARD:
        return "inward investment partners";
    default:
        return "partners";
    }
}

/* The shift's own phrase, without the value: "ASEAN rose to #1 of CHN's
 * partners, Jan-Nov 2020 YTD". */
static int shift_phrase(const tf_alert_t *a, char *buf, size_t len)
{
    char per[32];
    period_text(a, per, sizeof(per));
    const char *pw = partners_word(a->flow);
    if (a->old_rank <= 0)
        return snprintf(buf, len, "%s entered %s's top %s at #%d, %s", a->partner, a->reporter,
                        pw, (int)a->new_rank, per);
    if (a->new_rank <= 0)
        return snprintf(buf, len, "%s dropped out of %s's top %s (was #%d), %s", a->partner,
                        a->reporter, pw, (int)a->old_rank, per);
    return snprintf(buf, len, "%s %s to #%d of %s's %s, %s", a->partner,
                    a->new_rank < a->old_rank ? "rose" : "fell", (int)a->new_rank, a->reporter,
                    pw, per);
}

int tf_deliver_summary(const tf_alert_row_t *row, char *buf, size_t len)
{
    char phrase[256], money[64];
    shift_phrase(&row->a, phrase, sizeof(phrase));
    tf_alerts_format_money(row, money, sizeof(money));
    if (row->a.kind == TF_ALERT_RETRACTION)
        return snprintf(buf, len, "Withdrawn: %s - no longer holds (%s; alert %" PRId64 ")",
                        phrase, money, row->retracts);
    return snprintf(buf, len, "%s, %s", phrase, money);
}

tf_deliver_verdict_t tf_deliver_classify(long s)
{
    if (s >= 200 && s < 300)
        return TF_DELIVER_DONE;
    if (s == 0 || s >= 500 || s == 408 || s == 429)
        return TF_DELIVER_RETRY;
    return TF_DELIVER_PARK;
}

static void rank_text(int32_t r, char *buf, size_t len)
{
    if (r > 0)
        snprintf(buf, len, "%d", (int)r);
    else
        snprintf(buf, len, "out");
}

/* json_object_set_new that remembers a failure in *bad. */
static void put(json_t *o, const char *k, json_t *v, int *bad)
{
    if (!v || json_object_set_new(o, k, v) != 0)
        *bad = 1;
}

static json_t *alertmanager_body(const tf_deliver_dest_t *d, const tf_alert_row_t *row,
                                 int64_t shift_detected_us, int64_t now_us, const char *summary,
                                 const char *line, int *bad)
{
    const tf_alert_t *a = &row->a;
    char period[8], o[16], n[16], ts[40], money[32], id[24];
    tf_period_format(a->period, period, sizeof(period));
    rank_text(a->old_rank, o, sizeof(o));
    rank_text(a->new_rank, n, sizeof(n));
    bool up = a->new_rank > 0 && (a->old_rank <= 0 || a->new_rank < a->old_rank);
    json_t *labels = json_object(), *ann = json_object(), *al = json_object(), *arr = json_array();
    if (!labels || !ann || !al || !arr) {
        json_decref(labels);
        json_decref(ann);
        json_decref(al);
        json_decref(arr);
        *bad = 1;
        return NULL;
    }
    /* The labels are the shift's identity (the outbox never has two active
     * shifts with them): a retraction carries the same ranks, so posting
     * its labels resolves exactly the alert it withdraws. */
    put(labels, "alertname", json_string("TradeflowRankingShift"), bad);
    put(labels, "dataset", json_string(tf_dataset_name(a->dataset)), bad);
    put(labels, "reporter", json_string(a->reporter), bad);
    put(labels, "partner", json_string(a->partner), bad);
    put(labels, "flow", json_string(tf_flow_name(a->flow)), bad);
    put(labels, "basis", json_string(tf_alerts_basis_name(a->basis)), bad);
    put(labels, "level", json_string(tf_alerts_level_name(a->level)), bad);
    put(labels, "period", json_string(period), bad);
    put(labels, "kind", json_string("shift"), bad);
    put(labels, "direction", json_string(up ? "up" : "down"), bad);
    put(labels, "old_rank", json_string(o), bad);
    put(labels, "new_rank", json_string(n), bad);
    put(ann, "summary", json_string(summary), bad);
    put(ann, "description", json_string(line), bad);
    snprintf(id, sizeof(id), "%" PRId64,
             a->kind == TF_ALERT_RETRACTION ? row->retracts : a->alert_id);
    put(ann, "alert_id", json_string(id), bad);
    snprintf(id, sizeof(id), "%" PRId64, a->alert_id);
    put(ann, "idempotency_key", json_string(id), bad);
    if (a->kind == TF_ALERT_RETRACTION)
        put(ann, "retracted_by", json_string(id), bad);
    if (row->has_value) {
        tf_decimal_format(a->value_cents, 2, money, sizeof(money));
        put(ann, "value_usd", json_string(money), bad);
    }
    int64_t starts, ends;
    if (a->kind == TF_ALERT_RETRACTION) {
        starts = shift_detected_us > 0 ? shift_detected_us : a->detected_at_us;
        ends = now_us > starts ? now_us : starts;
    } else {
        /* A shift is news for hold_s; delivered late (after an outage) it
         * still fires for 10 minutes, past any group_wait. Explicit endsAt:
         * Alertmanager's resolve_timeout never applies, nothing is re-posted. */
        starts = a->detected_at_us;
        ends = a->detected_at_us + (int64_t)d->hold_s * 1000000;
        if (ends < now_us + 600 * (int64_t)1000000)
            ends = now_us + 600 * (int64_t)1000000;
    }
    tf_alerts_format_ts(starts, ts, sizeof(ts));
    put(al, "startsAt", json_string(ts), bad);
    tf_alerts_format_ts(ends, ts, sizeof(ts));
    put(al, "endsAt", json_string(ts), bad);
    put(al, "labels", labels, bad);
    put(al, "annotations", ann, bad);
    if (json_array_append_new(arr, al) != 0)
        *bad = 1;
    return arr;
}

static json_t *slack_body(const tf_alert_row_t *row, const char *summary, const char *line,
                          const char *key, int *bad)
{
    char ctx[640];
    snprintf(ctx, sizeof(ctx), "%.512s  |  alert %" PRId64 "%s", line, row->a.alert_id,
             row->a.kind == TF_ALERT_RETRACTION ? " (retraction)" : "");
    json_t *b = json_pack("{s:s, s:[{s:s, s:s, s:{s:s, s:s}}, {s:s, s:[{s:s, s:s}]}]}", "text",
                          summary, "blocks", "type", "section", "block_id", key, "text", "type",
                          "mrkdwn", "text", summary, "type", "context", "elements", "type",
                          "mrkdwn", "text", ctx);
    if (!b)
        *bad = 1;
    return b;
}

static json_t *teams_body(const tf_alert_row_t *row, const char *summary, const char *key,
                          int *bad)
{
    const tf_alert_t *a = &row->a;
    char period[8], o[16], n[16], money[64];
    tf_period_format(a->period, period, sizeof(period));
    rank_text(a->old_rank, o, sizeof(o));
    rank_text(a->new_rank, n, sizeof(n));
    tf_alerts_format_money(row, money, sizeof(money));
    char ranks[40], scope[96];
    snprintf(ranks, sizeof(ranks), "%s -> %s", o, n);
    snprintf(scope, sizeof(scope), "%s, %s, %s, %s", tf_dataset_name(a->dataset),
             tf_flow_name(a->flow), tf_alerts_basis_name(a->basis), tf_alerts_level_name(a->level));
    json_t *facts = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s},"
                              "{s:s,s:s}]",
                              "title", "Reporter", "value", a->reporter, "title", "Partner",
                              "value", a->partner, "title", "Rank", "value", ranks, "title",
                              "Period", "value", period, "title", "Scope", "value", scope,
                              "title", "Value", "value", money, "title", "Alert id", "value", key);
    if (!facts) {
        *bad = 1;
        return NULL;
    }
    json_t *b = json_pack(
        "{s:s, s:s, s:[{s:s, s:n, s:{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:b}, {s:s, s:o}]}}]}",
        "type", "message", "summary", summary, "attachments", "contentType",
        "application/vnd.microsoft.card.adaptive", "contentUrl", "content", "$schema",
        "http://adaptivecards.io/schemas/adaptive-card.json", "type", "AdaptiveCard", "version",
        "1.4", "body", "type", "TextBlock", "text", summary, "weight", "Bolder", "size", "Medium",
        "wrap", 1, "type", "FactSet", "facts", facts);
    if (!b)
        *bad = 1;
    return b;
}

char *tf_deliver_payload(const tf_deliver_dest_t *d, const tf_alert_row_t *row,
                         int64_t shift_detected_us, int64_t now_us, const char **content_type)
{
    char summary[512], line[512], key[24], ts[40];
    int bad = 0;
    tf_deliver_summary(row, summary, sizeof(summary));
    tf_alerts_format_line(row, line, sizeof(line));
    snprintf(key, sizeof(key), "%" PRId64, row->a.alert_id);
    *content_type = "application/json";
    json_t *body = NULL, *data = NULL;
    switch (d->kind) {
    case TF_DELIVER_ALERTMANAGER:
        body = alertmanager_body(d, row, shift_detected_us, now_us, summary, line, &bad);
        break;
    case TF_DELIVER_SLACK:
        body = slack_body(row, summary, line, key, &bad);
        break;
    case TF_DELIVER_TEAMS:
        body = teams_body(row, summary, key, &bad);
        break;
    case TF_DELIVER_CLOUDEVENTS:
    case TF_DELIVER_JSON: {
        char *js = tf_alerts_format_json(row);
        if (!js)
            return NULL;
        data = json_loads(js, 0, NULL);
        free(js);
        if (!data)
            return NULL;
        put(data, "summary", json_string(summary), &bad);
        put(data, "idempotency_key", json_string(key), &bad);
        if (d->kind == TF_DELIVER_JSON) {
            body = data;
            break;
        }
        char subject[160], period[8];
        const tf_alert_t *a = &row->a;
        tf_period_format(a->period, period, sizeof(period));
        snprintf(subject, sizeof(subject), "%s/%s/%s/%s/%s/%s/%s", tf_dataset_name(a->dataset),
                 a->reporter, tf_flow_name(a->flow), tf_alerts_basis_name(a->basis),
                 tf_alerts_level_name(a->level), period, a->partner);
        tf_alerts_format_ts(a->detected_at_us, ts, sizeof(ts));
        *content_type = "application/cloudevents+json";
        body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id",
                         key, "source", d->source, "type",
                         a->kind == TF_ALERT_RETRACTION ? "org.tradeflow.ranking.retraction"
                                                        : "org.tradeflow.ranking.shift",
                         "subject", subject, "time", ts, "datacontenttype", "application/json",
                         "data", data);
        if (!body)
            bad = 1;
        break;
    }
    }
    if (!body)
        return NULL;
    char *out = bad ? NULL : json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    return out;
}

/* ---- the runner --------------------------------------------------------- */

typedef struct worker {
    struct tf_deliver *d;
    const tf_deliver_dest_t *dest;
    pthread_t thread;
    bool started;
    atomic_int idle;
    CURL *curl;
    PGconn *conn;
    tf_alerts_feed_t *feed;
    char resp[512]; /* the start of the last response body */
    size_t resp_len;
    long retry_after_s; /* the last response's Retry-After (seconds), 0 = none */
    char app[96]; /* application_name */
} worker_t;

struct tf_deliver {
    worker_t *w;
    size_t n;
    char *conninfo;
    atomic_int stop;
    tf_metric_t *delivered, *failures, *parked, *backlog, *lag, *cursor, *up, *request_s,
        *latency_s;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sleeps ms milliseconds unless a stop is requested; 1 if stopped. */
static int w_nap(worker_t *w, long ms)
{
    while (ms > 0 && !atomic_load(&w->d->stop)) {
        long step = ms < 100 ? ms : 100;
        usleep((useconds_t)step * 1000);
        ms -= step;
    }
    return atomic_load(&w->d->stop) != 0;
}

static void w_close(worker_t *w)
{
    if (w->conn)
        PQfinish(w->conn);
    w->conn = NULL;
    tf_alerts_feed_destroy(w->feed);
    w->feed = NULL;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *arg)
{
    worker_t *w = arg;
    size_t n = sz * nm, room = sizeof(w->resp) - 1 - w->resp_len;
    size_t k = n < room ? n : room;
    memcpy(w->resp + w->resp_len, p, k);
    w->resp_len += k;
    w->resp[w->resp_len] = '\0';
    return n;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    worker_t *w = arg;
    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&w->d->stop) != 0; /* non-zero aborts the transfer */
}

/* One POST. Returns the HTTP status, or 0 with *reason ("timeout",
 * "connect", "tls", "transport") and err filled, or -1 if aborted by a stop. */
static long http_post(worker_t *w, const char *body, const char *ctype, int64_t alert_id,
                      const char **reason, char *err, size_t errlen)
{
    const tf_deliver_dest_t *d = w->dest;
    CURL *c = w->curl;
    char h_ct[128], h_key[64], cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdr = NULL, *t;
    long status = 0;
    snprintf(h_ct, sizeof(h_ct), "Content-Type: %s", ctype);
    snprintf(h_key, sizeof(h_key), "Idempotency-Key: %" PRId64, alert_id);
    *reason = "transport";
    curl_easy_reset(c);
    if (!(t = curl_slist_append(hdr, h_ct)) || !(hdr = t, t = curl_slist_append(hdr, h_key)) ||
        !(hdr = t, t = curl_slist_append(hdr, "Expect:")) ||
        (hdr = t, d->auth_header && !(t = curl_slist_append(hdr, d->auth_header)))) {
        curl_slist_free_all(hdr);
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    hdr = t;
    w->resp_len = 0;
    w->resp[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, d->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tradeflow-relay");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, d->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, d->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    if (d->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, d->ca_file);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdr);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        w->retry_after_s = 0;
#if LIBCURL_VERSION_NUM >= 0x074200
        curl_off_t ra = 0;
        if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            w->retry_after_s = ra > 3600 ? 3600 : (long)ra;
#endif
        return status;
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        return -1;
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        *reason = "timeout";
        break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        *reason = "connect";
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        *reason = "tls";
        break;
    default:
        break;
    }
    snprintf(err, errlen, "%s%s%s", curl_easy_strerror(rc), cerr[0] ? ": " : "", cerr);
    return 0;
}

static int w_exec_params(worker_t *w, const char *sql, int n, const char *const *p,
                         PGresult **out, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(w->conn, sql, n, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        size_t l = strlen(err);
        while (l > 0 && (err[l - 1] == '\n' || err[l - 1] == ' '))
            err[--l] = '\0';
        PQclear(r);
        return -1;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return 0;
}

/* Moves the durable cursor to after id, counting `delivered` deliveries. */
static int w_advance(worker_t *w, int64_t id, int delivered, char *err, size_t errlen)
{
    char ids[24], dn[8];
    snprintf(ids, sizeof(ids), "%" PRId64, id);
    snprintf(dn, sizeof(dn), "%d", delivered);
    const char *p[3] = {w->dest->name, ids, dn};
    if (w_exec_params(w,
                      "UPDATE tradeflow.delivery_cursors SET last_alert_id = $2::bigint, "
                      "delivered = delivered + $3::int, updated_at = now() "
                      "WHERE destination = $1 AND last_alert_id < $2::bigint",
                      3, p, NULL, err, errlen) != 0)
        return -1;
    const char *lv[1] = {w->dest->name};
    tf_metrics_gauge_set_labels(w->d->cursor, lv, (double)id);
    return 0;
}

/* Parks alert id (status, error) and moves the cursor after it, at once. */
static int w_park(worker_t *w, int64_t id, long status, const char *error, char *err,
                  size_t errlen)
{
    char ids[24], st[16];
    snprintf(ids, sizeof(ids), "%" PRId64, id);
    snprintf(st, sizeof(st), "%ld", status);
    const char *p[4] = {w->dest->name, ids, st, error};
    if (w_exec_params(w, "BEGIN", 0, NULL, NULL, err, errlen) != 0)
        return -1;
    if (w_exec_params(w,
                      "INSERT INTO tradeflow.delivery_parked (destination, alert_id, http_status, "
                      "error) VALUES ($1, $2::bigint, $3::int, $4) ON CONFLICT (destination, "
                      "alert_id) DO UPDATE SET http_status = excluded.http_status, "
                      "error = excluded.error, parked_at = now()",
                      4, p, NULL, err, errlen) != 0 ||
        w_exec_params(w,
                      "UPDATE tradeflow.delivery_cursors SET last_alert_id = $2::bigint, "
                      "parked = parked + 1, updated_at = now() "
                      "WHERE destination = $1 AND last_alert_id < $2::bigint",
                      2, p, NULL, err, errlen) != 0 ||
        w_exec_params(w, "COMMIT", 0, NULL, NULL, err, errlen) != 0) {
        PQclear(PQexec(w->conn, "ROLLBACK"));
        return -1;
    }
    const char *lv[1] = {w->dest->name};
    tf_metrics_gauge_set_labels(w->d->cursor, lv, (double)id);
    return 0;
}

static int w_backlog(worker_t *w, char *err, size_t errlen);

/* Sends one alert until the receiver takes it (1), parks it (2), or a stop
 * (0). -1: PostgreSQL failed (the session starts over; the alert is after the
 * cursor, so it is sent again). */
static int w_deliver(worker_t *w, const tf_alert_row_t *row, char *err, size_t errlen)
{
    struct tf_deliver *d = w->d;
    const char *lv[1] = {w->dest->name};
    int64_t shift_us = 0;
    if (w->dest->kind == TF_DELIVER_ALERTMANAGER && row->a.kind == TF_ALERT_RETRACTION) {
        char rid[24];
        PGresult *r;
        snprintf(rid, sizeof(rid), "%" PRId64, row->retracts);
        const char *p[1] = {rid};
        if (w_exec_params(w,
                          "SELECT (extract(epoch FROM detected_at) * 1000000)::bigint "
                          "FROM reporting.ranking_alerts WHERE alert_id = $1::bigint",
                          1, p, &r, err, errlen) != 0)
            return -1;
        if (PQntuples(r) == 1)
            shift_us = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    long backoff = 200;
    int attempts = 0;
    time_t last_log = 0, last_backlog = time(NULL);
    for (;;) {
        const char *ctype, *reason = "";
        char herr[512] = "";
        int64_t t0 = now_us();
        char *body = tf_deliver_payload(w->dest, row, shift_us, t0, &ctype);
        if (!body) {
            snprintf(err, errlen, "alert %" PRId64 ": out of memory building the payload",
                     row->a.alert_id);
            return -1;
        }
        tf_metrics_gauge_set_labels(d->lag, lv, (double)(t0 - row->a.detected_at_us) / 1e6);
        long status = http_post(w, body, ctype, row->a.alert_id, &reason, herr, sizeof(herr));
        free(body);
        int64_t t1 = now_us();
        if (status < 0)
            return 0;
        attempts++;
        tf_metrics_hist_observe_labels(d->request_s, lv, (double)(t1 - t0) / 1e6);
        tf_deliver_verdict_t v = tf_deliver_classify(status);
        if (v == TF_DELIVER_DONE) {
            tf_metrics_counter_add_labels(d->delivered, lv, 1);
            tf_metrics_gauge_set_labels(d->up, lv, 1);
            tf_metrics_hist_observe_labels(d->latency_s, lv,
                                           (double)(t1 - row->a.detected_at_us) / 1e6);
            if (attempts > 1)
                TF_LOG(TF_LOG_NOTICE, "deliver",
                       "%s: alert %" PRId64 " delivered after %d attempts", w->dest->name,
                       row->a.alert_id, attempts);
            return w_advance(w, row->a.alert_id, 1, err, errlen) == 0 ? 1 : -1;
        }
        if (v == TF_DELIVER_PARK) {
            char why[700];
            snprintf(why, sizeof(why), "HTTP %ld: %s", status, w->resp);
            TF_LOG(TF_LOG_ERR, "deliver",
                   "%s: alert %" PRId64 " refused with HTTP %ld, parked (not retried): %.200s",
                   w->dest->name, row->a.alert_id, status, w->resp);
            tf_metrics_counter_add_labels(d->parked, lv, 1);
            return w_park(w, row->a.alert_id, status, why, err, errlen) == 0 ? 2 : -1;
        }
        char rs[16];
        if (status > 0) {
            snprintf(rs, sizeof(rs), status >= 500 ? "http_5xx" : "http_%ld", status);
            reason = rs;
            snprintf(herr, sizeof(herr), "HTTP %ld: %.200s", status, w->resp);
        }
        const char *fl[2] = {w->dest->name, reason};
        tf_metrics_counter_add_labels(d->failures, fl, 1);
        tf_metrics_gauge_set_labels(d->up, lv, 0);
        if (time(NULL) - last_log >= 30) {
            TF_LOG(TF_LOG_WARNING, "deliver",
                   "%s: alert %" PRId64 ": %s (attempt %d; retrying with backoff)",
                   w->dest->name, row->a.alert_id, herr, attempts);
            last_log = time(NULL);
        }
        /* A receiver's Retry-After (429, 503: Slack's rate limit) is
         * honoured, up to backoff_max_ms. */
        long wait = backoff;
        if (status > 0 && w->retry_after_s * 1000 > wait)
            wait = w->retry_after_s * 1000 < w->dest->backoff_max_ms ? w->retry_after_s * 1000
                                                                     : w->dest->backoff_max_ms;
        if (w_nap(w, wait))
            return 0;
        backoff = backoff * 2 > w->dest->backoff_max_ms ? w->dest->backoff_max_ms : backoff * 2;
        /* Keep the backlog gauge current while the head alert waits (and
         * notice a lost PostgreSQL connection). */
        if (time(NULL) - last_backlog >= 5) {
            if (w_backlog(w, err, errlen) != 0)
                return -1;
            last_backlog = time(NULL);
        }
    }
}

static int w_backlog(worker_t *w, char *err, size_t errlen)
{
    char cur[24];
    PGresult *r;
    snprintf(cur, sizeof(cur), "%" PRId64, tf_alerts_feed_cursor(w->feed));
    const char *p[1] = {cur};
    if (w_exec_params(w,
                      "SELECT count(*) FROM reporting.ranking_alerts "
                      "WHERE alert_id > $1::bigint AND NOT suppressed",
                      1, p, &r, err, errlen) != 0)
        return -1;
    const char *lv[1] = {w->dest->name};
    tf_metrics_gauge_set_labels(w->d->backlog, lv, strtod(PQgetvalue(r, 0, 0), NULL));
    PQclear(r);
    return 0;
}

/* Connects, takes the destination's lock, LISTENs and reads the cursor.
 * 0 ok, 1 stopped, -1 error. */
static int w_open(worker_t *w, char *err, size_t errlen)
{
    const tf_deliver_dest_t *dest = w->dest;
    const char *lv[1] = {dest->name};
    w->conn = tf_pg_connect(w->d->conninfo, w->app, err, errlen);
    if (!w->conn)
        return -1;
    const char *p[3] = {dest->name, tf_deliver_kind_name(dest->kind),
                        dest->start_latest ? "t" : "f"};
    int waited = 0;
    for (;;) {
        PGresult *r;
        if (w_exec_params(w,
                          "SELECT pg_try_advisory_lock(hashtextextended('tradeflow-deliver|' || "
                          "$1, 0))",
                          1, p, &r, err, errlen) != 0)
            return -1;
        int got = PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if (got)
            break;
        if (!waited)
            TF_LOG(TF_LOG_NOTICE, "deliver",
                   "%s: another relay delivers to this destination; waiting to take over",
                   dest->name);
        waited = 1;
        if (w_nap(w, 1000))
            return 1;
        if (PQstatus(w->conn) != CONNECTION_OK) {
            snprintf(err, errlen, "connection lost while waiting for the lock");
            return -1;
        }
    }
    if (w_exec_params(w, "LISTEN tradeflow_alerts", 0, NULL, NULL, err, errlen) != 0)
        return -1;
    PGresult *r;
    if (w_exec_params(w,
                      "INSERT INTO tradeflow.delivery_cursors (destination, kind, last_alert_id) "
                      "SELECT $1, $2, CASE WHEN $3::boolean THEN coalesce(max(alert_id), 0) "
                      "ELSE 0 END FROM tradeflow.alerts ON CONFLICT (destination) DO NOTHING",
                      3, p, NULL, err, errlen) != 0 ||
        w_exec_params(w,
                      "SELECT last_alert_id FROM tradeflow.delivery_cursors WHERE destination = $1",
                      1, p, &r, err, errlen) != 0)
        return -1;
    int64_t cur = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    if (!(w->feed = tf_alerts_feed_new(cur, err, errlen)))
        return -1;
    tf_metrics_gauge_set_labels(w->d->cursor, lv, (double)cur);
    TF_LOG(TF_LOG_INFO, "deliver", "%s (%s): %sdelivering after alert %" PRId64, dest->name,
           tf_deliver_kind_name(dest->kind), waited ? "took over; " : "", cur);
    return 0;
}

#define FETCH_MAX 100

/* One session: 0 stopped, -1 error (retry after a backoff). */
static int w_session(worker_t *w)
{
    char err[1024];
    int rc = w_open(w, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            TF_LOG(TF_LOG_WARNING, "deliver", "%s: PostgreSQL: %s", w->dest->name, err);
        w_close(w);
        return rc > 0 ? 0 : -1;
    }
    const char *lv[1] = {w->dest->name};
    int check_backlog = 1;
    while (!atomic_load(&w->d->stop)) {
        const tf_alert_row_t *rows;
        size_t n;
        int held = 0;
        if (check_backlog && w_backlog(w, err, sizeof(err)) != 0)
            goto fail;
        check_backlog = 0;
        if (tf_alerts_feed_fetch(w->feed, w->conn, FETCH_MAX, &rows, &n, &held, err,
                                 sizeof(err)) != 0)
            goto fail;
        int64_t skipped_to = 0;
        for (size_t i = 0; i < n && !atomic_load(&w->d->stop); i++) {
            const tf_alert_row_t *row = &rows[i];
            atomic_store(&w->idle, 0);
            if (!tf_alerts_filter_match(&w->dest->filter, row)) {
                skipped_to = row->a.alert_id; /* suppressed or filtered out */
                tf_alerts_feed_advance(w->feed, row->a.alert_id);
                continue;
            }
            int r = w_deliver(w, row, err, sizeof(err));
            if (r < 0)
                goto fail;
            if (r == 0)
                break; /* stopped: this alert stays after the cursor */
            skipped_to = 0;
            tf_alerts_feed_advance(w->feed, row->a.alert_id);
        }
        if (skipped_to && w_advance(w, skipped_to, 0, err, sizeof(err)) != 0)
            goto fail;
        if (n > 0) {
            check_backlog = 1;
            tf_metrics_gauge_set_labels(w->d->lag, lv, 0);
        }
        if (n == FETCH_MAX)
            continue;
        if (n == 0 && !held)
            atomic_store(&w->idle, 1);
        if (n == 0 && tf_alerts_feed_wait(w->conn, held ? 50 : 1000) != 0) {
            snprintf(err, sizeof(err), "connection lost: %s", PQerrorMessage(w->conn));
            goto fail;
        }
    }
    w_close(w);
    return 0;
fail:
    atomic_store(&w->idle, 0);
    TF_LOG(TF_LOG_WARNING, "deliver", "%s: PostgreSQL: %s", w->dest->name, err);
    w_close(w);
    return -1;
}

static void *w_main(void *arg)
{
    worker_t *w = arg;
    long backoff = 200;
    while (!atomic_load(&w->d->stop)) {
        time_t t0 = time(NULL);
        if (w_session(w) == 0)
            break;
        if (time(NULL) - t0 > 30)
            backoff = 200;
        TF_LOG(TF_LOG_NOTICE, "deliver", "%s: reconnecting in %ld ms", w->dest->name, backoff);
        if (w_nap(w, backoff))
            break;
        if (backoff < 10000)
            backoff *= 2;
    }
    return NULL;
}

static const char *const l_dest[] = {"destination", NULL};
static const char *const l_reason[] = {"destination", "reason", NULL};

static int register_metrics(tf_deliver_t *d, tf_metrics_t *m, char *errstr, size_t errlen)
{
    static const double secs[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                   0.25,  0.5,    1,     2.5,  5,     10,   30};
    static const double lat[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                 5,    10,    30,   60,  300,  900, 3600};
    if (!m)
        return 0;
    d->delivered = tf_metrics_counter(m, "tradeflow_delivery_delivered_total",
                                      "alerts a destination acknowledged (2xx)", l_dest, errstr,
                                      errlen);
    d->failures = tf_metrics_counter(m, "tradeflow_delivery_failures_total",
                                     "failed attempts that are retried, by reason", l_reason,
                                     errstr, errlen);
    d->parked = tf_metrics_counter(m, "tradeflow_delivery_parked_total",
                                   "alerts a destination refused (4xx): parked, not retried",
                                   l_dest, errstr, errlen);
    d->backlog = tf_metrics_gauge(m, "tradeflow_delivery_backlog_alerts",
                                  "alerts after the destination's cursor (before its filter)",
                                  l_dest, errstr, errlen);
    d->lag = tf_metrics_gauge(m, "tradeflow_delivery_lag_seconds",
                              "age of the alert being delivered; 0 when caught up", l_dest,
                              errstr, errlen);
    d->cursor = tf_metrics_gauge(m, "tradeflow_delivery_cursor",
                                 "alert_id after which the destination's cursor stands", l_dest,
                                 errstr, errlen);
    d->up = tf_metrics_gauge(m, "tradeflow_delivery_up",
                             "1 if the last attempt succeeded, 0 while failing", l_dest, errstr,
                             errlen);
    d->request_s = tf_metrics_histogram(m, "tradeflow_delivery_request_seconds",
                                        "duration of one HTTP request", secs,
                                        sizeof(secs) / sizeof(secs[0]), l_dest, errstr, errlen);
    d->latency_s = tf_metrics_histogram(
        m, "tradeflow_delivery_latency_seconds",
        "from the alert's detection (detected_at) to the destination's 2xx", lat,
        sizeof(lat) / sizeof(lat[0]), l_dest, errstr, errlen);
    if (!d->delivered || !d->failures || !d->parked || !d->backlog || !d->lag || !d->cursor ||
        !d->up || !d->request_s || !d->latency_s)
        return -1;
    return 0;
}

tf_deliver_t *tf_deliver_start(const tf_deliver_conf_t *conf, const char *conninfo,
                               tf_metrics_t *m, char *errstr, size_t errlen)
{
    tf_deliver_t *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    if (conninfo && !(d->conninfo = strdup(conninfo))) {
        snprintf(errstr, errlen, "out of memory");
        goto fail;
    }
    if (register_metrics(d, m, errstr, errlen) != 0)
        goto fail;
    if (conf->n == 0)
        return d;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        snprintf(errstr, errlen, "curl_global_init: %s", curl_easy_strerror(curl_init_rc));
        goto fail;
    }
    if (!(d->w = calloc(conf->n, sizeof(*d->w)))) {
        snprintf(errstr, errlen, "out of memory");
        goto fail;
    }
    d->n = conf->n;
    for (size_t i = 0; i < conf->n; i++) {
        worker_t *w = &d->w[i];
        w->d = d;
        w->dest = &conf->dests[i];
        snprintf(w->app, sizeof(w->app), "tradeflow-relay/deliver:%s", w->dest->name);
        if (!(w->curl = curl_easy_init())) {
            snprintf(errstr, errlen, "curl_easy_init failed");
            goto fail;
        }
    }
    for (size_t i = 0; i < d->n; i++) {
        int e = pthread_create(&d->w[i].thread, NULL, w_main, &d->w[i]);
        if (e) {
            snprintf(errstr, errlen, "pthread_create: %s", strerror(e));
            goto fail;
        }
        d->w[i].started = true;
    }
    return d;
fail:
    tf_deliver_stop(d);
    return NULL;
}

bool tf_deliver_idle(const tf_deliver_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (!atomic_load(&d->w[i].idle))
            return false;
    return true;
}

void tf_deliver_stop(tf_deliver_t *d)
{
    if (!d)
        return;
    atomic_store(&d->stop, 1);
    for (size_t i = 0; i < d->n; i++)
        if (d->w[i].started)
            pthread_join(d->w[i].thread, NULL);
    for (size_t i = 0; i < d->n; i++) {
        w_close(&d->w[i]);
        if (d->w[i].curl)
            curl_easy_cleanup(d->w[i].curl);
    }
    free(d->w);
    free(d->conninfo);
    free(d);
}
