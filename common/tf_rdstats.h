/*
 * tf_rdstats.h - librdkafka's statistics (the JSON given to the stats_cb
 * every statistics.interval.ms, see librdkafka's STATISTICS.md) turned into
 * tradeflow metrics, parsed with jansson.
 *
 * Metrics set (docs/metrics.md):
 *   tradeflow_consumer_lag{topic,partition}     gauge, assigned partitions
 *   tradeflow_consumer_assigned_partitions      gauge, cgrp.assignment_size
 *   tradeflow_consumer_rebalances_total         counter, cgrp.rebalance_cnt
 *   tradeflow_kafka_queue_messages              gauge, msg_cnt (producer queue)
 *   tradeflow_kafka_queue_bytes                 gauge, msg_size
 *   tradeflow_kafka_tx_messages_total           counter, txmsgs
 *   tradeflow_kafka_tx_errors_total             counter, sum of brokers' txerrs
 *   tradeflow_kafka_rx_messages_total           counter, rxmsgs
 *   tradeflow_kafka_brokers_up                  gauge, brokers in state UP
 *
 * Lag of a partition: librdkafka's consumer_lag (end offset minus the offset
 * committed to Kafka; tradeflow-aggregate commits there after PostgreSQL's
 * COMMIT), else consumer_lag_stored (minus the stored offset). A partition
 * with neither (nothing committed yet, e.g. a new group) counts from the
 * consumer's position (app_offset), or from the partition's start
 * (lo_offset) before its first message, to the end (ls_offset, else
 * hi_offset). Without these offsets the lag is unknown and the series is
 * absent. A partition that leaves the statistics (revoked) loses its series
 * at the next update.
 *
 * Life cycle: tf_rdstats_new() registers the metrics in a registry it
 * borrows (it must outlive the tf_rdstats_t); tf_rdstats_free() frees the
 * handle, not the metrics.
 *
 * Threads: tf_rdstats_update() is called from the stats_cb (the thread that
 * polls librdkafka); tf_rdstats_summary() and tf_rdstats_caught_up() may be
 * called from any thread (e.g. a /readyz callback) at the same time.
 *
 * Errors: -1 / NULL with errstr filled; nothing prints or exits.
 */
#ifndef TF_RDSTATS_H
#define TF_RDSTATS_H

#include <stddef.h>
#include <stdint.h>

#include "tf_metrics.h"

typedef struct tf_rdstats tf_rdstats_t;

/* What the last update saw, for readiness decisions. */
typedef struct tf_rdstats_summary {
    int64_t updated_ms;  /* CLOCK_MONOTONIC ms of the last successful update; 0: never */
    int is_consumer;     /* the statistics came from a consumer */
    int assigned;        /* cgrp.assignment_size; -1 without consumer group */
    int lag_known;       /* partitions with a known lag */
    int lag_unknown;     /* assigned partitions whose lag is unknown */
    int64_t lag_total;   /* sum of the known lags */
    int64_t lag_max;     /* largest known lag (0 if none) */
    int64_t queue_msgs;  /* msg_cnt */
    int brokers_up;      /* brokers in state UP */
} tf_rdstats_summary_t;

/* Registers the metrics above in m. Free with tf_rdstats_free(). */
tf_rdstats_t *tf_rdstats_new(tf_metrics_t *m, char *errstr, size_t errlen);

/* Parses one statistics document (json need not be NUL-terminated) and sets
 * the metrics. Returns 0, or -1 if it is not such a document (the metrics
 * then keep their previous values). */
int tf_rdstats_update(tf_rdstats_t *s, const char *json, size_t len, char *errstr,
                      size_t errlen);

/* Copies the summary of the last successful update. */
void tf_rdstats_summary(tf_rdstats_t *s, tf_rdstats_summary_t *out);

/* A building block for /readyz: returns 1 when the last statistics are at
 * most max_age_ms old, show at least one assigned partition, every assigned
 * partition's lag is known and none exceeds max_lag; otherwise 0 with the
 * reason in reason. */
int tf_rdstats_caught_up(tf_rdstats_t *s, int64_t max_lag, int64_t max_age_ms, char *reason,
                         size_t reasonlen);

void tf_rdstats_free(tf_rdstats_t *s);

#endif
