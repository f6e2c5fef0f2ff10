/* Unit tests of common/tf_kafka's configuration helpers (no broker). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_kafka.h"
#include "tf_test.h"

static char tmpl[] = "/tmp/tf_kafkaconf_XXXXXX";

static const char *write_file(const char *text)
{
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return NULL;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        close(fd);
        return NULL;
    }
    close(fd);
    return tmpl;
}

static const char *get(rd_kafka_conf_t *c, const char *key)
{
    static char v[512];
    size_t n = sizeof(v);
    if (rd_kafka_conf_get(c, key, v, &n) != RD_KAFKA_CONF_OK)
        return "<unset>";
    return v;
}

static void test_brokers(void)
{
    char err[256];
    unsetenv(TF_KAFKA_BROKERS_ENV);
    CHECK(tf_kafka_conf_new(NULL, err, sizeof(err)) == NULL);
    CHECK(strstr(err, TF_KAFKA_BROKERS_ENV) != NULL);
    setenv(TF_KAFKA_BROKERS_ENV, "", 1);
    CHECK(tf_kafka_conf_new(NULL, err, sizeof(err)) == NULL);
    setenv(TF_KAFKA_BROKERS_ENV, "envhost:1", 1);
    rd_kafka_conf_t *c = tf_kafka_conf_new(NULL, err, sizeof(err));
    CHECK(c != NULL);
    if (c) {
        CHECK_STR(get(c, "bootstrap.servers"), "envhost:1");
        rd_kafka_conf_destroy(c);
    }
    c = tf_kafka_conf_new("arghost:2", err, sizeof(err));
    CHECK(c != NULL);
    if (c) {
        CHECK_STR(get(c, "bootstrap.servers"), "arghost:2");
        rd_kafka_conf_destroy(c);
    }
}

static void test_set(void)
{
    char err[256];
    rd_kafka_conf_t *c = tf_kafka_conf_new("h:1", err, sizeof(err));
    CHECK(tf_kafka_conf_set(c, "linger.ms=17", err, sizeof(err)) == 0);
    CHECK_STR(get(c, "linger.ms"), "17");
    /* The value may itself contain '='. */
    CHECK(tf_kafka_conf_set(c, "client.id=a=b", err, sizeof(err)) == 0);
    CHECK_STR(get(c, "client.id"), "a=b");
    CHECK(tf_kafka_conf_set(c, "linger.ms", err, sizeof(err)) == -1);
    CHECK(strstr(err, "key=value") != NULL);
    CHECK(tf_kafka_conf_set(c, "no.such.property=1", err, sizeof(err)) == -1);
    CHECK(strstr(err, "no.such.property") != NULL);
    CHECK(tf_kafka_conf_set(c, "=1", err, sizeof(err)) == -1);
    rd_kafka_conf_destroy(c);
}

static void test_file(void)
{
    char err[512];
    rd_kafka_conf_t *c = tf_kafka_conf_new("h:1", err, sizeof(err));
    const char *p =
        write_file("# a comment\n\n  linger.ms = 23  \nclient.id=x\n   # indented comment\n");
    CHECK(p != NULL);
    CHECK(tf_kafka_conf_file(c, p, err, sizeof(err)) == 0);
    CHECK_STR(get(c, "linger.ms"), "23");
    CHECK_STR(get(c, "client.id"), "x");
    unlink(p);

    strcpy(tmpl, "/tmp/tf_kafkaconf_XXXXXX");
    p = write_file("linger.ms=1\n\nbogus line\n");
    CHECK(tf_kafka_conf_file(c, p, err, sizeof(err)) == -1);
    char want[256];
    snprintf(want, sizeof(want), "%s:3: ", p);
    CHECK_MSG(strncmp(err, want, strlen(want)) == 0, "%s", err);
    unlink(p);

    strcpy(tmpl, "/tmp/tf_kafkaconf_XXXXXX");
    p = write_file("linger.ms=1\nno.such.thing=2\n");
    CHECK(tf_kafka_conf_file(c, p, err, sizeof(err)) == -1);
    snprintf(want, sizeof(want), "%s:2: ", p);
    CHECK_MSG(strncmp(err, want, strlen(want)) == 0, "%s", err);
    unlink(p);

    CHECK(tf_kafka_conf_file(c, "/nonexistent/tf.conf", err, sizeof(err)) == -1);
    CHECK(strstr(err, "/nonexistent/tf.conf") != NULL);
    rd_kafka_conf_destroy(c);
}

int main(void)
{
    TF_TEST_RUN(test_brokers);
    TF_TEST_RUN(test_set);
    TF_TEST_RUN(test_file);
    return TF_TEST_REPORT();
}
