/*
 * tf_produce_pub.h - the publishing side of tradeflow-produce: one
 * idempotent (acks=all) librdkafka producer, optionally transactional, that
 * counts what the broker acknowledged.
 *
 * A tf_pub_t owns its rd_kafka_t and topic handle. Messages are copied into
 * librdkafka's queue (RD_KAFKA_MSG_F_COPY), so the caller's key and value
 * buffers can be reused right after tf_pub_send() returns: the program keeps
 * one encode buffer for the whole run and does not allocate per record.
 *
 * Counters: `sent` counts messages handed to librdkafka since the last
 * tf_pub_reset_counts(); `acked` and `failed` count delivery reports as they
 * are served (by tf_pub_send's polling, tf_pub_flush, tf_pub_commit). In a
 * transaction, an acknowledged message is visible to read_committed readers
 * only once tf_pub_commit() succeeds.
 *
 * Not thread-safe: one thread drives a tf_pub_t. Errors: -1 / NULL with a
 * one-line reason in errstr.
 */
#ifndef TF_PRODUCE_PUB_H
#define TF_PRODUCE_PUB_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

typedef struct tf_pub tf_pub_t;

/* tf_pub_new() gives up when no broker answers a metadata request within
 * connect_timeout_ms, or this time when that is 0. */
#define TF_PUB_CONNECT_TIMEOUT_MS 15000

/* Called for each message that failed delivery, from the thread that polls.
 * line is the opaque given to tf_pub_send() (the input line). */
typedef void tf_pub_fail_cb(void *opaque, long line, const char *reason);

/* Creates a producer for topic from conf, which this function always takes
 * over (freed on failure too). The idempotence and acks settings are forced.
 * The topic is not touched before the first tf_pub_send() (so the caller can
 * create it first with tf_kafka_create_topic on tf_pub_handle()).
 * With a non-NULL transactional_id it becomes a transactional producer and
 * init_transactions() is run, which fences any earlier producer (a crashed
 * run) with the same id and aborts its open transaction. timeout_ms bounds
 * the initialisation; connect_timeout_ms (0: TF_PUB_CONNECT_TIMEOUT_MS) the
 * wait for a first answer from the cluster. fail_cb may be NULL. Caller frees with
 * tf_pub_destroy(). */
tf_pub_t *tf_pub_new(rd_kafka_conf_t *conf, const char *topic, const char *transactional_id,
                     int timeout_ms, int connect_timeout_ms, tf_pub_fail_cb *fail_cb,
                     void *fail_opaque, char *errstr, size_t errlen);
/* Flushes nothing: call tf_pub_flush() or tf_pub_commit() first if delivery
 * matters. Pending messages are purged. NULL is accepted. */
void tf_pub_destroy(tf_pub_t *p);

rd_kafka_t *tf_pub_handle(tf_pub_t *p);
const char *tf_pub_transactional_id(const tf_pub_t *p); /* NULL if not transactional */

int tf_pub_begin(tf_pub_t *p, char *errstr, size_t errlen);
/* Flushes, then commits the open transaction. On failure the transaction is
 * aborted (when that is still possible) and -1 is returned. */
int tf_pub_commit(tf_pub_t *p, int timeout_ms, char *errstr, size_t errlen);
/* Aborts the open transaction: nothing sent since tf_pub_begin() becomes
 * visible to read_committed readers. */
int tf_pub_abort(tf_pub_t *p, int timeout_ms, char *errstr, size_t errlen);

/* Queues one message. When librdkafka's queue is full it serves delivery
 * reports and waits until there is room (or stop_flag becomes non-zero, then
 * -1). line is passed back to fail_cb. */
int tf_pub_send(tf_pub_t *p, const void *key, size_t keylen, const void *value, size_t len,
                long line, volatile int *stop_flag, char *errstr, size_t errlen);
/* Queues one message to another topic (the dead-letter topic of
 * --rejects-topic) in the same transaction, with headers, which this
 * function takes over (freed on failure too; may be NULL). Its delivery
 * reports are counted apart (tf_pub_side_acked / _failed), not in
 * sent/acked/failed; fail_cb gets its line too. */
int tf_pub_send_side(tf_pub_t *p, const char *topic, const void *key, size_t keylen,
                     const void *value, size_t len, rd_kafka_headers_t *headers, long line,
                     volatile int *stop_flag, char *errstr, size_t errlen);
uint64_t tf_pub_side_sent(const tf_pub_t *p);
uint64_t tf_pub_side_acked(const tf_pub_t *p);
uint64_t tf_pub_side_failed(const tf_pub_t *p);
/* Serves delivery reports without blocking. */
void tf_pub_poll(tf_pub_t *p);
/* Waits up to timeout_ms for every queued message to be acknowledged or to
 * fail; returns the number still in flight (0 = all settled). */
int tf_pub_flush(tf_pub_t *p, int timeout_ms);

/* A fatal error (fenced by a newer producer with the same transactional id,
 * idempotence broken): the handle is unusable. Reason in errstr. */
int tf_pub_fatal(tf_pub_t *p, char *errstr, size_t errlen);

void tf_pub_reset_counts(tf_pub_t *p);
uint64_t tf_pub_sent(const tf_pub_t *p);
uint64_t tf_pub_acked(const tf_pub_t *p);
uint64_t tf_pub_failed(const tf_pub_t *p);
/* The first delivery error since the last reset, or "" (owned by p). */
const char *tf_pub_first_error(const tf_pub_t *p);

/* Counts delivery reports into these metrics too (either may be NULL); the
 * metrics are owned by the caller and must outlive p. */
struct tf_metric;
void tf_pub_set_counters(tf_pub_t *p, struct tf_metric *delivered, struct tf_metric *failed);

#endif
