/*
 * tf_codec.c - tradeflow records and alerts to and from framed Avro binary
 * (see tf_codec.h). The Avro work (schemas, resolution, binary) is in
 * tf_avro.c; this file maps reader-schema fields to the C structs by field
 * name, and handles framing, the known writer schemas and the registry.
 */
#include "tf_codec.h"
#include "tf_err.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tf_avro.h"
#include "tf_registry.h"

#ifndef TF_SCHEMA_SRC_DIR
#define TF_SCHEMA_SRC_DIR "schemas"
#endif

#define SO_MAGIC0 0xC3
#define SO_MAGIC1 0x01
#define SO_HEADER 10
#define CF_HEADER 5
#define MAX_SCHEMA_FILE (1u << 20)


/* The fields the C structs know, matched against reader field names. */
enum fid {
    F_OTHER = 0,
    F_RECORD_ID,
    F_REVISION,
    F_REPORTER,
    F_PARTNER,
    F_FLOW,
    F_PERIOD,
    F_HS_CODE,
    F_VALUE_USD,
    F_QUANTITY,
    F_UNIT,
    F_SECTOR,
    F_ALERT_ID,
    F_DATASET,
    F_BASIS,
    F_LEVEL,
    F_OLD_RANK,
    F_NEW_RANK,
    F_KIND,
    F_DETECTED_AT,
    F_RECORD_KIND,
};

static const struct {
    const char *name;
    enum fid id;
} field_names[] = {
    {"record_id", F_RECORD_ID}, {"revision", F_REVISION},   {"reporter", F_REPORTER},
    {"partner", F_PARTNER},     {"flow", F_FLOW},           {"period", F_PERIOD},
    {"hs_code", F_HS_CODE},     {"value_usd", F_VALUE_USD}, {"quantity", F_QUANTITY},
    {"unit", F_UNIT},           {"sector", F_SECTOR},       {"alert_id", F_ALERT_ID},
    {"dataset", F_DATASET},     {"basis", F_BASIS},         {"level", F_LEVEL},
    {"old_rank", F_OLD_RANK},   {"new_rank", F_NEW_RANK},   {"kind", F_KIND},
    {"detected_at", F_DETECTED_AT}, {"record_kind", F_RECORD_KIND},
};

#define MAX_SYMBOLS 32

/* How one reader field is filled and read. */
typedef struct fmap {
    enum fid id;
    const tf_avro_node_t *type; /* the field type (may be a union) */
    const tf_avro_node_t *base; /* the non-null branch, or the type itself */
    int null_branch;            /* branch of "null" in a union, else -1 */
    int val_branch;             /* branch of base in a union, else -1 */
    const tf_avro_value_t *defval;
    /* Enums: symbol index -> C enum value (-1 = unknown), and back. */
    int sym_to_c[MAX_SYMBOLS];
    int c_to_sym[8];
} fmap_t;

enum { R_CUSTOMS = 0, R_INVESTMENT = 1, R_ALERT = 2, R_COUNT = 3 };

static const char *const reader_files[R_COUNT] = {"CustomsRecord.avsc", "InvestmentRecord.avsc",
                                                  "RankingAlert.avsc"};

typedef struct reader {
    tf_avro_schema_t *schema;
    const tf_avro_node_t *root;
    fmap_t *f;
    size_t nf;
    uint8_t so_header[SO_HEADER];
} reader_t;

/* A known writer schema: by fingerprint (single-object) or registry id. */
typedef struct wentry {
    uint64_t fp;
    int32_t id; /* registry id, or -1 */
    tf_avro_schema_t *schema;
    bool owned;
    int reader;                   /* R_*, or -1 when no reader takes it */
    tf_avro_resolver_t *resolver; /* compiled on first use */
    char *incompatible;           /* why the resolver cannot be compiled */
} wentry_t;

typedef struct topic_id {
    char *topic;
    int reader;
    int32_t id;
} topic_id_t;

struct tf_codec {
    reader_t rd[R_COUNT];
    wentry_t *w;
    size_t nw, capw;
    size_t last; /* index of the last entry used, to skip the search */
    tf_avro_arena_t *arena;
    tf_registry_t *reg;
    topic_id_t *tids;
    size_t ntids;
};

/* --- schema directory ------------------------------------------------------- */

const char *tf_codec_default_schema_dir(void)
{
    static char buf[PATH_MAX];
    const char *env = getenv("TRADEFLOW_SCHEMA_DIR");
    if (env && *env)
        return env;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            struct stat st;
            if ((size_t)snprintf(buf, sizeof buf, "%s/../share/tradeflow/schemas", exe) <
                    sizeof buf &&
                stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
                return buf;
        }
    }
    return TF_SCHEMA_SRC_DIR;
}

static char *read_file(const char *path, size_t *len, char *errstr, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        tf_seterr(errstr, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MAX_SCHEMA_FILE + 1);
    size_t n = buf ? fread(buf, 1, MAX_SCHEMA_FILE + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad || n > MAX_SCHEMA_FILE) {
        tf_seterr(errstr, errlen, "%s: %s", path,
               !buf ? "out of memory" : bad ? "read error" : "file too large");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* --- field maps --------------------------------------------------------------- */

static int c_enum_count(enum fid id)
{
    switch (id) {
    case F_FLOW: return 6;
    case F_DATASET: return 2;
    case F_BASIS: return 2;
    case F_LEVEL: return 2;
    case F_KIND: return 2;
    case F_RECORD_KIND: return 2;
    default: return 0;
    }
}

static const char *c_enum_name(enum fid id, int v)
{
    static const char *const datasets[] = {"customs", "investment"};
    static const char *const bases[] = {"month", "ytd"};
    static const char *const levels[] = {"partner", "group"};
    static const char *const kinds[] = {"shift", "retraction"};
    static const char *const record_kinds[] = {"fact", "release"};
    switch (id) {
    case F_FLOW: return tf_flow_name((tf_flow_t)v);
    case F_DATASET: return datasets[v];
    case F_BASIS: return bases[v];
    case F_LEVEL: return levels[v];
    case F_KIND: return kinds[v];
    case F_RECORD_KIND: return record_kinds[v];
    default: return "";
    }
}

static int build_fmap(reader_t *rd, char *errstr, size_t errlen)
{
    const tf_avro_node_t *root = rd->root;
    if (root->type != TF_AVRO_RECORD) {
        tf_seterr(errstr, errlen, "reader schema is not a record");
        return -1;
    }
    rd->f = calloc(root->nfields ? root->nfields : 1, sizeof *rd->f);
    if (!rd->f) {
        tf_seterr(errstr, errlen, "out of memory");
        return -1;
    }
    rd->nf = root->nfields;
    for (size_t i = 0; i < root->nfields; i++) {
        const tf_avro_field_t *fd = &root->fields[i];
        fmap_t *m = &rd->f[i];
        m->type = m->base = fd->type;
        m->null_branch = m->val_branch = -1;
        m->defval = fd->defval;
        for (size_t k = 0; k < sizeof field_names / sizeof field_names[0]; k++)
            if (strcmp(field_names[k].name, fd->name) == 0)
                m->id = field_names[k].id;
        if (fd->type->type == TF_AVRO_UNION) {
            for (size_t b = 0; b < fd->type->nbranches; b++) {
                if (fd->type->branches[b]->type == TF_AVRO_NULL)
                    m->null_branch = (int)b;
                else if (m->val_branch < 0)
                    m->val_branch = (int)b;
            }
            if (m->val_branch >= 0)
                m->base = fd->type->branches[m->val_branch];
        }
        if (m->id == F_OTHER) {
            if (!fd->defval) {
                tf_seterr(errstr, errlen,
                       "reader field %s is unknown to this program and has no default",
                       fd->name);
                return -1;
            }
            continue;
        }
        int nc = c_enum_count(m->id);
        if (nc) {
            if (m->base->type != TF_AVRO_ENUM || m->base->nsymbols > MAX_SYMBOLS) {
                tf_seterr(errstr, errlen, "reader field %s must be an enum", fd->name);
                return -1;
            }
            for (int c = 0; c < 8; c++)
                m->c_to_sym[c] = -1;
            for (size_t s = 0; s < m->base->nsymbols; s++) {
                m->sym_to_c[s] = -1;
                for (int c = 0; c < nc; c++)
                    if (strcasecmp(m->base->symbols[s], c_enum_name(m->id, c)) == 0) {
                        m->sym_to_c[s] = c;
                        m->c_to_sym[c] = (int)s;
                    }
            }
        }
    }
    return 0;
}

/* --- conversions ----------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Two's-complement big-endian, minimal length. buf needs 8 bytes. */
static size_t decimal_bytes(int64_t v, uint8_t *buf)
{
    uint8_t tmp[8];
    for (int i = 0; i < 8; i++)
        tmp[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
    int start = 0;
    while (start < 7 && ((tmp[start] == 0x00 && !(tmp[start + 1] & 0x80)) ||
                         (tmp[start] == 0xff && (tmp[start + 1] & 0x80))))
        start++;
    memcpy(buf, tmp + start, (size_t)(8 - start));
    return (size_t)(8 - start);
}

static int decimal_value(const tf_avro_str_t *s, int64_t *out)
{
    const uint8_t *p = (const uint8_t *)s->p;
    size_t n = s->n;
    if (n == 0) {
        *out = 0;
        return 0;
    }
    bool neg = p[0] & 0x80;
    /* Drop sign-extension bytes beyond 8. */
    while (n > 8 && p[0] == (neg ? 0xff : 0x00) && ((p[1] & 0x80) != 0) == neg)
        p++, n--;
    if (n > 8)
        return -1;
    uint64_t u = neg ? UINT64_MAX : 0;
    for (size_t i = 0; i < n; i++)
        u = (u << 8) | p[i];
    *out = (int64_t)u;
    return 0;
}

/* Copies a decoded string into a fixed char array. */
static int put_str(const tf_avro_value_t *v, char *dst, size_t cap, const char *field,
                   char *errstr, size_t errlen)
{
    if (v->type != TF_AVRO_STRING && v->type != TF_AVRO_BYTES) {
        tf_seterr(errstr, errlen, "field %s: not a string", field);
        return -1;
    }
    if (v->u.s.n >= cap) {
        tf_seterr(errstr, errlen, "field %s: %zu bytes, at most %zu allowed", field, v->u.s.n,
               cap - 1);
        return -1;
    }
    if (v->type == TF_AVRO_BYTES && !tf_utf8_valid(v->u.s.p, v->u.s.n)) {
        tf_seterr(errstr, errlen, "field %s: not valid UTF-8", field);
        return -1;
    }
    memcpy(dst, v->u.s.p, v->u.s.n);
    dst[v->u.s.n] = '\0';
    return 0;
}

/* A numeric reader field (long, int, decimal bytes/fixed with the expected
 * scale) as int64 in units of 10^-scale. */
static int get_scaled(const fmap_t *m, const tf_avro_value_t *v, int scale, int64_t *out,
                      const char *field, char *errstr, size_t errlen)
{
    switch (v->type) {
    case TF_AVRO_INT:
    case TF_AVRO_LONG:
        *out = v->u.l;
        return 0;
    case TF_AVRO_BYTES:
    case TF_AVRO_FIXED:
        if (!m->base->logical || strcmp(m->base->logical, "decimal") != 0 ||
            m->base->scale != scale) {
            tf_seterr(errstr, errlen, "field %s: reader type must be decimal with scale %d", field,
                   scale);
            return -1;
        }
        if (decimal_value(&v->u.s, out) < 0) {
            tf_seterr(errstr, errlen, "field %s: decimal of %zu bytes does not fit 64 bits", field,
                   v->u.s.n);
            return -1;
        }
        return 0;
    default:
        tf_seterr(errstr, errlen, "field %s: reader type %s is not numeric", field,
               tf_avro_type_name(v->type));
        return -1;
    }
}

static int get_period(const tf_avro_value_t *v, int32_t *out, const char *field, char *errstr,
                      size_t errlen)
{
    if (v->type == TF_AVRO_STRING) {
        char tmp[16];
        if (v->u.s.n >= sizeof tmp) {
            tf_seterr(errstr, errlen, "field %s: not YYYY-MM", field);
            return -1;
        }
        memcpy(tmp, v->u.s.p, v->u.s.n);
        tmp[v->u.s.n] = '\0';
        char e[128];
        if (tf_period_parse(tmp, out, e, sizeof e) < 0) {
            tf_seterr(errstr, errlen, "field %s: %s", field, e);
            return -1;
        }
        return 0;
    }
    if (v->type != TF_AVRO_INT && v->type != TF_AVRO_LONG) {
        tf_seterr(errstr, errlen, "field %s: reader type must be a date", field);
        return -1;
    }
    int64_t y;
    unsigned m, d;
    if (v->u.l < -1000000 || v->u.l > 1000000) {
        tf_seterr(errstr, errlen, "field %s: date %lld out of range", field, (long long)v->u.l);
        return -1;
    }
    civil_from_days(v->u.l, &y, &m, &d);
    if (d != 1) {
        tf_seterr(errstr, errlen, "field %s: date %04lld-%02u-%02u is not the first of a month",
               field, (long long)y, m, d);
        return -1;
    }
    int64_t p = y * 12 + (m - 1);
    if (p < TF_PERIOD_MIN || p > TF_PERIOD_MAX) {
        tf_seterr(errstr, errlen, "field %s: year %lld out of range 1900..2999", field,
               (long long)y);
        return -1;
    }
    *out = (int32_t)p;
    return 0;
}

static int get_enum(const fmap_t *m, const tf_avro_value_t *v, int *out, const char *field,
                    char *errstr, size_t errlen)
{
    if (v->type != TF_AVRO_ENUM || v->u.l < 0 || (size_t)v->u.l >= m->base->nsymbols) {
        tf_seterr(errstr, errlen, "field %s: not an enum symbol", field);
        return -1;
    }
    int c = m->sym_to_c[v->u.l];
    if (c < 0) {
        tf_seterr(errstr, errlen, "field %s: symbol %s has no meaning in this program", field,
               m->base->symbols[v->u.l]);
        return -1;
    }
    *out = c;
    return 0;
}

/* The value of a field, or NULL when it is the null branch of a union. */
static const tf_avro_value_t *present(const tf_avro_value_t *v)
{
    return v->type == TF_AVRO_NULL ? NULL : v;
}

/* --- encoding helpers ---------------------------------------------------------- */

typedef struct enc_scratch {
    uint8_t dec[8][8]; /* decimal bytes */
    int ndec;
} enc_scratch_t;

static void set_null(const fmap_t *m, tf_avro_value_t *v)
{
    v->type = TF_AVRO_NULL;
    v->branch = m->null_branch;
}

static void set_base(const fmap_t *m, tf_avro_value_t *v)
{
    v->type = m->base->type;
    v->branch = m->val_branch;
}

static void set_str(const fmap_t *m, tf_avro_value_t *v, const char *s, bool optional)
{
    if (optional && !*s && m->null_branch >= 0) {
        set_null(m, v);
        return;
    }
    set_base(m, v);
    v->u.s.p = s;
    v->u.s.n = strlen(s);
}

static int set_scaled(const fmap_t *m, tf_avro_value_t *v, int64_t x, int scale,
                      enc_scratch_t *sc, const char *field, char *errstr, size_t errlen)
{
    if (m->base->logical && strcmp(m->base->logical, "decimal") == 0 && m->base->precision < 19) {
        int64_t lim = 1;
        for (int i = 0; i < m->base->precision; i++)
            lim *= 10;
        if (x >= lim || x <= -lim) {
            tf_seterr(errstr, errlen, "field %s: %lld exceeds decimal precision %d", field,
                   (long long)x, m->base->precision);
            return -1;
        }
    }
    set_base(m, v);
    switch (m->base->type) {
    case TF_AVRO_LONG:
        v->u.l = x;
        return 0;
    case TF_AVRO_BYTES:
    case TF_AVRO_FIXED:
        if (m->base->logical && strcmp(m->base->logical, "decimal") == 0 &&
            m->base->scale == scale && sc->ndec < 8) {
            uint8_t *b = sc->dec[sc->ndec++];
            size_t n = decimal_bytes(x, b);
            if (m->base->type == TF_AVRO_FIXED) {
                if (m->base->size > 8 || n > m->base->size)
                    break;
                /* Sign-extend to the fixed size. */
                uint8_t *fb = sc->dec[sc->ndec - 1];
                size_t pad = m->base->size - n;
                memmove(fb + pad, b, n);
                memset(fb, x < 0 ? 0xff : 0x00, pad);
                n = m->base->size;
            }
            v->u.s.p = (const char *)b;
            v->u.s.n = n;
            return 0;
        }
        break;
    default:
        break;
    }
    tf_seterr(errstr, errlen, "field %s: cannot encode a scaled integer as this schema type",
           field);
    return -1;
}

static int set_enum(const fmap_t *m, tf_avro_value_t *v, int c, const char *field, char *errstr,
                    size_t errlen)
{
    if (c < 0 || c >= 8 || m->c_to_sym[c] < 0) {
        tf_seterr(errstr, errlen, "field %s: value %s has no symbol in the schema", field,
               c >= 0 && c < c_enum_count(m->id) ? c_enum_name(m->id, c) : "?");
        return -1;
    }
    set_base(m, v);
    v->u.l = m->c_to_sym[c];
    return 0;
}

static int set_period(const fmap_t *m, tf_avro_value_t *v, int32_t p, const char *field,
                      char *errstr, size_t errlen)
{
    if (p < TF_PERIOD_MIN || p > TF_PERIOD_MAX) {
        tf_seterr(errstr, errlen, "field %s: period %d out of range", field, (int)p);
        return -1;
    }
    set_base(m, v);
    if (m->base->type == TF_AVRO_INT || m->base->type == TF_AVRO_LONG) {
        v->u.l = days_from_civil(tf_period_year(p), (unsigned)tf_period_month(p), 1);
        return 0;
    }
    tf_seterr(errstr, errlen, "field %s: the schema type must be a date", field);
    return -1;
}

/* --- construction ---------------------------------------------------------- */

static int add_writer(tf_codec_t *c, tf_avro_schema_t *s, bool owned, int32_t id, char *errstr,
                      size_t errlen)
{
    uint64_t fp = tf_avro_schema_fingerprint(s);
    if (id < 0) {
        for (size_t i = 0; i < c->nw; i++)
            if (c->w[i].id < 0 && c->w[i].fp == fp) {
                if (owned)
                    tf_avro_schema_free(s); /* already known */
                return (int)i;
            }
    }
    if (c->nw == c->capw) {
        size_t cap = c->capw ? c->capw * 2 : 8;
        wentry_t *w = realloc(c->w, cap * sizeof *w);
        if (!w) {
            tf_seterr(errstr, errlen, "out of memory");
            if (owned)
                tf_avro_schema_free(s);
            return -1;
        }
        c->w = w;
        c->capw = cap;
    }
    wentry_t *e = &c->w[c->nw];
    *e = (wentry_t){.fp = fp, .id = id, .schema = s, .owned = owned, .reader = -1};
    /* The reader is the one whose record name (or an alias of it) is the
     * writer's name. */
    const tf_avro_node_t *wr = tf_avro_schema_root(s);
    for (int r = 0; r < R_COUNT && wr->fullname; r++) {
        const tf_avro_node_t *rr = c->rd[r].root;
        if (!rr)
            continue;
        bool match = strcmp(rr->fullname, wr->fullname) == 0;
        for (size_t a = 0; !match && a < rr->naliases; a++)
            match = strcmp(rr->aliases[a], wr->fullname) == 0;
        if (match)
            e->reader = r;
    }
    return (int)c->nw++;
}

int tf_codec_add_writer_schema(tf_codec_t *c, const char *json, char *errstr, size_t errlen)
{
    tf_avro_schema_t *s = tf_avro_schema_parse(json, strlen(json), errstr, errlen);
    if (!s)
        return -1;
    return add_writer(c, s, true, -1, errstr, errlen) < 0 ? -1 : 0;
}

static int load_dir(tf_codec_t *c, const char *dir, bool readers, char *errstr, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        tf_seterr(errstr, errlen, "schema directory %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".avsc") != 0)
            continue;
        bool is_reader = false;
        for (int r = 0; readers && r < R_COUNT; r++)
            is_reader |= strcmp(de->d_name, reader_files[r]) == 0;
        if (is_reader)
            continue;
        char path[PATH_MAX], e[256];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len;
        char *text = read_file(path, &len, errstr, errlen);
        if (!text) {
            rc = -1;
            break;
        }
        tf_avro_schema_t *s = tf_avro_schema_parse(text, len, e, sizeof e);
        free(text);
        if (!s) {
            tf_seterr(errstr, errlen, "%s: %s", path, e);
            rc = -1;
        } else if (add_writer(c, s, true, -1, errstr, errlen) < 0) {
            rc = -1;
        }
    }
    closedir(d);
    return rc;
}

tf_codec_t *tf_codec_new(const char *schema_dir, const char *extra_dir, char *errstr,
                         size_t errlen)
{
    tf_codec_t *c = calloc(1, sizeof *c);
    if (!c || !(c->arena = tf_avro_arena_new())) {
        tf_seterr(errstr, errlen, "out of memory");
        free(c);
        return NULL;
    }
    if (!schema_dir)
        schema_dir = tf_codec_default_schema_dir();
    for (int r = 0; r < R_COUNT; r++) {
        char path[PATH_MAX], e[256];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", schema_dir, reader_files[r]);
        char *text = read_file(path, &len, errstr, errlen);
        if (!text)
            goto fail;
        c->rd[r].schema = tf_avro_schema_parse(text, len, e, sizeof e);
        free(text);
        if (!c->rd[r].schema) {
            tf_seterr(errstr, errlen, "%s: %s", path, e);
            goto fail;
        }
        c->rd[r].root = tf_avro_schema_root(c->rd[r].schema);
        if (build_fmap(&c->rd[r], e, sizeof e) < 0) {
            tf_seterr(errstr, errlen, "%s: %s", path, e);
            goto fail;
        }
        uint64_t fp = tf_avro_schema_fingerprint(c->rd[r].schema);
        c->rd[r].so_header[0] = SO_MAGIC0;
        c->rd[r].so_header[1] = SO_MAGIC1;
        for (int i = 0; i < 8; i++)
            c->rd[r].so_header[2 + i] = (uint8_t)(fp >> (8 * i));
    }
    for (int r = 0; r < R_COUNT; r++)
        if (add_writer(c, c->rd[r].schema, false, -1, errstr, errlen) < 0)
            goto fail;
    if (load_dir(c, schema_dir, true, errstr, errlen) < 0)
        goto fail;
    if (extra_dir && load_dir(c, extra_dir, false, errstr, errlen) < 0)
        goto fail;
    return c;
fail:
    tf_codec_destroy(c);
    return NULL;
}

void tf_codec_destroy(tf_codec_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nw; i++) {
        tf_avro_resolver_free(c->w[i].resolver);
        free(c->w[i].incompatible);
        if (c->w[i].owned)
            tf_avro_schema_free(c->w[i].schema);
    }
    free(c->w);
    for (int r = 0; r < R_COUNT; r++) {
        tf_avro_schema_free(c->rd[r].schema);
        free(c->rd[r].f);
    }
    for (size_t i = 0; i < c->ntids; i++)
        free(c->tids[i].topic);
    free(c->tids);
    tf_registry_destroy(c->reg);
    tf_avro_arena_free(c->arena);
    free(c);
}

int tf_codec_use_registry(tf_codec_t *c, const char *url, const char *userinfo,
                          const char *ca_file, char *errstr, size_t errlen)
{
    tf_registry_t *r = tf_registry_new(url, userinfo, ca_file, 0, errstr, errlen);
    if (!r)
        return -1;
    tf_registry_destroy(c->reg);
    c->reg = r;
    return 0;
}

/* --- framing ----------------------------------------------------------------- */

/* Appends the header for reader r's schema: single-object, or the registry
 * id of the schema under "<topic>-value". */
static int put_header(tf_codec_t *c, int r, const char *topic, tf_buf_t *out, char *errstr,
                      size_t errlen)
{
    if (!c->reg)
        return tf_buf_append(out, c->rd[r].so_header, SO_HEADER) < 0
                   ? (tf_seterr(errstr, errlen, "out of memory"), -1)
                   : 0;
    if (!topic || !*topic) {
        tf_seterr(errstr, errlen, "a topic is needed to register the schema with the registry");
        return -1;
    }
    int32_t id = -1;
    for (size_t i = 0; i < c->ntids; i++)
        if (c->tids[i].reader == r && strcmp(c->tids[i].topic, topic) == 0) {
            id = c->tids[i].id;
            break;
        }
    if (id < 0) {
        char subject[512];
        snprintf(subject, sizeof subject, "%s-value", topic);
        if (tf_registry_register(c->reg, subject, tf_avro_schema_json(c->rd[r].schema), &id,
                                 errstr, errlen) < 0)
            return -1;
        topic_id_t *t = realloc(c->tids, (c->ntids + 1) * sizeof *t);
        char *dup = strdup(topic);
        if (!t || !dup) {
            free(dup);
            if (t)
                c->tids = t;
            tf_seterr(errstr, errlen, "out of memory");
            return -1;
        }
        c->tids = t;
        c->tids[c->ntids++] = (topic_id_t){dup, r, id};
    }
    uint8_t h[CF_HEADER] = {0, (uint8_t)((uint32_t)id >> 24), (uint8_t)((uint32_t)id >> 16),
                            (uint8_t)((uint32_t)id >> 8), (uint8_t)id};
    if (tf_buf_append(out, h, CF_HEADER) < 0) {
        tf_seterr(errstr, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Finds (or fetches) the writer entry of a framed message and its resolver;
 * sets *body and *blen to the Avro payload. */
static wentry_t *find_writer(tf_codec_t *c, const uint8_t *p, size_t len, const uint8_t **body,
                             size_t *blen, char *errstr, size_t errlen)
{
    wentry_t *e = NULL;
    if (len == 0 || !p) {
        tf_seterr(errstr, errlen, "empty message");
        return NULL;
    }
    if (len >= 2 && p[0] == SO_MAGIC0 && p[1] == SO_MAGIC1) {
        if (len < SO_HEADER) {
            tf_seterr(errstr, errlen,
                      "truncated at byte %zu of %zu: the single-object header has %d bytes", len,
                      len, SO_HEADER);
            return NULL;
        }
        uint64_t fp = 0;
        for (int i = 0; i < 8; i++)
            fp |= (uint64_t)p[2 + i] << (8 * i);
        if (c->last < c->nw && c->w[c->last].id < 0 && c->w[c->last].fp == fp) {
            e = &c->w[c->last];
        } else {
            for (size_t i = 0; i < c->nw; i++)
                if (c->w[i].id < 0 && c->w[i].fp == fp) {
                    e = &c->w[i];
                    c->last = i;
                    break;
                }
        }
        if (!e) {
            tf_seterr(errstr, errlen, "unknown writer schema fingerprint %016llx",
                   (unsigned long long)fp);
            return NULL;
        }
        *body = p + SO_HEADER;
        *blen = len - SO_HEADER;
    } else if (len >= 1 && p[0] == 0x00) {
        if (len < CF_HEADER) {
            tf_seterr(errstr, errlen,
                      "truncated at byte %zu of %zu: the registry header has %d bytes", len, len,
                      CF_HEADER);
            return NULL;
        }
        int32_t id = (int32_t)(((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) |
                               ((uint32_t)p[3] << 8) | p[4]);
        if (c->last < c->nw && c->w[c->last].id == id && id >= 0) {
            e = &c->w[c->last];
        } else {
            for (size_t i = 0; i < c->nw; i++)
                if (c->w[i].id == id && id >= 0) {
                    e = &c->w[i];
                    c->last = i;
                    break;
                }
        }
        if (!e) {
            if (!c->reg) {
                tf_seterr(errstr, errlen,
                       "message has registry framing (schema id %d) but no registry is "
                       "configured",
                       (int)id);
                return NULL;
            }
            char e2[256];
            const char *json = tf_registry_schema_by_id(c->reg, id, e2, sizeof e2);
            if (!json) {
                tf_seterr(errstr, errlen, "unknown schema id %d: %s", (int)id, e2);
                return NULL;
            }
            tf_avro_schema_t *s = tf_avro_schema_parse(json, strlen(json), e2, sizeof e2);
            if (!s) {
                tf_seterr(errstr, errlen, "schema id %d: %s", (int)id, e2);
                return NULL;
            }
            int idx = add_writer(c, s, true, id, errstr, errlen);
            if (idx < 0)
                return NULL;
            e = &c->w[idx];
            c->last = (size_t)idx;
        }
        *body = p + CF_HEADER;
        *blen = len - CF_HEADER;
    } else {
        tf_seterr(errstr, errlen,
               "unknown framing: first bytes %02x %02x are neither C3 01 (single-object) nor "
               "00 (registry)",
               len > 0 ? p[0] : 0, len > 1 ? p[1] : 0);
        return NULL;
    }
    if (e->reader < 0) {
        const tf_avro_node_t *root = tf_avro_schema_root(e->schema);
        tf_seterr(errstr, errlen, "writer schema %s is not a tradeflow record or alert",
               root->fullname ? root->fullname : tf_avro_type_name(root->type));
        return NULL;
    }
    if (!e->resolver) {
        /* An incompatible writer is remembered, so that a stream of its
         * messages does not recompile the pair for each one. */
        char e2[512];
        if (e->incompatible) {
            tf_seterr(errstr, errlen, "%s", e->incompatible);
            return NULL;
        }
        e->resolver = tf_avro_resolver_new(e->schema, c->rd[e->reader].schema, e2, sizeof e2);
        if (!e->resolver) {
            e->incompatible = strdup(e2);
            tf_seterr(errstr, errlen, "%s", e2);
            return NULL;
        }
    }
    return e;
}

/* --- records ---------------------------------------------------------------- */

int tf_codec_encode_record(tf_codec_t *c, const char *topic, const tf_record_t *r, tf_buf_t *out,
                           char *errstr, size_t errlen)
{
    int ri = r->dataset == TF_DATASET_CUSTOMS ? R_CUSTOMS
             : r->dataset == TF_DATASET_INVESTMENT ? R_INVESTMENT
                                                   : -1;
    if (ri < 0) {
        tf_seterr(errstr, errlen, "unknown dataset %d", (int)r->dataset);
        return -1;
    }
    const reader_t *rd = &c->rd[ri];
    tf_avro_value_t fv[32], root;
    enc_scratch_t sc;
    sc.ndec = 0;
    if (rd->nf > 32) {
        tf_seterr(errstr, errlen, "schema has too many fields");
        return -1;
    }
    for (size_t i = 0; i < rd->nf; i++) {
        const fmap_t *m = &rd->f[i];
        tf_avro_value_t *v = &fv[i];
        const char *name = rd->root->fields[i].name;
        int rc = 0;
        switch (m->id) {
        case F_RECORD_ID: set_str(m, v, r->record_id, false); break;
        case F_REPORTER: set_str(m, v, r->reporter, false); break;
        case F_PARTNER: set_str(m, v, r->partner, false); break;
        case F_HS_CODE: set_str(m, v, r->hs_code, true); break;
        case F_UNIT: set_str(m, v, r->unit, true); break;
        case F_SECTOR: set_str(m, v, r->sector, true); break;
        case F_REVISION:
            set_base(m, v);
            v->u.l = r->revision;
            break;
        case F_FLOW: rc = set_enum(m, v, (int)r->flow, name, errstr, errlen); break;
        case F_RECORD_KIND: rc = set_enum(m, v, (int)r->kind, name, errstr, errlen); break;
        case F_PERIOD: rc = set_period(m, v, r->period, name, errstr, errlen); break;
        case F_VALUE_USD:
            rc = set_scaled(m, v, r->value_cents, 2, &sc, name, errstr, errlen);
            break;
        case F_QUANTITY:
            if (!r->has_quantity && m->null_branch >= 0)
                set_null(m, v);
            else
                rc = set_scaled(m, v, r->quantity_milli, 3, &sc, name, errstr, errlen);
            break;
        default:
            if (!m->defval) {
                tf_seterr(errstr, errlen, "field %s: no value for it in a record", name);
                return -1;
            }
            *v = *m->defval;
            break;
        }
        if (rc < 0)
            return -1;
    }
    root.type = TF_AVRO_RECORD;
    root.branch = -1;
    root.u.c.v = fv;
    root.u.c.keys = NULL;
    root.u.c.n = rd->nf;
    size_t mark = out->len;
    if (put_header(c, ri, topic, out, errstr, errlen) < 0)
        return -1;
    if (tf_avro_encode(rd->root, &root, out, errstr, errlen) < 0) {
        out->len = mark;
        return -1;
    }
    return 0;
}

int tf_codec_decode_record(tf_codec_t *c, const void *data, size_t len, tf_record_t *out,
                           char *errstr, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const uint8_t *body;
    size_t blen;
    wentry_t *e = find_writer(c, data, len, &body, &blen, errstr, errlen);
    if (!e)
        return -1;
    if (e->reader == R_ALERT) {
        tf_seterr(errstr, errlen, "message holds a RankingAlert, not a trade record");
        return -1;
    }
    tf_avro_value_t root;
    if (tf_avro_decode_at(e->resolver, data, len, (size_t)(body - (const uint8_t *)data), c->arena,
                          &root, errstr, errlen) < 0)
        return -1;
    const reader_t *rd = &c->rd[e->reader];
    out->dataset = e->reader == R_CUSTOMS ? TF_DATASET_CUSTOMS : TF_DATASET_INVESTMENT;
    for (size_t i = 0; i < rd->nf; i++) {
        const fmap_t *m = &rd->f[i];
        const tf_avro_value_t *v = present(&root.u.c.v[i]);
        const char *name = rd->root->fields[i].name;
        int rc = 0, en = 0;
        if (!v) {
            if (m->id == F_QUANTITY)
                out->has_quantity = false;
            continue; /* null: the field stays empty */
        }
        switch (m->id) {
        case F_RECORD_ID:
            rc = put_str(v, out->record_id, sizeof out->record_id, name, errstr, errlen);
            break;
        case F_REPORTER:
            rc = put_str(v, out->reporter, sizeof out->reporter, name, errstr, errlen);
            break;
        case F_PARTNER:
            rc = put_str(v, out->partner, sizeof out->partner, name, errstr, errlen);
            break;
        case F_HS_CODE:
            rc = put_str(v, out->hs_code, sizeof out->hs_code, name, errstr, errlen);
            break;
        case F_UNIT: rc = put_str(v, out->unit, sizeof out->unit, name, errstr, errlen); break;
        case F_SECTOR:
            rc = put_str(v, out->sector, sizeof out->sector, name, errstr, errlen);
            break;
        case F_REVISION:
            if (v->type != TF_AVRO_LONG && v->type != TF_AVRO_INT) {
                tf_seterr(errstr, errlen, "field %s: not an integer", name);
                return -1;
            }
            out->revision = v->u.l;
            break;
        case F_FLOW:
            rc = get_enum(m, v, &en, name, errstr, errlen);
            out->flow = (tf_flow_t)en;
            break;
        case F_RECORD_KIND:
            rc = get_enum(m, v, &en, name, errstr, errlen);
            out->kind = (tf_record_kind_t)en;
            break;
        case F_PERIOD: rc = get_period(v, &out->period, name, errstr, errlen); break;
        case F_VALUE_USD:
            rc = get_scaled(m, v, 2, &out->value_cents, name, errstr, errlen);
            break;
        case F_QUANTITY:
            rc = get_scaled(m, v, 3, &out->quantity_milli, name, errstr, errlen);
            out->has_quantity = true;
            break;
        default:
            break;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* --- alerts ------------------------------------------------------------------ */

int tf_codec_encode_alert(tf_codec_t *c, const char *topic, const tf_alert_t *a, tf_buf_t *out,
                          char *errstr, size_t errlen)
{
    const reader_t *rd = &c->rd[R_ALERT];
    tf_avro_value_t fv[32], root;
    enc_scratch_t sc;
    sc.ndec = 0;
    if (rd->nf > 32) {
        tf_seterr(errstr, errlen, "schema has too many fields");
        return -1;
    }
    for (size_t i = 0; i < rd->nf; i++) {
        const fmap_t *m = &rd->f[i];
        tf_avro_value_t *v = &fv[i];
        const char *name = rd->root->fields[i].name;
        int rc = 0;
        switch (m->id) {
        case F_ALERT_ID:
            set_base(m, v);
            v->u.l = a->alert_id;
            break;
        case F_DETECTED_AT:
            set_base(m, v);
            v->u.l = a->detected_at_us;
            break;
        case F_DATASET: rc = set_enum(m, v, (int)a->dataset, name, errstr, errlen); break;
        case F_REPORTER: set_str(m, v, a->reporter, false); break;
        case F_PARTNER: set_str(m, v, a->partner, false); break;
        case F_FLOW: rc = set_enum(m, v, (int)a->flow, name, errstr, errlen); break;
        case F_BASIS: rc = set_enum(m, v, (int)a->basis, name, errstr, errlen); break;
        case F_LEVEL: rc = set_enum(m, v, (int)a->level, name, errstr, errlen); break;
        case F_KIND: rc = set_enum(m, v, (int)a->kind, name, errstr, errlen); break;
        case F_PERIOD: rc = set_period(m, v, a->period, name, errstr, errlen); break;
        case F_OLD_RANK:
        case F_NEW_RANK: {
            int32_t rank = m->id == F_OLD_RANK ? a->old_rank : a->new_rank;
            if (rank == 0 && m->null_branch >= 0) {
                set_null(m, v);
            } else {
                set_base(m, v);
                v->u.l = rank;
            }
            break;
        }
        case F_VALUE_USD:
            rc = set_scaled(m, v, a->value_cents, 2, &sc, name, errstr, errlen);
            break;
        default:
            if (!m->defval) {
                tf_seterr(errstr, errlen, "field %s: no value for it in an alert", name);
                return -1;
            }
            *v = *m->defval;
            break;
        }
        if (rc < 0)
            return -1;
    }
    root.type = TF_AVRO_RECORD;
    root.branch = -1;
    root.u.c.v = fv;
    root.u.c.keys = NULL;
    root.u.c.n = rd->nf;
    size_t mark = out->len;
    if (put_header(c, R_ALERT, topic, out, errstr, errlen) < 0)
        return -1;
    if (tf_avro_encode(rd->root, &root, out, errstr, errlen) < 0) {
        out->len = mark;
        return -1;
    }
    return 0;
}

int tf_codec_decode_alert(tf_codec_t *c, const void *data, size_t len, tf_alert_t *out,
                          char *errstr, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const uint8_t *body;
    size_t blen;
    wentry_t *e = find_writer(c, data, len, &body, &blen, errstr, errlen);
    if (!e)
        return -1;
    if (e->reader != R_ALERT) {
        tf_seterr(errstr, errlen, "message holds a trade record, not a RankingAlert");
        return -1;
    }
    tf_avro_value_t root;
    if (tf_avro_decode_at(e->resolver, data, len, (size_t)(body - (const uint8_t *)data), c->arena,
                          &root, errstr, errlen) < 0)
        return -1;
    const reader_t *rd = &c->rd[R_ALERT];
    for (size_t i = 0; i < rd->nf; i++) {
        const fmap_t *m = &rd->f[i];
        const tf_avro_value_t *v = present(&root.u.c.v[i]);
        const char *name = rd->root->fields[i].name;
        int rc = 0, en = 0;
        if (!v)
            continue;
        switch (m->id) {
        case F_ALERT_ID:
        case F_DETECTED_AT:
        case F_OLD_RANK:
        case F_NEW_RANK:
            if (v->type != TF_AVRO_LONG && v->type != TF_AVRO_INT) {
                tf_seterr(errstr, errlen, "field %s: not an integer", name);
                return -1;
            }
            if (m->id == F_ALERT_ID)
                out->alert_id = v->u.l;
            else if (m->id == F_DETECTED_AT)
                out->detected_at_us = v->u.l;
            else if (v->u.l < 1 || v->u.l > INT32_MAX) {
                tf_seterr(errstr, errlen, "field %s: rank %lld out of range", name,
                       (long long)v->u.l);
                return -1;
            } else if (m->id == F_OLD_RANK)
                out->old_rank = (int32_t)v->u.l;
            else
                out->new_rank = (int32_t)v->u.l;
            break;
        case F_DATASET:
            rc = get_enum(m, v, &en, name, errstr, errlen);
            out->dataset = (tf_dataset_t)en;
            break;
        case F_FLOW:
            rc = get_enum(m, v, &en, name, errstr, errlen);
            out->flow = (tf_flow_t)en;
            break;
        case F_BASIS:
            rc = get_enum(m, v, &en, name, errstr, errlen);
            out->basis = (tf_basis_t)en;
            break;
        case F_LEVEL:
            rc = get_enum(m, v, &en, name, errstr, errlen);
            out->level = (tf_level_t)en;
            break;
        case F_KIND:
            rc = get_enum(m, v, &en, name, errstr, errlen);
            out->kind = (tf_alert_kind_t)en;
            break;
        case F_REPORTER:
            rc = put_str(v, out->reporter, sizeof out->reporter, name, errstr, errlen);
            break;
        case F_PARTNER:
            rc = put_str(v, out->partner, sizeof out->partner, name, errstr, errlen);
            break;
        case F_PERIOD: rc = get_period(v, &out->period, name, errstr, errlen); break;
        case F_VALUE_USD:
            rc = get_scaled(m, v, 2, &out->value_cents, name, errstr, errlen);
            break;
        default:
            break;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}
