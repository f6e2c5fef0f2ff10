/*
 * tf_http.c - see tf_http.h. libmicrohttpd does the HTTP; this file only
 * parses the listen address, routes three paths and keeps the heartbeat.
 */
#include "tf_http.h"
#include "tf_err.h"

#include <microhttpd.h>

#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "tf_buf.h"
#include "tf_log.h"

struct tf_http {
    struct MHD_Daemon *daemon;
    tf_metrics_t *metrics;   /* borrowed */
    tf_http_ready_fn ready;  /* may be NULL */
    void *ready_arg;         /* borrowed */
    int port;
    _Atomic int64_t beat_ms;  /* CLOCK_MONOTONIC milliseconds of the last heartbeat */
    _Atomic int64_t stale_ms; /* /healthz fails when the heartbeat is older */
    /* The last message of libmicrohttpd while starting, for errstr. */
    pthread_mutex_t log_mu;
    int starting;
    char start_msg[256];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libmicrohttpd's messages: kept for errstr while starting, logged always.
 * The format comes from libmicrohttpd (its MHD_OPTION_EXTERNAL_LOGGER
 * signature), hence the attribute: it is a printf format. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    tf_http_t *h = cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    pthread_mutex_lock(&h->log_mu);
    int starting = h->starting;
    if (starting)
        snprintf(h->start_msg, sizeof h->start_msg, "%s", msg);
    pthread_mutex_unlock(&h->log_mu);
    TF_LOG(starting ? TF_LOG_DEBUG : TF_LOG_WARNING, "http", "%s", msg);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                             char *body, size_t len, int must_free)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!r) {
        if (must_free)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    char body[600];
    int n = snprintf(body, sizeof body, "%s\n", text);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof body)
        n = sizeof body - 1;
    return reply(c, status, "text/plain; charset=utf-8", body, (size_t)n, 0);
}

/* 1 if alive; otherwise 0 with the reason. */
static int alive(tf_http_t *h, char *reason, size_t len)
{
    int64_t age = now_ms() - atomic_load(&h->beat_ms);
    int64_t stale = atomic_load(&h->stale_ms);
    if (age <= stale)
        return 1;
    snprintf(reason, len, "main loop silent for %lld ms (bound %lld ms)", (long long)age,
             (long long)stale);
    return 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    tf_http_t *h = cls;
    (void)version;
    (void)upload_data;
    (void)con_cls;
    if (*upload_data_size) {
        /* A body we do not want: swallow it, answer on the last call. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");

    char reason[512];
    if (strcmp(url, "/metrics") == 0) {
        tf_buf_t b = {0};
        if (h->metrics && tf_metrics_render(h->metrics, &b) != 0) {
            tf_buf_free(&b);
            return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        }
        if (b.len == 0) {
            tf_buf_free(&b);
            return reply(c, MHD_HTTP_OK, TF_METRICS_CONTENT_TYPE, "", 0, 0);
        }
        /* libmicrohttpd frees the body with free() once it is sent. */
        return reply(c, MHD_HTTP_OK, TF_METRICS_CONTENT_TYPE, (char *)b.data, b.len, 1);
    }
    if (strcmp(url, "/healthz") == 0) {
        if (!alive(h, reason, sizeof reason))
            return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, reason);
        return reply_text(c, MHD_HTTP_OK, "ok");
    }
    if (strcmp(url, "/readyz") == 0) {
        if (!alive(h, reason, sizeof reason))
            return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, reason);
        if (h->ready) {
            reason[0] = 0;
            if (!h->ready(h->ready_arg, reason, sizeof reason)) {
                reason[sizeof reason - 1] = 0;
                return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  reason[0] ? reason : "not ready");
            }
        }
        return reply_text(c, MHD_HTTP_OK, "ready");
    }
    return reply_text(c, MHD_HTTP_NOT_FOUND, "not found (try /metrics, /healthz, /readyz)");
}

/* Splits "HOST:PORT", "[V6]:PORT" or ":PORT" and resolves it into ss. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen,
                      int *is_v6, char *errstr, size_t errlen)
{
    if (!addr || !*addr) {
        tf_seterr(errstr, errlen, "empty listen address (want HOST:PORT or :PORT)");
        return -1;
    }
    char host[256];
    const char *port;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':' || (size_t)(end - addr - 1) >= sizeof host) {
            tf_seterr(errstr, errlen, "listen address \"%s\": want [IPV6]:PORT", addr);
            return -1;
        }
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = 0;
        port = end + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon || (size_t)(colon - addr) >= sizeof host) {
            tf_seterr(errstr, errlen, "listen address \"%s\": want HOST:PORT or :PORT", addr);
            return -1;
        }
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = 0;
        port = colon + 1;
    }
    if (!host[0])
        snprintf(host, sizeof host, "127.0.0.1");
    char *endp;
    long p = strtol(port, &endp, 10);
    if (!*port || *endp || p < 0 || p > 65535) {
        tf_seterr(errstr, errlen, "listen address \"%s\": invalid port \"%s\"", addr, port);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res) {
        tf_seterr(errstr, errlen, "listen address \"%s\": %s", addr, gai_strerror(rc));
        if (res)
            freeaddrinfo(res);
        return -1;
    }
    /* The first IPv4 answer if any (a name like "localhost" may give both). */
    struct addrinfo *pick = res;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
    memcpy(ss, pick->ai_addr, pick->ai_addrlen);
    *sslen = pick->ai_addrlen;
    *is_v6 = pick->ai_family == AF_INET6;
    freeaddrinfo(res);
    return 0;
}

tf_http_t *tf_http_start(const char *addr, tf_metrics_t *m, tf_http_ready_fn ready, void *arg,
                         char *errstr, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int v6 = 0;
    if (parse_addr(addr, &ss, &sslen, &v6, errstr, errlen) != 0)
        return NULL;

    tf_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        tf_seterr(errstr, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->log_mu, NULL);
    h->metrics = m;
    h->ready = ready;
    h->ready_arg = arg;
    atomic_init(&h->beat_ms, now_ms());
    atomic_init(&h->stale_ms, TF_HTTP_STALE_MS_DEFAULT);
    h->starting = 1;

    /* MHD_USE_AUTO: epoll or poll() rather than select(), whose descriptor
     * limit a program with many Kafka and PostgreSQL sockets could pass. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    /* The logger comes first so that no start-up message reaches stderr. A
     * small connection limit and timeout: this endpoint serves a scraper and
     * probes, not the public. */
    h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER,
                                 mhd_log, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    pthread_mutex_lock(&h->log_mu);
    h->starting = 0;
    pthread_mutex_unlock(&h->log_mu);
    if (!h->daemon) {
        tf_seterr(errstr, errlen, "cannot serve on %s: %s", addr,
               h->start_msg[0] ? h->start_msg : "libmicrohttpd could not start");
        pthread_mutex_destroy(&h->log_mu);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    return h;
}

int tf_http_port(const tf_http_t *h)
{
    return h ? h->port : -1;
}

void tf_http_heartbeat(tf_http_t *h)
{
    if (h)
        atomic_store(&h->beat_ms, now_ms());
}

void tf_http_set_stale_ms(tf_http_t *h, int64_t ms)
{
    if (h && ms > 0)
        atomic_store(&h->stale_ms, ms);
}

void tf_http_stop(tf_http_t *h)
{
    if (!h)
        return;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    pthread_mutex_destroy(&h->log_mu);
    free(h);
}
