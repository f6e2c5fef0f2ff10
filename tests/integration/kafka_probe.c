/*
 * kafka_probe - what tradeflow-aggregate would decide about the consumer
 * group protocol (KIP-848) against a broker, for the platform tests:
 *
 *   kafka_probe [BOOTSTRAP]     (default $TRADEFLOW_BROKERS)
 *
 * Prints "consumer-group-heartbeat: yes|no" (the broker's ApiVersions, from
 * tf_kafka_probe_consumer_protocol), "librdkafka: VERSION", and
 * "group.protocol: consumer|classic (why)" as tf_kafka_use_kip848 decides
 * for the linked librdkafka. Exit 0, or 1 when the broker cannot be asked
 * (the reason on stderr).
 */
#include <stdio.h>
#include <stdlib.h>

#include <librdkafka/rdkafka.h>

#include "tf_kafka.h"

int main(int argc, char **argv)
{
    const char *bs = argc > 1 ? argv[1] : getenv(TF_KAFKA_BROKERS_ENV);
    char err[512];
    int cgh = tf_kafka_probe_consumer_protocol(bs, 5000, err, sizeof(err));
    if (cgh < 0) {
        fprintf(stderr, "kafka_probe: %s\n", err);
        return 1;
    }
    const char *why = "";
    int use = tf_kafka_use_kip848(NULL, rd_kafka_version(), cgh, &why);
    printf("consumer-group-heartbeat: %s\n", cgh ? "yes" : "no");
    printf("librdkafka: %s\n", rd_kafka_version_str());
    printf("group.protocol: %s (%s)\n", use ? "consumer" : "classic", why);
    return 0;
}
