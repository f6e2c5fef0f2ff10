/*
 * test_http.c - tf_http on an ephemeral loopback port, driven with libcurl:
 * status codes, bodies and content types of /metrics, /healthz, /readyz and
 * unknown paths; readiness flipping; a stale heartbeat; bad addresses and a
 * port already in use; scrapes from several threads while metrics change.
 */
#include <curl/curl.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tf_http.h"
#include "tf_metrics.h"
#include "tf_test.h"

typedef struct resp {
    long status;
    char ctype[128];
    tf_buf_t body;
} resp_t;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    resp_t *r = arg;
    return tf_buf_append(&r->body, p, size * n) == 0 ? size * n : 0;
}

/* Requests http://127.0.0.1:port/path with method ("GET", "HEAD", "POST").
 * Returns 0, or -1 when the request itself failed. */
static int request(int port, const char *method, const char *path, resp_t *r)
{
    memset(r, 0, sizeof *r);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(r->ctype, sizeof r->ctype, "%s", ct ? ct : "");
    }
    curl_easy_cleanup(c);
    tf_buf_append(&r->body, "", 1); /* NUL-terminated for the checks */
    r->body.len--;
    return rc == CURLE_OK ? 0 : -1;
}

static const char *body(resp_t *r)
{
    return r->body.data ? (const char *)r->body.data : "";
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Readiness the test flips: ready when `flag` is set. */
static _Atomic int ready_flag;
static _Atomic int ready_calls;

static int ready_cb(void *arg, char *reason, size_t len)
{
    atomic_fetch_add(&ready_calls, 1);
    CHECK(arg == (void *)&ready_flag);
    if (atomic_load(&ready_flag))
        return 1;
    snprintf(reason, len, "waiting for partitions: 0 of 6 assigned");
    return 0;
}

static void test_endpoints(void)
{
    char err[256];
    tf_metrics_t *m = tf_metrics_new();
    tf_metric_t *c = tf_metrics_counter(m, "tradeflow_records_consumed_total", "Consumed.", NULL,
                                        err, sizeof err);
    tf_metrics_counter_add(c, 41);

    tf_http_t *h = tf_http_start("127.0.0.1:0", m, ready_cb, &ready_flag, err, sizeof err);
    CHECK_MSG(h != NULL, "%s", err);
    if (!h) {
        tf_metrics_free(m);
        return;
    }
    int port = tf_http_port(h);
    CHECK(port > 0 && port <= 65535);
    resp_t r;

    CHECK_INT(request(port, "GET", "/metrics", &r), 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
    CHECK_STR(body(&r), "# HELP tradeflow_records_consumed_total Consumed.\n"
                        "# TYPE tradeflow_records_consumed_total counter\n"
                        "tradeflow_records_consumed_total 41\n");
    tf_buf_free(&r.body);

    /* The text follows the registry: an update shows in the next scrape. */
    tf_metrics_counter_add(c, 1);
    CHECK_INT(request(port, "GET", "/metrics", &r), 0);
    CHECK(strstr(body(&r), "tradeflow_records_consumed_total 42\n") != NULL);
    tf_buf_free(&r.body);

    CHECK_INT(request(port, "GET", "/healthz", &r), 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(body(&r), "ok\n");
    tf_buf_free(&r.body);

    atomic_store(&ready_flag, 0);
    CHECK_INT(request(port, "GET", "/readyz", &r), 0);
    CHECK_INT(r.status, 503);
    CHECK_STR(body(&r), "waiting for partitions: 0 of 6 assigned\n");
    tf_buf_free(&r.body);
    atomic_store(&ready_flag, 1);
    CHECK_INT(request(port, "GET", "/readyz", &r), 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(body(&r), "ready\n");
    tf_buf_free(&r.body);
    atomic_store(&ready_flag, 0);
    CHECK_INT(request(port, "GET", "/readyz", &r), 0);
    CHECK_INT(r.status, 503);
    tf_buf_free(&r.body);
    CHECK(atomic_load(&ready_calls) == 3);

    CHECK_INT(request(port, "GET", "/", &r), 0);
    CHECK_INT(r.status, 404);
    tf_buf_free(&r.body);
    CHECK_INT(request(port, "GET", "/metricsx", &r), 0);
    CHECK_INT(r.status, 404);
    tf_buf_free(&r.body);
    /* A query string does not change the path. */
    CHECK_INT(request(port, "GET", "/healthz?verbose=1", &r), 0);
    CHECK_INT(r.status, 200);
    tf_buf_free(&r.body);
    CHECK_INT(request(port, "POST", "/metrics", &r), 0);
    CHECK_INT(r.status, 405);
    tf_buf_free(&r.body);
    CHECK_INT(request(port, "HEAD", "/metrics", &r), 0);
    CHECK_INT(r.status, 200);
    CHECK_INT(r.body.len, 0);
    tf_buf_free(&r.body);

    /* A stale heartbeat fails /healthz and /readyz (even when ready) until
     * the loop beats again. */
    atomic_store(&ready_flag, 1);
    tf_http_set_stale_ms(h, 100);
    sleep_ms(250);
    CHECK_INT(request(port, "GET", "/healthz", &r), 0);
    CHECK_INT(r.status, 503);
    CHECK_MSG(strstr(body(&r), "main loop silent for") != NULL, "%s", body(&r));
    tf_buf_free(&r.body);
    CHECK_INT(request(port, "GET", "/readyz", &r), 0);
    CHECK_INT(r.status, 503);
    tf_buf_free(&r.body);
    tf_http_heartbeat(h);
    CHECK_INT(request(port, "GET", "/healthz", &r), 0);
    CHECK_INT(r.status, 200);
    tf_buf_free(&r.body);
    CHECK_INT(request(port, "GET", "/readyz", &r), 0);
    CHECK_INT(r.status, 200);
    tf_buf_free(&r.body);

    /* The port is taken: a second server fails with a reason. */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    err[0] = 0;
    tf_http_t *h2 = tf_http_start(addr, m, NULL, NULL, err, sizeof err);
    CHECK(h2 == NULL);
    CHECK_MSG(strstr(err, "cannot serve on") != NULL, "%s", err);
    tf_http_stop(h2);

    tf_http_stop(h);
    /* Stopped: nothing listens any more. */
    CHECK_INT(request(port, "GET", "/healthz", &r), -1);
    tf_buf_free(&r.body);
    tf_metrics_free(m);
}

/* The local IPv4 address (hex, as /proc/net/tcp writes it) of the socket
 * listening on port, or "" if none is found. */
static void listen_addr(int port, char *out, size_t len)
{
    snprintf(out, len, "%s", "");
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f)
        return;
    char line[512], local[64], state[8];
    unsigned p;
    while (fgets(line, sizeof line, f)) {
        /* "  sl  local_address rem_address   st ..." */
        if (sscanf(line, "%*s %63s %*s %7s", local, state) != 2)
            continue;
        char *colon = strchr(local, ':');
        if (!colon || sscanf(colon + 1, "%x", &p) != 1)
            continue;
        if ((int)p == port && strcmp(state, "0A") == 0) { /* 0A: LISTEN */
            *colon = 0;
            snprintf(out, len, "%s", local);
            break;
        }
    }
    fclose(f);
}

static void test_defaults_and_bad_addresses(void)
{
    char err[256];
    /* ":0" is loopback; no registry and no callback: empty metrics, ready. */
    tf_http_t *h = tf_http_start(":0", NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(h != NULL, "%s", err);
    if (h) {
        /* Bound to 127.0.0.1 (0100007F in /proc/net/tcp), not 0.0.0.0. */
        char a[64];
        listen_addr(tf_http_port(h), a, sizeof a);
        CHECK_STR(a, "0100007F");
        resp_t r;
        CHECK_INT(request(tf_http_port(h), "GET", "/metrics", &r), 0);
        CHECK_INT(r.status, 200);
        CHECK_INT(r.body.len, 0);
        tf_buf_free(&r.body);
        CHECK_INT(request(tf_http_port(h), "GET", "/readyz", &r), 0);
        CHECK_INT(r.status, 200);
        tf_buf_free(&r.body);
        tf_http_stop(h);
    }
    const char *bad[] = {"", "nonsense", "127.0.0.1:99999", ":abc", "127.0.0.1:", "[::1:80",
                         "no-such-host.invalid:0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        h = tf_http_start(bad[i], NULL, NULL, NULL, err, sizeof err);
        CHECK_MSG(h == NULL, "accepted \"%s\"", bad[i]);
        CHECK_MSG(err[0] != 0, "no reason for \"%s\"", bad[i]);
        tf_http_stop(h);
    }
    CHECK_INT(tf_http_port(NULL), -1);
    tf_http_heartbeat(NULL); /* no-op */
}

/* Scrapes from several threads while the main thread updates. */
static struct {
    int port;
    _Atomic int failures;
} sc;

static void *scraper(void *arg)
{
    (void)arg;
    for (int i = 0; i < 25; i++) {
        resp_t r;
        if (request(sc.port, "GET", "/metrics", &r) != 0 || r.status != 200 ||
            !strstr(body(&r), "# TYPE t_lag gauge\n"))
            atomic_fetch_add(&sc.failures, 1);
        tf_buf_free(&r.body);
    }
    return NULL;
}

static void test_concurrent_scrapes(void)
{
    char err[256];
    tf_metrics_t *m = tf_metrics_new();
    tf_metric_t *g = tf_metrics_gauge(m, "t_lag", "", (const char *[]){"topic", "partition", NULL},
                                      err, sizeof err);
    tf_http_t *h = tf_http_start(":0", m, NULL, NULL, err, sizeof err);
    CHECK_MSG(h != NULL, "%s", err);
    if (!h) {
        tf_metrics_free(m);
        return;
    }
    sc.port = tf_http_port(h);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, scraper, NULL);
    for (int i = 0; i < 20000; i++) {
        char p[16];
        snprintf(p, sizeof p, "%d", i % 50);
        tf_metrics_gauge_set_labels(g, (const char *[]){"t", p}, i);
        if (i % 7 == 0)
            tf_metrics_remove_labels(g, (const char *[]){"t", p});
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_INT(atomic_load(&sc.failures), 0);
    tf_http_stop(h);
    tf_metrics_free(m);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    TF_TEST_RUN(test_endpoints);
    TF_TEST_RUN(test_defaults_and_bad_addresses);
    TF_TEST_RUN(test_concurrent_scrapes);
    curl_global_cleanup();
    return TF_TEST_REPORT();
}
