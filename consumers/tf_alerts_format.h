/*
 * tf_alerts_format.h - filters and output forms of tradeflow-alerts: the
 * readable line, the JSON object, and the money shorthand. No I/O, no
 * servers: unit-tested in tests/unit/test_alerts_format.c.
 */
#ifndef TF_ALERTS_FORMAT_H
#define TF_ALERTS_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tf_alerts_feed.h"

/* What a follower wants to see. Zero-initialise, then set what applies;
 * since = -1 for no period bound. Strings are borrowed (not copied). */
typedef struct tf_alerts_filter {
    const char *reporter, *partner; /* NULL = any */
    bool has_dataset, has_flow, has_basis, has_level;
    tf_dataset_t dataset;
    tf_flow_t flow;
    tf_basis_t basis;
    tf_level_t level;
    int max_rank;       /* 0 = any; else the old or the new rank must be <= max_rank */
    int32_t since;      /* -1 = any period; else period >= since */
    bool include_suppressed;
} tf_alerts_filter_t;

bool tf_alerts_filter_match(const tf_alerts_filter_t *f, const tf_alert_row_t *row);

/* "US$609.58 bn", "US$12.30 mn", "US$1234.56" (rounded half up from the
 * exact cents), or "value n/a" when the row has no value. */
void tf_alerts_format_money(const tf_alert_row_t *row, char *buf, size_t len);

/* The readable line, without a newline:
 *   2020-11 customs CHN total ytd group: ASEAN 2 -> 1 (US$609.58 bn)
 *   RETRACTED 2020-11 ...: ASEAN 2 -> 1 no longer holds (US$576.58 bn; alert 21 withdrawn)
 * "out" stands for outside the top N; " [suppressed]" is appended to
 * suppressed alerts. Returns what snprintf returns (truncated if len is
 * too small). */
int tf_alerts_format_line(const tf_alert_row_t *row, char *buf, size_t len);

/* An instant (microseconds since the Unix epoch) as ISO 8601 / RFC 3339 UTC
 * with microseconds, "2020-12-01T00:00:00.123456Z" (len >= 28). */
void tf_alerts_format_ts(int64_t us_epoch, char *buf, size_t len);

/* The JSON object (one line, keys in the view's order; value_usd an exact
 * decimal string, detected_at ISO 8601 UTC with microseconds). The caller
 * frees the result with free(); NULL when memory runs out. */
char *tf_alerts_format_json(const tf_alert_row_t *row);

#endif
