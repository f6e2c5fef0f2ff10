/*
 * tf_avro.c - Avro schema model, Parsing Canonical Form, CRC-64-AVRO,
 * writer -> reader resolution and a schema-driven binary encoder.
 * See tf_avro.h. Written from the Avro 1.11 specification.
 */
#include "tf_avro.h"
#include "tf_err.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_record.h"

#define TF_AVRO_MAX_DEPTH 64
/* Limits for hostile input: items of zero-size types (null, empty records)
 * cost no input bytes, so their count is capped separately. */
#define TF_AVRO_MAX_ZERO_ITEMS (1 << 16)
#define TF_AVRO_ARENA_MAX ((size_t)64 << 20)


const char *tf_avro_type_name(tf_avro_type_t t)
{
    static const char *const names[] = {"null",   "boolean", "int",   "long",  "float",
                                        "double", "bytes",   "string", "record", "enum",
                                        "array",  "map",     "union", "fixed"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* --- a pool: many small allocations freed at once -------------------------- */

typedef struct pool_block {
    struct pool_block *next;
    size_t cap, used;
    max_align_t data[];
} pool_block_t;

typedef struct pool {
    pool_block_t *head;
} pool_t;

static void *pool_alloc(pool_t *p, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0)
        n = sizeof(max_align_t);
    pool_block_t *b = p->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 4000 ? n : 4000;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = p->head;
        p->head = b;
    }
    void *r = (char *)b->data + b->used;
    b->used += n;
    memset(r, 0, n);
    return r;
}

static char *pool_strdup(pool_t *p, const char *s)
{
    size_t n = strlen(s) + 1;
    char *r = pool_alloc(p, n);
    if (r)
        memcpy(r, s, n);
    return r;
}

static void pool_free(pool_t *p)
{
    pool_block_t *b = p->head;
    while (b) {
        pool_block_t *n = b->next;
        free(b);
        b = n;
    }
    p->head = NULL;
}

/* --- CRC-64-AVRO ------------------------------------------------------------ */

#define CRC64_EMPTY 0xc15d213aa4d7a795ULL

static uint64_t crc64_table[256];
static pthread_once_t crc64_once = PTHREAD_ONCE_INIT;

static void crc64_init(void)
{
    for (int i = 0; i < 256; i++) {
        uint64_t fp = (uint64_t)i;
        for (int j = 0; j < 8; j++)
            fp = (fp >> 1) ^ (CRC64_EMPTY & -(fp & 1));
        crc64_table[i] = fp;
    }
}

uint64_t tf_avro_crc64(const void *data, size_t len)
{
    pthread_once(&crc64_once, crc64_init);
    const uint8_t *p = data;
    uint64_t fp = CRC64_EMPTY;
    for (size_t i = 0; i < len; i++)
        fp = (fp >> 8) ^ crc64_table[(fp ^ p[i]) & 0xff];
    return fp;
}

/* --- varints ----------------------------------------------------------------- */

size_t tf_avro_write_long(uint8_t *buf, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z > 0x7f) {
        buf[n++] = (uint8_t)((z & 0x7f) | 0x80);
        z >>= 7;
    }
    buf[n++] = (uint8_t)z;
    return n;
}

size_t tf_avro_read_long(const uint8_t *p, size_t len, int64_t *out)
{
    uint64_t z = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        uint64_t b = p[i];
        if (i == 9 && b > 1)
            return 0; /* more than 64 bits */
        z |= (b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = (int64_t)((z >> 1) ^ -(z & 1));
            return i + 1;
        }
    }
    return 0;
}

/* --- the schema model -------------------------------------------------------- */

typedef struct pending_default {
    tf_avro_field_t *field;
    const char *record;
    json_t *json;
} pending_default_t;

struct tf_avro_schema {
    pool_t pool;
    tf_avro_node_t *root;
    char *json;
    char *canonical;
    uint64_t fingerprint;
    /* Named types, for references while parsing. */
    tf_avro_node_t **named;
    size_t nnamed, capnamed;
};

typedef struct parse_ctx {
    tf_avro_schema_t *s;
    pending_default_t *pend;
    size_t npend, cappend;
    char *errstr;
    size_t errlen;
    int depth;
} parse_ctx_t;

static const struct {
    const char *name;
    tf_avro_type_t type;
} primitives[] = {
    {"null", TF_AVRO_NULL},     {"boolean", TF_AVRO_BOOLEAN}, {"int", TF_AVRO_INT},
    {"long", TF_AVRO_LONG},     {"float", TF_AVRO_FLOAT},     {"double", TF_AVRO_DOUBLE},
    {"bytes", TF_AVRO_BYTES},   {"string", TF_AVRO_STRING},
};

static int primitive_type(const char *name)
{
    for (size_t i = 0; i < sizeof primitives / sizeof primitives[0]; i++)
        if (strcmp(primitives[i].name, name) == 0)
            return (int)primitives[i].type;
    return -1;
}

static bool valid_name(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_' ||
              (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

/* A full name is dot-separated valid names. */
static bool valid_fullname(const char *s)
{
    char tmp[512];
    if (strlen(s) >= sizeof tmp)
        return false;
    strcpy(tmp, s);
    char *save = NULL;
    int parts = 0;
    for (char *t = strtok_r(tmp, ".", &save); t; t = strtok_r(NULL, ".", &save), parts++)
        if (!valid_name(t))
            return false;
    return parts > 0 && s[0] != '.' && s[strlen(s) - 1] != '.' && !strstr(s, "..");
}

static const char *unqualified(const char *fullname)
{
    const char *d = strrchr(fullname, '.');
    return d ? d + 1 : fullname;
}

static tf_avro_node_t *lookup_named(tf_avro_schema_t *s, const char *fullname)
{
    for (size_t i = 0; i < s->nnamed; i++)
        if (strcmp(s->named[i]->fullname, fullname) == 0)
            return s->named[i];
    return NULL;
}

/* Qualifies name with namespace ns unless it already holds a dot. */
static char *qualify(parse_ctx_t *c, const char *name, const char *ns)
{
    if (strchr(name, '.') || !ns || !*ns)
        return pool_strdup(&c->s->pool, name);
    size_t n = strlen(ns) + strlen(name) + 2;
    char *r = pool_alloc(&c->s->pool, n);
    if (r)
        snprintf(r, n, "%s.%s", ns, name);
    return r;
}

static tf_avro_node_t *new_node(parse_ctx_t *c, tf_avro_type_t t)
{
    tf_avro_node_t *n = pool_alloc(&c->s->pool, sizeof *n);
    if (n) {
        n->type = t;
        n->enum_default = -1;
    } else {
        tf_seterr(c->errstr, c->errlen, "out of memory");
    }
    return n;
}

static tf_avro_node_t *parse_node(parse_ctx_t *c, json_t *j, const char *ns);

static int register_named(parse_ctx_t *c, tf_avro_node_t *n)
{
    tf_avro_schema_t *s = c->s;
    if (lookup_named(s, n->fullname) || primitive_type(n->fullname) >= 0) {
        tf_seterr(c->errstr, c->errlen, "type name %s is defined twice or is a primitive",
               n->fullname);
        return -1;
    }
    if (s->nnamed == s->capnamed) {
        size_t cap = s->capnamed ? s->capnamed * 2 : 8;
        tf_avro_node_t **nn = realloc(s->named, cap * sizeof *nn);
        if (!nn) {
            tf_seterr(c->errstr, c->errlen, "out of memory");
            return -1;
        }
        s->named = nn;
        s->capnamed = cap;
    }
    s->named[s->nnamed++] = n;
    return 0;
}

/* Reads "aliases" (an array of names) into n->aliases / field aliases,
 * qualifying with ns when ns is not NULL. */
static int parse_aliases(parse_ctx_t *c, json_t *obj, const char *ns, char ***out, size_t *nout)
{
    json_t *a = json_object_get(obj, "aliases");
    if (!a)
        return 0;
    if (!json_is_array(a)) {
        tf_seterr(c->errstr, c->errlen, "\"aliases\" must be an array of names");
        return -1;
    }
    size_t n = json_array_size(a);
    char **v = pool_alloc(&c->s->pool, (n ? n : 1) * sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(a, i));
        if (!name || !valid_fullname(name)) {
            tf_seterr(c->errstr, c->errlen, "invalid alias in \"aliases\"");
            return -1;
        }
        v[i] = ns ? qualify(c, name, ns) : pool_strdup(&c->s->pool, name);
        if (!v[i])
            return -1;
    }
    *out = v;
    *nout = n;
    return 0;
}

/* Sets n->fullname from "name"/"namespace" and returns the namespace that
 * applies inside the type (pool string). */
static const char *parse_name(parse_ctx_t *c, json_t *obj, tf_avro_node_t *n, const char *ns)
{
    const char *name = json_string_value(json_object_get(obj, "name"));
    if (!name || !valid_fullname(name)) {
        tf_seterr(c->errstr, c->errlen, "a %s needs a valid \"name\"", tf_avro_type_name(n->type));
        return NULL;
    }
    json_t *jns = json_object_get(obj, "namespace");
    if (jns && !json_is_string(jns) && !json_is_null(jns)) {
        tf_seterr(c->errstr, c->errlen, "\"namespace\" of %s must be a string", name);
        return NULL;
    }
    const char *own_ns = ns;
    if (json_is_string(jns))
        own_ns = json_string_value(jns);
    if (own_ns && *own_ns && !valid_fullname(own_ns)) {
        tf_seterr(c->errstr, c->errlen, "invalid namespace \"%s\"", own_ns);
        return NULL;
    }
    n->fullname = qualify(c, name, own_ns);
    if (!n->fullname)
        return NULL;
    const char *dot = strrchr(n->fullname, '.');
    char *inner = pool_strdup(&c->s->pool, n->fullname);
    if (!inner)
        return NULL;
    if (dot)
        inner[dot - n->fullname] = '\0';
    else
        inner[0] = '\0';
    if (parse_aliases(c, obj, inner, &n->aliases, &n->naliases) < 0)
        return NULL;
    if (register_named(c, n) < 0)
        return NULL;
    return inner;
}

static int parse_record(parse_ctx_t *c, json_t *obj, tf_avro_node_t *n, const char *ns)
{
    const char *inner = parse_name(c, obj, n, ns);
    if (!inner)
        return -1;
    json_t *fields = json_object_get(obj, "fields");
    if (!json_is_array(fields)) {
        tf_seterr(c->errstr, c->errlen, "record %s needs a \"fields\" array", n->fullname);
        return -1;
    }
    size_t nf = json_array_size(fields);
    n->fields = pool_alloc(&c->s->pool, (nf ? nf : 1) * sizeof *n->fields);
    if (!n->fields)
        return -1;
    for (size_t i = 0; i < nf; i++) {
        json_t *f = json_array_get(fields, i);
        tf_avro_field_t *fd = &n->fields[i];
        const char *fname = json_string_value(json_object_get(f, "name"));
        if (!json_is_object(f) || !fname || !valid_name(fname)) {
            tf_seterr(c->errstr, c->errlen, "record %s: field %zu needs a valid \"name\"",
                   n->fullname, i);
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(n->fields[k].name, fname) == 0) {
                tf_seterr(c->errstr, c->errlen, "record %s: duplicate field %s", n->fullname,
                       fname);
                return -1;
            }
        fd->name = pool_strdup(&c->s->pool, fname);
        if (!fd->name || parse_aliases(c, f, NULL, &fd->aliases, &fd->naliases) < 0)
            return -1;
        json_t *ft = json_object_get(f, "type");
        if (!ft) {
            tf_seterr(c->errstr, c->errlen, "record %s: field %s has no \"type\"", n->fullname,
                   fname);
            return -1;
        }
        fd->type = parse_node(c, ft, inner);
        if (!fd->type) {
            char tmp[256];
            snprintf(tmp, sizeof tmp, "%s", c->errstr ? c->errstr : "");
            tf_seterr(c->errstr, c->errlen, "field %s: %s", fname, tmp);
            return -1;
        }
        json_t *def = json_object_get(f, "default");
        if (def) {
            if (c->npend == c->cappend) {
                size_t cap = c->cappend ? c->cappend * 2 : 16;
                pending_default_t *p = realloc(c->pend, cap * sizeof *p);
                if (!p)
                    return -1;
                c->pend = p;
                c->cappend = cap;
            }
            c->pend[c->npend++] = (pending_default_t){fd, n->fullname, json_incref(def)};
        }
        n->nfields++;
    }
    return 0;
}

static int parse_enum(parse_ctx_t *c, json_t *obj, tf_avro_node_t *n, const char *ns)
{
    if (!parse_name(c, obj, n, ns))
        return -1;
    json_t *sy = json_object_get(obj, "symbols");
    if (!json_is_array(sy)) {
        tf_seterr(c->errstr, c->errlen, "enum %s needs a \"symbols\" array", n->fullname);
        return -1;
    }
    size_t ns_ = json_array_size(sy);
    n->symbols = pool_alloc(&c->s->pool, (ns_ ? ns_ : 1) * sizeof *n->symbols);
    if (!n->symbols)
        return -1;
    for (size_t i = 0; i < ns_; i++) {
        const char *v = json_string_value(json_array_get(sy, i));
        if (!v || !valid_name(v)) {
            tf_seterr(c->errstr, c->errlen, "enum %s: invalid symbol", n->fullname);
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(n->symbols[k], v) == 0) {
                tf_seterr(c->errstr, c->errlen, "enum %s: duplicate symbol %s", n->fullname, v);
                return -1;
            }
        if (!(n->symbols[i] = pool_strdup(&c->s->pool, v)))
            return -1;
        n->nsymbols++;
    }
    json_t *def = json_object_get(obj, "default");
    if (def) {
        int idx = json_is_string(def) ? tf_avro_symbol_index(n, json_string_value(def)) : -1;
        if (idx < 0) {
            tf_seterr(c->errstr, c->errlen, "enum %s: \"default\" is not one of its symbols",
                   n->fullname);
            return -1;
        }
        n->enum_default = idx;
    }
    return 0;
}

static int parse_fixed(parse_ctx_t *c, json_t *obj, tf_avro_node_t *n, const char *ns)
{
    if (!parse_name(c, obj, n, ns))
        return -1;
    json_t *sz = json_object_get(obj, "size");
    if (!json_is_integer(sz) || json_integer_value(sz) < 0 ||
        json_integer_value(sz) > (1 << 24)) {
        tf_seterr(c->errstr, c->errlen, "fixed %s needs a non-negative integer \"size\"",
               n->fullname);
        return -1;
    }
    n->size = (size_t)json_integer_value(sz);
    return 0;
}

/* Logical types that are invalid are ignored, as the specification says:
 * the schema is then read as its underlying type. */
static int parse_logical(parse_ctx_t *c, json_t *obj, tf_avro_node_t *n)
{
    const char *lt = json_string_value(json_object_get(obj, "logicalType"));
    if (!lt)
        return 0;
    if (strcmp(lt, "decimal") == 0) {
        if (n->type != TF_AVRO_BYTES && n->type != TF_AVRO_FIXED)
            return 0;
        json_t *p = json_object_get(obj, "precision"), *s = json_object_get(obj, "scale");
        if (!json_is_integer(p) || json_integer_value(p) <= 0 || json_integer_value(p) > 1000)
            return 0;
        long long scale = s ? (json_is_integer(s) ? json_integer_value(s) : -1) : 0;
        if (scale < 0 || scale > json_integer_value(p))
            return 0;
        n->precision = (int)json_integer_value(p);
        n->scale = (int)scale;
    }
    n->logical = pool_strdup(&c->s->pool, lt);
    return n->logical ? 0 : -1;
}

static tf_avro_node_t *parse_union(parse_ctx_t *c, json_t *arr, const char *ns)
{
    tf_avro_node_t *n = new_node(c, TF_AVRO_UNION);
    if (!n)
        return NULL;
    size_t nb = json_array_size(arr);
    n->branches = pool_alloc(&c->s->pool, (nb ? nb : 1) * sizeof *n->branches);
    if (!n->branches)
        return NULL;
    for (size_t i = 0; i < nb; i++) {
        tf_avro_node_t *b = parse_node(c, json_array_get(arr, i), ns);
        if (!b)
            return NULL;
        if (b->type == TF_AVRO_UNION) {
            tf_seterr(c->errstr, c->errlen, "a union may not contain a union");
            return NULL;
        }
        for (size_t k = 0; k < i; k++) {
            const tf_avro_node_t *o = n->branches[k];
            bool named = b->fullname != NULL;
            if (o->type == b->type && (!named || strcmp(o->fullname, b->fullname) == 0)) {
                tf_seterr(c->errstr, c->errlen, "union holds %s twice",
                       named ? b->fullname : tf_avro_type_name(b->type));
                return NULL;
            }
        }
        n->branches[i] = b;
        n->nbranches++;
    }
    return n;
}

static tf_avro_node_t *parse_node(parse_ctx_t *c, json_t *j, const char *ns)
{
    if (++c->depth > TF_AVRO_MAX_DEPTH) {
        tf_seterr(c->errstr, c->errlen, "schema nested too deeply");
        return NULL;
    }
    tf_avro_node_t *n = NULL;
    if (json_is_string(j)) {
        const char *name = json_string_value(j);
        int pt = primitive_type(name);
        if (pt >= 0) {
            n = new_node(c, (tf_avro_type_t)pt);
        } else {
            char *full = qualify(c, name, ns);
            n = full ? lookup_named(c->s, full) : NULL;
            if (!n)
                n = lookup_named(c->s, name);
            if (!n)
                tf_seterr(c->errstr, c->errlen, "unknown type \"%s\"", name);
        }
    } else if (json_is_array(j)) {
        n = parse_union(c, j, ns);
    } else if (json_is_object(j)) {
        json_t *jt = json_object_get(j, "type");
        const char *t = json_string_value(jt);
        if (!t) {
            if (jt && (json_is_object(jt) || json_is_array(jt)))
                n = parse_node(c, jt, ns);
            else
                tf_seterr(c->errstr, c->errlen, "schema object without a \"type\"");
        } else if (primitive_type(t) >= 0) {
            n = new_node(c, (tf_avro_type_t)primitive_type(t));
            if (n && parse_logical(c, j, n) < 0)
                n = NULL;
        } else if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0) {
            n = new_node(c, TF_AVRO_RECORD);
            if (n && parse_record(c, j, n, ns) < 0)
                n = NULL;
        } else if (strcmp(t, "enum") == 0) {
            n = new_node(c, TF_AVRO_ENUM);
            if (n && parse_enum(c, j, n, ns) < 0)
                n = NULL;
        } else if (strcmp(t, "fixed") == 0) {
            n = new_node(c, TF_AVRO_FIXED);
            if (n && (parse_fixed(c, j, n, ns) < 0 || parse_logical(c, j, n) < 0))
                n = NULL;
        } else if (strcmp(t, "array") == 0 || strcmp(t, "map") == 0) {
            bool arr = t[0] == 'a';
            json_t *it = json_object_get(j, arr ? "items" : "values");
            if (!it) {
                tf_seterr(c->errstr, c->errlen, "%s without \"%s\"", t, arr ? "items" : "values");
            } else {
                n = new_node(c, arr ? TF_AVRO_ARRAY : TF_AVRO_MAP);
                if (n && !(n->items = parse_node(c, it, ns)))
                    n = NULL;
            }
        } else {
            /* A named type referenced in the object form. */
            char *full = qualify(c, t, ns);
            n = full ? lookup_named(c->s, full) : NULL;
            if (!n)
                n = lookup_named(c->s, t);
            if (!n)
                tf_seterr(c->errstr, c->errlen, "unknown type \"%s\"", t);
        }
    } else {
        tf_seterr(c->errstr, c->errlen, "a schema must be a string, an object or an array");
    }
    c->depth--;
    return n;
}

/* Converts a JSON default value to a value of type t, in the schema's pool. */
static int make_default(parse_ctx_t *c, const tf_avro_node_t *t, json_t *j, tf_avro_value_t *v,
                        int depth)
{
    pool_t *pool = &c->s->pool;
    if (depth > TF_AVRO_MAX_DEPTH)
        return -1;
    v->type = t->type;
    v->branch = -1;
    switch (t->type) {
    case TF_AVRO_NULL:
        return json_is_null(j) ? 0 : -1;
    case TF_AVRO_BOOLEAN:
        if (!json_is_boolean(j))
            return -1;
        v->u.l = json_is_true(j);
        return 0;
    case TF_AVRO_INT:
    case TF_AVRO_LONG:
        if (!json_is_integer(j))
            return -1;
        v->u.l = json_integer_value(j);
        if (t->type == TF_AVRO_INT && (v->u.l < INT32_MIN || v->u.l > INT32_MAX))
            return -1;
        return 0;
    case TF_AVRO_FLOAT:
    case TF_AVRO_DOUBLE:
        if (!json_is_number(j))
            return -1;
        v->u.d = json_number_value(j);
        return 0;
    case TF_AVRO_STRING: {
        if (!json_is_string(j))
            return -1;
        size_t n = json_string_length(j);
        char *p = pool_alloc(pool, n + 1);
        if (!p)
            return -1;
        memcpy(p, json_string_value(j), n);
        v->u.s = (tf_avro_str_t){p, n};
        return 0;
    }
    case TF_AVRO_BYTES:
    case TF_AVRO_FIXED: {
        /* Bytes defaults are strings whose code points 0-255 are the bytes. */
        if (!json_is_string(j))
            return -1;
        const uint8_t *s = (const uint8_t *)json_string_value(j);
        size_t n = json_string_length(j), o = 0;
        uint8_t *p = pool_alloc(pool, n + 1);
        if (!p)
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < 0x80)
                p[o++] = s[i];
            else if ((s[i] & 0xe0) == 0xc0 && s[i] <= 0xc3 && i + 1 < n)
                p[o++] = (uint8_t)(((s[i] & 0x1f) << 6) | (s[i + 1] & 0x3f)), i++;
            else
                return -1;
        }
        if (t->type == TF_AVRO_FIXED && o != t->size)
            return -1;
        v->u.s = (tf_avro_str_t){(const char *)p, o};
        return 0;
    }
    case TF_AVRO_ENUM: {
        int idx = json_is_string(j) ? tf_avro_symbol_index(t, json_string_value(j)) : -1;
        if (idx < 0)
            return -1;
        v->u.l = idx;
        return 0;
    }
    case TF_AVRO_ARRAY: {
        if (!json_is_array(j))
            return -1;
        size_t n = json_array_size(j);
        v->u.c.v = pool_alloc(pool, (n ? n : 1) * sizeof *v->u.c.v);
        if (!v->u.c.v)
            return -1;
        v->u.c.n = n;
        for (size_t i = 0; i < n; i++)
            if (make_default(c, t->items, json_array_get(j, i), &v->u.c.v[i], depth + 1) < 0)
                return -1;
        return 0;
    }
    case TF_AVRO_MAP: {
        if (!json_is_object(j))
            return -1;
        size_t n = json_object_size(j), i = 0;
        v->u.c.v = pool_alloc(pool, (n ? n : 1) * sizeof *v->u.c.v);
        v->u.c.keys = pool_alloc(pool, (n ? n : 1) * sizeof *v->u.c.keys);
        if (!v->u.c.v || !v->u.c.keys)
            return -1;
        const char *k;
        json_t *jv;
        json_object_foreach(j, k, jv)
        {
            char *kk = pool_strdup(pool, k);
            if (!kk || make_default(c, t->items, jv, &v->u.c.v[i], depth + 1) < 0)
                return -1;
            v->u.c.keys[i++] = (tf_avro_str_t){kk, strlen(kk)};
        }
        v->u.c.n = i;
        return 0;
    }
    case TF_AVRO_RECORD: {
        if (!json_is_object(j))
            return -1;
        v->u.c.v = pool_alloc(pool, (t->nfields ? t->nfields : 1) * sizeof *v->u.c.v);
        if (!v->u.c.v)
            return -1;
        v->u.c.n = t->nfields;
        for (size_t i = 0; i < t->nfields; i++) {
            json_t *fj = json_object_get(j, t->fields[i].name);
            if (fj) {
                if (make_default(c, t->fields[i].type, fj, &v->u.c.v[i], depth + 1) < 0)
                    return -1;
            } else if (t->fields[i].defval) {
                v->u.c.v[i] = *t->fields[i].defval;
            } else {
                return -1;
            }
        }
        return 0;
    }
    case TF_AVRO_UNION:
        /* The default of a union is a value of its first branch. */
        if (t->nbranches == 0 || make_default(c, t->branches[0], j, v, depth + 1) < 0)
            return -1;
        v->branch = 0;
        return 0;
    }
    return -1;
}

/* --- canonical form --------------------------------------------------------- */

typedef struct emit_ctx {
    tf_buf_t *b;
    const tf_avro_node_t **seen;
    size_t nseen, capseen;
} emit_ctx_t;

static int emit(emit_ctx_t *e, const tf_avro_node_t *n)
{
    tf_buf_t *b = e->b;
    if (n->fullname) {
        for (size_t i = 0; i < e->nseen; i++)
            if (e->seen[i] == n)
                return tf_buf_appendf(b, "\"%s\"", n->fullname);
        if (e->nseen == e->capseen) {
            size_t cap = e->capseen ? e->capseen * 2 : 8;
            const tf_avro_node_t **s = realloc(e->seen, cap * sizeof *s);
            if (!s)
                return -1;
            e->seen = s;
            e->capseen = cap;
        }
        e->seen[e->nseen++] = n;
    }
    int rc = 0;
    switch (n->type) {
    case TF_AVRO_RECORD:
        rc |= tf_buf_appendf(b, "{\"name\":\"%s\",\"type\":\"record\",\"fields\":[", n->fullname);
        for (size_t i = 0; i < n->nfields && rc == 0; i++) {
            rc |= tf_buf_appendf(b, "%s{\"name\":\"%s\",\"type\":", i ? "," : "",
                                 n->fields[i].name);
            rc |= emit(e, n->fields[i].type);
            rc |= tf_buf_append(b, "}", 1);
        }
        rc |= tf_buf_append(b, "]}", 2);
        break;
    case TF_AVRO_ENUM:
        rc |= tf_buf_appendf(b, "{\"name\":\"%s\",\"type\":\"enum\",\"symbols\":[", n->fullname);
        for (size_t i = 0; i < n->nsymbols; i++)
            rc |= tf_buf_appendf(b, "%s\"%s\"", i ? "," : "", n->symbols[i]);
        rc |= tf_buf_append(b, "]}", 2);
        break;
    case TF_AVRO_FIXED:
        rc |= tf_buf_appendf(b, "{\"name\":\"%s\",\"type\":\"fixed\",\"size\":%zu}", n->fullname,
                             n->size);
        break;
    case TF_AVRO_ARRAY:
    case TF_AVRO_MAP:
        rc |= tf_buf_appendf(b, "{\"type\":\"%s\",\"%s\":", tf_avro_type_name(n->type),
                             n->type == TF_AVRO_ARRAY ? "items" : "values");
        rc |= emit(e, n->items);
        rc |= tf_buf_append(b, "}", 1);
        break;
    case TF_AVRO_UNION:
        rc |= tf_buf_append(b, "[", 1);
        for (size_t i = 0; i < n->nbranches && rc == 0; i++) {
            if (i)
                rc |= tf_buf_append(b, ",", 1);
            rc |= emit(e, n->branches[i]);
        }
        rc |= tf_buf_append(b, "]", 1);
        break;
    default:
        rc |= tf_buf_appendf(b, "\"%s\"", tf_avro_type_name(n->type));
        break;
    }
    return rc ? -1 : 0;
}

/* Smallest encoding of a value of n. Recursion through a record that is being
 * computed counts as 0, which only underestimates. */
static size_t min_size(tf_avro_node_t *n, int depth)
{
    if (depth > TF_AVRO_MAX_DEPTH)
        return 0;
    switch (n->type) {
    case TF_AVRO_NULL:
        return 0;
    case TF_AVRO_FLOAT:
        return 4;
    case TF_AVRO_DOUBLE:
        return 8;
    case TF_AVRO_FIXED:
        return n->size;
    case TF_AVRO_RECORD: {
        size_t s = 0;
        for (size_t i = 0; i < n->nfields; i++)
            s += min_size(n->fields[i].type, depth + 1);
        return s;
    }
    default:
        return 1;
    }
}

static void set_min_sizes(tf_avro_schema_t *s, tf_avro_node_t *n, int depth)
{
    if (depth > TF_AVRO_MAX_DEPTH)
        return;
    n->min_size = min_size(n, 0);
    if (n->type == TF_AVRO_RECORD) {
        for (size_t i = 0; i < n->nfields; i++)
            if (!n->fields[i].type->fullname)
                set_min_sizes(s, n->fields[i].type, depth + 1);
    } else if (n->type == TF_AVRO_UNION) {
        for (size_t i = 0; i < n->nbranches; i++)
            if (!n->branches[i]->fullname)
                set_min_sizes(s, n->branches[i], depth + 1);
    } else if (n->type == TF_AVRO_ARRAY || n->type == TF_AVRO_MAP) {
        if (!n->items->fullname)
            set_min_sizes(s, n->items, depth + 1);
    }
}

tf_avro_schema_t *tf_avro_schema_parse(const char *json, size_t len, char *errstr, size_t errlen)
{
    tf_avro_schema_t *s = calloc(1, sizeof *s);
    parse_ctx_t c = {.s = s, .errstr = errstr, .errlen = errlen};
    json_t *root = NULL;
    tf_buf_t canon = {0};
    emit_ctx_t e = {.b = &canon};
    if (!s) {
        tf_seterr(errstr, errlen, "out of memory");
        return NULL;
    }
    json_error_t jerr;
    root = json_loadb(json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        tf_seterr(errstr, errlen, "schema is not JSON: %s (line %d)", jerr.text, jerr.line);
        goto fail;
    }
    s->root = parse_node(&c, root, "");
    if (!s->root)
        goto fail;
    for (size_t i = 0; i < c.npend; i++) {
        tf_avro_field_t *f = c.pend[i].field;
        f->defval = pool_alloc(&s->pool, sizeof *f->defval);
        if (!f->defval) {
            tf_seterr(errstr, errlen, "out of memory");
            goto fail;
        }
        if (make_default(&c, f->type, c.pend[i].json, f->defval, 0) < 0) {
            f->defval = NULL;
            f->bad_default = true;
        }
    }
    for (size_t i = 0; i < s->nnamed; i++)
        set_min_sizes(s, s->named[i], 0);
    set_min_sizes(s, s->root, 0);
    if (emit(&e, s->root) < 0 || tf_buf_append(&canon, "", 1) < 0) {
        tf_seterr(errstr, errlen, "out of memory");
        goto fail;
    }
    s->canonical = (char *)canon.data;
    canon.data = NULL;
    s->fingerprint = tf_avro_crc64(s->canonical, strlen(s->canonical));
    s->json = malloc(len + 1);
    if (!s->json) {
        tf_seterr(errstr, errlen, "out of memory");
        goto fail;
    }
    memcpy(s->json, json, len);
    s->json[len] = '\0';
    for (size_t i = 0; i < c.npend; i++)
        json_decref(c.pend[i].json);
    free(c.pend);
    free(e.seen);
    json_decref(root);
    return s;
fail:
    for (size_t i = 0; i < c.npend; i++)
        json_decref(c.pend[i].json);
    free(c.pend);
    free(e.seen);
    tf_buf_free(&canon);
    json_decref(root);
    tf_avro_schema_free(s);
    return NULL;
}

void tf_avro_schema_free(tf_avro_schema_t *s)
{
    if (!s)
        return;
    pool_free(&s->pool);
    free(s->named);
    free(s->json);
    free(s->canonical);
    free(s);
}

const tf_avro_node_t *tf_avro_schema_root(const tf_avro_schema_t *s)
{
    return s->root;
}
const char *tf_avro_schema_canonical(const tf_avro_schema_t *s)
{
    return s->canonical;
}
uint64_t tf_avro_schema_fingerprint(const tf_avro_schema_t *s)
{
    return s->fingerprint;
}
const char *tf_avro_schema_json(const tf_avro_schema_t *s)
{
    return s->json;
}

int tf_avro_field_index(const tf_avro_node_t *record, const char *name)
{
    for (size_t i = 0; i < record->nfields; i++)
        if (strcmp(record->fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

int tf_avro_symbol_index(const tf_avro_node_t *en, const char *symbol)
{
    for (size_t i = 0; i < en->nsymbols; i++)
        if (strcmp(en->symbols[i], symbol) == 0)
            return (int)i;
    return -1;
}

/* --- the arena --------------------------------------------------------------- */

struct tf_avro_arena {
    pool_block_t **blocks;
    size_t nblocks, cur, total;
};

tf_avro_arena_t *tf_avro_arena_new(void)
{
    return calloc(1, sizeof(tf_avro_arena_t));
}

void tf_avro_arena_free(tf_avro_arena_t *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nblocks; i++)
        free(a->blocks[i]);
    free(a->blocks);
    free(a);
}

static void arena_reset(tf_avro_arena_t *a)
{
    a->cur = 0;
    for (size_t i = 0; i < a->nblocks; i++)
        a->blocks[i]->used = 0;
}

/* Returns uninitialised memory; NULL when out of memory or past the limit.
 * Blocks are kept across resets; a request larger than every free block gets
 * a block of its own. */
static void *arena_alloc(tf_avro_arena_t *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    for (; a->cur < a->nblocks; a->cur++) {
        pool_block_t *b = a->blocks[a->cur];
        if (b->cap - b->used >= n) {
            void *r = (char *)b->data + b->used;
            b->used += n;
            return r;
        }
        if (b->used == 0)
            break; /* an empty block too small: replaced below */
    }
    size_t cap = n > 16384 ? n : 16384;
    bool replace = a->cur < a->nblocks;
    size_t freed = replace ? a->blocks[a->cur]->cap : 0;
    if (a->total - freed + cap > TF_AVRO_ARENA_MAX)
        return NULL;
    pool_block_t *b = malloc(sizeof *b + cap);
    if (!b)
        return NULL;
    b->cap = cap;
    b->used = n;
    b->next = NULL;
    if (replace) {
        free(a->blocks[a->cur]);
        a->blocks[a->cur] = b;
    } else {
        pool_block_t **nb = realloc(a->blocks, (a->nblocks + 1) * sizeof *nb);
        if (!nb) {
            free(b);
            return NULL;
        }
        a->blocks = nb;
        a->blocks[a->nblocks] = b;
        a->cur = a->nblocks++;
    }
    a->total = a->total - freed + cap;
    return b->data;
}

/* --- resolution -------------------------------------------------------------- */

enum op {
    OP_NULL,
    OP_BOOLEAN,
    OP_INT,
    OP_INT_LONG,
    OP_INT_FLOAT,
    OP_INT_DOUBLE,
    OP_LONG,
    OP_LONG_FLOAT,
    OP_LONG_DOUBLE,
    OP_FLOAT,
    OP_FLOAT_DOUBLE,
    OP_DOUBLE,
    OP_STRING,       /* string or bytes read as string: checked UTF-8 */
    OP_BYTES,        /* bytes or string read as bytes */
    OP_FIXED,
    OP_ENUM,
    OP_ARRAY,
    OP_MAP,
    OP_RECORD,
    OP_WUNION,       /* the writer is a union: a program per writer branch */
    OP_RUNION,       /* the reader is a union, the writer is not */
    OP_FAIL,         /* a writer union branch the reader cannot take */
};

typedef struct rprog rprog_t;

typedef struct rstep {
    int reader_idx;            /* -1: skip the writer field */
    const rprog_t *prog;       /* when reader_idx >= 0 */
    const tf_avro_node_t *skip; /* writer type, when skipping */
} rstep_t;

struct rprog {
    enum op op;
    const tf_avro_node_t *w, *r;
    /* OP_RECORD */
    rstep_t *steps;
    size_t nsteps;
    const tf_avro_value_t **defaults; /* per reader field: NULL if written */
    size_t nreader;
    /* OP_ENUM: writer symbol -> reader symbol or -1 */
    int *enum_map;
    /* OP_ARRAY, OP_MAP, OP_RUNION */
    const rprog_t *inner;
    int rbranch;
    /* OP_WUNION */
    const rprog_t **wb;
    size_t nwb;
    /* OP_FAIL */
    const char *msg;
};

typedef struct memo {
    const tf_avro_node_t *w, *r;
    rprog_t *p;
} memo_t;

struct tf_avro_resolver {
    pool_t pool;
    const rprog_t *root;
    const tf_avro_schema_t *writer, *reader;
};

typedef struct compile_ctx {
    tf_avro_resolver_t *res;
    memo_t *memo;
    size_t nmemo, capmemo;
    char err[512];
    int depth;
} compile_ctx_t;

static bool names_match(const tf_avro_node_t *w, const tf_avro_node_t *r)
{
    if (strcmp(w->fullname, r->fullname) == 0 ||
        strcmp(unqualified(w->fullname), unqualified(r->fullname)) == 0)
        return true;
    for (size_t i = 0; i < r->naliases; i++)
        if (strcmp(r->aliases[i], w->fullname) == 0 ||
            strcmp(unqualified(r->aliases[i]), unqualified(w->fullname)) == 0)
            return true;
    return false;
}

static const char *node_desc(const tf_avro_node_t *n, char *buf, size_t len)
{
    if (n->fullname)
        snprintf(buf, len, "%s %s", tf_avro_type_name(n->type), n->fullname);
    else
        snprintf(buf, len, "%s", tf_avro_type_name(n->type));
    return buf;
}

static rprog_t *compile(compile_ctx_t *c, const tf_avro_node_t *w, const tf_avro_node_t *r);

static rprog_t *new_prog(compile_ctx_t *c, enum op op, const tf_avro_node_t *w,
                         const tf_avro_node_t *r)
{
    rprog_t *p = pool_alloc(&c->res->pool, sizeof *p);
    if (!p) {
        snprintf(c->err, sizeof c->err, "out of memory");
        return NULL;
    }
    p->op = op;
    p->w = w;
    p->r = r;
    p->rbranch = -1;
    return p;
}

/* Prepends "<prefix><what>: " to the current error, keeping its end short. */
static void prefix_err(compile_ctx_t *c, const char *prefix, const char *what)
{
    char tmp[sizeof c->err];
    snprintf(tmp, sizeof tmp, "%s", c->err);
    snprintf(c->err, sizeof c->err, "%s%.100s: %.380s", prefix, what, tmp);
}

static rprog_t *compile_record(compile_ctx_t *c, rprog_t *p)
{
    const tf_avro_node_t *w = p->w, *r = p->r;
    p->steps = pool_alloc(&c->res->pool, (w->nfields ? w->nfields : 1) * sizeof *p->steps);
    p->defaults = pool_alloc(&c->res->pool, (r->nfields ? r->nfields : 1) * sizeof *p->defaults);
    bool *written = calloc(r->nfields ? r->nfields : 1, sizeof *written);
    if (!p->steps || !p->defaults || !written) {
        free(written);
        snprintf(c->err, sizeof c->err, "out of memory");
        return NULL;
    }
    p->nsteps = w->nfields;
    p->nreader = r->nfields;
    for (size_t i = 0; i < w->nfields; i++) {
        const tf_avro_field_t *wf = &w->fields[i];
        int ri = tf_avro_field_index(r, wf->name);
        for (size_t k = 0; ri < 0 && k < r->nfields; k++)
            for (size_t a = 0; a < r->fields[k].naliases; a++)
                if (strcmp(r->fields[k].aliases[a], wf->name) == 0) {
                    ri = (int)k;
                    break;
                }
        p->steps[i].reader_idx = ri;
        if (ri < 0) {
            p->steps[i].skip = wf->type;
            continue;
        }
        if (written[ri]) {
            snprintf(c->err, sizeof c->err,
                     "record %s: two writer fields map to reader field %s", r->fullname,
                     r->fields[ri].name);
            free(written);
            return NULL;
        }
        written[ri] = true;
        p->steps[i].prog = compile(c, wf->type, r->fields[ri].type);
        if (!p->steps[i].prog) {
            prefix_err(c, "field ", r->fields[ri].name);
            free(written);
            return NULL;
        }
    }
    for (size_t k = 0; k < r->nfields; k++) {
        if (written[k])
            continue;
        if (!r->fields[k].defval) {
            snprintf(c->err, sizeof c->err,
                     "record %s: reader field %s is missing from the writer and has %s",
                     r->fullname, r->fields[k].name,
                     r->fields[k].bad_default ? "a default that does not match its type"
                                              : "no default");
            free(written);
            return NULL;
        }
        p->defaults[k] = r->fields[k].defval;
    }
    free(written);
    return p;
}

static rprog_t *compile_nonunion(compile_ctx_t *c, const tf_avro_node_t *w,
                                 const tf_avro_node_t *r)
{
    char wd[200], rd[200];
    enum op op = OP_FAIL;
    tf_avro_type_t wt = w->type, rt = r->type;
    if (wt == rt) {
        switch (wt) {
        case TF_AVRO_NULL: op = OP_NULL; break;
        case TF_AVRO_BOOLEAN: op = OP_BOOLEAN; break;
        case TF_AVRO_INT: op = OP_INT; break;
        case TF_AVRO_LONG: op = OP_LONG; break;
        case TF_AVRO_FLOAT: op = OP_FLOAT; break;
        case TF_AVRO_DOUBLE: op = OP_DOUBLE; break;
        case TF_AVRO_BYTES: op = OP_BYTES; break;
        case TF_AVRO_STRING: op = OP_STRING; break;
        case TF_AVRO_FIXED:
            if (names_match(w, r) && w->size == r->size)
                op = OP_FIXED;
            break;
        case TF_AVRO_ENUM:
            if (names_match(w, r))
                op = OP_ENUM;
            break;
        case TF_AVRO_RECORD:
            if (names_match(w, r))
                op = OP_RECORD;
            break;
        case TF_AVRO_ARRAY: op = OP_ARRAY; break;
        case TF_AVRO_MAP: op = OP_MAP; break;
        case TF_AVRO_UNION: break;
        }
        /* Decimals must agree on scale, or the number would silently change;
         * the specification leaves this to implementations. */
        if (op != OP_FAIL && w->logical && r->logical && strcmp(w->logical, "decimal") == 0 &&
            strcmp(r->logical, "decimal") == 0 && w->scale != r->scale) {
            snprintf(c->err, sizeof c->err, "writer decimal scale %d cannot be read as scale %d",
                     w->scale, r->scale);
            return NULL;
        }
    } else if (wt == TF_AVRO_INT && rt == TF_AVRO_LONG) {
        op = OP_INT_LONG;
    } else if (wt == TF_AVRO_INT && rt == TF_AVRO_FLOAT) {
        op = OP_INT_FLOAT;
    } else if (wt == TF_AVRO_INT && rt == TF_AVRO_DOUBLE) {
        op = OP_INT_DOUBLE;
    } else if (wt == TF_AVRO_LONG && rt == TF_AVRO_FLOAT) {
        op = OP_LONG_FLOAT;
    } else if (wt == TF_AVRO_LONG && rt == TF_AVRO_DOUBLE) {
        op = OP_LONG_DOUBLE;
    } else if (wt == TF_AVRO_FLOAT && rt == TF_AVRO_DOUBLE) {
        op = OP_FLOAT_DOUBLE;
    } else if (wt == TF_AVRO_STRING && rt == TF_AVRO_BYTES) {
        op = OP_BYTES;
    } else if (wt == TF_AVRO_BYTES && rt == TF_AVRO_STRING) {
        op = OP_STRING;
    }
    if (op == OP_FAIL) {
        snprintf(c->err, sizeof c->err, "writer %s cannot be read as reader %s",
                 node_desc(w, wd, sizeof wd), node_desc(r, rd, sizeof rd));
        return NULL;
    }
    rprog_t *p = new_prog(c, op, w, r);
    if (!p)
        return NULL;
    /* Remember the pair before descending, so recursive types terminate. */
    if (op == OP_RECORD) {
        if (c->nmemo == c->capmemo) {
            size_t cap = c->capmemo ? c->capmemo * 2 : 16;
            memo_t *m = realloc(c->memo, cap * sizeof *m);
            if (!m) {
                snprintf(c->err, sizeof c->err, "out of memory");
                return NULL;
            }
            c->memo = m;
            c->capmemo = cap;
        }
        size_t mi = c->nmemo++;
        c->memo[mi] = (memo_t){w, r, p};
        if (!compile_record(c, p)) {
            c->memo[mi].w = NULL; /* forget the failed pair */
            return NULL;
        }
        return p;
    }
    if (op == OP_ENUM) {
        p->enum_map = pool_alloc(&c->res->pool, (w->nsymbols ? w->nsymbols : 1) * sizeof(int));
        if (!p->enum_map)
            return NULL;
        for (size_t i = 0; i < w->nsymbols; i++) {
            int ri = tf_avro_symbol_index(r, w->symbols[i]);
            p->enum_map[i] = ri >= 0 ? ri : r->enum_default;
        }
    } else if (op == OP_ARRAY || op == OP_MAP) {
        p->inner = compile(c, w->items, r->items);
        if (!p->inner) {
            prefix_err(c, "", op == OP_ARRAY ? "array items" : "map values");
            return NULL;
        }
    }
    return p;
}

static rprog_t *compile(compile_ctx_t *c, const tf_avro_node_t *w, const tf_avro_node_t *r)
{
    if (c->depth > TF_AVRO_MAX_DEPTH * 2) {
        snprintf(c->err, sizeof c->err, "schemas nested too deeply");
        return NULL;
    }
    for (size_t i = 0; i < c->nmemo; i++)
        if (c->memo[i].w == w && c->memo[i].r == r)
            return c->memo[i].p;
    c->depth++;
    rprog_t *p = NULL;
    if (w->type == TF_AVRO_UNION) {
        /* Each writer branch is resolved on its own; a branch the reader
         * cannot take is an error only if a message uses it. */
        p = new_prog(c, OP_WUNION, w, r);
        if (!p)
            goto out;
        p->wb = pool_alloc(&c->res->pool, (w->nbranches ? w->nbranches : 1) * sizeof *p->wb);
        if (!p->wb) {
            p = NULL;
            goto out;
        }
        p->nwb = w->nbranches;
        size_t ok = 0;
        char first_err[sizeof c->err] = "";
        for (size_t i = 0; i < w->nbranches; i++) {
            const rprog_t *b = compile(c, w->branches[i], r);
            if (b) {
                p->wb[i] = b;
                ok++;
                continue;
            }
            if (!first_err[0])
                snprintf(first_err, sizeof first_err, "%s", c->err);
            rprog_t *f = new_prog(c, OP_FAIL, w->branches[i], r);
            if (!f) {
                p = NULL;
                goto out;
            }
            f->msg = pool_strdup(&c->res->pool, c->err);
            p->wb[i] = f;
        }
        if (ok == 0 && w->nbranches > 0) {
            snprintf(c->err, sizeof c->err, "no branch of the writer union can be read: %.400s",
                     first_err);
            p = NULL;
        }
    } else if (r->type == TF_AVRO_UNION) {
        for (size_t i = 0; i < r->nbranches && !p; i++) {
            const rprog_t *in = compile(c, w, r->branches[i]);
            if (!in)
                continue;
            p = new_prog(c, OP_RUNION, w, r);
            if (p) {
                p->inner = in;
                p->rbranch = (int)i;
            }
        }
        if (!p) {
            char wd[200];
            snprintf(c->err, sizeof c->err, "writer %s matches no branch of the reader union",
                     node_desc(w, wd, sizeof wd));
        }
    } else {
        p = compile_nonunion(c, w, r);
    }
out:
    c->depth--;
    return p;
}

tf_avro_resolver_t *tf_avro_resolver_new(const tf_avro_schema_t *writer,
                                         const tf_avro_schema_t *reader, char *errstr,
                                         size_t errlen)
{
    tf_avro_resolver_t *res = calloc(1, sizeof *res);
    if (!res) {
        tf_seterr(errstr, errlen, "out of memory");
        return NULL;
    }
    res->writer = writer;
    res->reader = reader;
    compile_ctx_t c = {.res = res};
    res->root = compile(&c, writer->root, reader->root);
    free(c.memo);
    if (!res->root) {
        tf_seterr(errstr, errlen, "schemas are incompatible: %s", c.err);
        tf_avro_resolver_free(res);
        return NULL;
    }
    return res;
}

void tf_avro_resolver_free(tf_avro_resolver_t *r)
{
    if (!r)
        return;
    pool_free(&r->pool);
    free(r);
}

/* --- decoding ----------------------------------------------------------------- */

typedef struct dec {
    const uint8_t *p, *end;
    const uint8_t *msg; /* the whole message (positions in errors count from it) */
    tf_avro_arena_t *arena;
    size_t zero_items;
    char *errstr;
    size_t errlen;
} dec_t;

#define DFAIL(d, ...)                                                                              \
    do {                                                                                           \
        tf_seterr((d)->errstr, (d)->errlen, __VA_ARGS__);                                             \
        return -1;                                                                                 \
    } while (0)

static inline int rd_long(dec_t *d, int64_t *v)
{
    const uint8_t *p = d->p;
    /* Fast path for the common one-byte case. */
    if (p < d->end && !(*p & 0x80)) {
        *v = (int64_t)((*p >> 1) ^ -(uint64_t)(*p & 1));
        d->p++;
        return 0;
    }
    size_t left = (size_t)(d->end - p);
    size_t n = tf_avro_read_long(p, left, v);
    if (n == 0) {
        size_t i = 0;
        while (i < left && i < 10 && (p[i] & 0x80))
            i++;
        if (i == left) /* every byte left continues the varint */
            DFAIL(d, "truncated at byte %zu of %zu: a number runs past the end",
                  (size_t)(p - d->msg), (size_t)(d->end - d->msg));
        DFAIL(d, "overlong varint at byte %zu of %zu", (size_t)(p - d->msg),
              (size_t)(d->end - d->msg));
    }
    d->p += n;
    return 0;
}

static inline int rd_int(dec_t *d, int64_t *v)
{
    if (rd_long(d, v) < 0)
        return -1;
    if (*v < INT32_MIN || *v > INT32_MAX)
        DFAIL(d, "int value %lld out of range", (long long)*v);
    return 0;
}

static inline int rd_len(dec_t *d, size_t *n)
{
    int64_t v;
    if (rd_long(d, &v) < 0)
        return -1;
    if (v < 0)
        DFAIL(d, "negative length %lld before byte %zu of %zu", (long long)v,
              (size_t)(d->p - d->msg), (size_t)(d->end - d->msg));
    if ((uint64_t)v > (uint64_t)(d->end - d->p))
        DFAIL(d, "truncated at byte %zu of %zu: %lld bytes announced, %zu left",
              (size_t)(d->p - d->msg), (size_t)(d->end - d->msg), (long long)v,
              (size_t)(d->end - d->p));
    *n = (size_t)v;
    return 0;
}

static inline int rd_fixed(dec_t *d, size_t n, const uint8_t **out)
{
    if ((size_t)(d->end - d->p) < n)
        DFAIL(d, "truncated at byte %zu of %zu: %zu bytes needed, %zu left",
              (size_t)(d->p - d->msg), (size_t)(d->end - d->msg), n, (size_t)(d->end - d->p));
    *out = d->p;
    d->p += n;
    return 0;
}

/* Reads an array/map block count; 0 ends. Bounds the count by the bytes
 * left (every item of a non-empty type takes at least one byte). */
static int rd_block(dec_t *d, const tf_avro_node_t *item, size_t *count)
{
    int64_t n;
    if (rd_long(d, &n) < 0)
        return -1;
    if (n < 0) {
        int64_t bytes;
        if (n == INT64_MIN)
            DFAIL(d, "absurd block count");
        n = -n;
        if (rd_long(d, &bytes) < 0)
            return -1;
        if (bytes < 0)
            DFAIL(d, "negative block size");
    }
    size_t isz = item ? item->min_size : 1;
    size_t left = (size_t)(d->end - d->p);
    if (isz > 0 && (uint64_t)n > left / isz)
        DFAIL(d, "block of %lld items cannot fit in the %zu bytes left", (long long)n, left);
    if (isz == 0) {
        d->zero_items += (size_t)n;
        if ((uint64_t)n > TF_AVRO_MAX_ZERO_ITEMS || d->zero_items > TF_AVRO_MAX_ZERO_ITEMS)
            DFAIL(d, "too many items of an empty type (%lld)", (long long)n);
    }
    *count = (size_t)n;
    return 0;
}

static int skip(dec_t *d, const tf_avro_node_t *n, int depth)
{
    int64_t v;
    size_t len;
    const uint8_t *b;
    if (depth > TF_AVRO_MAX_DEPTH)
        DFAIL(d, "data nested too deeply");
    switch (n->type) {
    case TF_AVRO_NULL:
        return 0;
    case TF_AVRO_BOOLEAN:
        return rd_fixed(d, 1, &b);
    case TF_AVRO_INT:
        return rd_int(d, &v);
    case TF_AVRO_LONG:
        return rd_long(d, &v);
    case TF_AVRO_FLOAT:
        return rd_fixed(d, 4, &b);
    case TF_AVRO_DOUBLE:
        return rd_fixed(d, 8, &b);
    case TF_AVRO_BYTES:
    case TF_AVRO_STRING:
        if (rd_len(d, &len) < 0)
            return -1;
        d->p += len;
        return 0;
    case TF_AVRO_FIXED:
        return rd_fixed(d, n->size, &b);
    case TF_AVRO_ENUM:
        if (rd_long(d, &v) < 0)
            return -1;
        if (v < 0 || (uint64_t)v >= n->nsymbols)
            DFAIL(d, "enum %s index %lld out of range", n->fullname, (long long)v);
        return 0;
    case TF_AVRO_RECORD:
        for (size_t i = 0; i < n->nfields; i++)
            if (skip(d, n->fields[i].type, depth + 1) < 0)
                return -1;
        return 0;
    case TF_AVRO_ARRAY:
    case TF_AVRO_MAP:
        for (;;) {
            size_t cnt;
            if (rd_block(d, n->type == TF_AVRO_MAP ? NULL : n->items, &cnt) < 0)
                return -1;
            if (cnt == 0)
                return 0;
            for (size_t i = 0; i < cnt; i++) {
                if (n->type == TF_AVRO_MAP && (rd_len(d, &len) < 0 || (d->p += len, 0)))
                    return -1;
                if (skip(d, n->items, depth + 1) < 0)
                    return -1;
            }
        }
    case TF_AVRO_UNION:
        if (rd_long(d, &v) < 0)
            return -1;
        if (v < 0 || (uint64_t)v >= n->nbranches)
            DFAIL(d, "union index %lld out of range", (long long)v);
        return skip(d, n->branches[v], depth + 1);
    }
    DFAIL(d, "bad schema node");
}

static int run(dec_t *d, const rprog_t *p, tf_avro_value_t *out, int depth);

static int run_list(dec_t *d, const rprog_t *p, tf_avro_value_t *out, int depth)
{
    bool map = p->op == OP_MAP;
    size_t n = 0, cap = 0;
    tf_avro_value_t *v = NULL;
    tf_avro_str_t *keys = NULL;
    for (;;) {
        size_t cnt;
        if (rd_block(d, map ? NULL : p->w->items, &cnt) < 0)
            return -1;
        if (cnt == 0)
            break;
        if (n + cnt > cap) {
            size_t ncap = cap * 2 > n + cnt ? cap * 2 : n + cnt;
            tf_avro_value_t *nv = arena_alloc(d->arena, ncap * sizeof *nv);
            tf_avro_str_t *nk = map ? arena_alloc(d->arena, ncap * sizeof *nk) : NULL;
            if (!nv || (map && !nk))
                DFAIL(d, "decoded data too large");
            if (n) {
                memcpy(nv, v, n * sizeof *nv);
                if (map)
                    memcpy(nk, keys, n * sizeof *nk);
            }
            v = nv;
            keys = nk;
            cap = ncap;
        }
        for (size_t i = 0; i < cnt; i++, n++) {
            if (map) {
                size_t len;
                const uint8_t *k;
                if (rd_len(d, &len) < 0 || rd_fixed(d, len, &k) < 0)
                    return -1;
                if (!tf_utf8_valid((const char *)k, len))
                    DFAIL(d, "map key is not valid UTF-8");
                keys[n] = (tf_avro_str_t){(const char *)k, len};
            }
            if (run(d, p->inner, &v[n], depth + 1) < 0)
                return -1;
        }
    }
    out->u.c.v = v;
    out->u.c.keys = keys;
    out->u.c.n = n;
    return 0;
}

static int run(dec_t *d, const rprog_t *p, tf_avro_value_t *out, int depth)
{
    int64_t v;
    size_t len;
    const uint8_t *b;
    if (depth > TF_AVRO_MAX_DEPTH)
        DFAIL(d, "data nested too deeply");
    out->type = p->r->type;
    out->branch = -1;
    switch (p->op) {
    case OP_NULL:
        return 0;
    case OP_BOOLEAN:
        if (rd_fixed(d, 1, &b) < 0)
            return -1;
        if (*b > 1)
            DFAIL(d, "boolean byte %u is neither 0 nor 1", *b);
        out->u.l = *b;
        return 0;
    case OP_INT:
        return rd_int(d, &out->u.l);
    case OP_INT_LONG:
        return rd_int(d, &out->u.l);
    case OP_LONG:
        return rd_long(d, &out->u.l);
    case OP_INT_FLOAT:
    case OP_INT_DOUBLE:
        if (rd_int(d, &v) < 0)
            return -1;
        out->u.d = p->op == OP_INT_FLOAT ? (double)(float)v : (double)v;
        return 0;
    case OP_LONG_FLOAT:
    case OP_LONG_DOUBLE:
        if (rd_long(d, &v) < 0)
            return -1;
        out->u.d = p->op == OP_LONG_FLOAT ? (double)(float)v : (double)v;
        return 0;
    case OP_FLOAT:
    case OP_FLOAT_DOUBLE: {
        float f;
        if (rd_fixed(d, 4, &b) < 0)
            return -1;
        memcpy(&f, b, 4); /* Avro floats are little-endian, as is this host. */
        out->u.d = f;
        return 0;
    }
    case OP_DOUBLE:
        if (rd_fixed(d, 8, &b) < 0)
            return -1;
        memcpy(&out->u.d, b, 8);
        return 0;
    case OP_STRING:
        if (rd_len(d, &len) < 0 || rd_fixed(d, len, &b) < 0)
            return -1;
        if (!tf_utf8_valid((const char *)b, len))
            DFAIL(d, "string is not valid UTF-8 (or holds NUL)");
        out->u.s = (tf_avro_str_t){(const char *)b, len};
        return 0;
    case OP_BYTES:
        if (rd_len(d, &len) < 0 || rd_fixed(d, len, &b) < 0)
            return -1;
        out->u.s = (tf_avro_str_t){(const char *)b, len};
        return 0;
    case OP_FIXED:
        if (rd_fixed(d, p->r->size, &b) < 0)
            return -1;
        out->u.s = (tf_avro_str_t){(const char *)b, p->r->size};
        return 0;
    case OP_ENUM:
        if (rd_long(d, &v) < 0)
            return -1;
        if (v < 0 || (uint64_t)v >= p->w->nsymbols)
            DFAIL(d, "enum %s index %lld out of range", p->w->fullname, (long long)v);
        if (p->enum_map[v] < 0)
            DFAIL(d, "enum symbol %s is unknown to the reader's %s, which has no default",
                  p->w->symbols[v], p->r->fullname);
        out->u.l = p->enum_map[v];
        return 0;
    case OP_ARRAY:
    case OP_MAP:
        return run_list(d, p, out, depth);
    case OP_RECORD: {
        tf_avro_value_t *fv = arena_alloc(d->arena, (p->nreader ? p->nreader : 1) * sizeof *fv);
        if (!fv)
            DFAIL(d, "decoded data too large");
        out->u.c.v = fv;
        out->u.c.keys = NULL;
        out->u.c.n = p->nreader;
        for (size_t i = 0; i < p->nsteps; i++) {
            const rstep_t *s = &p->steps[i];
            if (s->reader_idx < 0) {
                if (skip(d, s->skip, depth + 1) < 0)
                    return -1;
            } else if (run(d, s->prog, &fv[s->reader_idx], depth + 1) < 0) {
                return -1;
            }
        }
        for (size_t i = 0; i < p->nreader; i++)
            if (p->defaults[i])
                fv[i] = *p->defaults[i];
        return 0;
    }
    case OP_WUNION:
        if (rd_long(d, &v) < 0)
            return -1;
        if (v < 0 || (uint64_t)v >= p->nwb)
            DFAIL(d, "union index %lld out of range", (long long)v);
        return run(d, p->wb[v], out, depth + 1);
    case OP_RUNION:
        if (run(d, p->inner, out, depth + 1) < 0)
            return -1;
        out->branch = p->rbranch;
        return 0;
    case OP_FAIL:
        DFAIL(d, "writer union branch cannot be read: %s", p->msg ? p->msg : "incompatible");
    }
    DFAIL(d, "bad resolution program");
}

int tf_avro_decode(const tf_avro_resolver_t *r, const void *data, size_t len,
                   tf_avro_arena_t *arena, tf_avro_value_t *out, char *errstr, size_t errlen)
{
    return tf_avro_decode_at(r, data, len, 0, arena, out, errstr, errlen);
}

int tf_avro_decode_at(const tf_avro_resolver_t *r, const void *msg, size_t len, size_t header,
                      tf_avro_arena_t *arena, tf_avro_value_t *out, char *errstr,
                      size_t errlen)
{
    dec_t d = {.p = (const uint8_t *)msg + header, .end = (const uint8_t *)msg + len,
               .msg = msg, .arena = arena, .errstr = errstr, .errlen = errlen};
    if ((!msg && len) || header > len)
        return -1;
    if (!msg)
        d.msg = d.p = d.end = (const uint8_t *)"";
    arena_reset(arena);
    if (run(&d, r->root, out, 0) < 0)
        return -1;
    if (d.p != d.end) {
        tf_seterr(errstr, errlen, "%zu trailing bytes after the value", (size_t)(d.end - d.p));
        return -1;
    }
    return 0;
}

/* --- encoding ---------------------------------------------------------------- */

static int put_long(tf_buf_t *out, int64_t v)
{
    if (tf_buf_reserve(out, 10) < 0)
        return -1;
    out->len += tf_avro_write_long(out->data + out->len, v);
    return 0;
}

static int encode(const tf_avro_node_t *n, const tf_avro_value_t *v, tf_buf_t *out, char *errstr,
                  size_t errlen, int depth)
{
    if (depth > TF_AVRO_MAX_DEPTH) {
        tf_seterr(errstr, errlen, "value nested too deeply");
        return -1;
    }
    if (n->type == TF_AVRO_UNION) {
        if (v->branch < 0 || (size_t)v->branch >= n->nbranches) {
            tf_seterr(errstr, errlen, "union branch %d out of range", (int)v->branch);
            return -1;
        }
        if (put_long(out, v->branch) < 0)
            goto oom;
        n = n->branches[v->branch];
    }
    if (v->type != n->type) {
        tf_seterr(errstr, errlen, "value of type %s where the schema wants %s",
               tf_avro_type_name(v->type), tf_avro_type_name(n->type));
        return -1;
    }
    switch (n->type) {
    case TF_AVRO_NULL:
        return 0;
    case TF_AVRO_BOOLEAN: {
        uint8_t b = v->u.l ? 1 : 0;
        return tf_buf_append(out, &b, 1) < 0 ? (tf_seterr(errstr, errlen, "out of memory"), -1) : 0;
    }
    case TF_AVRO_INT:
        if (v->u.l < INT32_MIN || v->u.l > INT32_MAX) {
            tf_seterr(errstr, errlen, "int value %lld out of range", (long long)v->u.l);
            return -1;
        }
        /* fall through */
    case TF_AVRO_LONG:
        if (put_long(out, v->u.l) < 0)
            goto oom;
        return 0;
    case TF_AVRO_FLOAT: {
        float f = (float)v->u.d;
        if (tf_buf_append(out, &f, 4) < 0)
            goto oom;
        return 0;
    }
    case TF_AVRO_DOUBLE:
        if (tf_buf_append(out, &v->u.d, 8) < 0)
            goto oom;
        return 0;
    case TF_AVRO_STRING:
    case TF_AVRO_BYTES:
        if (put_long(out, (int64_t)v->u.s.n) < 0 || tf_buf_append(out, v->u.s.p, v->u.s.n) < 0)
            goto oom;
        return 0;
    case TF_AVRO_FIXED:
        if (v->u.s.n != n->size) {
            tf_seterr(errstr, errlen, "fixed %s needs %zu bytes, got %zu", n->fullname, n->size,
                   v->u.s.n);
            return -1;
        }
        if (tf_buf_append(out, v->u.s.p, v->u.s.n) < 0)
            goto oom;
        return 0;
    case TF_AVRO_ENUM:
        if (v->u.l < 0 || (uint64_t)v->u.l >= n->nsymbols) {
            tf_seterr(errstr, errlen, "enum %s index %lld out of range", n->fullname,
                   (long long)v->u.l);
            return -1;
        }
        if (put_long(out, v->u.l) < 0)
            goto oom;
        return 0;
    case TF_AVRO_RECORD:
        if (v->u.c.n != n->nfields) {
            tf_seterr(errstr, errlen, "record %s has %zu fields, value has %zu", n->fullname,
                   n->nfields, v->u.c.n);
            return -1;
        }
        for (size_t i = 0; i < n->nfields; i++)
            if (encode(n->fields[i].type, &v->u.c.v[i], out, errstr, errlen, depth + 1) < 0)
                return -1;
        return 0;
    case TF_AVRO_ARRAY:
    case TF_AVRO_MAP:
        if (v->u.c.n) {
            if (put_long(out, (int64_t)v->u.c.n) < 0)
                goto oom;
            for (size_t i = 0; i < v->u.c.n; i++) {
                if (n->type == TF_AVRO_MAP &&
                    (put_long(out, (int64_t)v->u.c.keys[i].n) < 0 ||
                     tf_buf_append(out, v->u.c.keys[i].p, v->u.c.keys[i].n) < 0))
                    goto oom;
                if (encode(n->items, &v->u.c.v[i], out, errstr, errlen, depth + 1) < 0)
                    return -1;
            }
        }
        if (put_long(out, 0) < 0)
            goto oom;
        return 0;
    case TF_AVRO_UNION:
        break;
    }
    tf_seterr(errstr, errlen, "bad schema node");
    return -1;
oom:
    tf_seterr(errstr, errlen, "out of memory");
    return -1;
}

int tf_avro_encode(const tf_avro_node_t *schema, const tf_avro_value_t *v, tf_buf_t *out,
                   char *errstr, size_t errlen)
{
    size_t mark = out->len;
    int rc = encode(schema, v, out, errstr, errlen, 0);
    if (rc < 0)
        out->len = mark;
    return rc;
}
