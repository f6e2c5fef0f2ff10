/*
 * tf_alerts_format.c - see tf_alerts_format.h.
 */
#include "tf_alerts_format.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

bool tf_alerts_filter_match(const tf_alerts_filter_t *f, const tf_alert_row_t *row)
{
    const tf_alert_t *a = &row->a;
    if (row->suppressed && !f->include_suppressed)
        return false;
    if (f->reporter && strcmp(f->reporter, a->reporter) != 0)
        return false;
    if (f->partner && strcmp(f->partner, a->partner) != 0)
        return false;
    if ((f->has_dataset && f->dataset != a->dataset) || (f->has_flow && f->flow != a->flow) ||
        (f->has_basis && f->basis != a->basis) || (f->has_level && f->level != a->level))
        return false;
    if (f->max_rank > 0 && !((a->old_rank > 0 && a->old_rank <= f->max_rank) ||
                             (a->new_rank > 0 && a->new_rank <= f->max_rank)))
        return false;
    if (f->since >= 0 && a->period < f->since)
        return false;
    return true;
}

void tf_alerts_format_money(const tf_alert_row_t *row, char *buf, size_t len)
{
    int64_t c = row->a.value_cents;
    if (!row->has_value)
        snprintf(buf, len, "value n/a");
    else if (c >= 100000000000LL) { /* >= 1 bn USD; 1e9 cents = 0.01 bn */
        int64_t h = c / 1000000000LL + (c % 1000000000LL >= 500000000LL);
        snprintf(buf, len, "US$%" PRId64 ".%02" PRId64 " bn", h / 100, h % 100);
    } else if (c >= 100000000LL) { /* >= 1 mn USD; 1e6 cents = 0.01 mn */
        int64_t h = c / 1000000LL + (c % 1000000LL >= 500000LL);
        snprintf(buf, len, "US$%" PRId64 ".%02" PRId64 " mn", h / 100, h % 100);
    } else
        snprintf(buf, len, "US$%" PRId64 ".%02" PRId64, c / 100, c % 100);
}

static void rank_str(int32_t r, char *buf, size_t len)
{
    if (r > 0)
        snprintf(buf, len, "%d", (int)r);
    else
        snprintf(buf, len, "out");
}

int tf_alerts_format_line(const tf_alert_row_t *row, char *buf, size_t len)
{
    const tf_alert_t *a = &row->a;
    char period[8], money[64], o[16], n[16];
    tf_period_format(a->period, period, sizeof(period));
    tf_alerts_format_money(row, money, sizeof(money));
    rank_str(a->old_rank, o, sizeof(o));
    rank_str(a->new_rank, n, sizeof(n));
    if (a->kind == TF_ALERT_RETRACTION)
        return snprintf(buf, len,
                        "RETRACTED %s %s %s %s %s %s: %s %s -> %s no longer holds (%s; alert %" PRId64
                        " withdrawn)%s",
                        period, tf_dataset_name(a->dataset), a->reporter, tf_flow_name(a->flow),
                        tf_alerts_basis_name(a->basis), tf_alerts_level_name(a->level), a->partner,
                        o, n, money, row->retracts, row->suppressed ? " [suppressed]" : "");
    return snprintf(buf, len, "%s %s %s %s %s %s: %s %s -> %s (%s)%s", period,
                    tf_dataset_name(a->dataset), a->reporter, tf_flow_name(a->flow),
                    tf_alerts_basis_name(a->basis), tf_alerts_level_name(a->level), a->partner, o,
                    n, money, row->suppressed ? " [suppressed]" : "");
}

void tf_alerts_format_ts(int64_t us_epoch, char *buf, size_t len)
{
    /* Floor division, so that instants before 1970 format correctly too. */
    int64_t us = us_epoch % 1000000, s = us_epoch / 1000000;
    if (us < 0) {
        us += 1000000;
        s -= 1;
    }
    time_t secs = (time_t)s;
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t l = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + l, len - l, ".%06dZ", (int)us);
}

char *tf_alerts_format_json(const tf_alert_row_t *row)
{
    const tf_alert_t *a = &row->a;
    char period[8], money[32], ts[40];
    tf_period_format(a->period, period, sizeof(period));
    tf_decimal_format(a->value_cents, 2, money, sizeof(money));
    tf_alerts_format_ts(a->detected_at_us, ts, sizeof(ts));
    /* "o" steals the new references, also when json_pack fails. */
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:s, "
                          "s:o, s:b}",
                          "alert_id", (json_int_t)a->alert_id, "dataset",
                          tf_dataset_name(a->dataset), "reporter", a->reporter, "flow",
                          tf_flow_name(a->flow), "basis", tf_alerts_basis_name(a->basis), "level",
                          tf_alerts_level_name(a->level), "period", period, "partner", a->partner,
                          "old_rank", a->old_rank > 0 ? json_integer(a->old_rank) : json_null(),
                          "new_rank", a->new_rank > 0 ? json_integer(a->new_rank) : json_null(),
                          "value_usd", row->has_value ? json_string(money) : json_null(),
                          "kind", tf_alerts_kind_name(a->kind), "detected_at", ts, "retracts",
                          row->retracts ? json_integer(row->retracts) : json_null(), "suppressed",
                          (int)row->suppressed);
    if (!o)
        return NULL;
    char *out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return out;
}
