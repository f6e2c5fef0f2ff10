/*
 * tf_metrics.c - see tf_metrics.h.
 *
 * Locking: the registry mutex guards the list of families (registration,
 * rendering, freeing). Each family's mutex guards its list of series and the
 * histogram data of its series. Counter and gauge values are atomics, so the
 * single series of a family without labels is updated without a lock; it is
 * created with the family and never removed, which is what makes the
 * lock-free pointer safe.
 */
#include "tf_metrics.h"
#include "tf_err.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct series {
    struct series *next; /* creation order */
    uint64_t hash;       /* of the label values, to skip most string compares */
    char **values;       /* nlabels strings, owned; NULL when nlabels == 0 */
    /* Counter: the count. Gauge: the bits of a double. */
    _Atomic uint64_t u;
    /* Histogram only, under the family mutex: per-bucket (not cumulative)
     * counts, nbounds + 1 of them (the last one is +Inf), and the sum. */
    uint64_t *buckets;
    double sum;
} series_t;

struct tf_metric {
    struct tf_metric *next; /* registration order */
    tf_metrics_t *reg;
    tf_metric_type_t type;
    char *name;
    char *help;
    size_t nlabels;
    char **labels; /* nlabels names, owned */
    size_t nbounds;
    double *bounds; /* histogram upper bounds, owned */
    pthread_mutex_t mu;
    series_t *first, *last;
    size_t nseries;
    series_t *single; /* the series of a family without labels */
};

struct tf_metrics {
    pthread_mutex_t mu;
    tf_metric_t *first, *last;
};


static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* FNV-1a over the values, each followed by a separator byte so that ("ab","c") and
 * ("a","bc") differ. */
static uint64_t hash_values(size_t n, const char *const *values)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++) {
            h ^= *p;
            h *= 1099511628211ULL;
        }
        h ^= 0xff; /* a byte that UTF-8 text never holds */
        h *= 1099511628211ULL;
    }
    return h;
}

static void series_free(series_t *s, size_t nlabels)
{
    if (!s)
        return;
    if (s->values) {
        for (size_t i = 0; i < nlabels; i++)
            free(s->values[i]);
        free(s->values);
    }
    free(s->buckets);
    free(s);
}

static series_t *series_new(const tf_metric_t *f, const char *const *values, uint64_t hash)
{
    series_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->hash = hash;
    atomic_init(&s->u, f->type == TF_METRIC_GAUGE ? dbits(0.0) : 0);
    if (f->nlabels) {
        s->values = calloc(f->nlabels, sizeof *s->values);
        if (!s->values)
            goto fail;
        for (size_t i = 0; i < f->nlabels; i++) {
            s->values[i] = strdup(values[i] ? values[i] : "");
            if (!s->values[i])
                goto fail;
        }
    }
    if (f->type == TF_METRIC_HISTOGRAM) {
        s->buckets = calloc(f->nbounds + 1, sizeof *s->buckets);
        if (!s->buckets)
            goto fail;
    }
    return s;
fail:
    series_free(s, f->nlabels);
    return NULL;
}

static int values_equal(const tf_metric_t *f, const series_t *s, const char *const *values)
{
    for (size_t i = 0; i < f->nlabels; i++)
        if (strcmp(s->values[i], values[i] ? values[i] : "") != 0)
            return 0;
    return 1;
}

/* The series for values, created when `create` and absent. Called with the
 * family mutex held; a linear scan, fine for the tens to thousands of series
 * (partitions) a family holds here. */
static series_t *series_find(tf_metric_t *f, const char *const *values, int create)
{
    if (f->nlabels == 0)
        return f->single;
    if (!values)
        return NULL;
    uint64_t h = hash_values(f->nlabels, values);
    for (series_t *s = f->first; s; s = s->next)
        if (s->hash == h && values_equal(f, s, values))
            return s;
    if (!create)
        return NULL;
    series_t *s = series_new(f, values, h);
    if (!s)
        return NULL;
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    f->nseries++;
    return s;
}

/* ---------------------------------------------------------------- registry */

tf_metrics_t *tf_metrics_new(void)
{
    tf_metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void family_free(tf_metric_t *f)
{
    if (!f)
        return;
    series_t *s = f->first;
    while (s) {
        series_t *n = s->next;
        series_free(s, f->nlabels);
        s = n;
    }
    if (f->labels) {
        for (size_t i = 0; i < f->nlabels; i++)
            free(f->labels[i]);
        free(f->labels);
    }
    free(f->bounds);
    free(f->name);
    free(f->help);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void tf_metrics_free(tf_metrics_t *m)
{
    if (!m)
        return;
    tf_metric_t *f = m->first;
    while (f) {
        tf_metric_t *n = f->next;
        family_free(f);
        f = n;
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int valid_name(const char *s, int colon)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static const char *type_name(tf_metric_type_t t)
{
    switch (t) {
    case TF_METRIC_COUNTER:
        return "counter";
    case TF_METRIC_GAUGE:
        return "gauge";
    case TF_METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

/* Same type, label names and buckets as an existing family f? */
static int same_shape(const tf_metric_t *f, tf_metric_type_t type, size_t nlabels,
                      const char *const *label_names, const double *bounds, size_t nbounds)
{
    if (f->type != type || f->nlabels != nlabels || f->nbounds != nbounds)
        return 0;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(f->labels[i], label_names[i]) != 0)
            return 0;
    for (size_t i = 0; i < nbounds; i++)
        if (f->bounds[i] != bounds[i])
            return 0;
    return 1;
}

static tf_metric_t *do_register(tf_metrics_t *m, tf_metric_type_t type, const char *name,
                                const char *help, const double *bounds, size_t nbounds,
                                const char *const *label_names, char *errstr, size_t errlen)
{
    if (!m) {
        tf_seterr(errstr, errlen, "no metrics registry");
        return NULL;
    }
    if (!valid_name(name, 1)) {
        tf_seterr(errstr, errlen, "invalid metric name \"%s\"", name ? name : "(null)");
        return NULL;
    }
    size_t nlabels = 0;
    if (label_names)
        while (label_names[nlabels])
            nlabels++;
    for (size_t i = 0; i < nlabels; i++) {
        const char *l = label_names[i];
        if (!valid_name(l, 0) || strncmp(l, "__", 2) == 0) {
            tf_seterr(errstr, errlen, "%s: invalid label name \"%s\"", name, l);
            return NULL;
        }
        if (type == TF_METRIC_HISTOGRAM && strcmp(l, "le") == 0) {
            tf_seterr(errstr, errlen, "%s: the label name \"le\" is reserved for buckets", name);
            return NULL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(label_names[j], l) == 0) {
                tf_seterr(errstr, errlen, "%s: label \"%s\" given twice", name, l);
                return NULL;
            }
    }
    if (type == TF_METRIC_HISTOGRAM) {
        if (nbounds == 0 || !bounds) {
            tf_seterr(errstr, errlen, "%s: a histogram needs at least one bucket bound", name);
            return NULL;
        }
        for (size_t i = 0; i < nbounds; i++) {
            if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
                tf_seterr(errstr, errlen,
                       "%s: bucket bounds must be finite and strictly increasing", name);
                return NULL;
            }
        }
    } else {
        nbounds = 0;
        bounds = NULL;
    }

    pthread_mutex_lock(&m->mu);
    for (tf_metric_t *f = m->first; f; f = f->next) {
        if (strcmp(f->name, name) != 0)
            continue;
        if (same_shape(f, type, nlabels, label_names, bounds, nbounds)) {
            pthread_mutex_unlock(&m->mu);
            return f;
        }
        pthread_mutex_unlock(&m->mu);
        tf_seterr(errstr, errlen, "%s: already registered as another %s", name,
               f->type == type ? "label set or bucket list" : type_name(f->type));
        return NULL;
    }
    pthread_mutex_unlock(&m->mu);

    tf_metric_t *f = calloc(1, sizeof *f);
    if (!f)
        goto oom;
    if (pthread_mutex_init(&f->mu, NULL) != 0) {
        free(f);
        f = NULL;
        goto oom;
    }
    f->reg = m;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help)
        goto oom;
    f->nlabels = nlabels;
    if (nlabels) {
        f->labels = calloc(nlabels, sizeof *f->labels);
        if (!f->labels)
            goto oom;
        for (size_t i = 0; i < nlabels; i++)
            if (!(f->labels[i] = strdup(label_names[i])))
                goto oom;
    }
    if (nbounds) {
        f->bounds = malloc(nbounds * sizeof *f->bounds);
        if (!f->bounds)
            goto oom;
        memcpy(f->bounds, bounds, nbounds * sizeof *f->bounds);
        f->nbounds = nbounds;
    }
    if (nlabels == 0) {
        f->single = series_new(f, NULL, 0);
        if (!f->single)
            goto oom;
        f->first = f->last = f->single;
        f->nseries = 1;
    }

    /* Another thread may have registered the same name meanwhile: check
     * again under the lock before appending. */
    pthread_mutex_lock(&m->mu);
    for (tf_metric_t *g = m->first; g; g = g->next) {
        if (strcmp(g->name, name) != 0)
            continue;
        int same = same_shape(g, type, nlabels, label_names, bounds, nbounds);
        pthread_mutex_unlock(&m->mu);
        family_free(f);
        if (same)
            return g;
        tf_seterr(errstr, errlen, "%s: already registered with another shape", name);
        return NULL;
    }
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    pthread_mutex_unlock(&m->mu);
    return f;

oom:
    family_free(f);
    tf_seterr(errstr, errlen, "%s: out of memory", name);
    return NULL;
}

tf_metric_t *tf_metrics_counter(tf_metrics_t *m, const char *name, const char *help,
                                const char *const *label_names, char *errstr, size_t errlen)
{
    return do_register(m, TF_METRIC_COUNTER, name, help, NULL, 0, label_names, errstr, errlen);
}

tf_metric_t *tf_metrics_gauge(tf_metrics_t *m, const char *name, const char *help,
                              const char *const *label_names, char *errstr, size_t errlen)
{
    return do_register(m, TF_METRIC_GAUGE, name, help, NULL, 0, label_names, errstr, errlen);
}

tf_metric_t *tf_metrics_histogram(tf_metrics_t *m, const char *name, const char *help,
                                  const double *bounds, size_t nbounds,
                                  const char *const *label_names, char *errstr, size_t errlen)
{
    return do_register(m, TF_METRIC_HISTOGRAM, name, help, bounds, nbounds, label_names, errstr,
                       errlen);
}

/* ----------------------------------------------------------------- updates */

static void gauge_add_atomic(series_t *s, double delta)
{
    uint64_t old = atomic_load(&s->u);
    while (!atomic_compare_exchange_weak(&s->u, &old, dbits(bitsd(old) + delta)))
        ;
}

/* Counter and gauge updates. op: 0 add (uint), 1 set (uint), 2 set (double),
 * 3 add (double). */
static void update(tf_metric_t *f, tf_metric_type_t type, const char *const *values, int op,
                   uint64_t n, double d)
{
    if (!f || f->type != type)
        return;
    series_t *s;
    int locked = 0;
    if (f->nlabels == 0) {
        s = f->single;
    } else {
        pthread_mutex_lock(&f->mu);
        locked = 1;
        s = series_find(f, values, 1);
    }
    if (s) {
        switch (op) {
        case 0:
            atomic_fetch_add(&s->u, n);
            break;
        case 1:
            atomic_store(&s->u, n);
            break;
        case 2:
            atomic_store(&s->u, dbits(d));
            break;
        default:
            gauge_add_atomic(s, d);
            break;
        }
    }
    if (locked)
        pthread_mutex_unlock(&f->mu);
}

void tf_metrics_counter_add(tf_metric_t *c, uint64_t n)
{
    update(c, TF_METRIC_COUNTER, NULL, 0, n, 0);
}

void tf_metrics_counter_add_labels(tf_metric_t *c, const char *const *values, uint64_t n)
{
    update(c, TF_METRIC_COUNTER, values, 0, n, 0);
}

void tf_metrics_counter_set(tf_metric_t *c, uint64_t v)
{
    update(c, TF_METRIC_COUNTER, NULL, 1, v, 0);
}

void tf_metrics_counter_set_labels(tf_metric_t *c, const char *const *values, uint64_t v)
{
    update(c, TF_METRIC_COUNTER, values, 1, v, 0);
}

void tf_metrics_gauge_set(tf_metric_t *g, double v)
{
    update(g, TF_METRIC_GAUGE, NULL, 2, 0, v);
}

void tf_metrics_gauge_add(tf_metric_t *g, double delta)
{
    update(g, TF_METRIC_GAUGE, NULL, 3, 0, delta);
}

void tf_metrics_gauge_set_labels(tf_metric_t *g, const char *const *values, double v)
{
    update(g, TF_METRIC_GAUGE, values, 2, 0, v);
}

void tf_metrics_gauge_add_labels(tf_metric_t *g, const char *const *values, double delta)
{
    update(g, TF_METRIC_GAUGE, values, 3, 0, delta);
}

void tf_metrics_hist_observe_labels(tf_metric_t *h, const char *const *values, double v)
{
    if (!h || h->type != TF_METRIC_HISTOGRAM || isnan(v))
        return;
    /* The first bucket whose bound is >= v (binary search); nbounds is the
     * +Inf bucket. */
    size_t lo = 0, hi = h->nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    pthread_mutex_lock(&h->mu);
    series_t *s = series_find(h, values, 1);
    if (s) {
        s->buckets[lo]++;
        s->sum += v;
        atomic_fetch_add(&s->u, 1);
    }
    pthread_mutex_unlock(&h->mu);
}

void tf_metrics_hist_observe(tf_metric_t *h, double v)
{
    tf_metrics_hist_observe_labels(h, NULL, v);
}

int tf_metrics_remove_labels(tf_metric_t *f, const char *const *values)
{
    if (!f || f->nlabels == 0 || !values)
        return 0;
    int removed = 0;
    pthread_mutex_lock(&f->mu);
    uint64_t h = hash_values(f->nlabels, values);
    series_t *prev = NULL;
    for (series_t *s = f->first; s; prev = s, s = s->next) {
        if (s->hash != h || !values_equal(f, s, values))
            continue;
        if (prev)
            prev->next = s->next;
        else
            f->first = s->next;
        if (f->last == s)
            f->last = prev;
        f->nseries--;
        series_free(s, f->nlabels);
        removed = 1;
        break;
    }
    pthread_mutex_unlock(&f->mu);
    return removed;
}

void tf_metrics_clear(tf_metric_t *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    if (f->nlabels == 0) {
        series_t *s = f->single;
        atomic_store(&s->u, f->type == TF_METRIC_GAUGE ? dbits(0.0) : 0);
        if (s->buckets)
            memset(s->buckets, 0, (f->nbounds + 1) * sizeof *s->buckets);
        s->sum = 0;
    } else {
        series_t *s = f->first;
        while (s) {
            series_t *n = s->next;
            series_free(s, f->nlabels);
            s = n;
        }
        f->first = f->last = NULL;
        f->nseries = 0;
    }
    pthread_mutex_unlock(&f->mu);
}

uint64_t tf_metrics_counter_value(tf_metric_t *c, const char *const *values_or_NULL)
{
    if (!c)
        return 0;
    uint64_t v = 0;
    pthread_mutex_lock(&c->mu);
    series_t *s = series_find(c, values_or_NULL, 0);
    if (s && c->type != TF_METRIC_GAUGE)
        v = atomic_load(&s->u);
    pthread_mutex_unlock(&c->mu);
    return v;
}

double tf_metrics_gauge_value(tf_metric_t *g, const char *const *values_or_NULL)
{
    if (!g)
        return 0;
    double v = 0;
    pthread_mutex_lock(&g->mu);
    series_t *s = series_find(g, values_or_NULL, 0);
    if (s) {
        if (g->type == TF_METRIC_GAUGE)
            v = bitsd(atomic_load(&s->u));
        else if (g->type == TF_METRIC_HISTOGRAM)
            v = s->sum;
        else
            v = (double)atomic_load(&s->u);
    }
    pthread_mutex_unlock(&g->mu);
    return v;
}

size_t tf_metrics_series_count(tf_metric_t *f)
{
    if (!f)
        return 0;
    pthread_mutex_lock(&f->mu);
    size_t n = f->nseries;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* --------------------------------------------------------------- rendering */

char *tf_metrics_format_double(double v, char *buf, size_t len)
{
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
    } else {
        /* The shortest of 15..17 significant digits that reads back exactly:
         * 0.1 stays "0.1", and no value is ever rounded. */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, len, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
    return buf;
}

/* HELP text: backslash and line feed are escaped. */
static int append_help(tf_buf_t *out, const char *s)
{
    for (const char *p = s; *p; p++) {
        int rc;
        if (*p == '\\')
            rc = tf_buf_append(out, "\\\\", 2);
        else if (*p == '\n')
            rc = tf_buf_append(out, "\\n", 2);
        else
            rc = tf_buf_append(out, p, 1);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Label values: backslash, double quote and line feed are escaped. */
static int append_label_value(tf_buf_t *out, const char *s)
{
    for (const char *p = s; *p; p++) {
        int rc;
        if (*p == '\\')
            rc = tf_buf_append(out, "\\\\", 2);
        else if (*p == '"')
            rc = tf_buf_append(out, "\\\"", 2);
        else if (*p == '\n')
            rc = tf_buf_append(out, "\\n", 2);
        else
            rc = tf_buf_append(out, p, 1);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* name{l1="v1",...[,le="bound"]} */
static int append_series_name(tf_buf_t *out, const tf_metric_t *f, const series_t *s,
                              const char *suffix, const char *le)
{
    if (tf_buf_appendf(out, "%s%s", f->name, suffix) != 0)
        return -1;
    if (f->nlabels == 0 && !le)
        return 0;
    if (tf_buf_append(out, "{", 1) != 0)
        return -1;
    for (size_t i = 0; i < f->nlabels; i++) {
        if (tf_buf_appendf(out, "%s%s=\"", i ? "," : "", f->labels[i]) != 0 ||
            append_label_value(out, s->values[i]) != 0 || tf_buf_append(out, "\"", 1) != 0)
            return -1;
    }
    if (le && tf_buf_appendf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le) != 0)
        return -1;
    return tf_buf_append(out, "}", 1);
}

static int render_family(tf_metric_t *f, tf_buf_t *out)
{
    char num[64];
    if (tf_buf_appendf(out, "# HELP %s ", f->name) != 0 || append_help(out, f->help) != 0 ||
        tf_buf_appendf(out, "\n# TYPE %s %s\n", f->name, type_name(f->type)) != 0)
        return -1;
    int rc = 0;
    pthread_mutex_lock(&f->mu);
    for (series_t *s = f->first; s && rc == 0; s = s->next) {
        uint64_t u = atomic_load(&s->u);
        switch (f->type) {
        case TF_METRIC_COUNTER:
            rc = append_series_name(out, f, s, "", NULL) ||
                 tf_buf_appendf(out, " %llu\n", (unsigned long long)u);
            break;
        case TF_METRIC_GAUGE:
            rc = append_series_name(out, f, s, "", NULL) ||
                 tf_buf_appendf(out, " %s\n", tf_metrics_format_double(bitsd(u), num, sizeof num));
            break;
        case TF_METRIC_HISTOGRAM: {
            /* Buckets are cumulative in the exposition format; the count is
             * the +Inf bucket, consistent with the buckets because both are
             * read under the family mutex. */
            uint64_t cum = 0;
            for (size_t i = 0; i <= f->nbounds && rc == 0; i++) {
                cum += s->buckets[i];
                char le[64];
                if (i < f->nbounds)
                    tf_metrics_format_double(f->bounds[i], le, sizeof le);
                else
                    snprintf(le, sizeof le, "+Inf");
                rc = append_series_name(out, f, s, "_bucket", le) ||
                     tf_buf_appendf(out, " %llu\n", (unsigned long long)cum);
            }
            if (rc == 0)
                rc = append_series_name(out, f, s, "_sum", NULL) ||
                     tf_buf_appendf(out, " %s\n",
                                    tf_metrics_format_double(s->sum, num, sizeof num));
            if (rc == 0)
                rc = append_series_name(out, f, s, "_count", NULL) ||
                     tf_buf_appendf(out, " %llu\n", (unsigned long long)cum);
            break;
        }
        }
    }
    pthread_mutex_unlock(&f->mu);
    return rc ? -1 : 0;
}

int tf_metrics_render(tf_metrics_t *m, tf_buf_t *out)
{
    if (!m || !out)
        return -1;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    for (tf_metric_t *f = m->first; f && rc == 0; f = f->next)
        rc = render_family(f, out);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* ------------------------------------------------------ tradeflow's own set */

/* Records per batch: the aggregator's batches run from one record (a live
 * trickle) to its size limit (thousands). */
static const double batch_record_bounds[] = {1,    5,    10,   50,    100,  500,
                                             1000, 2000, 5000, 10000, 50000};
/* Seconds: from a millisecond (small commit on loopback) to half a minute (a
 * big batch against a busy server). */
static const double seconds_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10,   30};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

int tf_metrics_std_register(tf_metrics_t *m, unsigned parts, const char *program,
                            const char *version, tf_metrics_std_t *out, char *errstr,
                            size_t errlen)
{
    memset(out, 0, sizeof *out);
#define COUNTER(field, name, help)                                                          \
    do {                                                                                    \
        if (!(out->field = tf_metrics_counter(m, name, help, NULL, errstr, errlen)))        \
            return -1;                                                                      \
    } while (0)
#define HIST(field, name, help, b)                                                          \
    do {                                                                                    \
        if (!(out->field =                                                                  \
                  tf_metrics_histogram(m, name, help, b, NELEM(b), NULL, errstr, errlen)))  \
            return -1;                                                                      \
    } while (0)

    if (!(out->up = tf_metrics_gauge(m, "tradeflow_up", "1 while the program runs.", NULL, errstr,
                                     errlen)))
        return -1;
    tf_metrics_gauge_set(out->up, 1);
    if (!(out->build_info = tf_metrics_gauge(
              m, "tradeflow_build_info",
              "Always 1; the labels name the program and the tradeflow version.",
              (const char *[]){"program", "version", NULL}, errstr, errlen)))
        return -1;
    const char *info[] = {program ? program : "", version ? version : ""};
    tf_metrics_gauge_set_labels(out->build_info, info, 1);

    if (parts & TF_METRICS_STD_CONSUMER) {
        COUNTER(records_consumed, "tradeflow_records_consumed_total",
                "Messages taken from Kafka by the aggregator (before decoding).");
        COUNTER(records_applied, "tradeflow_records_applied_total",
                "Records that changed the totals: new records and higher revisions.");
        COUNTER(records_duplicate, "tradeflow_records_duplicate_total",
                "Records without effect: the same or a lower revision of a record_id already "
                "applied.");
        COUNTER(records_superseded, "tradeflow_records_superseded_total",
                "Revisions that replaced an earlier revision of their record_id (in PostgreSQL, "
                "or within one batch).");
        COUNTER(records_dead_lettered, "tradeflow_records_dead_lettered_total",
                "Poison messages (undecodable or invalid) sent to the dead-letter topic.");
        HIST(batch_records, "tradeflow_batch_records", "Records per applied batch.",
             batch_record_bounds);
        HIST(batch_apply_seconds, "tradeflow_batch_apply_seconds",
             "Wall time to apply one batch to PostgreSQL, commit included.", seconds_bounds);
        HIST(pg_commit_seconds, "tradeflow_pg_commit_seconds",
             "Wall time of the PostgreSQL COMMIT of one batch.", seconds_bounds);
        if (!(out->last_settle_seconds = tf_metrics_gauge(
                  m, "tradeflow_last_settle_timestamp_seconds",
                  "Unix time of the last committed settle point (rankings and alerts are as "
                  "of then); 0 before the first.",
                  NULL, errstr, errlen)))
            return -1;
        if (!(out->pg_errors = tf_metrics_counter(
                  m, "tradeflow_pg_errors_total",
                  "Failed PostgreSQL transaction attempts of the aggregator by class: retry "
                  "(serialization, deadlock), transient (connection, resources), data "
                  "(deterministic, isolated and dead-lettered), other.",
                  (const char *[]){"class", NULL}, errstr, errlen)))
            return -1;
        COUNTER(batch_retries, "tradeflow_batch_retries_total",
                "Batch transactions retried (at once or after a back-off).");
        COUNTER(batch_splits, "tradeflow_batch_splits_total",
                "Sub-transactions (savepoints) run to isolate the records of a data error.");
        COUNTER(records_rejected, "tradeflow_records_rejected_total",
                "Records the database refused with a data error, sent to the dead-letter "
                "topic (also counted in tradeflow_records_dead_lettered_total).");
    }
    if (parts & TF_METRICS_STD_ALERTS) {
        COUNTER(alerts_raised, "tradeflow_alerts_raised_total",
                "Ranking-shift alerts written to the outbox.");
        COUNTER(alerts_relayed, "tradeflow_alerts_relayed_total",
                "Alerts published from the outbox to the alerts topic.");
    }
    if (parts & TF_METRICS_STD_PRODUCER) {
        COUNTER(producer_delivered, "tradeflow_producer_delivered_total",
                "Records acknowledged by Kafka (delivery report without error).");
        COUNTER(producer_failed, "tradeflow_producer_failed_total",
                "Records whose delivery failed (delivery report with an error).");
        COUNTER(producer_rejected, "tradeflow_producer_rejected_total",
                "Input records rejected by validation before producing.");
    }
#undef COUNTER
#undef HIST
    return 0;
}
