#include "tf_kafka.h"

#include <time.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_config.h"
#include "tf_log.h"

void tf_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    TF_LOG(level, "kafka", "%s: %s", fac ? fac : "-", buf ? buf : "");
}

rd_kafka_conf_t *tf_kafka_conf_new(const char *brokers_or_NULL, char *errstr, size_t errlen)
{
    const char *brokers = brokers_or_NULL;
    if (!brokers || !*brokers)
        brokers = getenv(TF_KAFKA_BROKERS_ENV);
    if (!brokers || !*brokers) {
        snprintf(errstr, errlen, "no Kafka brokers: give -b HOST:PORT or set %s",
                 TF_KAFKA_BROKERS_ENV);
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, errlen) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, tf_kafka_log_cb);
    return conf;
}

/* Sets key to value, with librdkafka's reason in errstr on failure. */
static int conf_set_kv(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                       size_t errlen)
{
    char why[512];
    if (!*key) {
        snprintf(errstr, errlen, "empty property name");
        return -1;
    }
    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errlen, "%s", why);
        return -1;
    }
    return 0;
}

int tf_kafka_conf_set(rd_kafka_conf_t *conf, const char *key_eq_value, char *errstr,
                      size_t errlen)
{
    const char *eq = strchr(key_eq_value, '=');
    if (!eq) {
        snprintf(errstr, errlen, "expected key=value, got \"%.200s\"", key_eq_value);
        return -1;
    }
    size_t kl = (size_t)(eq - key_eq_value);
    char key[256];
    if (kl >= sizeof(key)) {
        snprintf(errstr, errlen, "property name too long");
        return -1;
    }
    memcpy(key, key_eq_value, kl);
    key[kl] = '\0';
    return conf_set_kv(conf, key, eq + 1, errstr, errlen);
}

/* Strips leading and trailing white space in place; returns the new start. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int tf_kafka_conf_file(rd_kafka_conf_t *conf, const char *path, char *errstr, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(errstr, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    while (getline(&line, &cap, fp) != -1) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(errstr, errlen, "%s:%ld: expected key=value", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        char why[512];
        if (conf_set_kv(conf, key, value, why, sizeof(why)) != 0) {
            snprintf(errstr, errlen, "%s:%ld: %s", path, lineno, why);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(fp)) {
        snprintf(errstr, errlen, "%s: read error: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(fp);
    return rc;
}

int tf_kafka_create_topic(rd_kafka_t *rk, const char *topic, int partitions,
                          int replication_factor, int timeout_ms, char *errstr, size_t errlen)
{
    int rc = -1;
    char why[512];
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;

    nt = rd_kafka_NewTopic_new(topic, partitions, replication_factor, why, sizeof(why));
    if (!nt) {
        snprintf(errstr, errlen, "topic %s: %s", topic, why);
        goto out;
    }
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (!opts) {
        snprintf(errstr, errlen, "topic %s: cannot create admin options", topic);
        goto out;
    }
    /* The operation timeout makes the broker answer only once the topic
     * exists (or the time is up), so a produce right after finds it. */
    if (rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, why, sizeof(why)) ||
        rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, why, sizeof(why))) {
        snprintf(errstr, errlen, "topic %s: %s", topic, why);
        goto out;
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    /* The request's own timeout fires first; the margin covers scheduling. */
    ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (!ev) {
        snprintf(errstr, errlen, "topic %s: no answer to CreateTopics within %d ms", topic,
                 timeout_ms);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errlen, "topic %s: CreateTopics failed: %s", topic,
                 rd_kafka_event_error_string(ev));
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    if (!tr || n != 1) {
        snprintf(errstr, errlen, "topic %s: unexpected CreateTopics result", topic);
        goto out;
    }
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[0]);
    if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        const char *msg = rd_kafka_topic_result_error_string(tr[0]);
        snprintf(errstr, errlen, "topic %s: %s", topic, msg ? msg : rd_kafka_err2str(err));
        goto out;
    }
    rc = 0;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (q)
        rd_kafka_queue_destroy(q);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    return rc;
}

int tf_kafka_topic_exists(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                          size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (err) {
        snprintf(errstr, errlen, "metadata request failed: %s", rd_kafka_err2str(err));
        return -1;
    }
    int found = 0;
    for (int i = 0; i < md->topic_cnt && !found; i++)
        if (strcmp(md->topics[i].topic, topic) == 0 && !md->topics[i].err)
            found = 1;
    rd_kafka_metadata_destroy(md);
    return found;
}

struct conf_prop_ctx {
    rd_kafka_conf_t *conf;
    char why[600];
};

static int conf_prop(const char *name, const char *value, void *arg)
{
    struct conf_prop_ctx *kp = arg;
    char why[512];
    if (rd_kafka_conf_set(kp->conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(kp->why, sizeof(kp->why), "kafka.%s: %s", name, why);
        return -1;
    }
    return 0;
}

int tf_kafka_conf_from_config(rd_kafka_conf_t *conf, const struct tf_config *cfg, char *errstr,
                              size_t errlen)
{
    struct conf_prop_ctx kp = {conf, ""};
    if (tf_config_foreach(cfg, "kafka.", conf_prop, &kp) != 0) {
        snprintf(errstr, errlen, "%s", kp.why[0] ? kp.why : "kafka.*: out of memory");
        return -1;
    }
    return 0;
}

int tf_kafka_check_config(const struct tf_config *cfg, char *errstr, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    int rc = tf_kafka_conf_from_config(conf, cfg, errstr, errlen);
    rd_kafka_conf_destroy(conf);
    return rc;
}

int tf_kafka_wait_ready(rd_kafka_t *rk, int timeout_ms, const int *give_up,
                        const volatile sig_atomic_t *stop, char *errstr, size_t errlen)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long ms = (t.tv_sec - t0.tv_sec) * 1000L + (t.tv_nsec - t0.tv_nsec) / 1000000L;
        if ((give_up && *give_up) || (stop && *stop)) {
            snprintf(errstr, errlen, "gave up waiting for the Kafka brokers");
            return -2;
        }
        if (ms >= timeout_ms) {
            char servers[512] = "?";
            size_t n = sizeof(servers);
            if (rd_kafka_conf_get(rd_kafka_conf(rk), "bootstrap.servers", servers, &n) !=
                RD_KAFKA_CONF_OK)
                snprintf(servers, sizeof(servers), "?");
            snprintf(errstr, errlen,
                     "Kafka brokers %s unreachable for %.1f s (startup.timeout %d s): %s",
                     servers, ms / 1000.0, timeout_ms / 1000, rd_kafka_err2str(err));
            return -1;
        }
        const struct rd_kafka_metadata *md = NULL;
        long left = timeout_ms - ms;
        err = rd_kafka_metadata(rk, 0, NULL, &md, (int)(left < 1000 ? left : 1000));
        if (!err) {
            rd_kafka_metadata_destroy(md);
            return 0;
        }
        rd_kafka_poll(rk, 0); /* (serves the error callback) */
        if (err != RD_KAFKA_RESP_ERR__TIMED_OUT) {
            struct timespec nap = {0, 100 * 1000000L}; /* (a fast failure: do not spin) */
            nanosleep(&nap, NULL);
        }
    }
}
