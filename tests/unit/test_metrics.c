/*
 * test_metrics.c - tf_metrics (registration rules, rendering against golden
 * text, escaping, histogram buckets, label series removal, concurrent
 * updates while rendering) and tf_rdstats (librdkafka statistics documents
 * in the shape STATISTICS.md describes).
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tf_metrics.h"
#include "tf_rdstats.h"
#include "tf_test.h"

/* The registry's text as a NUL-terminated string; the caller frees it. */
static char *render(tf_metrics_t *m)
{
    tf_buf_t b = {0};
    if (tf_metrics_render(m, &b) != 0 || tf_buf_append(&b, "", 1) != 0) {
        tf_buf_free(&b);
        return strdup("(render failed)");
    }
    return (char *)b.data;
}

static void test_golden(void)
{
    char err[256];
    tf_metrics_t *m = tf_metrics_new();
    CHECK(m != NULL);
    tf_metric_t *c = tf_metrics_counter(m, "t_events_total", "Events seen.", NULL, err, sizeof err);
    tf_metric_t *cl = tf_metrics_counter(m, "t_labelled_total", "Back\\slash and\nnew line.",
                                         (const char *[]){"topic", "partition", NULL}, err,
                                         sizeof err);
    tf_metric_t *g = tf_metrics_gauge(m, "t_level", NULL, NULL, err, sizeof err);
    double bounds[] = {0.5, 1, 2.5};
    tf_metric_t *h = tf_metrics_histogram(m, "t_seconds", "Durations.", bounds, 3, NULL, err,
                                          sizeof err);
    tf_metric_t *hl = tf_metrics_histogram(m, "t_sizes", "Sizes.", bounds, 3,
                                           (const char *[]){"kind", NULL}, err, sizeof err);
    CHECK(c && cl && g && h && hl);

    tf_metrics_counter_add(c, 3);
    tf_metrics_counter_add(c, 4);
    tf_metrics_counter_add_labels(cl, (const char *[]){"a\"b", "0"}, 2);
    tf_metrics_counter_add_labels(cl, (const char *[]){"c\\d\ne", "1"}, 5);
    tf_metrics_counter_add_labels(cl, (const char *[]){"a\"b", "0"}, 1);
    tf_metrics_gauge_set(g, 0.1);
    /* Exactly representable observations, so the sum is exact: 0.25 and
     * 0.5 fall in le="0.5" (bounds are inclusive), 1.25 in le="2.5", 3 in
     * +Inf only. */
    tf_metrics_hist_observe(h, 0.25);
    tf_metrics_hist_observe(h, 0.5);
    tf_metrics_hist_observe(h, 1.25);
    tf_metrics_hist_observe(h, 3);
    tf_metrics_hist_observe(h, NAN); /* ignored */
    tf_metrics_hist_observe_labels(hl, (const char *[]){"x"}, 1);

    const char *want = "# HELP t_events_total Events seen.\n"
                       "# TYPE t_events_total counter\n"
                       "t_events_total 7\n"
                       "# HELP t_labelled_total Back\\\\slash and\\nnew line.\n"
                       "# TYPE t_labelled_total counter\n"
                       "t_labelled_total{topic=\"a\\\"b\",partition=\"0\"} 3\n"
                       "t_labelled_total{topic=\"c\\\\d\\ne\",partition=\"1\"} 5\n"
                       "# HELP t_level \n"
                       "# TYPE t_level gauge\n"
                       "t_level 0.1\n"
                       "# HELP t_seconds Durations.\n"
                       "# TYPE t_seconds histogram\n"
                       "t_seconds_bucket{le=\"0.5\"} 2\n"
                       "t_seconds_bucket{le=\"1\"} 2\n"
                       "t_seconds_bucket{le=\"2.5\"} 3\n"
                       "t_seconds_bucket{le=\"+Inf\"} 4\n"
                       "t_seconds_sum 5\n"
                       "t_seconds_count 4\n"
                       "# HELP t_sizes Sizes.\n"
                       "# TYPE t_sizes histogram\n"
                       "t_sizes_bucket{kind=\"x\",le=\"0.5\"} 0\n"
                       "t_sizes_bucket{kind=\"x\",le=\"1\"} 1\n"
                       "t_sizes_bucket{kind=\"x\",le=\"2.5\"} 1\n"
                       "t_sizes_bucket{kind=\"x\",le=\"+Inf\"} 1\n"
                       "t_sizes_sum{kind=\"x\"} 1\n"
                       "t_sizes_count{kind=\"x\"} 1\n";
    char *got = render(m);
    CHECK_STR(got, want);
    free(got);

    CHECK_INT(tf_metrics_counter_value(cl, (const char *[]){"a\"b", "0"}), 3);
    CHECK_INT(tf_metrics_counter_value(c, NULL), 7);
    CHECK_INT(tf_metrics_counter_value(h, NULL), 4);
    CHECK(tf_metrics_gauge_value(h, NULL) == 5.0);
    tf_metrics_free(m);
}

/* The labelled histogram's sum/count lines carry the labels too. */
static void test_labelled_hist_lines(void)
{
    char err[256];
    tf_metrics_t *m = tf_metrics_new();
    double b[] = {1};
    tf_metric_t *h =
        tf_metrics_histogram(m, "t_h", "H.", b, 1, (const char *[]){"k", NULL}, err, sizeof err);
    tf_metrics_hist_observe_labels(h, (const char *[]){"v"}, 2);
    char *got = render(m);
    CHECK(strstr(got, "t_h_sum{k=\"v\"} 2\n") != NULL);
    CHECK(strstr(got, "t_h_count{k=\"v\"} 1\n") != NULL);
    CHECK(strstr(got, "t_h_bucket{k=\"v\",le=\"1\"} 0\n") != NULL);
    free(got);
    tf_metrics_free(m);
}

static void test_registration_rules(void)
{
    char err[256];
    tf_metrics_t *m = tf_metrics_new();
    double ok[] = {1, 2}, bad[] = {2, 1}, inf[] = {1, INFINITY};

    err[0] = 0;
    CHECK(tf_metrics_counter(m, "1bad", "", NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "invalid metric name") != NULL);
    CHECK(tf_metrics_counter(m, "bad-name", "", NULL, err, sizeof err) == NULL);
    CHECK(tf_metrics_counter(m, "", "", NULL, err, sizeof err) == NULL);
    CHECK(tf_metrics_counter(m, "ok:name_1", "", NULL, err, sizeof err) != NULL);
    CHECK(tf_metrics_gauge(m, "g", "", (const char *[]){"__x", NULL}, err, sizeof err) == NULL);
    CHECK(tf_metrics_gauge(m, "g", "", (const char *[]){"a:b", NULL}, err, sizeof err) == NULL);
    CHECK(tf_metrics_gauge(m, "g", "", (const char *[]){"a", "a", NULL}, err, sizeof err) ==
          NULL);
    CHECK(tf_metrics_histogram(m, "h", "", ok, 2, (const char *[]){"le", NULL}, err, sizeof err) ==
          NULL);
    CHECK(strstr(err, "reserved") != NULL);
    CHECK(tf_metrics_histogram(m, "h", "", bad, 2, NULL, err, sizeof err) == NULL);
    CHECK(tf_metrics_histogram(m, "h", "", inf, 2, NULL, err, sizeof err) == NULL);
    CHECK(tf_metrics_histogram(m, "h", "", ok, 0, NULL, err, sizeof err) == NULL);

    /* Same shape: the same handle; another shape: an error. */
    tf_metric_t *a = tf_metrics_gauge(m, "g", "", (const char *[]){"a", NULL}, err, sizeof err);
    CHECK(a != NULL);
    CHECK(tf_metrics_gauge(m, "g", "other help", (const char *[]){"a", NULL}, err, sizeof err) ==
          a);
    CHECK(tf_metrics_gauge(m, "g", "", (const char *[]){"b", NULL}, err, sizeof err) == NULL);
    CHECK(tf_metrics_counter(m, "g", "", NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "gauge") != NULL);
    tf_metric_t *h = tf_metrics_histogram(m, "h", "", ok, 2, NULL, err, sizeof err);
    CHECK(h != NULL);
    double ok2[] = {1, 3};
    CHECK(tf_metrics_histogram(m, "h", "", ok2, 2, NULL, err, sizeof err) == NULL);

    /* Wrong-type and NULL updates are no-ops. */
    tf_metrics_counter_add(NULL, 1);
    tf_metrics_gauge_set(NULL, 1);
    tf_metrics_hist_observe(NULL, 1);
    tf_metrics_counter_add(a, 1);
    tf_metrics_gauge_set(h, 1);
    CHECK_INT(tf_metrics_series_count(a), 0);
    CHECK_INT(tf_metrics_counter_value(h, NULL), 0);
    tf_metrics_free(m);
}

static void test_remove_and_clear(void)
{
    char err[256];
    tf_metrics_t *m = tf_metrics_new();
    tf_metric_t *g = tf_metrics_gauge(m, "lag", "", (const char *[]){"topic", "partition", NULL},
                                      err, sizeof err);
    tf_metric_t *u = tf_metrics_gauge(m, "plain", "", NULL, err, sizeof err);
    tf_metrics_gauge_set_labels(g, (const char *[]){"t", "0"}, 5);
    tf_metrics_gauge_set_labels(g, (const char *[]){"t", "1"}, 6);
    tf_metrics_gauge_set_labels(g, (const char *[]){"t", "2"}, 7);
    tf_metrics_gauge_add_labels(g, (const char *[]){"t", "2"}, -2.5);
    CHECK(tf_metrics_gauge_value(g, (const char *[]){"t", "2"}) == 4.5);
    CHECK_INT(tf_metrics_series_count(g), 3);
    CHECK_INT(tf_metrics_remove_labels(g, (const char *[]){"t", "1"}), 1);
    CHECK_INT(tf_metrics_remove_labels(g, (const char *[]){"t", "1"}), 0);
    CHECK_INT(tf_metrics_remove_labels(g, (const char *[]){"t", "2"}), 1); /* the last one */
    tf_metrics_gauge_set_labels(g, (const char *[]){"u", "9"}, 1);         /* appended after "t" */
    char *got = render(m);
    CHECK(strstr(got, "lag{topic=\"t\",partition=\"0\"} 5\nlag{topic=\"u\",partition=\"9\"} 1\n") !=
          NULL);
    CHECK(strstr(got, "partition=\"1\"") == NULL);
    free(got);
    tf_metrics_clear(g);
    CHECK_INT(tf_metrics_series_count(g), 0);
    tf_metrics_gauge_set(u, 3);
    tf_metrics_gauge_add(u, 0.5);
    CHECK(tf_metrics_gauge_value(u, NULL) == 3.5);
    tf_metrics_clear(u);
    CHECK(tf_metrics_gauge_value(u, NULL) == 0);
    got = render(m);
    CHECK_STR(got, "# HELP lag \n# TYPE lag gauge\n# HELP plain \n# TYPE plain gauge\nplain 0\n");
    free(got);
    tf_metrics_free(m);
}

static void test_format_double(void)
{
    char b[64];
    CHECK_STR(tf_metrics_format_double(0.1, b, sizeof b), "0.1");
    CHECK_STR(tf_metrics_format_double(1e-7, b, sizeof b), "1e-07");
    CHECK_STR(tf_metrics_format_double(-2, b, sizeof b), "-2");
    CHECK_STR(tf_metrics_format_double(INFINITY, b, sizeof b), "+Inf");
    CHECK_STR(tf_metrics_format_double(-INFINITY, b, sizeof b), "-Inf");
    CHECK_STR(tf_metrics_format_double(NAN, b, sizeof b), "NaN");
    /* Values that need 17 digits still read back exactly. */
    double third = 1.0 / 3.0, big = 9007199254740993.0 /* rounds to 2^53 */;
    CHECK(strtod(tf_metrics_format_double(third, b, sizeof b), NULL) == third);
    CHECK(strtod(tf_metrics_format_double(0.1 + 0.2, b, sizeof b), NULL) == 0.1 + 0.2);
    CHECK(strtod(tf_metrics_format_double(big, b, sizeof b), NULL) == big);
}

/* ------------------------------------------------------------ concurrency */

#define THREADS 4
#define ROUNDS 20000

static struct {
    tf_metric_t *c, *cl, *g, *h, *hl;
    tf_metrics_t *m;
    _Atomic int stop;
} cc;

static void *worker(void *arg)
{
    long id = (long)arg;
    char own[16];
    snprintf(own, sizeof own, "w%ld", id);
    for (int i = 0; i < ROUNDS; i++) {
        tf_metrics_counter_add(cc.c, 1);
        tf_metrics_counter_add_labels(cc.cl, (const char *[]){"shared"}, 2);
        tf_metrics_counter_add_labels(cc.cl, (const char *[]){own}, 1);
        tf_metrics_gauge_add(cc.g, 0.5);
        tf_metrics_hist_observe(cc.h, (double)(i % 4)); /* 0,1,2,3 in turn */
        tf_metrics_hist_observe_labels(cc.hl, (const char *[]){own}, 1);
        if (i % 1000 == 0) {
            /* A short-lived series created and removed under contention. */
            tf_metrics_gauge_set_labels(cc.hl, (const char *[]){"tmp"}, 1); /* wrong type: no-op */
            tf_metrics_counter_add_labels(cc.cl, (const char *[]){"tmp"}, 1);
            tf_metrics_remove_labels(cc.cl, (const char *[]){"tmp"});
        }
    }
    return NULL;
}

static void *renderer(void *arg)
{
    (void)arg;
    int n = 0;
    while (!cc.stop || n < 3) {
        char *t = render(cc.m);
        /* Every rendering is a consistent histogram: count == +Inf bucket. */
        const char *inf = strstr(t, "c_h_bucket{le=\"+Inf\"} ");
        const char *cnt = strstr(t, "c_h_count ");
        if (!inf || !cnt || strtoull(inf + strlen("c_h_bucket{le=\"+Inf\"} "), NULL, 10) !=
                                strtoull(cnt + strlen("c_h_count "), NULL, 10))
            tf_test_failed++;
        free(t);
        n++;
    }
    return NULL;
}

static void test_concurrency(void)
{
    char err[256];
    double b[] = {0.5, 1.5, 2.5};
    cc.m = tf_metrics_new();
    cc.c = tf_metrics_counter(cc.m, "c_total", "", NULL, err, sizeof err);
    cc.cl = tf_metrics_counter(cc.m, "c_l_total", "", (const char *[]){"who", NULL}, err,
                               sizeof err);
    cc.g = tf_metrics_gauge(cc.m, "c_g", "", NULL, err, sizeof err);
    cc.h = tf_metrics_histogram(cc.m, "c_h", "", b, 3, NULL, err, sizeof err);
    cc.hl = tf_metrics_histogram(cc.m, "c_hl", "", b, 3, (const char *[]){"who", NULL}, err,
                                 sizeof err);
    cc.stop = 0;
    pthread_t w[THREADS], r;
    pthread_create(&r, NULL, renderer, NULL);
    for (long i = 0; i < THREADS; i++)
        pthread_create(&w[i], NULL, worker, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(w[i], NULL);
    cc.stop = 1;
    pthread_join(r, NULL);

    CHECK_INT(tf_metrics_counter_value(cc.c, NULL), THREADS * ROUNDS);
    CHECK_INT(tf_metrics_counter_value(cc.cl, (const char *[]){"shared"}), 2 * THREADS * ROUNDS);
    CHECK_INT(tf_metrics_counter_value(cc.cl, (const char *[]){"w2"}), ROUNDS);
    CHECK_INT(tf_metrics_counter_value(cc.cl, (const char *[]){"tmp"}), 0);
    CHECK(tf_metrics_gauge_value(cc.g, NULL) == 0.5 * THREADS * ROUNDS);
    CHECK_INT(tf_metrics_counter_value(cc.h, NULL), THREADS * ROUNDS);
    CHECK(tf_metrics_gauge_value(cc.h, NULL) == 1.5 * THREADS * ROUNDS); /* mean of 0..3 */
    CHECK_INT(tf_metrics_counter_value(cc.hl, (const char *[]){"w0"}), ROUNDS);
    CHECK_INT(tf_metrics_series_count(cc.cl), 1 + THREADS);
    /* Each bucket got a quarter: le=0.5 {0}, le=1.5 {0,1}, le=2.5 {0,1,2}. */
    char *t = render(cc.m);
    char line[128];
    snprintf(line, sizeof line, "c_h_bucket{le=\"0.5\"} %d\n", THREADS * ROUNDS / 4);
    CHECK_MSG(strstr(t, line) != NULL, "missing %s", line);
    snprintf(line, sizeof line, "c_h_bucket{le=\"1.5\"} %d\n", THREADS * ROUNDS / 2);
    CHECK_MSG(strstr(t, line) != NULL, "missing %s", line);
    snprintf(line, sizeof line, "c_h_bucket{le=\"2.5\"} %d\n", 3 * THREADS * ROUNDS / 4);
    CHECK_MSG(strstr(t, line) != NULL, "missing %s", line);
    free(t);
    tf_metrics_free(cc.m);
}

static void test_std(void)
{
    char err[256];
    tf_metrics_t *m = tf_metrics_new();
    tf_metrics_std_t s;
    CHECK_INT(tf_metrics_std_register(m, TF_METRICS_STD_CONSUMER | TF_METRICS_STD_ALERTS,
                                      "tradeflow-aggregate", "0.1.0", &s, err, sizeof err),
              0);
    CHECK(s.records_consumed && s.pg_commit_seconds && s.alerts_relayed);
    CHECK(s.producer_delivered == NULL);
    tf_metrics_counter_add(s.producer_delivered, 1); /* not registered: a no-op */
    tf_metrics_counter_add(s.records_consumed, 12);
    tf_metrics_hist_observe(s.batch_records, 12);
    tf_metrics_hist_observe(s.batch_apply_seconds, 0.003);
    char *t = render(m);
    CHECK(strstr(t, "tradeflow_up 1\n") != NULL);
    CHECK(strstr(t, "tradeflow_build_info{program=\"tradeflow-aggregate\",version=\"0.1.0\"} 1\n"));
    CHECK(strstr(t, "tradeflow_records_consumed_total 12\n") != NULL);
    CHECK(strstr(t, "# TYPE tradeflow_batch_records histogram\n") != NULL);
    CHECK(strstr(t, "tradeflow_batch_records_bucket{le=\"10\"} 0\n") != NULL);
    CHECK(strstr(t, "tradeflow_batch_records_bucket{le=\"50\"} 1\n") != NULL);
    CHECK(strstr(t, "tradeflow_batch_apply_seconds_bucket{le=\"0.0025\"} 0\n") != NULL);
    CHECK(strstr(t, "tradeflow_batch_apply_seconds_bucket{le=\"0.005\"} 1\n") != NULL);
    CHECK(strstr(t, "tradeflow_producer") == NULL);
    CHECK(strstr(t, "# TYPE tradeflow_last_settle_timestamp_seconds gauge\n") != NULL);
    CHECK(strstr(t, "tradeflow_last_settle_timestamp_seconds 0\n") != NULL);
    free(t);
    /* Registering again (a second module of the same program) is fine. */
    tf_metrics_std_t s2;
    CHECK_INT(tf_metrics_std_register(m, TF_METRICS_STD_PRODUCER, "x", "y", &s2, err, sizeof err),
              0);
    CHECK(s2.up == s.up && s2.producer_rejected != NULL);
    tf_metrics_free(m);
}

/* ---------------------------------------------------------------- rdstats */

/* A consumer's statistics in librdkafka 2.0's shape, trimmed: partition 0
 * committed (consumer_lag), 1 only stored, 2 empty, 4 never committed nor
 * consumed (as librdkafka 2.0.2 reports a new group's untouched partition:
 * consumer_lag -1), 3 not assigned, -1 the internal UA partition. */
static const char *consumer_json =
    "{\"name\":\"rdkafka#consumer-1\",\"type\":\"consumer\",\"ts\":1,\"time\":2,"
    "\"msg_cnt\":0,\"msg_size\":0,\"txmsgs\":0,\"rxmsgs\":1234,"
    "\"brokers\":{\"127.0.0.1:19092/1\":{\"nodeid\":1,\"state\":\"UP\",\"txerrs\":2},"
    "\"GroupCoordinator\":{\"nodeid\":-1,\"state\":\"UP\",\"txerrs\":1}},"
    "\"topics\":{\"tradeflow.customs\":{\"topic\":\"tradeflow.customs\",\"partitions\":{"
    "\"0\":{\"partition\":0,\"desired\":true,\"fetch_state\":\"active\",\"hi_offset\":100,"
    "\"lo_offset\":0,\"committed_offset\":90,\"consumer_lag\":10,\"consumer_lag_stored\":5},"
    "\"1\":{\"partition\":1,\"desired\":true,\"fetch_state\":\"active\",\"hi_offset\":50,"
    "\"lo_offset\":0,\"committed_offset\":-1001,\"consumer_lag\":-1,\"consumer_lag_stored\":7},"
    "\"2\":{\"partition\":2,\"desired\":false,\"fetch_state\":\"active\",\"hi_offset\":0,"
    "\"lo_offset\":0,\"consumer_lag\":-1,\"consumer_lag_stored\":-1},"
    "\"4\":{\"partition\":4,\"desired\":true,\"fetch_state\":\"active\",\"app_offset\":-1001,"
    "\"committed_offset\":-1001,\"hi_offset\":96,\"ls_offset\":94,\"lo_offset\":3,"
    "\"consumer_lag\":-1,\"consumer_lag_stored\":-1},"
    "\"3\":{\"partition\":3,\"desired\":false,\"fetch_state\":\"none\",\"consumer_lag\":-1},"
    "\"-1\":{\"partition\":-1,\"desired\":false,\"fetch_state\":\"none\",\"consumer_lag\":-1}"
    "}}},"
    "\"cgrp\":{\"state\":\"up\",\"joinstate\":\"steady\",\"rebalance_cnt\":3,"
    "\"assignment_size\":4}}";

static void test_rdstats(void)
{
    char err[256], reason[256];
    tf_metrics_t *m = tf_metrics_new();
    tf_rdstats_t *s = tf_rdstats_new(m, err, sizeof err);
    CHECK(s != NULL);
    CHECK(tf_rdstats_caught_up(s, 100, 10000, reason, sizeof reason) == 0);
    CHECK_STR(reason, "no Kafka statistics yet");

    CHECK_INT(tf_rdstats_update(s, consumer_json, strlen(consumer_json), err, sizeof err), 0);
    char *t = render(m);
    CHECK(strstr(t, "tradeflow_consumer_lag{topic=\"tradeflow.customs\",partition=\"0\"} 10\n"));
    CHECK(strstr(t, "tradeflow_consumer_lag{topic=\"tradeflow.customs\",partition=\"1\"} 7\n"));
    CHECK(strstr(t, "tradeflow_consumer_lag{topic=\"tradeflow.customs\",partition=\"2\"} 0\n"));
    /* Never committed: from the partition's start (3) to the stable end. */
    CHECK(strstr(t, "tradeflow_consumer_lag{topic=\"tradeflow.customs\",partition=\"4\"} 91\n"));
    CHECK(strstr(t, "partition=\"3\"") == NULL);
    CHECK(strstr(t, "partition=\"-1\"") == NULL);
    CHECK(strstr(t, "tradeflow_consumer_assigned_partitions 4\n") != NULL);
    CHECK(strstr(t, "tradeflow_consumer_rebalances_total 3\n") != NULL);
    CHECK(strstr(t, "tradeflow_kafka_rx_messages_total 1234\n") != NULL);
    CHECK(strstr(t, "tradeflow_kafka_tx_errors_total 3\n") != NULL);
    CHECK(strstr(t, "tradeflow_kafka_brokers_up 1\n") != NULL);
    free(t);

    tf_rdstats_summary_t sum;
    tf_rdstats_summary(s, &sum);
    CHECK_INT(sum.is_consumer, 1);
    CHECK_INT(sum.lag_known, 4);
    CHECK_INT(sum.lag_unknown, 0);
    CHECK_INT(sum.lag_total, 108);
    CHECK_INT(sum.lag_max, 91);
    CHECK(tf_rdstats_caught_up(s, 91, 10000, reason, sizeof reason) == 1);
    CHECK(tf_rdstats_caught_up(s, 90, 10000, reason, sizeof reason) == 0);
    CHECK_MSG(strstr(reason, "lagging: 91 messages behind") != NULL, "%s", reason);

    /* Partitions 1 and 4 revoked, partition 0 lag unknown (no offsets at
     * all): their series disappear (unknown is absent, never a stale
     * number). Partition 2 consumed from app_offset 6 to hi 10: 4. */
    const char *later =
        "{\"type\":\"consumer\",\"topics\":{\"tradeflow.customs\":{\"partitions\":{"
        "\"0\":{\"partition\":0,\"desired\":true,\"consumer_lag\":-1,\"hi_offset\":-1001,"
        "\"lo_offset\":-1001},"
        "\"2\":{\"partition\":2,\"desired\":true,\"consumer_lag\":-1,\"app_offset\":6,"
        "\"hi_offset\":10}}}},"
        "\"cgrp\":{\"assignment_size\":2,\"rebalance_cnt\":4}}";
    CHECK_INT(tf_rdstats_update(s, later, strlen(later), err, sizeof err), 0);
    t = render(m);
    CHECK(strstr(t, "partition=\"0\"") == NULL);
    CHECK(strstr(t, "partition=\"1\"") == NULL);
    CHECK(strstr(t, "partition=\"4\"") == NULL);
    CHECK(strstr(t, "tradeflow_consumer_lag{topic=\"tradeflow.customs\",partition=\"2\"} 4\n"));
    CHECK(strstr(t, "tradeflow_consumer_assigned_partitions 2\n") != NULL);
    free(t);
    CHECK(tf_rdstats_caught_up(s, 100, 10000, reason, sizeof reason) == 0);
    CHECK_STR(reason, "lag unknown for 1 of 2 partitions");

    /* A producer: queue and transmit counters, no lag. */
    const char *prod = "{\"type\":\"producer\",\"msg_cnt\":42,\"msg_size\":4200,\"txmsgs\":1000,"
                       "\"brokers\":{\"b/1\":{\"nodeid\":1,\"state\":\"DOWN\",\"txerrs\":5}}}";
    CHECK_INT(tf_rdstats_update(s, prod, strlen(prod), err, sizeof err), 0);
    t = render(m);
    CHECK(strstr(t, "tradeflow_kafka_queue_messages 42\n") != NULL);
    CHECK(strstr(t, "tradeflow_kafka_queue_bytes 4200\n") != NULL);
    CHECK(strstr(t, "tradeflow_kafka_tx_messages_total 1000\n") != NULL);
    CHECK(strstr(t, "tradeflow_kafka_tx_errors_total 5\n") != NULL);
    CHECK(strstr(t, "tradeflow_kafka_brokers_up 0\n") != NULL);
    CHECK(strstr(t, "tradeflow_consumer_lag{") == NULL);
    free(t);
    CHECK(tf_rdstats_caught_up(s, 100, 10000, reason, sizeof reason) == 0);
    CHECK_STR(reason, "no partition assigned");

    /* Not statistics. */
    CHECK_INT(tf_rdstats_update(s, "{\"type\":", 8, err, sizeof err), -1);
    CHECK(strstr(err, "statistics JSON") != NULL);
    CHECK_INT(tf_rdstats_update(s, "[1,2]", 5, err, sizeof err), -1);
    CHECK(strstr(err, "not librdkafka statistics") != NULL);
    tf_rdstats_free(s);
    tf_metrics_free(m);
}

int main(void)
{
    TF_TEST_RUN(test_golden);
    TF_TEST_RUN(test_labelled_hist_lines);
    TF_TEST_RUN(test_registration_rules);
    TF_TEST_RUN(test_remove_and_clear);
    TF_TEST_RUN(test_format_double);
    TF_TEST_RUN(test_concurrency);
    TF_TEST_RUN(test_std);
    TF_TEST_RUN(test_rdstats);
    return TF_TEST_REPORT();
}
