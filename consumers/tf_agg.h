/*
 * tf_agg.h - the batch sink of tradeflow-aggregate: buffers decoded records
 * with their Kafka positions and applies a batch to PostgreSQL in ONE
 * transaction (facts with revision dedup -> monthly deltas -> Kafka offsets;
 * at settle points rankings, YoY, shares and alerts of what changed). See
 * schemas/migrations/006_fast_apply.sql for the server side.
 *
 * Ownership: tf_agg_t owns its PGconn, its apply thread, its two batch
 * buffers (the one being filled, the one in flight) with their COPY texts,
 * and the list of committed offsets;
 * free with tf_agg_destroy() (which waits for the batch in flight). Records
 * passed to tf_agg_add() are copied. The functions below are called from one
 * thread (the consumer's); the apply thread only ever touches the batch in
 * flight and the connection, handed over under a mutex.
 */
#ifndef TF_AGG_H
#define TF_AGG_H

#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "tf_record.h"

typedef struct tf_agg tf_agg_t;

typedef struct tf_agg_stats {
    uint64_t batches;    /* committed transactions */
    uint64_t records;    /* records staged (after in-batch dedup) */
    uint64_t applied;    /* new records + higher revisions */
    uint64_t superseded; /* replaced an earlier revision: in PostgreSQL (then also
                          * counted as applied) or within one batch (the lower
                          * revision never reached PostgreSQL); docs/metrics.md */
    uint64_t duplicates; /* equal or lower revision: no effect (incl. in-batch) */
    uint64_t retries;    /* transactions retried (also of batches never committed) */
    uint64_t pg_errors[4]; /* failed attempts by tf_pg_errclass_t (retry, transient,
                            * data, other); see tf_pg_classify() */
    uint64_t splits;     /* sub-transactions (savepoints) run to isolate records a
                          * deterministic database error was caused by */
    uint64_t rejected;   /* records the database refused (TF_AGG_REJECTED) */
    uint64_t settles;    /* settle points (alert evaluations) */
    uint64_t settle_errors; /* settle points that failed with a data error: the batch
                             * committed without them (tf_agg_settle_error()) */
    uint64_t alerts;     /* alerts raised (shifts + retractions) */
    uint64_t settle_remaining; /* (scope, period)s still pending after the last settle
                                * point (its time budget ran out; see
                                * tf_agg_set_settle_budget) */
    uint64_t last_settle_us;   /* duration of the last settle point's settle_alerts() */
    uint64_t last_commit_us; /* duration of the last COMMIT (PostgreSQL's fsync etc.) */
    uint64_t last_apply_us;  /* duration of the last batch's transaction, all attempts */
} tf_agg_stats_t;

/* Connects (conninfo NULL = PG* variables), applies migrations unless
 * skip_migrate, prepares the session. group_id keys the stored offsets. */
tf_agg_t *tf_agg_new(const char *conninfo, const char *group_id, int skip_migrate,
                     char *errstr, size_t errlen);
void tf_agg_destroy(tf_agg_t *a);

/* Fills the offsets of parts from PostgreSQL (RD_KAFKA_OFFSET_BEGINNING for
 * partitions never committed); waits for a batch in flight first. Returns 0
 * or -1 (connection trouble). */
int tf_agg_load_offsets(tf_agg_t *a, rd_kafka_topic_partition_list_t *parts, char *errstr,
                        size_t errlen);

/* Buffers one record that came from topic/partition/offset. Within a batch
 * only the highest revision per (dataset, record_id) is kept (first seen on
 * ties). Returns 0 or -1 (out of memory). */
int tf_agg_add(tf_agg_t *a, const tf_record_t *r, const char *topic, int32_t partition,
               int64_t offset);
/* Advances the stored position past a message that carries no record
 * (dead-lettered), so that it is committed with the batch. */
int tf_agg_skip(tf_agg_t *a, const char *topic, int32_t partition, int64_t offset);

/* Messages buffered and not yet submitted. */
size_t tf_agg_pending(const tf_agg_t *a);

/* Alert settings for settle points: the top N ranks watched (default 10) and
 * the first period whose alerts are notified and published ("YYYY-MM", NULL =
 * all; older ones are only written to the table). Returns -1 on a bad period. */
int tf_agg_set_alerts(tf_agg_t *a, int top_n, const char *alerts_from, char *errstr,
                      size_t errlen);

/* Time budget of a settle point in ms (0 = none, the default): once it has
 * passed, settle_alerts() takes no further reporter-year and leaves the rest
 * pending (stats.settle_remaining), so a backlog's rankings are brought up to
 * date over several batches instead of stalling one (008_incremental_settle.sql).
 * Returns -1 on a negative value. */
int tf_agg_set_settle_budget(tf_agg_t *a, int budget_ms, char *errstr, size_t errlen);

/* ---- applying batches --------------------------------------------------
 * A batch is applied by tf_agg's own thread on its own connection, while the
 * caller goes on buffering the next one (at most one batch in flight, so
 * batches commit in order). One transaction per batch: facts with revision
 * dedup -> monthly deltas -> Kafka offsets [-> settle point] -> COMMIT;
 * serialisation failures are retried inside it (the retry asks apply_stage
 * to lock more, see 006_fast_apply.sql). Every failed attempt is classified
 * by tf_pg_classify(): a deterministic error caused by the records (class
 * 22/23: overflow, constraint, invalid value) is not retried as is: the
 * batch is applied again in one transaction, record ranges under savepoints
 * split in halves until each failing record is alone (about 2 log2(n)
 * sub-transactions per bad record); those are TF_AGG_REJECTED for the
 * caller to dead-letter, then the rest is applied (tf_agg_retry), in order,
 * with the offsets of all of them. Transient errors (connection, resources,
 * shutdown) end in TF_AGG_FAILED, for the caller's back-off. With settle, the same transaction
 * refreshes the rankings of what changed since the last settle point (within
 * the settle budget; stats.settle_remaining says what is left, see
 * 008_incremental_settle.sql) and evaluates ranking shifts (outbox +
 * NOTIFY); settle with an empty buffer runs just that. */

typedef enum tf_agg_state {
    TF_AGG_IDLE,   /* no batch in flight: tf_agg_submit() may be called */
    TF_AGG_BUSY,   /* being applied */
    TF_AGG_DONE,   /* (tf_agg_poll's answer once) committed */
    TF_AGG_FAILED, /* not committed (e.g. PostgreSQL down): the batch is kept
                    * in flight; tf_agg_retry() it later, or tf_agg_forget() */
    TF_AGG_REJECTED, /* not committed: records of the batch were refused by the
                      * database for a reason retrying cannot cure; see
                      * tf_agg_rejects(). Dead-letter them, then tf_agg_retry()
                      * applies the others (or tf_agg_forget()). */
} tf_agg_state_t;

/* A record the database refused, with where it came from and why. */
typedef struct tf_agg_reject {
    const tf_record_t *rec; /* in the batch in flight */
    const char *topic;
    int32_t partition;
    int64_t offset;
    char sqlstate[6];
    char reason[480]; /* the database's message, one line */
} tf_agg_reject_t;

/* In TF_AGG_REJECTED: the refused records (*n of them), in batch order. The
 * array is owned by a and valid until tf_agg_retry() or tf_agg_forget();
 * NULL with *n = 0 in any other state. */
const tf_agg_reject_t *tf_agg_rejects(const tf_agg_t *a, size_t *n);

/* Hands the buffered messages (possibly none, with settle) to the apply
 * thread and returns at once with an empty buffer. Only in TF_AGG_IDLE;
 * returns -1 otherwise (or out of memory). */
int tf_agg_submit(tf_agg_t *a, int settle);
/* Builds the buffer's COPY text now (submit does it otherwise): for a caller
 * that waits with a full buffer while a batch is in flight. 0 or -1 (out of
 * memory). */
int tf_agg_prepare(tf_agg_t *a);
/* Applies the failed batch in flight again (reconnecting if needed); in
 * TF_AGG_REJECTED without the rejected records (their offsets are stored
 * with the batch: the caller has dead-lettered them). */
int tf_agg_retry(tf_agg_t *a);

/* The in-flight batch's state, waiting up to wait_ms (-1 = until it is not
 * busy) while it is TF_AGG_BUSY. TF_AGG_DONE is returned once per batch,
 * with *committed (if not NULL) set to the next offsets now stored (a list
 * owned by a, valid until the next poll), *settled to whether it was a
 * settle point, and tf_agg_stats() updated; the state is TF_AGG_IDLE after.
 * TF_AGG_FAILED and TF_AGG_REJECTED fill errstr (every time they are polled). */
tf_agg_state_t tf_agg_poll(tf_agg_t *a, int wait_ms,
                           const rd_kafka_topic_partition_list_t **committed, int *settled,
                           char *errstr, size_t errlen);

/* Drops the messages of partitions no longer assigned from the buffer and
 * from a FAILED batch in flight (after a revoke whose flush failed: another
 * member will re-read them from the stored offsets). Not while TF_AGG_BUSY. A
 * REJECTED batch becomes FAILED (its rejects are found again on retry). */
void tf_agg_forget(tf_agg_t *a, const rd_kafka_topic_partition_list_t *parts);

const tf_agg_stats_t *tf_agg_stats(const tf_agg_t *a);
/* The database's message of the last settle point that failed with a data
 * error ("" if none); owned by a, valid until the next poll. */
const char *tf_agg_settle_error(const tf_agg_t *a);

#endif
