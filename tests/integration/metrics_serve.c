/*
 * metrics_serve.c - a small real consumer that serves tradeflow's metrics,
 * for tests/integration/test_prometheus.sh while tradeflow-aggregate does
 * not serve them yet (and as a worked example of the wiring).
 *
 *   metrics_serve [--addr ADDR] [--port-file FILE] [-t TOPIC -g GROUP]
 *                 [--pause-after N]
 *
 * With a topic it joins GROUP, consumes TOPIC from the beginning, counts
 * every message in tradeflow_records_consumed_total, commits after every
 * poll round (so librdkafka's consumer_lag is known), feeds librdkafka's
 * statistics to tf_rdstats every 500 ms, and is ready when every assigned
 * partition is caught up. Without a topic it only serves the standard
 * metrics. With --pause-after N it consumes exactly N messages, commits,
 * pauses its partitions (so a known lag stays visible and /readyz says
 * "lagging") and resumes on SIGUSR1. It writes the bound port to FILE once
 * serving, and stops on SIGINT/SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "tf_http.h"
#include "tf_kafka.h"
#include "tf_log.h"
#include "tf_metrics.h"
#include "tf_rdstats.h"

static volatile sig_atomic_t stop, resume;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        resume = 1;
    else
        stop = 1;
}

/* Pauses (or resumes) every partition of the current assignment. */
static void pause_all(rd_kafka_t *rk, int pause)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || !a)
        return;
    if (pause)
        rd_kafka_pause_partitions(rk, a);
    else
        rd_kafka_resume_partitions(rk, a);
    TF_LOG(TF_LOG_INFO, "main", "%s %d partitions", pause ? "paused" : "resumed", a->cnt);
    rd_kafka_topic_partition_list_destroy(a);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct app {
    tf_rdstats_t *rdstats;
    int kafka; /* a consumer is running */
} app_t;

/* librdkafka's statistics, on the polling thread. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    app_t *app = opaque;
    char err[256];
    if (tf_rdstats_update(app->rdstats, json, len, err, sizeof err) != 0)
        TF_LOG(TF_LOG_WARNING, "stats", "%s", err);
    /* TF_STATS_DUMP=FILE keeps the last document, for post-mortems. */
    const char *dump = getenv("TF_STATS_DUMP");
    FILE *f = dump ? fopen(dump, "w") : NULL;
    if (f) {
        fwrite(json, 1, len, f);
        fclose(f);
    }
    return 0; /* librdkafka frees json */
}

/* /readyz, on libmicrohttpd's thread: tf_rdstats_caught_up is thread-safe. */
static int ready_cb(void *arg, char *reason, size_t len)
{
    app_t *app = arg;
    if (!app->kafka)
        return 1;
    return tf_rdstats_caught_up(app->rdstats, 0, 5000, reason, len);
}

int main(int argc, char **argv)
{
    const char *addr = ":0", *port_file = NULL, *topic = NULL, *group = NULL;
    long pause_after = -1; /* messages to consume before pausing; -1: never */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--addr") && i + 1 < argc)
            addr = argv[++i];
        else if (!strcmp(argv[i], "--port-file") && i + 1 < argc)
            port_file = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc)
            topic = argv[++i];
        else if (!strcmp(argv[i], "-g") && i + 1 < argc)
            group = argv[++i];
        else if (!strcmp(argv[i], "--pause-after") && i + 1 < argc)
            pause_after = atol(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--addr ADDR] [--port-file FILE] [-t TOPIC -g GROUP] "
                    "[--pause-after N]\n",
                    argv[0]);
            return 2;
        }
    }
    tf_log_init("metrics_serve", TF_LOG_INFO, TF_LOG_TEXT);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGUSR1, on_signal);

    char err[512];
    int rc = 1;
    app_t app = {0};
    rd_kafka_t *rk = NULL;
    tf_http_t *http = NULL;
    tf_metrics_std_t std;
    tf_metrics_t *m = tf_metrics_new();
    if (!m || tf_metrics_std_register(m, TF_METRICS_STD_CONSUMER | TF_METRICS_STD_ALERTS,
                                      "metrics_serve", "test", &std, err, sizeof err) != 0 ||
        !(app.rdstats = tf_rdstats_new(m, err, sizeof err))) {
        TF_LOG(TF_LOG_ERR, "metrics", "%s", m ? err : "out of memory");
        goto out;
    }

    if (topic) {
        if (!group) {
            TF_LOG(TF_LOG_ERR, "main", "-t needs -g GROUP");
            goto out;
        }
        rd_kafka_conf_t *conf = tf_kafka_conf_new(NULL, err, sizeof err);
        if (!conf) {
            TF_LOG(TF_LOG_ERR, "kafka", "%s", err);
            goto out;
        }
        char gprop[300];
        snprintf(gprop, sizeof gprop, "group.id=%s", group);
        const char *props[] = {gprop, "enable.auto.commit=false", "auto.offset.reset=earliest",
                               "statistics.interval.ms=500", "isolation.level=read_committed"};
        for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
            if (tf_kafka_conf_set(conf, props[i], err, sizeof err) != 0) {
                TF_LOG(TF_LOG_ERR, "kafka", "%s", err);
                rd_kafka_conf_destroy(conf);
                goto out;
            }
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
        rd_kafka_conf_set_opaque(conf, &app);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
        if (!rk) {
            rd_kafka_conf_destroy(conf);
            TF_LOG(TF_LOG_ERR, "kafka", "%s", err);
            goto out;
        }
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (e) {
            TF_LOG(TF_LOG_ERR, "kafka", "subscribe %s: %s", topic, rd_kafka_err2str(e));
            goto out;
        }
        app.kafka = 1;
    }

    /* The endpoint starts after the handles its callbacks read exist. */
    http = tf_http_start(addr, m, ready_cb, &app, err, sizeof err);
    if (!http) {
        TF_LOG(TF_LOG_ERR, "http", "%s", err);
        goto out;
    }
    TF_LOG(TF_LOG_INFO, "http", "serving on port %d", tf_http_port(http));
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (!f || fprintf(f, "%d\n", tf_http_port(http)) < 0 || fclose(f) != 0) {
            TF_LOG(TF_LOG_ERR, "main", "cannot write %s", port_file);
            goto out;
        }
    }

    uint64_t total = 0;
    int paused = 0;
    while (!stop) {
        tf_http_heartbeat(http);
        if (!rk) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (paused && resume) {
            pause_all(rk, 0);
            paused = 0;
            pause_after = -1;
        }
        /* One round: what arrives within 100 ms (at most up to the pause
         * point), then a commit. */
        long limit = 1000;
        if (pause_after >= 0 && !paused)
            limit = pause_after - (long)total < limit ? pause_after - (long)total : limit;
        if (paused)
            limit = 0;
        if (limit == 0 && !paused && pause_after >= 0) {
            pause_all(rk, 1);
            paused = 1;
        }
        int n = 0;
        rd_kafka_message_t *msg;
        /* While paused, polling still serves the statistics callback. */
        while ((paused || n < limit) &&
               (msg = rd_kafka_consumer_poll(rk, n ? 0 : 100)) != NULL) {
            if (paused) {
                /* Fetched before the pause: go back to it, so that it is
                 * consumed after the resume rather than skipped. */
                if (!msg->err)
                    rd_kafka_seek(msg->rkt, msg->partition, msg->offset, 1000);
                rd_kafka_message_destroy(msg);
                break;
            }
            if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
                n++;
            else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                TF_LOG(TF_LOG_WARNING, "kafka", "%s", rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
        }
        if (n == 0)
            continue;
        double t0 = now_s();
        rd_kafka_resp_err_t e = rd_kafka_commit(rk, NULL, 0);
        if (e)
            TF_LOG(TF_LOG_WARNING, "kafka", "commit: %s", rd_kafka_err2str(e));
        tf_metrics_counter_add(std.records_consumed, (uint64_t)n);
        total += (uint64_t)n;
        tf_metrics_hist_observe(std.batch_records, n);
        tf_metrics_hist_observe(std.batch_apply_seconds, now_s() - t0);
    }
    rc = 0;
out:
    /* The server first: its callbacks read the handles freed below. */
    tf_http_stop(http);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    tf_rdstats_free(app.rdstats);
    tf_metrics_free(m);
    return rc;
}
