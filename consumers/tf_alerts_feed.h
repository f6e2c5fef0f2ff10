/*
 * tf_alerts_feed.h - a gap-free cursor over reporting.ranking_alerts, shared
 * by the Kafka relay (tradeflow-relay) and the follower CLI (tradeflow-alerts).
 *
 * alert_id comes from a sequence: ids are handed out when a row is inserted,
 * but rows become visible when their transaction commits, so two consumers
 * settling different reporters can commit id 12 after id 13 has been read,
 * and a batch that rolled back leaves ids that never appear. Reading
 * "alert_id > last seen" alone would then skip 12 for ever. The feed only
 * hands out rows that are final, i.e. no row with a lower id can still
 * appear:
 *   - rows whose ids continue the cursor without a hole are final;
 *   - rows behind a hole are held back until every transaction that was
 *     running when the hole was seen has ended: right after that read the
 *     feed takes a transaction id X (pg_current_xact_id()), and the hole is
 *     settled once a later snapshot's xmin has reached X. The hole is then
 *     either filled or permanent (a rollback), and the rows up to the
 *     highest id of that read are final.
 * (A snapshot's xip alone is not enough: a transaction that took its xid
 * after the latest commit is running without being listed.) This relies on
 * alerts being inserted by transactions that already hold a transaction id
 * when they draw from the sequence, which is the case: the consumer settles
 * in the batch transaction, after writing.
 *
 * Each read is one REPEATABLE READ READ ONLY transaction on the caller's
 * connection (which must not be inside a transaction); one that sees a hole
 * also takes a transaction id (no privilege needed, so it works as the
 * read-only role tradeflow_reader). A hole costs a delay until the
 * transactions running at that moment end; contiguous ids cost nothing.
 *
 * Errors: -1 / NULL and a one-line reason in errstr. Nothing here prints,
 * logs or exits.
 */
#ifndef TF_ALERTS_FEED_H
#define TF_ALERTS_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "tf_record.h"

/* One row of reporting.ranking_alerts. Plain old data. */
typedef struct tf_alert_row {
    tf_alert_t a;         /* a.alert_id is the row's own id, also for retractions */
    int64_t retracts;     /* the retracted alert's id, 0 for a shift */
    bool has_value;       /* value_usd may be NULL (a retraction whose row vanished) */
    bool suppressed;      /* older than --alerts-from: table only */
    bool published;       /* acknowledged by Kafka */
} tf_alert_row_t;

typedef struct tf_alerts_feed tf_alerts_feed_t;

/* A feed whose cursor stands after after_id (0: from the first alert).
 * Caller frees with tf_alerts_feed_destroy(). */
tf_alerts_feed_t *tf_alerts_feed_new(int64_t after_id, char *errstr, size_t errlen);
void tf_alerts_feed_destroy(tf_alerts_feed_t *f);

/* The highest alert_id visible now (0 if none). */
int tf_alerts_feed_max_id(PGconn *c, int64_t *out, char *errstr, size_t errlen);

/* A starting point for followers that only want what commits from now on:
 * in one snapshot, the highest visible alert_id (*max_id, 0 if none) and the
 * visible ids above max_id - window, ascending, in *ids (*n of them; the
 * caller frees *ids with free(); NULL when n is 0). Start the feed after
 * max(0, *max_id - window) and skip the ids of this list: an alert whose
 * transaction was still open at this instant, with an id below *max_id, is
 * then delivered when it commits instead of being taken for history. */
int tf_alerts_feed_visible_tail(PGconn *c, int window, int64_t *max_id, int64_t **ids, size_t *n,
                                char *errstr, size_t errlen);

/* Reads up to limit rows after the cursor and hands out the final ones in
 * alert_id order: *rows points into the feed (valid until the next call or
 * destroy), *n is their count. *held (may be NULL) is set to 1 when rows
 * exist beyond a hole that is not yet known to be final: call again soon
 * (they become final once the transactions in progress end). The cursor does
 * not move: call tf_alerts_feed_advance() once the rows are processed. */
int tf_alerts_feed_fetch(tf_alerts_feed_t *f, PGconn *c, int limit, const tf_alert_row_t **rows,
                         size_t *n, int *held, char *errstr, size_t errlen);

/* Waits up to ms for a notification on c (LISTEN tradeflow_alerts) and
 * drops what arrived: a notification is only a wake-up, the view is the
 * truth. 0 (notified, timed out or interrupted), -1 if the connection broke. */
int tf_alerts_feed_wait(PGconn *c, int ms);

/* Moves the cursor to after alert_id (never backwards). */
void tf_alerts_feed_advance(tf_alerts_feed_t *f, int64_t alert_id);
int64_t tf_alerts_feed_cursor(const tf_alerts_feed_t *f);

/* Parses the text forms used by the view ("customs", "total", "ytd",
 * "group", "shift"). 0 ok, -1 unknown. */
int tf_alerts_basis_parse(const char *s, tf_basis_t *out);
int tf_alerts_level_parse(const char *s, tf_level_t *out);
const char *tf_alerts_basis_name(tf_basis_t b);
const char *tf_alerts_level_name(tf_level_t l);
const char *tf_alerts_kind_name(tf_alert_kind_t k);
/* Any flow name, "total" included, regardless of dataset. */
int tf_alerts_flow_parse(const char *s, tf_flow_t *out);

#endif
