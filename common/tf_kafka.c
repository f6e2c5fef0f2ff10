#include "tf_kafka.h"

#include <time.h>

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tf_config.h"
#include "tf_log.h"

void tf_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    TF_LOG(level, "kafka", "%s: %s", fac ? fac : "-", buf ? buf : "");
}

rd_kafka_conf_t *tf_kafka_conf_new(const char *brokers_or_NULL, char *errstr, size_t errlen)
{
    const char *brokers = brokers_or_NULL;
    if (!brokers || !*brokers)
        brokers = getenv(TF_KAFKA_BROKERS_ENV);
    if (!brokers || !*brokers) {
        snprintf(errstr, errlen, "no Kafka brokers: give -b HOST:PORT or set %s",
                 TF_KAFKA_BROKERS_ENV);
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, errlen) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, tf_kafka_log_cb);
    return conf;
}

/* Sets key to value, with librdkafka's reason in errstr on failure. */
static int conf_set_kv(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                       size_t errlen)
{
    char why[512];
    if (!*key) {
        snprintf(errstr, errlen, "empty property name");
        return -1;
    }
    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errlen, "%s", why);
        return -1;
    }
    return 0;
}

int tf_kafka_conf_set(rd_kafka_conf_t *conf, const char *key_eq_value, char *errstr,
                      size_t errlen)
{
    const char *eq = strchr(key_eq_value, '=');
    if (!eq) {
        snprintf(errstr, errlen, "expected key=value, got \"%.200s\"", key_eq_value);
        return -1;
    }
    size_t kl = (size_t)(eq - key_eq_value);
    char key[256];
    if (kl >= sizeof(key)) {
        snprintf(errstr, errlen, "property name too long");
        return -1;
    }
    memcpy(key, key_eq_value, kl);
    key[kl] = '\0';
    return conf_set_kv(conf, key, eq + 1, errstr, errlen);
}

/* Strips leading and trailing white space in place; returns the new start. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int tf_kafka_conf_file(rd_kafka_conf_t *conf, const char *path, char *errstr, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(errstr, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    while (getline(&line, &cap, fp) != -1) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(errstr, errlen, "%s:%ld: expected key=value", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        char why[512];
        if (conf_set_kv(conf, key, value, why, sizeof(why)) != 0) {
            snprintf(errstr, errlen, "%s:%ld: %s", path, lineno, why);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(fp)) {
        snprintf(errstr, errlen, "%s: read error: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(fp);
    return rc;
}

int tf_kafka_create_topic(rd_kafka_t *rk, const char *topic, int partitions,
                          int replication_factor, int timeout_ms, char *errstr, size_t errlen)
{
    int rc = -1;
    char why[512];
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;

    nt = rd_kafka_NewTopic_new(topic, partitions, replication_factor, why, sizeof(why));
    if (!nt) {
        snprintf(errstr, errlen, "topic %s: %s", topic, why);
        goto out;
    }
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (!opts) {
        snprintf(errstr, errlen, "topic %s: cannot create admin options", topic);
        goto out;
    }
    /* The operation timeout makes the broker answer only once the topic
     * exists (or the time is up), so a produce right after finds it. */
    if (rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, why, sizeof(why)) ||
        rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, why, sizeof(why))) {
        snprintf(errstr, errlen, "topic %s: %s", topic, why);
        goto out;
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    /* The request's own timeout fires first; the margin covers scheduling. */
    ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (!ev) {
        snprintf(errstr, errlen, "topic %s: no answer to CreateTopics within %d ms", topic,
                 timeout_ms);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errlen, "topic %s: CreateTopics failed: %s", topic,
                 rd_kafka_event_error_string(ev));
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    if (!tr || n != 1) {
        snprintf(errstr, errlen, "topic %s: unexpected CreateTopics result", topic);
        goto out;
    }
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[0]);
    if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        const char *msg = rd_kafka_topic_result_error_string(tr[0]);
        snprintf(errstr, errlen, "topic %s: %s", topic, msg ? msg : rd_kafka_err2str(err));
        goto out;
    }
    rc = 0;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (q)
        rd_kafka_queue_destroy(q);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    return rc;
}

int tf_kafka_topic_exists(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                          size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (err) {
        snprintf(errstr, errlen, "metadata request failed: %s", rd_kafka_err2str(err));
        return -1;
    }
    int found = 0;
    for (int i = 0; i < md->topic_cnt && !found; i++)
        if (strcmp(md->topics[i].topic, topic) == 0 && !md->topics[i].err)
            found = 1;
    rd_kafka_metadata_destroy(md);
    return found;
}

struct conf_prop_ctx {
    rd_kafka_conf_t *conf;
    char why[600];
};

static int conf_prop(const char *name, const char *value, void *arg)
{
    struct conf_prop_ctx *kp = arg;
    char why[512];
    if (rd_kafka_conf_set(kp->conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(kp->why, sizeof(kp->why), "kafka.%s: %s", name, why);
        return -1;
    }
    return 0;
}

int tf_kafka_conf_from_config(rd_kafka_conf_t *conf, const struct tf_config *cfg, char *errstr,
                              size_t errlen)
{
    struct conf_prop_ctx kp = {conf, ""};
    if (tf_config_foreach(cfg, "kafka.", conf_prop, &kp) != 0) {
        snprintf(errstr, errlen, "%s", kp.why[0] ? kp.why : "kafka.*: out of memory");
        return -1;
    }
    return 0;
}

int tf_kafka_check_config(const struct tf_config *cfg, char *errstr, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    int rc = tf_kafka_conf_from_config(conf, cfg, errstr, errlen);
    rd_kafka_conf_destroy(conf);
    return rc;
}

int tf_kafka_wait_ready(rd_kafka_t *rk, int timeout_ms, const int *give_up,
                        const volatile sig_atomic_t *stop, char *errstr, size_t errlen)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long ms = (t.tv_sec - t0.tv_sec) * 1000L + (t.tv_nsec - t0.tv_nsec) / 1000000L;
        if ((give_up && *give_up) || (stop && *stop)) {
            snprintf(errstr, errlen, "gave up waiting for the Kafka brokers");
            return -2;
        }
        if (ms >= timeout_ms) {
            char servers[512] = "?";
            size_t n = sizeof(servers);
            if (rd_kafka_conf_get(rd_kafka_conf(rk), "bootstrap.servers", servers, &n) !=
                RD_KAFKA_CONF_OK)
                snprintf(servers, sizeof(servers), "?");
            snprintf(errstr, errlen,
                     "Kafka brokers %s unreachable for %.1f s (startup.timeout %d s): %s",
                     servers, ms / 1000.0, timeout_ms / 1000, rd_kafka_err2str(err));
            return -1;
        }
        const struct rd_kafka_metadata *md = NULL;
        long left = timeout_ms - ms;
        err = rd_kafka_metadata(rk, 0, NULL, &md, (int)(left < 1000 ? left : 1000));
        if (!err) {
            rd_kafka_metadata_destroy(md);
            return 0;
        }
        rd_kafka_poll(rk, 0); /* (serves the error callback) */
        if (err != RD_KAFKA_RESP_ERR__TIMED_OUT) {
            struct timespec nap = {0, 100 * 1000000L}; /* (a fast failure: do not spin) */
            nanosleep(&nap, NULL);
        }
    }
}

/* ---- librdkafka versions against Kafka 4.x ---------------------------- */

const char *tf_kafka_scram_hint(int rdkafka_version, const char *sasl_mechanisms)
{
    if (!sasl_mechanisms || strncasecmp(sasl_mechanisms, "SCRAM-", 6) != 0)
        return NULL;
    if (rdkafka_version >= TF_RDKAFKA_SCRAM_KAFKA4)
        return NULL;
    return "this librdkafka is older than 2.6.1: against Kafka 4.0 or newer its SCRAM login "
           "fails with 'invalid credentials' whatever the password (librdkafka #4895); use "
           "librdkafka >= 2.6.1 (Debian 13 ships 2.8.0), a Kafka 3.9 broker, or TLS without "
           "SASL";
}

const char *tf_kafka_auth_hint(rd_kafka_t *rk)
{
    char mech[64];
    size_t n = sizeof(mech);
    const rd_kafka_conf_t *conf = rd_kafka_conf(rk);
    if (!conf || rd_kafka_conf_get(conf, "sasl.mechanisms", mech, &n) != RD_KAFKA_CONF_OK)
        return NULL;
    return tf_kafka_scram_hint(rd_kafka_version(), mech);
}

int tf_kafka_use_kip848(const char *user_setting, int rdkafka_version, int broker_cgh,
                        const char **why)
{
    const char *w;
    int use = 0;
    if (user_setting && *user_setting)
        w = "group.protocol set by the user";
    else if (rdkafka_version < TF_RDKAFKA_KIP848_GA)
        w = "librdkafka older than 2.12";
    else if (broker_cgh < 0)
        w = "the broker's support for it is unknown";
    else if (broker_cgh == 0)
        w = "the broker does not offer it";
    else {
        w = "librdkafka >= 2.12 and the broker offers it";
        use = 1;
    }
    if (why)
        *why = w;
    return use;
}

/* The big-endian size in front of the probe's reply. */
static int32_t be32(const unsigned char *p)
{
    return (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
                     p[3]);
}

/* Reads exactly n bytes before the deadline (CLOCK_MONOTONIC ms). */
static int read_full(int fd, unsigned char *buf, size_t n, long long deadline)
{
    size_t got = 0;
    while (got < n) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long long left = deadline - ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        if (left <= 0)
            return -1;
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* A bounds-checked reader over a reply. */
struct rd {
    const unsigned char *p, *end;
    int bad;
};

static unsigned rd_u8(struct rd *r)
{
    if (r->p >= r->end) {
        r->bad = 1;
        return 0;
    }
    return *r->p++;
}

static int16_t rd_i16(struct rd *r)
{
    unsigned a = rd_u8(r), b = rd_u8(r);
    return (int16_t)((a << 8) | b);
}

static int32_t rd_i32(struct rd *r)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = (v << 8) | rd_u8(r);
    return (int32_t)v;
}

static uint32_t rd_uvarint(struct rd *r)
{
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        unsigned b = rd_u8(r);
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

static void rd_skip(struct rd *r, uint32_t n)
{
    if ((size_t)(r->end - r->p) < n) {
        r->bad = 1;
        r->p = r->end;
    } else {
        r->p += n;
    }
}

static void rd_skip_tags(struct rd *r)
{
    uint32_t n = rd_uvarint(r);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        rd_uvarint(r);
        rd_skip(r, rd_uvarint(r));
    }
}

/* An ApiVersions v3 reply after its size: 1 if it lists
 * ConsumerGroupHeartbeat (key 68) and finalizes group.version >= 1 (the
 * consumer protocol is on: Kafka 4.x by default; 3.9 lists the key but
 * leaves group.version at 0), 0 if not, -1 if malformed. */
static int parse_api_versions(const unsigned char *buf, size_t len, char *errstr, size_t errlen)
{
    struct rd r = {buf, buf + len, 0};
    if (rd_i32(&r) != 0x54463137) {
        snprintf(errstr, errlen, "malformed ApiVersions reply (correlation id)");
        return -1;
    }
    int16_t ec = rd_i16(&r);
    if (ec == 35) /* UNSUPPORTED_VERSION: a broker before 2.4, no KIP-848 */
        return 0;
    if (ec != 0) {
        snprintf(errstr, errlen, "ApiVersions refused (error %d)", ec);
        return -1;
    }
    int has68 = 0, group_version = 0;
    uint32_t n = rd_uvarint(&r);
    for (uint32_t i = 0; n && i < n - 1 && !r.bad; i++) {
        if (rd_i16(&r) == 68)
            has68 = 1;
        rd_i16(&r);
        rd_i16(&r);
        rd_skip_tags(&r);
    }
    rd_i32(&r); /* throttle_time_ms */
    uint32_t ntags = rd_uvarint(&r);
    for (uint32_t t = 0; t < ntags && !r.bad; t++) {
        uint32_t tag = rd_uvarint(&r), tlen = rd_uvarint(&r);
        if (tag != 2) { /* 2: FinalizedFeatures */
            rd_skip(&r, tlen);
            continue;
        }
        struct rd f = {r.p, r.p + tlen, 0};
        rd_skip(&r, tlen);
        if (r.bad)
            break;
        uint32_t nf = rd_uvarint(&f);
        for (uint32_t i = 0; nf && i < nf - 1 && !f.bad; i++) {
            uint32_t sl = rd_uvarint(&f);
            const unsigned char *name = f.p;
            rd_skip(&f, sl ? sl - 1 : 0);
            int16_t max_level = rd_i16(&f);
            rd_i16(&f);
            rd_skip_tags(&f);
            if (!f.bad && sl == sizeof("group.version") &&
                memcmp(name, "group.version", sl - 1) == 0)
                group_version = max_level;
        }
        if (f.bad)
            r.bad = 1;
    }
    if (r.bad) {
        snprintf(errstr, errlen, "malformed ApiVersions reply");
        return -1;
    }
    return has68 && group_version >= 1;
}

int tf_kafka_probe_consumer_protocol(const char *bootstrap, int timeout_ms, char *errstr,
                                     size_t errlen)
{
    char host[256], port[16];
    const char *end = bootstrap ? strchr(bootstrap, ',') : NULL;
    size_t len = bootstrap ? (end ? (size_t)(end - bootstrap) : strlen(bootstrap)) : 0;
    /* An optional "plaintext://" style prefix. */
    const char *s = bootstrap;
    const char *sch = s ? strstr(s, "://") : NULL;
    if (sch && sch < s + len) {
        len -= (size_t)(sch + 3 - s);
        s = sch + 3;
    }
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ':')
            colon = s + i;
    if (!s || !colon || colon == s || (size_t)(colon - s) >= sizeof(host) ||
        len - (size_t)(colon - s) - 1 >= sizeof(port) || len - (size_t)(colon - s) - 1 == 0) {
        snprintf(errstr, errlen, "cannot parse a host:port from \"%.100s\"",
                 bootstrap ? bootstrap : "");
        return -1;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memcpy(port, colon + 1, len - (size_t)(colon - s) - 1);
    port[len - (size_t)(colon - s) - 1] = '\0';

    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long deadline = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;

    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0) {
        snprintf(errstr, errlen, "%s:%s: %s", host, port, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int rc = -1;
    if (fd < 0) {
        snprintf(errstr, errlen, "socket: %s", strerror(errno));
        goto out;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        snprintf(errstr, errlen, "%s:%s: %s", host, port, strerror(errno));
        goto out;
    }
    struct pollfd pfd = {fd, POLLOUT, 0};
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (poll(&pfd, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) ||
        soerr) {
        snprintf(errstr, errlen, "%s:%s: %s", host, port,
                 soerr ? strerror(soerr) : "no connection within the timeout");
        goto out;
    }
    /* ApiVersions v3 (request header v2): size, api_key 18, version 3,
     * correlation id, client id, no tagged fields; body: client software
     * name and version (compact strings), no tagged fields. */
    static const char cid[] = "tradeflow-probe";
    static const char sw[] = "\x0a" "tradeflow" "\x04" "0.1" "\x00";
    unsigned char req[4 + 2 + 2 + 4 + 2 + sizeof(cid) - 1 + 1 + sizeof(sw) - 1];
    uint32_t body = (uint32_t)(sizeof(req) - 4);
    unsigned char *q = req;
    *q++ = (unsigned char)(body >> 24), *q++ = (unsigned char)(body >> 16);
    *q++ = (unsigned char)(body >> 8), *q++ = (unsigned char)body;
    *q++ = 0, *q++ = 18; /* ApiVersions */
    *q++ = 0, *q++ = 3;  /* version 3 */
    *q++ = 0x54, *q++ = 0x46, *q++ = 0x31, *q++ = 0x37; /* correlation id */
    *q++ = 0, *q++ = (unsigned char)(sizeof(cid) - 1);
    memcpy(q, cid, sizeof(cid) - 1);
    q += sizeof(cid) - 1;
    *q++ = 0; /* header tagged fields */
    memcpy(q, sw, sizeof(sw) - 1);
    /* MSG_NOSIGNAL: a listener that closed at once must not raise SIGPIPE. */
    if (send(fd, req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req)) {
        snprintf(errstr, errlen, "%s:%s: cannot send ApiVersions: %s", host, port,
                 strerror(errno));
        goto out;
    }
    unsigned char hdr[4];
    if (read_full(fd, hdr, 4, deadline) != 0) {
        snprintf(errstr, errlen,
                 "%s:%s: no ApiVersions answer within %d ms (a TLS listener?)", host, port,
                 timeout_ms);
        goto out;
    }
    int32_t size = be32(hdr);
    /* A TLS listener answers garbage or nothing; a real reply is small. */
    if (size < 6 || size > 65536) {
        snprintf(errstr, errlen, "%s:%s: not a Kafka PLAINTEXT reply (size %d)", host, port,
                 (int)size);
        goto out;
    }
    unsigned char *resp = malloc((size_t)size);
    if (!resp) {
        snprintf(errstr, errlen, "out of memory");
        goto out;
    }
    if (read_full(fd, resp, (size_t)size, deadline) != 0) {
        snprintf(errstr, errlen, "%s:%s: short ApiVersions reply", host, port);
        free(resp);
        goto out;
    }
    rc = parse_api_versions(resp, (size_t)size, errstr, errlen);
    if (rc < 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", errstr);
        snprintf(errstr, errlen, "%s:%s: %s", host, port, why);
    }
    free(resp);
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}
