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

/* ---- what the linked librdkafka can do against Kafka 4.x (docs/stack.md) */

/* rd_kafka_version() values (0xMMmmrrpp) of the first releases that can:
 * log in with SCRAM to a Kafka >= 4.0 broker (before 2.6.1 the client-final
 * message repeats the client nonce, which Kafka 4.x refuses as "invalid
 * credentials" whatever the password: librdkafka #4895), and use the KIP-848
 * consumer group protocol (group.protocol=consumer, GA in 2.12.0). */
#define TF_RDKAFKA_SCRAM_KAFKA4 0x02060100
#define TF_RDKAFKA_KIP848_GA 0x020c0000

/* The explanation to add to a rejected SASL login when librdkafka itself may
 * be the cause: rdkafka_version (as rd_kafka_version() returns it) before
 * 2.6.1 and sasl_mechanisms naming a SCRAM mechanism. Returns a static
 * string, or NULL when they do not fit that cause (NULL mechanisms: none). */
const char *tf_kafka_scram_hint(int rdkafka_version, const char *sasl_mechanisms);

/* tf_kafka_scram_hint() for a client handle: the linked librdkafka and rk's
 * sasl.mechanisms (NULL when it has no SASL mechanism set). */
const char *tf_kafka_auth_hint(rd_kafka_t *rk);

/* Whether a consumer should ask for the KIP-848 consumer group protocol:
 * 1 when the user did not set group.protocol (user_setting NULL or empty),
 * rdkafka_version >= 2.12.0 and the broker advertises ConsumerGroupHeartbeat
 * (broker_cgh 1); else 0, the classic protocol (librdkafka's default:
 * nothing to set), also when the broker's answer is unknown (broker_cgh -1).
 * A user setting always wins (0: leave it as set). *why (may be NULL) gets a
 * static phrase naming the rule that decided. Pure: no I/O. */
int tf_kafka_use_kip848(const char *user_setting, int rdkafka_version, int broker_cgh,
                        const char **why);

/* Asks the first bootstrap server (host:port, the first of a comma-separated
 * list) for its ApiVersions over a plain TCP connection, as a PLAINTEXT or
 * SASL_PLAINTEXT listener answers (before any login; ApiVersions v3): 1
 * if the broker offers the consumer protocol, i.e. lists
 * ConsumerGroupHeartbeat (API key 68) and finalizes the group.version
 * feature at 1 or more (Kafka 4.x by default; 3.9 lists the key but leaves
 * group.version at 0), 0 if not (or a broker before 2.4, which refuses v3),
 * -1 when it cannot tell (refused,
 * no answer within timeout_ms, a TLS listener, a malformed reply), with the
 * reason in errstr. Blocks up to timeout_ms. */
int tf_kafka_probe_consumer_protocol(const char *bootstrap, int timeout_ms, char *errstr,
                                     size_t errlen);

/* The log callback installed by tf_kafka_conf_new(): librdkafka's syslog
 * level is kept, the facility becomes "kafka" and the message is prefixed
 * with librdkafka's own facility. Thread-safe (tf_log is). */
void tf_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
