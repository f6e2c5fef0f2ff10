#include "tf_produce_pub.h"
#include "tf_metrics.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_kafka.h"
#include "tf_log.h"

struct tf_pub {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    char *topic;            /* owned */
    char *transactional_id; /* owned; NULL when not transactional */
    tf_pub_fail_cb *fail_cb;
    void *fail_opaque;
    uint64_t sent, acked, failed;
    uint64_t side_sent, side_acked, side_failed; /* tf_pub_send_side() */
    bool aborting; /* inside tf_pub_abort() or tf_pub_destroy() */
    char first_error[256];
    tf_metric_t *m_delivered, *m_failed; /* not owned; may be NULL */
};

/* Delivery report callback, served on the thread that calls rd_kafka_poll()
 * or rd_kafka_flush() (i.e. the program's main thread). */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    tf_pub_t *p = opaque;
    /* Side messages (tf_pub_send_side) carry -(line + 1) as their opaque. */
    intptr_t op = (intptr_t)m->_private;
    if (op < 0) {
        if (!m->err) {
            p->side_acked++;
            return;
        }
        p->side_failed++;
        bool purged = m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
                      m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
        if (p->fail_cb && !(purged && p->aborting))
            p->fail_cb(p->fail_opaque, (long)(-op - 1), rd_kafka_err2str(m->err));
        return;
    }
    if (!m->err) {
        p->acked++;
        tf_metrics_counter_add(p->m_delivered, 1);
        return;
    }
    p->failed++;
    tf_metrics_counter_add(p->m_failed, 1);
    const char *why = rd_kafka_err2str(m->err);
    if (!p->first_error[0])
        snprintf(p->first_error, sizeof(p->first_error), "%s", why);
    /* Messages purged by an abort the caller asked for are not news. */
    bool purged = m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
                  m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
    if (p->fail_cb && !(purged && p->aborting))
        p->fail_cb(p->fail_opaque, (long)(intptr_t)m->_private, why);
}

/* Errors librdkafka reports outside of a request (broker down, fatal
 * idempotence errors). Most are transient and retried internally, so they
 * are logged; fatal ones are picked up through tf_pub_fatal(). */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof(why));
        TF_LOG(TF_LOG_ERR, "kafka", "fatal error: %s", why);
        return;
    }
    /* A rejected login may be librdkafka's own doing (tf_kafka_auth_hint). */
    const char *hint = err == RD_KAFKA_RESP_ERR__AUTHENTICATION ? tf_kafka_auth_hint(rk) : NULL;
    if (hint) {
        TF_LOG(TF_LOG_ERR, "kafka", "%s: %s; %s", rd_kafka_err2name(err), reason, hint);
        return;
    }
    /* "All brokers down" is the one a user must see; the rest (a broker
     * connection failing and being retried) are noise at the default level. */
    int level = err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? TF_LOG_WARNING : TF_LOG_DEBUG;
    TF_LOG(level, "kafka", "%s: %s", rd_kafka_err2name(err), reason);
}

tf_pub_t *tf_pub_new(rd_kafka_conf_t *conf, const char *topic, const char *transactional_id,
                     int timeout_ms, int connect_timeout_ms, tf_pub_fail_cb *fail_cb,
                     void *fail_opaque, char *errstr, size_t errlen)
{
    tf_pub_t *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(errstr, errlen, "out of memory");
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    p->fail_cb = fail_cb;
    p->fail_opaque = fail_opaque;
    char why[512];
    /* Each record exactly once per send, in order per partition, whatever the
     * user passed with -X: these two are the product's promise. */
    if (rd_kafka_conf_set(conf, "enable.idempotence", "true", why, sizeof(why)) ||
        rd_kafka_conf_set(conf, "acks", "all", why, sizeof(why)) ||
        (transactional_id &&
         rd_kafka_conf_set(conf, "transactional.id", transactional_id, why, sizeof(why)))) {
        snprintf(errstr, errlen, "%s", why);
        rd_kafka_conf_destroy(conf);
        free(p);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!p->rk) {
        snprintf(errstr, errlen, "cannot create producer: %s", why);
        rd_kafka_conf_destroy(conf);
        free(p);
        return NULL;
    }
    /* From here on conf belongs to p->rk. The topic handle is created on
     * the first send: its metadata request could otherwise make a broker
     * with auto.create.topics.enable create the topic (with the broker's
     * default partition count) before the caller creates it properly. */
    p->topic = strdup(topic);
    if (!p->topic) {
        snprintf(errstr, errlen, "out of memory");
        goto fail;
    }
    /* Fail fast and clearly when no broker answers, rather than after the
     * transaction or topic calls' longer timeouts. */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t merr = rd_kafka_metadata(p->rk, 0, NULL, &md,
                                                connect_timeout_ms > 0 ? connect_timeout_ms
                                                                       : TF_PUB_CONNECT_TIMEOUT_MS);
    if (merr) {
        snprintf(errstr, errlen, "no answer from the Kafka cluster within %d ms: %s",
                 connect_timeout_ms > 0 ? connect_timeout_ms : TF_PUB_CONNECT_TIMEOUT_MS,
                 rd_kafka_err2str(merr));
        goto fail;
    }
    rd_kafka_metadata_destroy(md);
    if (transactional_id) {
        p->transactional_id = strdup(transactional_id);
        rd_kafka_error_t *e = rd_kafka_init_transactions(p->rk, timeout_ms);
        if (e) {
            snprintf(errstr, errlen, "init_transactions (transactional.id %s): %s",
                     transactional_id, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            goto fail;
        }
    }
    return p;
fail:
    tf_pub_destroy(p);
    return NULL;
}

void tf_pub_destroy(tf_pub_t *p)
{
    if (!p)
        return;
    if (p->rk) {
        /* Purge first so destroy does not wait message.timeout.ms for
         * messages that can no longer be delivered (e.g. on interrupt). */
        p->aborting = true;
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->rk, 0);
    }
    if (p->rkt)
        rd_kafka_topic_destroy(p->rkt);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    free(p->transactional_id);
    free(p->topic);
    free(p);
}

rd_kafka_t *tf_pub_handle(tf_pub_t *p)
{
    return p->rk;
}

const char *tf_pub_transactional_id(const tf_pub_t *p)
{
    return p->transactional_id;
}

/* Copies an rd_kafka_error_t's reason into errstr and frees it. */
static int txn_error(rd_kafka_error_t *e, const char *what, char *errstr, size_t errlen)
{
    snprintf(errstr, errlen, "%s: %s", what, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return -1;
}

int tf_pub_begin(tf_pub_t *p, char *errstr, size_t errlen)
{
    rd_kafka_error_t *e = rd_kafka_begin_transaction(p->rk);
    return e ? txn_error(e, "begin_transaction", errstr, errlen) : 0;
}

int tf_pub_abort(tf_pub_t *p, int timeout_ms, char *errstr, size_t errlen)
{
    p->aborting = true;
    rd_kafka_error_t *e = rd_kafka_abort_transaction(p->rk, timeout_ms);
    /* Delivery reports of the purged messages are served here so the
     * counters add up. */
    rd_kafka_poll(p->rk, 0);
    p->aborting = false;
    return e ? txn_error(e, "abort_transaction", errstr, errlen) : 0;
}

int tf_pub_commit(tf_pub_t *p, int timeout_ms, char *errstr, size_t errlen)
{
    /* Flushing here (rather than inside commit_transaction) serves the
     * delivery reports on this thread, so acked/failed are up to date. */
    rd_kafka_flush(p->rk, timeout_ms);
    for (int attempt = 0;; attempt++) {
        rd_kafka_error_t *e = rd_kafka_commit_transaction(p->rk, timeout_ms);
        if (!e)
            return 0;
        if (rd_kafka_error_is_retriable(e) && attempt < 2) {
            rd_kafka_error_destroy(e);
            continue;
        }
        snprintf(errstr, errlen, "commit_transaction: %s", rd_kafka_error_string(e));
        int requires_abort = rd_kafka_error_txn_requires_abort(e);
        rd_kafka_error_destroy(e);
        if (requires_abort) {
            rd_kafka_error_t *ae = rd_kafka_abort_transaction(p->rk, timeout_ms);
            if (ae) {
                size_t n = strlen(errstr);
                snprintf(errstr + n, errlen - n, "; abort_transaction: %s",
                         rd_kafka_error_string(ae));
                rd_kafka_error_destroy(ae);
            }
        }
        rd_kafka_poll(p->rk, 0);
        return -1;
    }
}

int tf_pub_send(tf_pub_t *p, const void *key, size_t keylen, const void *value, size_t len,
                long line, volatile int *stop_flag, char *errstr, size_t errlen)
{
    if (!p->rkt) {
        p->rkt = rd_kafka_topic_new(p->rk, p->topic, NULL);
        if (!p->rkt) {
            snprintf(errstr, errlen, "topic %s: %s", p->topic,
                     rd_kafka_err2str(rd_kafka_last_error()));
            return -1;
        }
    }
    for (;;) {
        if (rd_kafka_produce(p->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)value,
                             len, key, keylen, (void *)(intptr_t)line) == 0) {
            p->sent++;
            /* Serving delivery reports now and then keeps their queue (and
             * memory) small; a zero timeout costs next to nothing. */
            if ((p->sent & 1023) == 0)
                rd_kafka_poll(p->rk, 0);
            return 0;
        }
        rd_kafka_resp_err_t err = rd_kafka_last_error();
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            snprintf(errstr, errlen, "produce: %s", rd_kafka_err2str(err));
            return -1;
        }
        if (stop_flag && *stop_flag) {
            snprintf(errstr, errlen, "produce: interrupted while the queue was full");
            return -1;
        }
        /* The local queue is full: wait for the broker to acknowledge some. */
        rd_kafka_poll(p->rk, 10);
    }
}

int tf_pub_send_side(tf_pub_t *p, const char *topic, const void *key, size_t keylen,
                     const void *value, size_t len, rd_kafka_headers_t *headers, long line,
                     volatile int *stop_flag, char *errstr, size_t errlen)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, keylen), RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE((void *)(intptr_t)(-(line + 1))),
            RD_KAFKA_V_END);
        if (!err) {
            p->side_sent++;
            return 0; /* the headers belong to the message now */
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || (stop_flag && *stop_flag)) {
            snprintf(errstr, errlen, "produce to %s: %s", topic, rd_kafka_err2str(err));
            if (headers)
                rd_kafka_headers_destroy(headers);
            return -1;
        }
        rd_kafka_poll(p->rk, 10);
    }
}

uint64_t tf_pub_side_sent(const tf_pub_t *p)
{
    return p->side_sent;
}
uint64_t tf_pub_side_acked(const tf_pub_t *p)
{
    return p->side_acked;
}
uint64_t tf_pub_side_failed(const tf_pub_t *p)
{
    return p->side_failed;
}

void tf_pub_poll(tf_pub_t *p)
{
    rd_kafka_poll(p->rk, 0);
}

int tf_pub_flush(tf_pub_t *p, int timeout_ms)
{
    rd_kafka_flush(p->rk, timeout_ms);
    rd_kafka_poll(p->rk, 0);
    return rd_kafka_outq_len(p->rk);
}

int tf_pub_fatal(tf_pub_t *p, char *errstr, size_t errlen)
{
    return rd_kafka_fatal_error(p->rk, errstr, errlen) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

void tf_pub_reset_counts(tf_pub_t *p)
{
    p->sent = p->acked = p->failed = 0;
    p->side_sent = p->side_acked = p->side_failed = 0;
    p->first_error[0] = '\0';
}

uint64_t tf_pub_sent(const tf_pub_t *p)
{
    return p->sent;
}
uint64_t tf_pub_acked(const tf_pub_t *p)
{
    return p->acked;
}
uint64_t tf_pub_failed(const tf_pub_t *p)
{
    return p->failed;
}
const char *tf_pub_first_error(const tf_pub_t *p)
{
    return p->first_error;
}

void tf_pub_set_counters(tf_pub_t *p, struct tf_metric *delivered, struct tf_metric *failed)
{
    p->m_delivered = delivered;
    p->m_failed = failed;
}
