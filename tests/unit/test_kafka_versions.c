/* Unit tests of what common/tf_kafka decides from the librdkafka version
 * (issue 17): the SCRAM hint for Kafka 4.x, the KIP-848 group protocol
 * choice, and the ApiVersions probe's failures (no broker needed: a closed
 * port, a listener that answers something else, one that says nothing).
 * The versions are given as numbers, so 2.6.1, 2.12 and 2.13 are tested
 * here although this machine links 2.0.2. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tf_kafka.h"
#include "tf_test.h"

#define V(maj, min, rev) (((maj) << 24) | ((min) << 16) | ((rev) << 8) | 0xff)

static void test_scram_hint(void)
{
    /* Debian 12's 2.0.2 and 2.6.0 fail against Kafka 4: a hint. */
    CHECK(tf_kafka_scram_hint(V(2, 0, 2), "SCRAM-SHA-512") != NULL);
    CHECK(tf_kafka_scram_hint(V(2, 6, 0), "SCRAM-SHA-256") != NULL);
    CHECK(tf_kafka_scram_hint(V(2, 0, 2), "scram-sha-512") != NULL);
    CHECK(strstr(tf_kafka_scram_hint(V(2, 0, 2), "SCRAM-SHA-512"), "2.6.1") != NULL);
    /* 2.6.1 has the fix (librdkafka #4895); Debian 13's 2.8.0 too. */
    CHECK(tf_kafka_scram_hint(V(2, 6, 1), "SCRAM-SHA-512") == NULL);
    CHECK(tf_kafka_scram_hint(V(2, 8, 0), "SCRAM-SHA-512") == NULL);
    /* Other mechanisms and no SASL: not this cause. */
    CHECK(tf_kafka_scram_hint(V(2, 0, 2), "PLAIN") == NULL);
    CHECK(tf_kafka_scram_hint(V(2, 0, 2), "GSSAPI") == NULL);
    CHECK(tf_kafka_scram_hint(V(2, 0, 2), NULL) == NULL);
    CHECK(tf_kafka_scram_hint(V(2, 0, 2), "") == NULL);
}

static void test_kip848(void)
{
    const char *why = NULL;
    /* Too old: 2.0.2 (Debian 12), 2.8.0 (Debian 13), 2.10/2.11 (preview). */
    CHECK_INT(tf_kafka_use_kip848(NULL, V(2, 0, 2), 1, &why), 0);
    CHECK(why && strstr(why, "2.12"));
    CHECK_INT(tf_kafka_use_kip848(NULL, V(2, 8, 0), 1, NULL), 0);
    CHECK_INT(tf_kafka_use_kip848(NULL, V(2, 11, 1), 1, NULL), 0);
    /* A 2.12 pre-release counts as 2.12 (0x020c00xx). */
    CHECK_INT(tf_kafka_use_kip848(NULL, 0x020c0001, 1, NULL), 1);
    /* GA and offered by the broker: the consumer protocol. */
    CHECK_INT(tf_kafka_use_kip848(NULL, V(2, 12, 0), 1, &why), 1);
    CHECK(why && strstr(why, "offers"));
    CHECK_INT(tf_kafka_use_kip848("", V(2, 13, 0), 1, NULL), 1);
    CHECK_INT(tf_kafka_use_kip848(NULL, V(3, 0, 0), 1, NULL), 1);
    /* The broker does not offer it (Kafka 3.9), or cannot be asked. */
    CHECK_INT(tf_kafka_use_kip848(NULL, V(2, 12, 0), 0, &why), 0);
    CHECK(why && strstr(why, "does not offer"));
    CHECK_INT(tf_kafka_use_kip848(NULL, V(2, 12, 0), -1, &why), 0);
    CHECK(why && strstr(why, "unknown"));
    /* The user's setting wins, either way. */
    CHECK_INT(tf_kafka_use_kip848("classic", V(2, 12, 0), 1, &why), 0);
    CHECK(why && strstr(why, "user"));
    CHECK_INT(tf_kafka_use_kip848("consumer", V(2, 0, 2), 0, &why), 0);
    CHECK(why && strstr(why, "user"));
}

/* A listener on 127.0.0.1 that accepts one connection, reads what comes,
 * writes `reply` (or nothing) and holds the connection until closed. */
struct fake {
    int lfd;
    int port;
    const unsigned char *reply;
    size_t reply_len;
};

static void *fake_serve(void *arg)
{
    struct fake *f = arg;
    int c = accept(f->lfd, NULL, NULL);
    if (c < 0)
        return NULL;
    unsigned char buf[256];
    if (read(c, buf, sizeof(buf)) > 0 && f->reply_len)
        (void)!write(c, f->reply, f->reply_len);
    /* Wait for the client to give up. */
    while (read(c, buf, sizeof(buf)) > 0)
        ;
    close(c);
    return NULL;
}

static int fake_listen(struct fake *f)
{
    struct sockaddr_in a = {0};
    socklen_t al = sizeof(a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) ||
        listen(f->lfd, 1) || getsockname(f->lfd, (struct sockaddr *)&a, &al))
        return -1;
    f->port = ntohs(a.sin_port);
    return 0;
}

static int probe_fake(const unsigned char *reply, size_t len, int timeout_ms, char *err,
                      size_t errlen)
{
    struct fake f = {-1, 0, reply, len};
    pthread_t th;
    if (fake_listen(&f) || pthread_create(&th, NULL, fake_serve, &f))
        return -99;
    char bs[64];
    snprintf(bs, sizeof(bs), "127.0.0.1:%d", f.port);
    int rc = tf_kafka_probe_consumer_protocol(bs, timeout_ms, err, errlen);
    /* The probe closed its end: fake_serve returns. */
    pthread_join(th, NULL);
    close(f.lfd);
    return rc;
}

static void test_probe_failures(void)
{
    char err[512];
    /* Nothing to parse. */
    CHECK_INT(tf_kafka_probe_consumer_protocol(NULL, 100, err, sizeof(err)), -1);
    CHECK_INT(tf_kafka_probe_consumer_protocol("localhost", 100, err, sizeof(err)), -1);
    CHECK(strstr(err, "host:port") != NULL);
    CHECK_INT(tf_kafka_probe_consumer_protocol(":9092", 100, err, sizeof(err)), -1);
    /* A closed port: refused at once. */
    struct fake f = {-1, 0, NULL, 0};
    CHECK(fake_listen(&f) == 0);
    char bs[64];
    snprintf(bs, sizeof(bs), "127.0.0.1:%d", f.port);
    close(f.lfd);
    CHECK_INT(tf_kafka_probe_consumer_protocol(bs, 1000, err, sizeof(err)), -1);
    CHECK_MSG(strstr(err, "refused") != NULL, "%s", err);
    /* A listener that never answers (a TLS one waits for a ClientHello). */
    CHECK_INT(probe_fake(NULL, 0, 300, err, sizeof(err)), -1);
    CHECK_MSG(strstr(err, "no ApiVersions answer") != NULL, "%s", err);
    /* One that answers like a TLS alert: not a Kafka reply. */
    static const unsigned char tls_alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32};
    CHECK_INT(probe_fake(tls_alert, sizeof(tls_alert), 1000, err, sizeof(err)), -1);
    CHECK_MSG(strstr(err, "not a Kafka") != NULL, "%s", err);
    /* A Kafka-shaped reply with another correlation id. */
    static const unsigned char wrong_id[] = {0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0};
    CHECK_INT(probe_fake(wrong_id, sizeof(wrong_id), 1000, err, sizeof(err)), -1);
    CHECK_MSG(strstr(err, "malformed") != NULL, "%s", err);
    /* ApiVersions v3 replies: key 68 and group.version 1 (Kafka 4.x), key
     * 68 and no finalized group.version (3.9), group.version but no 68. */
#define CORR 0x54, 0x46, 0x31, 0x37
#define KEY(k, max) 0, k, 0, 0, 0, max, 0
#define GV1 2, 20, 2, 14, 'g', 'r', 'o', 'u', 'p', '.', 'v', 'e', 'r', 's', 'i', 'o', 'n', 0, 1, 0, 0, 0
    static const unsigned char k4[] = {0, 0, 0, 48, CORR, 0, 0, 3, KEY(18, 3), KEY(68, 1),
                                       0, 0, 0, 0, 1, GV1};
    CHECK_INT(probe_fake(k4, sizeof(k4), 1000, err, sizeof(err)), 1);
    static const unsigned char k39[] = {0, 0, 0, 26, CORR, 0, 0, 3, KEY(18, 3), KEY(68, 0),
                                        0, 0, 0, 0, 0};
    CHECK_INT(probe_fake(k39, sizeof(k39), 1000, err, sizeof(err)), 0);
    static const unsigned char no68[] = {0, 0, 0, 41, CORR, 0, 0, 2, KEY(18, 3),
                                         0, 0, 0, 0, 1, GV1};
    CHECK_INT(probe_fake(no68, sizeof(no68), 1000, err, sizeof(err)), 0);
    /* Another feature (tag 0, SupportedFeatures) is skipped. */
    static const unsigned char other[] = {0, 0, 0, 33, CORR, 0, 0, 3, KEY(18, 3), KEY(68, 1),
                                          0, 0, 0, 0, 1, 0, 5, 1, 2, 3, 4, 5};
    CHECK_INT(probe_fake(other, sizeof(other), 1000, err, sizeof(err)), 0);
    /* UNSUPPORTED_VERSION: a broker before 2.4, which has no KIP-848. */
    static const unsigned char old[] = {0, 0, 0, 10, CORR, 0, 35, 0, 0, 0, 0};
    CHECK_INT(probe_fake(old, sizeof(old), 1000, err, sizeof(err)), 0);
    /* Another error code. */
    static const unsigned char refused[] = {0, 0, 0, 6, CORR, 0, 1};
    CHECK_INT(probe_fake(refused, sizeof(refused), 1000, err, sizeof(err)), -1);
    CHECK_MSG(strstr(err, "error 1") != NULL, "%s", err);
    /* More entries announced than the reply holds; a feature cut short. */
    static const unsigned char trunc[] = {0, 0, 0, 14, CORR, 0, 0, 10, KEY(18, 3)};
    CHECK_INT(probe_fake(trunc, sizeof(trunc), 1000, err, sizeof(err)), -1);
    CHECK_MSG(strstr(err, "malformed") != NULL, "%s", err);
    static const unsigned char cut[] = {0, 0, 0, 28, CORR, 0, 0, 2, KEY(68, 1),
                                        0, 0, 0, 0, 1, 2, 20, 2, 14};
    CHECK_INT(probe_fake(cut, sizeof(cut), 1000, err, sizeof(err)), -1);
#undef CORR
#undef KEY
#undef GV1
}

int main(void)
{
    TF_TEST_RUN(test_scram_hint);
    TF_TEST_RUN(test_kip848);
    TF_TEST_RUN(test_probe_failures);
    return TF_TEST_REPORT();
}
