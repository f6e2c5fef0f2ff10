/*
 * tf_agg.h - the batch sink of tradeflow-aggregate: buffers decoded records
 * with their Kafka positions and applies a batch to PostgreSQL in ONE
 * transaction (facts with revision dedup -> monthly deltas -> rankings, YoY,
 * shares of the touched scopes -> Kafka offsets). See
 * schemas/migrations/002_apply.sql for the server side.
 *
 * Ownership: tf_agg_t owns its PGconn, its record buffer and the offsets
 * list; free with tf_agg_destroy(). Records passed to tf_agg_add() are
 * copied. Not thread-safe: one per consumer thread.
 */
#ifndef TF_AGG_H
#define TF_AGG_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "tf_record.h"

typedef struct tf_agg tf_agg_t;

typedef struct tf_agg_stats {
    uint64_t batches;    /* committed transactions */
    uint64_t records;    /* records staged (after in-batch dedup) */
    uint64_t applied;    /* new records + higher revisions */
    uint64_t superseded; /* of applied: replaced an earlier revision */
    uint64_t duplicates; /* equal or lower revision: no effect (incl. in-batch) */
    uint64_t retries;    /* transactions retried */
    uint64_t settles;    /* settle points (alert evaluations) */
    uint64_t alerts;     /* alerts raised (shifts + retractions) */
    uint64_t last_commit_us; /* duration of the last COMMIT (PostgreSQL's fsync etc.) */
} tf_agg_stats_t;

/* Connects (conninfo NULL = PG* variables), applies migrations unless
 * skip_migrate, prepares the session. group_id keys the stored offsets. */
tf_agg_t *tf_agg_new(const char *conninfo, const char *group_id, int skip_migrate,
                     char *errstr, size_t errlen);
void tf_agg_destroy(tf_agg_t *a);

/* Fills the offsets of parts from PostgreSQL (RD_KAFKA_OFFSET_BEGINNING for
 * partitions never committed). Returns 0 or -1 (connection trouble). */
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

/* Messages buffered since the last successful flush. */
size_t tf_agg_pending(const tf_agg_t *a);

/* Alert settings for settle points: the top N ranks watched (default 10) and
 * the first period whose alerts are notified and published ("YYYY-MM", NULL =
 * all; older ones are only written to the table). Returns -1 on a bad period. */
int tf_agg_set_alerts(tf_agg_t *a, int top_n, const char *alerts_from, char *errstr,
                      size_t errlen);

/* Applies the buffered batch in one transaction, retrying serialisation
 * failures. With settle, the same transaction also evaluates ranking shifts
 * for everything changed since the last settle point and writes the alerts
 * (outbox + NOTIFY); settle with an empty buffer runs just that. On success the buffer is emptied, *committed (if not NULL) is
 * set to a list (owned by a, valid until the next call) of the next offsets
 * now stored, and 0 is returned. On failure (e.g. PostgreSQL down) returns
 * -1 and KEEPS the batch: call again later (it reconnects). */
int tf_agg_flush(tf_agg_t *a, int settle, const rd_kafka_topic_partition_list_t **committed,
                 char *errstr, size_t errlen);

/* Drops buffered messages of partitions no longer assigned (after a revoke
 * whose flush failed: another member will re-read them from the stored
 * offsets). */
void tf_agg_forget(tf_agg_t *a, const rd_kafka_topic_partition_list_t *parts);

const tf_agg_stats_t *tf_agg_stats(const tf_agg_t *a);

/* The connection, for callers that run their own statements. */
PGconn *tf_agg_conn(tf_agg_t *a);

#endif
