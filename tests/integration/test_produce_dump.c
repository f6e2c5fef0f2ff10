/*
 * test_produce_dump - test helper: reads a whole topic as a read_committed
 * consumer (no consumer group: every partition from the beginning up to its
 * end at the time of reading), decodes each message with the project's codec
 * and prints one line per record:
 *
 *   KEY<TAB>dataset|record_id|revision|reporter|partner|flow|period|value_usd|
 *           hs_code|quantity|unit|sector
 *
 * (one line; empty fields for absent optional values, decimals with exactly
 * 2 / 3 places). tests/integration/test_produce_pyread.py prints the same
 * format from an independent client, so the two outputs can be compared.
 *
 * Usage: test_produce_dump [-b BROKERS] -t TOPIC [-T timeout_ms] [-u] [-r URL]
 *   -u  read_uncommitted (to show that aborted data did reach the log)
 *   -r  schema registry URL (messages in the Confluent framing)
 * Exit: 0 ok, 1 a message did not decode or validate, 2 error / timeout.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tf_codec.h"
#include "tf_kafka.h"
#include "tf_log.h"
#include "tf_record.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_record(const rd_kafka_message_t *m, const tf_record_t *r)
{
    char period[16], value[32], qty[32] = "";
    tf_period_format(r->period, period, sizeof(period));
    tf_decimal_format(r->value_cents, 2, value, sizeof(value));
    if (r->has_quantity)
        tf_decimal_format(r->quantity_milli, 3, qty, sizeof(qty));
    printf("%.*s\t%s|%s|%lld|%s|%s|%s|%s|%s|%s|%s|%s|%s\n", (int)m->key_len,
           m->key ? (const char *)m->key : "", tf_dataset_name(r->dataset), r->record_id,
           (long long)r->revision, r->reporter, r->partner, tf_flow_name(r->flow), period, value,
           r->hs_code, qty, r->unit, r->sector);
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *topic = NULL, *registry = NULL;
    long timeout_ms = 60000;
    int uncommitted = 0, c;
    while ((c = getopt(argc, argv, "b:t:T:ur:")) != -1) {
        switch (c) {
        case 'b': brokers = optarg; break;
        case 't': topic = optarg; break;
        case 'T': timeout_ms = strtol(optarg, NULL, 10); break;
        case 'u': uncommitted = 1; break;
        case 'r': registry = optarg; break;
        default:
            fprintf(stderr, "usage: %s [-b BROKERS] -t TOPIC [-T ms] [-u] [-r URL]\n", argv[0]);
            return 2;
        }
    }
    if (!topic) {
        fprintf(stderr, "%s: -t TOPIC is required\n", argv[0]);
        return 2;
    }
    tf_log_init("test_produce_dump", TF_LOG_WARNING, TF_LOG_TEXT);
    char err[512];
    tf_codec_t *codec = tf_codec_new(NULL, NULL, err, sizeof(err));
    if (!codec) {
        fprintf(stderr, "codec: %s\n", err);
        return 2;
    }
    if (registry && tf_codec_use_registry(codec, registry, NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "registry: %s\n", err);
        return 2;
    }
    rd_kafka_conf_t *conf = tf_kafka_conf_new(brokers, err, sizeof(err));
    if (!conf || rd_kafka_conf_set(conf, "group.id", "tf-test-dump", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "isolation.level",
                          uncommitted ? "read_uncommitted" : "read_committed", err,
                          sizeof(err))) {
        fprintf(stderr, "conf: %s\n", err);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "consumer: %s\n", err);
        return 2;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t merr = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (merr || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "metadata for %s: %s\n", topic,
                rd_kafka_err2str(merr ? merr : md->topic_cnt ? md->topics[0].err : merr));
        return 2;
    }
    int nparts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++)
        rd_kafka_topic_partition_list_add(parts, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);

    int *at_eof = calloc((size_t)nparts, sizeof(int));
    int eofs = 0, bad = 0, rc = 0;
    long long deadline = now_ms() + timeout_ms;
    while (eofs < nparts) {
        if (now_ms() > deadline) {
            fprintf(stderr, "timeout: %d of %d partitions read to the end\n", eofs, nparts);
            rc = 2;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < nparts && !at_eof[m->partition]) {
                at_eof[m->partition] = 1;
                eofs++;
            }
        } else if (m->err) {
            fprintf(stderr, "consume: %s\n", rd_kafka_message_errstr(m));
            rc = 2;
        } else {
            tf_record_t r;
            const char *col = NULL;
            if (tf_codec_decode_record(codec, m->payload, m->len, &r, err, sizeof(err)) != 0) {
                fprintf(stderr, "partition %d offset %lld: decode: %s\n", m->partition,
                        (long long)m->offset, err);
                bad++;
            } else if (tf_record_validate(&r, &col, err, sizeof(err)) != 0) {
                fprintf(stderr, "partition %d offset %lld: %s: %s\n", m->partition,
                        (long long)m->offset, col, err);
                bad++;
            } else {
                print_record(m, &r);
            }
        }
        rd_kafka_message_destroy(m);
        if (rc)
            break;
    }
    free(at_eof);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    tf_codec_destroy(codec);
    if (!rc && bad)
        rc = 1;
    return rc;
}
