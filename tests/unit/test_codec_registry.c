/*
 * test_codec_registry.c - the Confluent-compatible registry client and the
 * codec's registry framing, against a tiny registry that this test starts
 * (test_codec_registry_server.py, Python standard library + openssl for the
 * TLS case). Interpreter: $TF_PYTHON, else python3.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tf_codec.h"
#include "tf_registry.h"
#include "tf_test.h"

static char err[512];

typedef struct server {
    pid_t pid;
    int in_fd; /* the server's stdin: closing it stops the server */
    int port;
    char cafile[512];
    char why[2560]; /* why it did not start */
} server_t;

/* Starts the stub registry; on failure returns -1 with the reason in
 * s->why (no process left behind). */
static int start_server(server_t *s, const char *opt1, const char *opt2)
{
    const char *src = getenv("TF_SOURCE_DIR");
    const char *py = getenv("TF_PYTHON");
    if (!py || !*py)
        py = "python3";
    char script[1024];
    snprintf(script, sizeof script, "%s/tests/unit/test_codec_registry_server.py", src ? src : ".");
    memset(s, 0, sizeof *s);
    s->pid = -1;
    s->in_fd = -1;
    int in[2], out[2];
    if (pipe(in) < 0)
        return snprintf(s->why, sizeof s->why, "pipe: %s", strerror(errno)), -1;
    if (pipe(out) < 0) {
        snprintf(s->why, sizeof s->why, "pipe: %s", strerror(errno));
        close(in[0]);
        close(in[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(s->why, sizeof s->why, "fork: %s", strerror(errno));
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execlp(py, py, script, opt1, opt2, (char *)NULL);
        fprintf(stderr, "test_codec_registry: cannot run %s: %s\n", py, strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    s->pid = pid;
    s->in_fd = in[1];
    FILE *f = fdopen(out[0], "r");
    char line[1024] = "";
    int ok = f && fgets(line, sizeof line, f) && sscanf(line, "%d %511s", &s->port, s->cafile) >= 1 &&
             s->port > 0;
    if (f)
        fclose(f);
    else
        close(out[0]);
    if (!ok) {
        int st = 0;
        close(s->in_fd);
        kill(pid, SIGTERM);
        waitpid(pid, &st, 0);
        snprintf(s->why, sizeof s->why,
                 "the stub registry (%s %s) did not print its port (%s %d); is %s installed?", py,
                 script, WIFEXITED(st) ? "exit status" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), py);
        s->pid = -1;
        s->in_fd = -1;
        return -1;
    }
    return 0;
}

/* A client that could not be made ends the test function (after stopping
 * the server): the checks after it would only dereference NULL. */
#define REQUIRE_CLIENT(r, s)                                                                       \
    do {                                                                                           \
        if (!(r)) {                                                                                \
            CHECK_MSG(0, "tf_registry_new: %s", err);                                              \
            stop_server(s);                                                                        \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static void stop_server(server_t *s)
{
    if (s->pid <= 0)
        return;
    close(s->in_fd);
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = -1;
}

static const char *schema_json(void)
{
    static char buf[1 << 16];
    const char *src = getenv("TF_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/schemas/CustomsRecord.avsc", src ? src : ".");
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

static tf_record_t record(void)
{
    tf_record_t r;
    memset(&r, 0, sizeof r);
    r.dataset = TF_DATASET_CUSTOMS;
    strcpy(r.record_id, "reg-1");
    strcpy(r.reporter, "CHN");
    strcpy(r.partner, "THA");
    r.flow = TF_FLOW_IMPORT;
    r.period = 2020 * 12 + 1;
    r.value_cents = 12345;
    return r;
}

static void test_client(void)
{
    server_t s;
    if (start_server(&s, "--auth", "alice:secret") != 0) {
        CHECK_MSG(0, "%s", s.why);
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", s.port);

    tf_registry_t *r = tf_registry_new(url, "alice:secret", NULL, 2000, err, sizeof err);
    REQUIRE_CLIENT(r, &s);
    int32_t id = -1, id2 = -1;
    CHECK_MSG(tf_registry_register(r, "trade-value", schema_json(), &id, err, sizeof err) == 0,
              "%s", err);
    CHECK(id > 0);
    unsigned long n = tf_registry_requests(r);
    CHECK(tf_registry_register(r, "trade-value", schema_json(), &id2, err, sizeof err) == 0);
    CHECK(id2 == id);
    CHECK(tf_registry_requests(r) == n); /* cached */
    const char *got = tf_registry_schema_by_id(r, id, err, sizeof err);
    CHECK(got && strcmp(got, schema_json()) == 0);
    CHECK(tf_registry_requests(r) == n); /* learnt when registering */
    tf_registry_destroy(r);

    /* A fresh client fetches by id once. */
    r = tf_registry_new(url, "alice:secret", NULL, 2000, err, sizeof err);
    REQUIRE_CLIENT(r, &s);
    got = tf_registry_schema_by_id(r, id, err, sizeof err);
    CHECK_MSG(got && strcmp(got, schema_json()) == 0, "%s", err);
    CHECK(tf_registry_requests(r) == 1);
    CHECK(tf_registry_schema_by_id(r, id, err, sizeof err) != NULL);
    CHECK(tf_registry_requests(r) == 1);
    /* Unknown id: the registry's error code and message. */
    CHECK(tf_registry_schema_by_id(r, 777, err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "404") && strstr(err, "40403") && strstr(err, "not found"), "%s", err);
    /* An invalid schema is refused by the registry. */
    CHECK(tf_registry_register(r, "x-value", "not json", &id2, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "422") != NULL, "%s", err);
    tf_registry_destroy(r);

    /* Wrong credentials. */
    r = tf_registry_new(url, "alice:wrong", NULL, 2000, err, sizeof err);
    REQUIRE_CLIENT(r, &s);
    CHECK(tf_registry_schema_by_id(r, id, err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "401") != NULL, "%s", err);
    tf_registry_destroy(r);
    r = tf_registry_new(url, NULL, NULL, 2000, err, sizeof err);
    REQUIRE_CLIENT(r, &s);
    CHECK(tf_registry_register(r, "trade-value", schema_json(), &id2, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "401") != NULL, "%s", err);
    tf_registry_destroy(r);

    /* Timeout. */
    r = tf_registry_new(url, "alice:secret", NULL, 300, err, sizeof err);
    REQUIRE_CLIENT(r, &s);
    CHECK(tf_registry_schema_by_id(r, 4242, err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "imeout") || strstr(err, "timed out"), "%s", err);
    tf_registry_destroy(r);

    /* Codec framing: a producer registers under <topic>-value, a consumer
     * fetches the id. */
    tf_codec_t *prod = tf_codec_new(NULL, NULL, err, sizeof err);
    tf_codec_t *cons = tf_codec_new(NULL, NULL, err, sizeof err);
    CHECK(prod && cons);
    if (prod && cons) {
        CHECK(tf_codec_use_registry(prod, url, "alice:secret", NULL, err, sizeof err) == 0);
        CHECK(tf_codec_use_registry(cons, url, "alice:secret", NULL, err, sizeof err) == 0);
        tf_record_t rec = record(), back;
        tf_buf_t b = {0};
        CHECK_MSG(tf_codec_encode_record(prod, "trade", &rec, &b, err, sizeof err) == 0, "%s", err);
        CHECK(b.len > 5 && b.data[0] == 0);
        int32_t wid = (int32_t)(((uint32_t)b.data[1] << 24) | ((uint32_t)b.data[2] << 16) |
                                ((uint32_t)b.data[3] << 8) | b.data[4]);
        CHECK(wid == id); /* the same schema text keeps its id */
        CHECK(tf_codec_encode_record(prod, NULL, &rec, &b, err, sizeof err) == -1);
        CHECK_MSG(tf_codec_decode_record(cons, b.data, b.len, &back, err, sizeof err) == 0, "%s",
                  err);
        CHECK_STR(back.record_id, "reg-1");
        CHECK(back.value_cents == 12345 && back.flow == TF_FLOW_IMPORT);
        /* Single-object messages still decode with a registry configured. */
        tf_codec_t *plain = tf_codec_new(NULL, NULL, err, sizeof err);
        tf_buf_reset(&b);
        CHECK(tf_codec_encode_record(plain, NULL, &rec, &b, err, sizeof err) == 0);
        CHECK(tf_codec_decode_record(cons, b.data, b.len, &back, err, sizeof err) == 0);
        /* An id the registry does not have. */
        uint8_t unknown[6] = {0, 0, 0, 0x03, 0x09, 0};
        CHECK(tf_codec_decode_record(cons, unknown, 6, &back, err, sizeof err) == -1);
        CHECK_MSG(strstr(err, "unknown schema id 777") != NULL, "%s", err);
        tf_codec_destroy(plain);
        tf_buf_free(&b);
    }
    tf_codec_destroy(prod);
    tf_codec_destroy(cons);
    stop_server(&s);

    /* Nobody listening. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s.port);
    r = tf_registry_new(url, NULL, NULL, 1000, err, sizeof err);
    REQUIRE_CLIENT(r, &s);
    CHECK(tf_registry_schema_by_id(r, 1, err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "127.0.0.1") != NULL, "%s", err);
    tf_registry_destroy(r);
    CHECK(tf_registry_new("ftp://x", NULL, NULL, 0, err, sizeof err) == NULL);
}

static void test_tls(void)
{
    server_t s;
    if (start_server(&s, "--tls", NULL) != 0) {
        CHECK_MSG(0, "TLS registry: %s", s.why);
        return;
    }
    if (!s.cafile[0]) {
        stop_server(&s);
        CHECK_MSG(0, "the TLS registry printed no CA file (is openssl installed?)");
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", s.port);
    int32_t id;
    tf_registry_t *r = tf_registry_new(url, NULL, s.cafile, 5000, err, sizeof err);
    REQUIRE_CLIENT(r, &s);
    CHECK_MSG(tf_registry_register(r, "tls-value", schema_json(), &id, err, sizeof err) == 0, "%s",
              err);
    tf_registry_destroy(r);
    /* Without the CA the self-signed certificate is refused. */
    r = tf_registry_new(url, NULL, NULL, 5000, err, sizeof err);
    REQUIRE_CLIENT(r, &s);
    CHECK(tf_registry_register(r, "tls-value", schema_json(), &id, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "certificate") || strstr(err, "SSL"), "%s", err);
    tf_registry_destroy(r);
    stop_server(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    TF_TEST_RUN(test_client);
    TF_TEST_RUN(test_tls);
    return TF_TEST_REPORT();
}
