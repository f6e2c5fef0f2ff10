/*
 * tf_rdstats.c - see tf_rdstats.h.
 */
#include "tf_rdstats.h"
#include "tf_err.h"

#include <jansson.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One (topic, partition) whose lag series was set by the last update. */
typedef struct lagkey {
    char *topic;
    char partition[24];
} lagkey_t;

struct tf_rdstats {
    tf_metric_t *lag, *assigned, *rebalances;
    tf_metric_t *queue_msgs, *queue_bytes, *txmsgs, *txerrs, *rxmsgs, *brokers_up;
    /* Only the updating thread touches these. */
    lagkey_t *keys;
    size_t nkeys, capkeys;
    /* The summary, read by other threads. */
    pthread_mutex_t mu;
    tf_rdstats_summary_t sum;
};


static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

tf_rdstats_t *tf_rdstats_new(tf_metrics_t *m, char *errstr, size_t errlen)
{
    tf_rdstats_t *s = calloc(1, sizeof *s);
    if (!s) {
        tf_seterr(errstr, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->sum.assigned = -1;
#define REG(field, kind, name, help, labels)                                                       \
    do {                                                                                           \
        if (!(s->field = tf_metrics_##kind(m, name, help, labels, errstr, errlen)))                \
            goto fail;                                                                             \
    } while (0)
    REG(lag, gauge, "tradeflow_consumer_lag",
        "Messages between a partition's end and the offset committed by this consumer "
        "(librdkafka statistics).",
        ((const char *[]){"topic", "partition", NULL}));
    REG(assigned, gauge, "tradeflow_consumer_assigned_partitions",
        "Partitions currently assigned to this consumer.", NULL);
    REG(rebalances, counter, "tradeflow_consumer_rebalances_total",
        "Consumer group rebalances (assign or revoke) seen by this consumer.", NULL);
    REG(queue_msgs, gauge, "tradeflow_kafka_queue_messages",
        "Messages waiting in librdkafka's producer queues.", NULL);
    REG(queue_bytes, gauge, "tradeflow_kafka_queue_bytes",
        "Bytes of the messages waiting in librdkafka's producer queues.", NULL);
    REG(txmsgs, counter, "tradeflow_kafka_tx_messages_total",
        "Messages sent to Kafka brokers by librdkafka.", NULL);
    REG(txerrs, counter, "tradeflow_kafka_tx_errors_total",
        "Transmission errors towards Kafka brokers, summed over brokers.", NULL);
    REG(rxmsgs, counter, "tradeflow_kafka_rx_messages_total",
        "Messages fetched from Kafka brokers by librdkafka.", NULL);
    REG(brokers_up, gauge, "tradeflow_kafka_brokers_up",
        "Kafka brokers this client is connected to (state UP).", NULL);
#undef REG
    return s;
fail:
    tf_rdstats_free(s);
    return NULL;
}

void tf_rdstats_free(tf_rdstats_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nkeys; i++)
        free(s->keys[i].topic);
    free(s->keys);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* The integer at key, or def when absent or not an integer. */
static int64_t jint(json_t *o, const char *key, int64_t def)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

/* Lag of one partition object, or -1 if unknown. librdkafka reports -1 for
 * a partition without committed (or stored) offset, e.g. one that a new
 * group has not consumed yet: exactly the partition that is furthest behind,
 * so its lag is then counted from the consumer's position, or before the
 * first message from the partition's start (where auto.offset.reset=earliest,
 * tradeflow's setting, begins). */
static int64_t partition_lag(json_t *p)
{
    int64_t lag = jint(p, "consumer_lag", -1);
    if (lag >= 0)
        return lag;
    lag = jint(p, "consumer_lag_stored", -1);
    if (lag >= 0)
        return lag;
    /* The end a read_committed consumer can reach is the last stable offset. */
    int64_t end = jint(p, "ls_offset", -1);
    if (end < 0)
        end = jint(p, "hi_offset", -1);
    int64_t from = jint(p, "app_offset", -1);
    if (from < 0)
        from = jint(p, "lo_offset", -1);
    if (end < 0 || from < 0)
        return -1;
    return end > from ? end - from : 0;
}

/* Is this partition the consumer's own (assigned and being fetched)? */
static int partition_assigned(json_t *p)
{
    if (json_is_true(json_object_get(p, "desired")))
        return 1;
    const char *fs = json_string_value(json_object_get(p, "fetch_state"));
    return fs && strcmp(fs, "none") != 0 && strcmp(fs, "stopped") != 0;
}

static int keys_push(lagkey_t **keys, size_t *n, size_t *cap, const char *topic,
                     const char *partition)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        lagkey_t *k = realloc(*keys, nc * sizeof *k);
        if (!k)
            return -1;
        *keys = k;
        *cap = nc;
    }
    char *t = strdup(topic);
    if (!t)
        return -1;
    (*keys)[*n].topic = t;
    snprintf((*keys)[*n].partition, sizeof(*keys)[*n].partition, "%s", partition);
    (*n)++;
    return 0;
}

int tf_rdstats_update(tf_rdstats_t *s, const char *json, size_t len, char *errstr,
                      size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) {
        tf_seterr(errstr, errlen, "statistics JSON, line %d column %d: %s", jerr.line, jerr.column,
               jerr.text);
        return -1;
    }
    if (!json_is_object(root) || !json_is_string(json_object_get(root, "type"))) {
        tf_seterr(errstr, errlen, "not librdkafka statistics (no \"type\" string)");
        json_decref(root);
        return -1;
    }
    tf_rdstats_summary_t sum = {.assigned = -1};
    sum.is_consumer = strcmp(json_string_value(json_object_get(root, "type")), "consumer") == 0;

    sum.queue_msgs = jint(root, "msg_cnt", 0);
    tf_metrics_gauge_set(s->queue_msgs, (double)sum.queue_msgs);
    tf_metrics_gauge_set(s->queue_bytes, (double)jint(root, "msg_size", 0));
    tf_metrics_counter_set(s->txmsgs, (uint64_t)jint(root, "txmsgs", 0));
    tf_metrics_counter_set(s->rxmsgs, (uint64_t)jint(root, "rxmsgs", 0));

    /* Brokers: transmission errors summed; "UP" counted among the real
     * brokers (the internal and bootstrap handles have nodeid -1). */
    uint64_t txerrs = 0;
    const char *bname;
    json_t *b;
    json_object_foreach(json_object_get(root, "brokers"), bname, b)
    {
        int64_t e = jint(b, "txerrs", 0);
        if (e > 0)
            txerrs += (uint64_t)e;
        const char *state = json_string_value(json_object_get(b, "state"));
        if (jint(b, "nodeid", -1) >= 0 && state && strcmp(state, "UP") == 0)
            sum.brokers_up++;
    }
    tf_metrics_counter_set(s->txerrs, txerrs);
    tf_metrics_gauge_set(s->brokers_up, sum.brokers_up);

    json_t *cgrp = json_object_get(root, "cgrp");
    if (json_is_object(cgrp)) {
        sum.assigned = (int)jint(cgrp, "assignment_size", 0);
        tf_metrics_gauge_set(s->assigned, sum.assigned);
        tf_metrics_counter_set(s->rebalances, (uint64_t)jint(cgrp, "rebalance_cnt", 0));
    }

    /* Lag of every assigned partition; the keys set now replace those of the
     * previous update, whose leftovers are removed below. */
    lagkey_t *keys = NULL;
    size_t nkeys = 0, capkeys = 0;
    int oom = 0;
    if (sum.is_consumer) {
        const char *tname;
        json_t *t;
        json_object_foreach(json_object_get(root, "topics"), tname, t)
        {
            const char *pname;
            json_t *p;
            json_object_foreach(json_object_get(t, "partitions"), pname, p)
            {
                if (jint(p, "partition", -1) < 0 || !partition_assigned(p))
                    continue; /* the internal UA partition, or not ours */
                int64_t lag = partition_lag(p);
                if (lag < 0) {
                    sum.lag_unknown++;
                    continue;
                }
                sum.lag_known++;
                sum.lag_total += lag;
                if (lag > sum.lag_max)
                    sum.lag_max = lag;
                tf_metrics_gauge_set_labels(s->lag, (const char *[]){tname, pname}, (double)lag);
                if (!oom && keys_push(&keys, &nkeys, &capkeys, tname, pname) != 0)
                    oom = 1;
            }
        }
    }
    for (size_t i = 0; i < s->nkeys; i++) {
        int still = 0;
        for (size_t j = 0; j < nkeys && !still; j++)
            still = strcmp(keys[j].topic, s->keys[i].topic) == 0 &&
                    strcmp(keys[j].partition, s->keys[i].partition) == 0;
        /* Without memory for the new list, keep every series rather than
         * remove one that is still set. */
        if (!still && !oom)
            tf_metrics_remove_labels(s->lag,
                                     (const char *[]){s->keys[i].topic, s->keys[i].partition});
        free(s->keys[i].topic);
    }
    free(s->keys);
    s->keys = keys;
    s->nkeys = nkeys;
    s->capkeys = capkeys;
    json_decref(root);

    sum.updated_ms = now_ms();
    pthread_mutex_lock(&s->mu);
    s->sum = sum;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void tf_rdstats_summary(tf_rdstats_t *s, tf_rdstats_summary_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->sum;
    pthread_mutex_unlock(&s->mu);
}

int tf_rdstats_caught_up(tf_rdstats_t *s, int64_t max_lag, int64_t max_age_ms, char *reason,
                         size_t reasonlen)
{
    tf_rdstats_summary_t sum;
    tf_rdstats_summary(s, &sum);
    if (sum.updated_ms == 0) {
        snprintf(reason, reasonlen, "no Kafka statistics yet");
        return 0;
    }
    int64_t age = now_ms() - sum.updated_ms;
    if (age > max_age_ms) {
        snprintf(reason, reasonlen, "Kafka statistics are %" PRId64 " ms old (bound %" PRId64 ")",
                 age, max_age_ms);
        return 0;
    }
    if (sum.assigned == 0 || (sum.assigned < 0 && sum.lag_known + sum.lag_unknown == 0)) {
        snprintf(reason, reasonlen, "no partition assigned");
        return 0;
    }
    if (sum.lag_unknown > 0) {
        snprintf(reason, reasonlen, "lag unknown for %d of %d partitions", sum.lag_unknown,
                 sum.lag_known + sum.lag_unknown);
        return 0;
    }
    if (sum.lag_max > max_lag) {
        snprintf(reason, reasonlen,
                 "lagging: %" PRId64 " messages behind on one partition (bound %" PRId64
                 "), %" PRId64 " in all",
                 sum.lag_max, max_lag, sum.lag_total);
        return 0;
    }
    return 1;
}
