/*
 * tf_kafka.h - small Kafka helpers shared by tradeflow's producers and
 * consumers: configuration the way kcat takes it (-b, -X key=value, -F file),
 * topic creation through the Admin API, and librdkafka's logs routed into
 * tf_log.
 *
 * Errors: functions return 0 / a pointer on success, -1 / NULL on failure and
 * write a one-line reason into errstr. Nothing here prints or exits.
 */
#ifndef TF_KAFKA_H
#define TF_KAFKA_H

#include <signal.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* Environment variable holding the default bootstrap servers. */
#define TF_KAFKA_BROKERS_ENV "TRADEFLOW_BROKERS"

/* A new librdkafka configuration with bootstrap.servers set from
 * brokers_or_NULL, else from $TRADEFLOW_BROKERS (an error if neither is set
 * or both are empty), and its log callback routed into tf_log (see
 * tf_kafka_log_cb). The caller owns the result: it passes it to
 * rd_kafka_new() (which takes ownership on success) or frees it with
 * rd_kafka_conf_destroy(). */
rd_kafka_conf_t *tf_kafka_conf_new(const char *brokers_or_NULL, char *errstr, size_t errlen);

/* Sets one property given as "key=value" (the -X convention). Topic-level
 * properties are accepted too (librdkafka applies them to the default topic
 * configuration). */
int tf_kafka_conf_set(rd_kafka_conf_t *conf, const char *key_eq_value, char *errstr,
                      size_t errlen);

/* Reads a properties file (the -F convention): one key=value per line,
 * surrounding blanks ignored, blank lines and lines starting with '#'
 * skipped. Errors are reported as "path:line: reason". Properties set before
 * the error stay set. */
int tf_kafka_conf_file(rd_kafka_conf_t *conf, const char *path, char *errstr, size_t errlen);

struct tf_config;
/* Sets every kafka.KEY of a program's configuration (-X, -F, the file,
 * TRADEFLOW_KAFKA_*) as librdkafka's KEY in conf. Returns 0, or -1 with
 * errstr = "kafka.KEY: librdkafka's reason". */
int tf_kafka_conf_from_config(rd_kafka_conf_t *conf, const struct tf_config *cfg, char *errstr,
                              size_t errlen);

/* Checks every kafka.KEY of cfg the way tf_kafka_conf_from_config() sets
 * it, on a scratch configuration: unknown properties and bad values fail
 * with the same message. Programs call it before --print-config and before
 * a real run, so both refuse a misspelled key alike (exit 64). */
int tf_kafka_check_config(const struct tf_config *cfg, char *errstr, size_t errlen);

/* Waits until a broker of rk's cluster answers (a metadata request), for at
 * most timeout_ms, polling rk in between (rd_kafka_poll: call it before
 * rd_kafka_poll_set_consumer on a consumer) so that its error callback
 * runs; that callback may set *give_up (NULL: none) for a refused login,
 * and *stop (NULL: none) is a signal flag. Returns 0, -1 when no broker
 * answered in time ("Kafka brokers LIST unreachable for N s: reason"), -2
 * when *give_up or *stop was set. */
int tf_kafka_wait_ready(rd_kafka_t *rk, int timeout_ms, const int *give_up,
                        const volatile sig_atomic_t *stop, char *errstr, size_t errlen);

/* Creates topic with the given partition count and replication factor (-1:
 * the broker's default, Kafka >= 2.4) through the Admin API and waits up to
 * timeout_ms for the result. A topic that already exists is a success (its
 * partition count is left alone). rk may be a producer or a consumer handle;
 * it is not modified. */
int tf_kafka_create_topic(rd_kafka_t *rk, const char *topic, int partitions,
                          int replication_factor, int timeout_ms, char *errstr, size_t errlen);

/* Returns 1 if the cluster's metadata lists topic, 0 if not, -1 on error.
 * Asks for all topics, so it never triggers broker-side auto-creation. */
int tf_kafka_topic_exists(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                          size_t errlen);

/* The log callback installed by tf_kafka_conf_new(): librdkafka's syslog
 * level is kept, the facility becomes "kafka" and the message is prefixed
 * with librdkafka's own facility. Thread-safe (tf_log is). */
void tf_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
