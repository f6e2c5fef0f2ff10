/*
 * tf_admin - the Kafka admin operations the shell integration tests need,
 * without a JVM start per call (kafka-topics.sh takes seconds) and without
 * relying on broker-side auto-creation:
 *
 *   tf_admin [-b BROKERS] [-T SECONDS] create-topic TOPIC PARTITIONS [RF]
 *   tf_admin [-b BROKERS] [-T SECONDS] delete-topic TOPIC...
 *   tf_admin [-b BROKERS] [-T SECONDS] ping
 *
 * BROKERS defaults to $TRADEFLOW_BROKERS. create-topic returns only when the
 * broker's metadata shows every partition with a leader, so a producer or
 * consumer started next finds the topic ready; a topic that already exists
 * with the same partition count is a success. delete-topic ignores topics
 * that do not exist. ping prints the number of brokers in the metadata.
 * Exit status 0 on success, 1 on failure (with the reason on stderr), 2 on a
 * usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "tf_kafka.h"
#include "tf_log.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* Polls metadata until topic has `partitions` partitions that all have a
 * leader; returns 0, or -1 with a reason when the deadline passes. */
static int wait_topic_ready(rd_kafka_t *rk, const char *topic, int partitions, long long deadline,
                            char *errstr, size_t errlen)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) {
        snprintf(errstr, errlen, "rd_kafka_topic_new(%s): %s", topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    int rc = -1;
    snprintf(errstr, errlen, "topic %s did not become ready", topic);
    while (now_ms() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        /* Asking for this one topic only: the topic exists now, so this
         * cannot auto-create anything. */
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 2000);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1) {
            const rd_kafka_metadata_topic_t *t = &md->topics[0];
            int ready = t->err == RD_KAFKA_RESP_ERR_NO_ERROR && t->partition_cnt == partitions;
            for (int i = 0; ready && i < t->partition_cnt; i++)
                if (t->partitions[i].leader < 0 || t->partitions[i].err)
                    ready = 0;
            if (t->err == RD_KAFKA_RESP_ERR_NO_ERROR && t->partition_cnt > 0 &&
                t->partition_cnt != partitions) {
                snprintf(errstr, errlen, "topic %s exists with %d partitions, not %d", topic,
                         t->partition_cnt, partitions);
                rd_kafka_metadata_destroy(md);
                break;
            }
            rd_kafka_metadata_destroy(md);
            if (ready) {
                rc = 0;
                break;
            }
        } else if (md) {
            rd_kafka_metadata_destroy(md);
        }
        usleep(100 * 1000);
    }
    rd_kafka_topic_destroy(rkt);
    return rc;
}

static int delete_topics(rd_kafka_t *rk, char **topics, int n, int timeout_ms, char *errstr,
                         size_t errlen)
{
    rd_kafka_DeleteTopic_t **del = calloc((size_t)n, sizeof(*del));
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_event_t *ev = NULL;
    int rc = -1;

    if (!del || !opts || !q) {
        snprintf(errstr, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++)
        del[i] = rd_kafka_DeleteTopic_new(topics[i]);
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, NULL, 0);
    rd_kafka_DeleteTopics(rk, del, (size_t)n, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (!ev) {
        snprintf(errstr, errlen, "no answer to DeleteTopics within %d ms", timeout_ms + 2000);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errlen, "DeleteTopics: %s", rd_kafka_event_error_string(ev));
        goto out;
    }
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
    rc = 0;
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        if (e && e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            snprintf(errstr, errlen, "delete %s: %s", rd_kafka_topic_result_name(res[i]),
                     rd_kafka_err2str(e));
            rc = -1;
        }
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (del) {
        for (int i = 0; i < n; i++)
            if (del[i])
                rd_kafka_DeleteTopic_destroy(del[i]);
        free(del);
    }
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (q)
        rd_kafka_queue_destroy(q);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: tf_admin [-b BROKERS] [-T SECONDS] create-topic TOPIC PARTITIONS [RF]\n"
                    "       tf_admin [-b BROKERS] [-T SECONDS] delete-topic TOPIC...\n"
                    "       tf_admin [-b BROKERS] [-T SECONDS] ping\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL;
    int timeout_s = 30, opt;
    char errstr[512];

    while ((opt = getopt(argc, argv, "+b:T:h")) != -1) {
        switch (opt) {
        case 'b':
            brokers = optarg;
            break;
        case 'T':
            if (parse_int(optarg, 1, 3600, &timeout_s))
                return usage();
            break;
        default:
            return usage();
        }
    }
    if (optind >= argc)
        return usage();
    const char *cmd = argv[optind++];
    int nargs = argc - optind;
    char **args = argv + optind;
    int partitions = 0, rf = -1;

    if (!strcmp(cmd, "create-topic")) {
        if (nargs < 2 || nargs > 3 || parse_int(args[1], 1, 100000, &partitions) ||
            (nargs == 3 && parse_int(args[2], 1, 100, &rf)))
            return usage();
    } else if (!strcmp(cmd, "delete-topic")) {
        if (nargs < 1)
            return usage();
    } else if (strcmp(cmd, "ping") || nargs != 0) {
        return usage();
    }

    tf_log_init("tf_admin", TF_LOG_WARNING, TF_LOG_TEXT);
    rd_kafka_conf_t *conf = tf_kafka_conf_new(brokers, errstr, sizeof(errstr));
    if (!conf) {
        fprintf(stderr, "tf_admin: %s\n", errstr);
        return 1;
    }
    /* A dead broker must be reported, not retried for librdkafka's default
     * minutes. */
    if (tf_kafka_conf_set(conf, "socket.connection.setup.timeout.ms=5000", errstr,
                          sizeof(errstr))) {
        fprintf(stderr, "tf_admin: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "tf_admin: rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    long long deadline = now_ms() + (long long)timeout_s * 1000;
    int rc = 0;

    if (!strcmp(cmd, "ping")) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_s * 1000);
        if (err) {
            fprintf(stderr, "tf_admin: no metadata from %s within %d s: %s\n",
                    brokers ? brokers : getenv(TF_KAFKA_BROKERS_ENV), timeout_s,
                    rd_kafka_err2str(err));
            rc = 1;
        } else {
            printf("%d\n", md->broker_cnt);
            rd_kafka_metadata_destroy(md);
        }
    } else if (!strcmp(cmd, "create-topic")) {
        if (tf_kafka_create_topic(rk, args[0], partitions, rf, timeout_s * 1000, errstr,
                                  sizeof(errstr)) ||
            wait_topic_ready(rk, args[0], partitions, deadline, errstr, sizeof(errstr))) {
            fprintf(stderr, "tf_admin: create-topic %s: %s\n", args[0], errstr);
            rc = 1;
        }
    } else {
        if (delete_topics(rk, args, nargs, timeout_s * 1000, errstr, sizeof(errstr))) {
            fprintf(stderr, "tf_admin: delete-topic: %s\n", errstr);
            rc = 1;
        }
    }
    rd_kafka_destroy(rk);
    return rc;
}
