/*
 * tf_inbox.c - the watched inbox (see tf_inbox.h).
 */
#include "tf_inbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

bool tf_inbox_name_ready(const char *name)
{
    if (!name[0] || name[0] == '.' || strlen(name) > TF_INBOX_NAME_MAX)
        return false;
    static const char *const partial[] = {".part", ".tmp", ".partial", ".filepart", ".report"};
    for (size_t i = 0; i < sizeof partial / sizeof partial[0]; i++)
        if (ends_with(name, partial[i]))
            return false;
    return true;
}

int tf_inbox_prepare(const char *dir, char *errstr, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(errstr, errlen, "%s: %s", dir, errno ? strerror(errno) : "not a directory");
        return -1;
    }
    static const char *const subs[] = {"done", "failed"};
    for (int i = 0; i < 2; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, subs[i]);
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            snprintf(errstr, errlen, "%s: %s", p, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int cmp_file(const void *a, const void *b)
{
    const tf_inbox_file_t *x = a, *y = b;
    if (x->mtime_ns != y->mtime_ns)
        return x->mtime_ns < y->mtime_ns ? -1 : 1;
    return strcmp(x->name, y->name);
}

int tf_inbox_scan(const char *dir, tf_inbox_file_t **out, size_t *n, char *errstr, size_t errlen)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(errstr, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    tf_inbox_file_t *v = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!tf_inbox_name_ready(de->d_name))
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) != 0 || !S_ISREG(st.st_mode))
            continue; /* gone meanwhile, a directory (done/, failed/), a link */
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            tf_inbox_file_t *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                free(v);
                closedir(d);
                snprintf(errstr, errlen, "out of memory");
                return -1;
            }
            v = nv;
            cap = nc;
        }
        tf_inbox_file_t *f = &v[(*n)++];
        snprintf(f->name, sizeof f->name, "%s", de->d_name);
        f->size = (int64_t)st.st_size;
        f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        snprintf(f->identity, sizeof f->identity, "%s|%llu:%llu|%lld|%lld", f->name,
                 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
                 (long long)f->size, (long long)f->mtime_ns);
    }
    closedir(d);
    if (*n > 1)
        qsort(v, *n, sizeof *v, cmp_file);
    *out = v;
    return 0;
}

int tf_inbox_finish(const char *dir, const char *name, const char *sub, const char *report,
                    char *moved, size_t movedlen, char *errstr, size_t errlen)
{
    char src[4096], dst[4096], rep[4200], tmp[4300], base[TF_INBOX_NAME_MAX + 16];
    snprintf(src, sizeof src, "%s/%s", dir, name);
    struct stat st;
    int k = 0;
    for (;; k++) {
        if (k == 0)
            snprintf(base, sizeof base, "%s", name);
        else
            snprintf(base, sizeof base, "%s.%d", name, k);
        snprintf(dst, sizeof dst, "%s/%s/%s", dir, sub, base);
        snprintf(rep, sizeof rep, "%s.report", dst);
        if (lstat(dst, &st) != 0 && lstat(rep, &st) != 0)
            break;
        if (k > 100000) {
            snprintf(errstr, errlen, "%s/%s: no free name for %s", dir, sub, name);
            return -1;
        }
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", rep);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(errstr, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    bool bad = fputs(report, f) == EOF;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, rep) != 0) {
        snprintf(errstr, errlen, "%s: %s", rep, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(src, dst) != 0) {
        snprintf(errstr, errlen, "moving %s to %s: %s", src, dst, strerror(errno));
        return -1;
    }
    if (moved)
        snprintf(moved, movedlen, "%s/%s", sub, base);
    return 0;
}

/* ---- identities ------------------------------------------------------- */

struct tf_inbox_seen {
    char **v; /* open addressing, NULL = empty */
    size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

tf_inbox_seen_t *tf_inbox_seen_new(void)
{
    tf_inbox_seen_t *s = calloc(1, sizeof *s);
    if (s && !(s->v = calloc(64, sizeof *s->v))) {
        free(s);
        return NULL;
    }
    if (s)
        s->cap = 64;
    return s;
}

void tf_inbox_seen_free(tf_inbox_seen_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->cap; i++)
        free(s->v[i]);
    free(s->v);
    free(s);
}

static size_t slot(const tf_inbox_seen_t *s, const char *id)
{
    size_t h = hash_str(id) & (s->cap - 1);
    while (s->v[h] && strcmp(s->v[h], id) != 0)
        h = (h + 1) & (s->cap - 1);
    return h;
}

int tf_inbox_seen_add(tf_inbox_seen_t *s, const char *identity)
{
    if ((s->n + 1) * 2 > s->cap) {
        tf_inbox_seen_t big = {calloc(s->cap * 2, sizeof(char *)), s->cap * 2, 0};
        if (!big.v)
            return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->v[i]) {
                big.v[slot(&big, s->v[i])] = s->v[i];
                big.n++;
            }
        free(s->v);
        *s = big;
    }
    size_t h = slot(s, identity);
    if (s->v[h])
        return 0;
    if (!(s->v[h] = strdup(identity)))
        return -1;
    s->n++;
    return 0;
}

bool tf_inbox_seen_has(const tf_inbox_seen_t *s, const char *identity)
{
    return s->v[slot(s, identity)] != NULL;
}

size_t tf_inbox_seen_count(const tf_inbox_seen_t *s)
{
    return s->n;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tf_inbox_load_state(rd_kafka_conf_t *conf, const char *topic, tf_inbox_seen_t *seen,
                        int timeout_ms, char *errstr, size_t errlen)
{
    char why[512];
    if (rd_kafka_conf_set(conf, "group.id", "tradeflow-produce-inbox", why, sizeof why) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", why, sizeof why) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", why, sizeof why) ||
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", why, sizeof why)) {
        snprintf(errstr, errlen, "%s", why);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!rk) {
        snprintf(errstr, errlen, "consumer: %s", why);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    int rc = -1, nparts = 0, eofs = 0;
    int *at_eof = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1) {
        snprintf(errstr, errlen, "metadata of %s: %s", topic, rd_kafka_err2str(err));
        goto out;
    }
    if (md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        rc = 0; /* nothing published yet */
        goto out;
    }
    if (md->topics[0].err) {
        snprintf(errstr, errlen, "metadata of %s: %s", topic, rd_kafka_err2str(md->topics[0].err));
        goto out;
    }
    nparts = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++)
        rd_kafka_topic_partition_list_add(parts, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        snprintf(errstr, errlen, "assign %s: %s", topic, rd_kafka_err2str(err));
        goto out;
    }
    at_eof = calloc((size_t)nparts + 1, sizeof *at_eof);
    if (!at_eof) {
        snprintf(errstr, errlen, "out of memory");
        goto out;
    }
    long long deadline = mono_ms() + timeout_ms;
    while (eofs < nparts) {
        if (mono_ms() > deadline) {
            snprintf(errstr, errlen, "reading %s: %d of %d partitions read to the end within %d ms",
                     topic, eofs, nparts, timeout_ms);
            goto out;
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
            snprintf(errstr, errlen, "reading %s: %s", topic, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            goto out;
        } else if (m->key && m->key_len > 0 && m->key_len < TF_INBOX_ID_MAX) {
            char id[TF_INBOX_ID_MAX];
            memcpy(id, m->key, m->key_len);
            id[m->key_len] = '\0';
            if (tf_inbox_seen_add(seen, id) != 0) {
                snprintf(errstr, errlen, "out of memory");
                rd_kafka_message_destroy(m);
                goto out;
            }
        }
        rd_kafka_message_destroy(m);
    }
    rc = 0;
out:
    free(at_eof);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}
