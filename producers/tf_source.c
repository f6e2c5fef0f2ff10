/*
 * tf_source.c - source profiles (see tf_source.h and docs/input-formats.md,
 * "Source profiles").
 */
#include "tf_source.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const source_names[] = {"plain", "comtrade", "comext", "gacc"};

int tf_source_parse(const char *s, tf_source_kind_t *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, source_names[i]) == 0) {
            *out = (tf_source_kind_t)i;
            return 0;
        }
    return -1;
}

const char *tf_source_name(tf_source_kind_t k)
{
    return (unsigned)k < 4 ? source_names[k] : "plain";
}

int tf_encoding_parse(const char *s, tf_encoding_t *out)
{
    if (strcmp(s, "auto") == 0)
        *out = TF_ENC_AUTO;
    else if (strcasecmp(s, "utf-8") == 0 || strcasecmp(s, "utf8") == 0)
        *out = TF_ENC_UTF8;
    else if (strcasecmp(s, "gbk") == 0 || strcasecmp(s, "gb18030") == 0 ||
             strcasecmp(s, "gb2312") == 0)
        *out = TF_ENC_GBK;
    else
        return -1;
    return 0;
}

/* ---- economy codes --------------------------------------------------- */

/* GACC publishes partners under short names that iso-codes' Chinese
 * catalogue spells differently. Only names checked against GACC's tables
 * belong here; every target must exist in iso-codes (tf_econ_load checks). */
const tf_econ_alias_t tf_econ_aliases[] = {
    {"中国香港", "HKG", "GACC: Hong Kong SAR (iso-codes: 香港)"},
    {"中国澳门", "MAC", "GACC: Macao SAR (iso-codes: 澳门)"},
    {"中国台湾", "TWN", "GACC: Taiwan (iso-codes: 中国台湾省 / 台湾)"},
    {"俄罗斯联邦", "RUS", "GACC: Russian Federation (iso-codes: 俄罗斯)"},
    {"阿联酋", "ARE", "GACC: United Arab Emirates (also iso-codes' name)"},
    {"刚果(金)", "COD", "GACC: DR Congo (Kinshasa)"},
    {"刚果（金）", "COD", "GACC: DR Congo, full-width brackets"},
    {"刚果(布)", "COG", "GACC: Republic of the Congo (Brazzaville)"},
    {"刚果（布）", "COG", "GACC: Republic of the Congo, full-width brackets"},
    {"玻利维亚", "BOL", "GACC: Bolivia (iso-codes: 玻利维亚共和国 / 波利维亚)"},
    {"美国", "USA", "GACC: United States (also iso-codes' name; kept for clarity)"},
    {"韩国", "KOR", "GACC: Republic of Korea (also iso-codes' common name)"},
    {"朝鲜", "PRK", "GACC: DPR Korea (also iso-codes' common name)"},
    {"英国", "GBR", "GACC: United Kingdom (also iso-codes' name)"},
    {NULL, NULL, NULL},
};

struct econ_entry {
    char a2[3], a3[4], num[4];
};

struct name_entry {
    char *name; /* owned */
    int idx;    /* into entries */
};

struct tf_econ {
    struct econ_entry *entries;
    size_t n;
    int *by_a2, *by_a3, *by_num; /* sorted indexes into entries */
    struct name_entry *zh;       /* sorted by name */
    size_t nzh;
    char (*cur)[4]; /* sorted ISO 4217 alphabetic codes */
    size_t ncur;
};

static const struct tf_econ *g_sort_econ; /* qsort has no context argument */

static int cmp_a2(const void *a, const void *b)
{
    return strcmp(g_sort_econ->entries[*(const int *)a].a2,
                  g_sort_econ->entries[*(const int *)b].a2);
}
static int cmp_a3(const void *a, const void *b)
{
    return strcmp(g_sort_econ->entries[*(const int *)a].a3,
                  g_sort_econ->entries[*(const int *)b].a3);
}
static int cmp_num(const void *a, const void *b)
{
    return strcmp(g_sort_econ->entries[*(const int *)a].num,
                  g_sort_econ->entries[*(const int *)b].num);
}
static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct name_entry *)a)->name, ((const struct name_entry *)b)->name);
}
static int cmp_cur(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Reads a whole (small) file; caller frees. */
static char *slurp(const char *path, size_t *len, char *errstr, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errstr, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        snprintf(errstr, errlen, "%s: %s", path, buf ? "read error" : "out of memory");
        return NULL;
    }
    *len = n;
    return buf;
}

/* A gettext .mo catalogue: msgid -> msgstr, read directly (no locale needs
 * to be installed for the Chinese names). */
struct mo {
    const unsigned char *p;
    size_t len;
    bool swap;
    uint32_t n, orig, trans;
};

static uint32_t mo_u32(const struct mo *m, size_t off)
{
    if (off + 4 > m->len)
        return 0;
    const unsigned char *q = m->p + off;
    return m->swap ? (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3]
                   : (uint32_t)q[3] << 24 | (uint32_t)q[2] << 16 | (uint32_t)q[1] << 8 | q[0];
}

static int mo_open(struct mo *m, const char *data, size_t len)
{
    m->p = (const unsigned char *)data;
    m->len = len;
    m->swap = false;
    if (len < 28)
        return -1;
    uint32_t magic = mo_u32(m, 0);
    if (magic != 0x950412deu) {
        m->swap = true;
        if (mo_u32(m, 0) != 0x950412deu)
            return -1;
    }
    m->n = mo_u32(m, 8);
    m->orig = mo_u32(m, 12);
    m->trans = mo_u32(m, 16);
    if ((uint64_t)m->orig + 8ull * m->n > len || (uint64_t)m->trans + 8ull * m->n > len)
        return -1;
    return 0;
}

/* The translation of msgid, or NULL (linear: called ~500 times at load). */
static const char *mo_lookup(const struct mo *m, const char *msgid)
{
    size_t idlen = strlen(msgid);
    for (uint32_t i = 0; i < m->n; i++) {
        uint32_t l = mo_u32(m, m->orig + 8u * i), o = mo_u32(m, m->orig + 8u * i + 4);
        if (l != idlen || (uint64_t)o + l > m->len || memcmp(m->p + o, msgid, l) != 0)
            continue;
        uint32_t tl = mo_u32(m, m->trans + 8u * i), to = mo_u32(m, m->trans + 8u * i + 4);
        if ((uint64_t)to + tl >= m->len || m->p[to + tl] != '\0' || tl == 0)
            return NULL;
        return (const char *)m->p + to;
    }
    return NULL;
}

static int add_name(tf_econ_t *e, size_t *cap, const char *name, int idx)
{
    /* A name already mapped to the same economy is not repeated. */
    for (size_t i = 0; i < e->nzh; i++)
        if (strcmp(e->zh[i].name, name) == 0)
            return e->zh[i].idx == idx ? 0 : 1;
    if (e->nzh == *cap) {
        size_t nc = *cap ? *cap * 2 : 512;
        struct name_entry *nz = realloc(e->zh, nc * sizeof *nz);
        if (!nz)
            return -1;
        e->zh = nz;
        *cap = nc;
    }
    e->zh[e->nzh].name = strdup(name);
    if (!e->zh[e->nzh].name)
        return -1;
    e->zh[e->nzh++].idx = idx;
    return 0;
}

static int find_a3(const tf_econ_t *e, const char *a3)
{
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(e->entries[e->by_a3[mid]].a3, a3);
        if (c == 0)
            return e->by_a3[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

tf_econ_t *tf_econ_load(const char *json_path, const char *zh_mo_path, const char *currency_json,
                        char *errstr, size_t errlen)
{
    if (!json_path)
        json_path = TF_ISO3166_JSON;
    tf_econ_t *e = calloc(1, sizeof *e);
    char *mo_data = NULL;
    json_t *root = NULL, *croot = NULL;
    if (!e) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    json_error_t jerr;
    root = json_load_file(json_path, 0, &jerr);
    if (!root) {
        snprintf(errstr, errlen, "%s: %s (is the iso-codes package installed?)", json_path,
                 jerr.text);
        goto fail;
    }
    json_t *arr = json_object_get(root, "3166-1");
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        snprintf(errstr, errlen, "%s: no \"3166-1\" array", json_path);
        goto fail;
    }
    e->n = json_array_size(arr);
    e->entries = calloc(e->n, sizeof *e->entries);
    e->by_a2 = calloc(e->n, sizeof(int));
    e->by_a3 = calloc(e->n, sizeof(int));
    e->by_num = calloc(e->n, sizeof(int));
    if (!e->entries || !e->by_a2 || !e->by_a3 || !e->by_num) {
        snprintf(errstr, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < e->n; i++) {
        json_t *it = json_array_get(arr, i);
        const char *a2 = json_string_value(json_object_get(it, "alpha_2"));
        const char *a3 = json_string_value(json_object_get(it, "alpha_3"));
        const char *num = json_string_value(json_object_get(it, "numeric"));
        if (!a2 || !a3 || !num || strlen(a2) != 2 || strlen(a3) != 3 || strlen(num) != 3) {
            snprintf(errstr, errlen, "%s: entry %zu lacks alpha_2/alpha_3/numeric", json_path, i);
            goto fail;
        }
        memcpy(e->entries[i].a2, a2, 3);
        memcpy(e->entries[i].a3, a3, 4);
        memcpy(e->entries[i].num, num, 4);
        e->by_a2[i] = e->by_a3[i] = e->by_num[i] = (int)i;
    }
    g_sort_econ = e;
    qsort(e->by_a2, e->n, sizeof(int), cmp_a2);
    qsort(e->by_a3, e->n, sizeof(int), cmp_a3);
    qsort(e->by_num, e->n, sizeof(int), cmp_num);

    size_t cap = 0;
    if (zh_mo_path) {
        size_t mlen = 0;
        mo_data = slurp(zh_mo_path, &mlen, errstr, errlen);
        if (!mo_data)
            goto fail;
        struct mo m;
        if (mo_open(&m, mo_data, mlen) != 0) {
            snprintf(errstr, errlen, "%s: not a gettext catalogue", zh_mo_path);
            goto fail;
        }
        static const char *const keys[] = {"name", "official_name", "common_name"};
        for (size_t i = 0; i < e->n; i++) {
            json_t *it = json_array_get(arr, i);
            for (int k = 0; k < 3; k++) {
                const char *en = json_string_value(json_object_get(it, keys[k]));
                const char *zh = en ? mo_lookup(&m, en) : NULL;
                /* A Chinese name shared by two economies maps to neither
                 * (rc 1 leaves the first: none occur in iso-codes 4.15). */
                if (zh && add_name(e, &cap, zh, (int)i) < 0) {
                    snprintf(errstr, errlen, "out of memory");
                    goto fail;
                }
            }
        }
    }
    for (const tf_econ_alias_t *a = tf_econ_aliases; a->name; a++) {
        int idx = find_a3(e, a->alpha3);
        if (idx < 0) {
            snprintf(errstr, errlen, "alias %s -> %s: %s is not in %s", a->name, a->alpha3,
                     a->alpha3, json_path);
            goto fail;
        }
        int rc = add_name(e, &cap, a->name, idx);
        if (rc < 0) {
            snprintf(errstr, errlen, "out of memory");
            goto fail;
        }
        if (rc > 0) {
            snprintf(errstr, errlen, "alias %s -> %s contradicts iso-codes' Chinese names",
                     a->name, a->alpha3);
            goto fail;
        }
    }
    qsort(e->zh, e->nzh, sizeof *e->zh, cmp_name);

    if (currency_json) {
        croot = json_load_file(currency_json, 0, &jerr);
        json_t *carr = croot ? json_object_get(croot, "4217") : NULL;
        if (!json_is_array(carr)) {
            snprintf(errstr, errlen, "%s: %s", currency_json,
                     croot ? "no \"4217\" array" : jerr.text);
            goto fail;
        }
        e->cur = calloc(json_array_size(carr) + 1, sizeof *e->cur);
        if (!e->cur) {
            snprintf(errstr, errlen, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < json_array_size(carr); i++) {
            const char *c = json_string_value(json_object_get(json_array_get(carr, i), "alpha_3"));
            if (c && strlen(c) == 3)
                memcpy(e->cur[e->ncur++], c, 4);
        }
        qsort(e->cur, e->ncur, sizeof *e->cur, cmp_cur);
    }
    free(mo_data);
    json_decref(root);
    json_decref(croot);
    return e;
fail:
    free(mo_data);
    json_decref(root);
    json_decref(croot);
    tf_econ_free(e);
    return NULL;
}

void tf_econ_free(tf_econ_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nzh; i++)
        free(e->zh[i].name);
    free(e->zh);
    free(e->entries);
    free(e->by_a2);
    free(e->by_a3);
    free(e->by_num);
    free(e->cur);
    free(e);
}

size_t tf_econ_count(const tf_econ_t *e)
{
    return e->n;
}

/* Binary search of key in idx (sorted by field at offset off). */
static const char *econ_find(const tf_econ_t *e, const int *idx, size_t off, const char *key)
{
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct econ_entry *en = &e->entries[idx[mid]];
        int c = strcmp((const char *)en + off, key);
        if (c == 0)
            return en->a3;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *tf_econ_from_alpha2(const tf_econ_t *e, const char *a2)
{
    return strlen(a2) == 2 ? econ_find(e, e->by_a2, offsetof(struct econ_entry, a2), a2) : NULL;
}

const char *tf_econ_from_alpha3(const tf_econ_t *e, const char *a3)
{
    return strlen(a3) == 3 ? econ_find(e, e->by_a3, offsetof(struct econ_entry, a3), a3) : NULL;
}

const char *tf_econ_from_numeric(const tf_econ_t *e, const char *num)
{
    size_t n = strlen(num);
    if (n == 0 || n > 3)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (num[i] < '0' || num[i] > '9')
            return NULL;
    char k[4] = "000";
    memcpy(k + 3 - n, num, n);
    return econ_find(e, e->by_num, offsetof(struct econ_entry, num), k);
}

const char *tf_econ_from_zh(const tf_econ_t *e, const char *name)
{
    size_t lo = 0, hi = e->nzh;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(e->zh[mid].name, name);
        if (c == 0)
            return e->entries[e->zh[mid].idx].a3;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool tf_econ_currency_known(const tf_econ_t *e, const char *code)
{
    if (!e->cur)
        return true;
    return strlen(code) == 3 && bsearch(code, e->cur, e->ncur, sizeof *e->cur, cmp_cur) != NULL;
}

/* ---- numbers --------------------------------------------------------- */

int tf_source_number(const char *s, int scale, bool thousands, int64_t *out, char *errstr,
                     size_t errlen)
{
    /* Digits are collected exactly (no floating point), then shifted by the
     * exponent and rounded half up at `scale`. */
    char dig[64];
    int nd = 0, point = -1, group = -1, exp = 0;
    bool any = false;
    const char *p = s;
    if (*p == '-') {
        snprintf(errstr, errlen, "negative value \"%.40s\"", s);
        return -1;
    }
    if (*p == '+')
        p++;
    for (; *p && *p != 'e' && *p != 'E'; p++) {
        if (*p >= '0' && *p <= '9') {
            any = true;
            if (group >= 0)
                group++;
            if (nd == 0 && *p == '0' && point < 0)
                continue; /* leading zeros */
            if (nd >= (int)sizeof dig) {
                snprintf(errstr, errlen, "value \"%.40s\" is too large", s);
                return -1;
            }
            dig[nd++] = *p;
        } else if (*p == '.' && point < 0) {
            if (group >= 0 && group != 3)
                goto bad;
            group = -1;
            point = nd;
        } else if (*p == ',' && thousands && point < 0 && any && (group < 0 || group == 3)) {
            group = 0;
        } else {
            goto bad;
        }
    }
    if (!any || (group >= 0 && group != 3))
        goto bad;
    if (*p == 'e' || *p == 'E') {
        p++;
        int sign = 1;
        if (*p == '+' || *p == '-')
            sign = *p++ == '-' ? -1 : 1;
        if (!*p)
            goto bad;
        for (; *p; p++) {
            if (*p < '0' || *p > '9' || exp > 1000)
                goto bad;
            exp = exp * 10 + (*p - '0');
        }
        exp *= sign;
    }
    if (point < 0)
        point = nd;
    /* value = 0.dig * 10^(point+exp); integer digits wanted: point+exp+scale */
    int keep = point + exp + scale;
    __int128 v = 0;
    for (int i = 0; i < keep; i++) {
        v = v * 10 + (i < nd ? dig[i] - '0' : 0);
        if (v > INT64_MAX) {
            snprintf(errstr, errlen, "value \"%.40s\" is too large", s);
            return -1;
        }
    }
    if (keep >= 0 && keep < nd && dig[keep] >= '5')
        v++;
    if (v > INT64_MAX) {
        snprintf(errstr, errlen, "value \"%.40s\" is too large", s);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
bad:
    if (thousands && strchr(s, ','))
        snprintf(errstr, errlen,
                 "not a number: \"%.40s\" (thousands separators must group 3 digits)", s);
    else
        snprintf(errstr, errlen, "not a number: \"%.40s\"", s);
    return -1;
}

int tf_release_parse(const char *s, int64_t *out, char *errstr, size_t errlen)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    size_t len = strlen(s);
    bool ok = sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && n == 10;
    if (ok && len > 10) {
        int n2 = 0;
        ok = (s[10] == 'T' || s[10] == ' ') &&
             ((sscanf(s + 11, "%2d:%2d:%2d%n", &h, &mi, &sec, &n2) == 3 && n2 == 8 &&
               len == 19) ||
              (sscanf(s + 11, "%2d:%2d%n", &h, &mi, &n2) == 2 && n2 == 5 && len == 16));
    }
    for (size_t i = 0; ok && i < len; i++)
        ok = (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == ':' || s[i] == 'T' ||
             s[i] == ' ';
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!ok || y < 1900 || y > 2999 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) || h > 23 ||
        mi > 59 || sec > 59) {
        snprintf(errstr, errlen,
                 "bad release date \"%.40s\": expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]", s);
        return -1;
    }
    *out = ((((int64_t)y * 100 + mo) * 100 + d) * 100 + h) * 10000 + mi * 100 + sec;
    return 0;
}

/* "YYYYMM" or "YYYY-MM" -> period; 0 or -1. */
static int yyyymm(const char *s, int32_t *out)
{
    char buf[8];
    size_t n = strlen(s);
    if (n == 6) {
        for (int i = 0; i < 6; i++)
            if (s[i] < '0' || s[i] > '9')
                return -1;
        snprintf(buf, sizeof buf, "%.4s-%.2s", s, s + 4);
    } else if (n == 7) {
        memcpy(buf, s, 8);
    } else {
        return -1;
    }
    char why[128];
    return tf_period_parse(buf, out, why, sizeof why);
}

/* ---- exchange rates -------------------------------------------------- */

struct fx_entry {
    int32_t period;
    char cur[4];
    int64_t rate_e10;
};

struct tf_fx {
    struct fx_entry *v;
    size_t n;
};

static int cmp_fx(const void *a, const void *b)
{
    const struct fx_entry *x = a, *y = b;
    if (x->period != y->period)
        return x->period < y->period ? -1 : 1;
    return strcmp(x->cur, y->cur);
}

tf_fx_t *tf_fx_load(const char *path, const tf_econ_t *e, char *errstr, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(errstr, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    tf_fx_t *fx = calloc(1, sizeof *fx);
    size_t cap = 0;
    char line[512];
    long ln = 0;
    bool header = false;
    if (!fx) {
        snprintf(errstr, errlen, "out of memory");
        goto fail;
    }
    while (fgets(line, sizeof line, f)) {
        ln++;
        size_t L = strlen(line);
        if (L && line[L - 1] != '\n' && !feof(f)) {
            snprintf(errstr, errlen, "%s:%ld: line too long", path, ln);
            goto fail;
        }
        while (L && (line[L - 1] == '\n' || line[L - 1] == '\r' || line[L - 1] == ' '))
            line[--L] = '\0';
        char *q = line;
        if (ln == 1 && (unsigned char)q[0] == 0xEF && (unsigned char)q[1] == 0xBB &&
            (unsigned char)q[2] == 0xBF)
            q += 3;
        if (*q == '\0' || *q == '#')
            continue;
        char *fld[4] = {0};
        int nf = 0;
        for (char *tok = q; nf < 4;) {
            fld[nf++] = tok;
            char *c = strchr(tok, ',');
            if (!c)
                break;
            *c = '\0';
            tok = c + 1;
        }
        for (int i = 0; i < nf; i++) {
            while (*fld[i] == ' ' || *fld[i] == '"')
                fld[i]++;
            size_t k = strlen(fld[i]);
            while (k && (fld[i][k - 1] == ' ' || fld[i][k - 1] == '"'))
                fld[i][--k] = '\0';
        }
        if (!header) {
            if (nf != 3 || strcmp(fld[0], "period") || strcmp(fld[1], "currency") ||
                strcmp(fld[2], "usd_per_unit")) {
                snprintf(errstr, errlen, "%s:%ld: expected the header period,currency,usd_per_unit",
                         path, ln);
                goto fail;
            }
            header = true;
            continue;
        }
        if (nf != 3) {
            snprintf(errstr, errlen, "%s:%ld: expected 3 fields, got %d", path, ln, nf);
            goto fail;
        }
        struct fx_entry en = {0};
        if (yyyymm(fld[0], &en.period)) {
            snprintf(errstr, errlen, "%s:%ld: bad period \"%.20s\" (YYYY-MM or YYYYMM)", path, ln,
                     fld[0]);
            goto fail;
        }
        bool cur_ok = strlen(fld[1]) == 3;
        for (int i = 0; cur_ok && i < 3; i++)
            cur_ok = fld[1][i] >= 'A' && fld[1][i] <= 'Z';
        if (!cur_ok || (e && !tf_econ_currency_known(e, fld[1]))) {
            snprintf(errstr, errlen, "%s:%ld: unknown currency \"%.20s\" (ISO 4217 code)", path,
                     ln, fld[1]);
            goto fail;
        }
        memcpy(en.cur, fld[1], 4);
        char why[128];
        if (tf_decimal_parse(fld[2], 10, &en.rate_e10, why, sizeof why)) {
            snprintf(errstr, errlen, "%s:%ld: usd_per_unit: %s", path, ln, why);
            goto fail;
        }
        if (en.rate_e10 <= 0) {
            snprintf(errstr, errlen, "%s:%ld: usd_per_unit: the rate must be > 0", path, ln);
            goto fail;
        }
        if (fx->n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            struct fx_entry *nv = realloc(fx->v, nc * sizeof *nv);
            if (!nv) {
                snprintf(errstr, errlen, "out of memory");
                goto fail;
            }
            fx->v = nv;
            cap = nc;
        }
        for (size_t i = 0; i < fx->n; i++)
            if (fx->v[i].period == en.period && strcmp(fx->v[i].cur, en.cur) == 0) {
                snprintf(errstr, errlen, "%s:%ld: duplicate rate for %s %s", path, ln, fld[0],
                         en.cur);
                goto fail;
            }
        fx->v[fx->n++] = en;
    }
    if (ferror(f)) {
        snprintf(errstr, errlen, "%s: read error", path);
        goto fail;
    }
    if (!header) {
        snprintf(errstr, errlen, "%s: empty (expected the header period,currency,usd_per_unit)",
                 path);
        goto fail;
    }
    fclose(f);
    qsort(fx->v, fx->n, sizeof *fx->v, cmp_fx);
    return fx;
fail:
    fclose(f);
    tf_fx_free(fx);
    return NULL;
}

void tf_fx_free(tf_fx_t *fx)
{
    if (!fx)
        return;
    free(fx->v);
    free(fx);
}

size_t tf_fx_count(const tf_fx_t *fx)
{
    return fx ? fx->n : 0;
}

int tf_fx_rate(const tf_fx_t *fx, int32_t period, const char *currency, int64_t *rate_e10)
{
    if (!fx)
        return -1;
    struct fx_entry key = {.period = period};
    snprintf(key.cur, sizeof key.cur, "%s", currency);
    const struct fx_entry *hit = bsearch(&key, fx->v, fx->n, sizeof key, cmp_fx);
    if (!hit)
        return -1;
    *rate_e10 = hit->rate_e10;
    return 0;
}

/* ---- identity -------------------------------------------------------- */

static uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

void tf_source_record_id(const char *tag, const char *reporter, int32_t period,
                         const char *const *key, size_t nkey, char *out, size_t outlen)
{
    /* FNV-1a, 128 bits (offset basis and prime from the FNV specification):
     * with 10^10 cells the chance of any collision is about 10^-19. */
    const unsigned __int128 prime = ((unsigned __int128)1 << 88) + 0x13b;
    unsigned __int128 h =
        ((unsigned __int128)0x6c62272e07bb0142ULL << 64) | 0x62b821756295c58dULL;
    const char *v1 = "v1";
    for (const char *p = v1; *p; p++)
        h = (h ^ (unsigned char)*p) * prime;
    for (size_t i = 0; i < nkey; i++) {
        h = (h ^ 0x1f) * prime; /* unit separator before each field */
        for (const char *p = key[i] ? key[i] : ""; *p; p++)
            h = (h ^ (unsigned char)*p) * prime;
    }
    /* FNV's high bits hardly depend on the last bytes: a bijective Feistel
     * finish with MurmurHash3's fmix64 spreads every input bit over the
     * 128 bits without adding collisions. */
    uint64_t hi = (uint64_t)(h >> 64), lo = (uint64_t)h;
    hi ^= fmix64(lo);
    lo ^= fmix64(hi);
    hi ^= fmix64(lo);
    h = ((unsigned __int128)hi << 64) | lo;
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%.8s:%.16s:%04d%02d:%016llx%016llx", tag, reporter,
             tf_period_year(period), tf_period_month(period),
             (unsigned long long)(uint64_t)(h >> 64), (unsigned long long)(uint64_t)h);
    snprintf(out, outlen, "%s", tmp);
}

/* ---- profiles -------------------------------------------------------- */

enum { /* Comtrade */
    CT_TYPE, CT_FREQ, CT_REFYEAR, CT_REFMONTH, CT_PERIOD, CT_REPORTERCODE, CT_REPORTERISO,
    CT_PARTNERCODE, CT_PARTNERISO, CT_PARTNER2CODE, CT_FLOW, CT_CLASS, CT_CMD, CT_AGGR,
    CT_CUSTOMS, CT_MOS, CT_MOT, CT_QTY, CT_QTYUNIT, CT_VALUE, CT_N
};
static const char *const ct_cols[CT_N] = {
    "typeCode", "freqCode", "refYear", "refMonth", "period", "reporterCode", "reporterISO",
    "partnerCode", "partnerISO", "partner2Code", "flowCode", "classificationCode", "cmdCode",
    "aggrLevel", "customsCode", "mosCode", "motCode", "qty", "qtyUnitAbbr", "primaryValue"};

enum { /* Comext */
    CX_DECLARANT, CX_PARTNER, CX_TRADE_TYPE, CX_PRODUCT, CX_FLOW, CX_REGIME, CX_PERIOD,
    CX_VALUE, CX_KG, CX_N
};
static const char *const cx_cols[CX_N] = {"DECLARANT_ISO", "PARTNER_ISO", "TRADE_TYPE",
                                          "PRODUCT_NC",    "FLOW",        "STAT_REGIME",
                                          "PERIOD",        "VALUE_IN_EUROS", "QUANTITY_IN_KG"};

enum { /* GACC */
    GA_PERIOD, GA_HS, GA_HSNAME, GA_PCODE, GA_PNAME, GA_MODE, GA_MODENAME, GA_REG, GA_REGNAME,
    GA_Q1, GA_U1, GA_Q2, GA_U2, GA_USD, GA_CNY, GA_FLOW, GA_N
};
static const char *const ga_cols[GA_N] = {
    "数据年月", "商品编码", "商品名称", "贸易伙伴编码", "贸易伙伴名称", "贸易方式编码",
    "贸易方式名称", "注册地编码", "注册地名称", "第一数量", "第一计量单位", "第二数量",
    "第二计量单位", "美元", "人民币", "进出口"};

struct tf_source {
    tf_source_opts_t o;
    const char *const *cols;
    int ncols;
    char why[256];
};

tf_source_t *tf_source_new(const tf_source_opts_t *o, char *errstr, size_t errlen)
{
    if (o->kind == TF_SOURCE_PLAIN || (unsigned)o->kind > TF_SOURCE_GACC) {
        snprintf(errstr, errlen, "no source profile");
        return NULL;
    }
    if (!o->econ) {
        snprintf(errstr, errlen, "a source profile needs the iso-codes tables");
        return NULL;
    }
    if (o->release <= 0) {
        snprintf(errstr, errlen,
                 "--source %s needs --release DATE: its rows carry no publication date, and the "
                 "release is the records' revision",
                 tf_source_name(o->kind));
        return NULL;
    }
    int lvl = o->hs_level;
    if (lvl != TF_HS_LEVEL_UNSET && lvl != TF_HS_LEVEL_TOTAL && (lvl < 2 || lvl > 10 || lvl % 2)) {
        snprintf(errstr, errlen, "--hs-level must be total, 2, 4, 6, 8 or 10");
        return NULL;
    }
    if (o->kind == TF_SOURCE_COMTRADE && lvl == TF_HS_LEVEL_UNSET) {
        snprintf(errstr, errlen,
                 "--source comtrade needs --hs-level total|2|4|6: Comtrade files mix TOTAL and "
                 "HS detail rows, and taking both would count the same trade twice");
        return NULL;
    }
    if (o->kind == TF_SOURCE_COMTRADE && lvl > 6) {
        snprintf(errstr, errlen, "--source comtrade publishes HS levels total, 2, 4 and 6 only");
        return NULL;
    }
    tf_source_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    s->o = *o;
    if (lvl == TF_HS_LEVEL_UNSET)
        s->o.hs_level = 8; /* Comext: CN8; GACC: the 8-digit national codes */
    switch (o->kind) {
    case TF_SOURCE_COMTRADE: s->cols = ct_cols; s->ncols = CT_N; break;
    case TF_SOURCE_COMEXT: s->cols = cx_cols; s->ncols = CX_N; break;
    default: s->cols = ga_cols; s->ncols = GA_N; break;
    }
    return s;
}

void tf_source_free(tf_source_t *s)
{
    free(s);
}

void tf_source_set_release(tf_source_t *s, int64_t release)
{
    if (release > 0)
        s->o.release = release;
}

tf_source_kind_t tf_source_kind(const tf_source_t *s)
{
    return s->o.kind;
}

tf_encoding_t tf_source_encoding(const tf_source_t *s)
{
    /* Comtrade and Comext publish ASCII / UTF-8 only. */
    return s->o.kind == TF_SOURCE_GACC ? s->o.encoding : TF_ENC_UTF8;
}

int tf_source_col(const tf_source_t *s, const char *name, size_t len)
{
    for (int i = 0; i < s->ncols; i++)
        if (strlen(s->cols[i]) == len && memcmp(s->cols[i], name, len) == 0)
            return i;
    return -1;
}

const char *tf_source_col_name(const tf_source_t *s, int col)
{
    return col >= 0 && col < s->ncols ? s->cols[col] : "-";
}

int tf_source_ncols(const tf_source_t *s)
{
    return s->ncols;
}

int tf_source_check_header(const tf_source_t *s, const bool *present, const char **column,
                           char *errstr, size_t errlen)
{
    static const int ct_req[] = {CT_FREQ, CT_REPORTERISO, CT_PARTNERISO, CT_FLOW, CT_CMD,
                                 CT_VALUE, -1};
    static const int cx_req[] = {CX_DECLARANT, CX_PARTNER, CX_PRODUCT, CX_FLOW, CX_PERIOD,
                                 CX_VALUE, -1};
    static const int ga_req[] = {GA_PERIOD, GA_HS, GA_PNAME, -1};
    const int *req = s->o.kind == TF_SOURCE_COMTRADE ? ct_req
                     : s->o.kind == TF_SOURCE_COMEXT ? cx_req
                                                     : ga_req;
    for (; *req >= 0; req++)
        if (!present[*req]) {
            *column = s->cols[*req];
            snprintf(errstr, errlen, "missing required column");
            return -1;
        }
    if (s->o.kind == TF_SOURCE_COMTRADE && !present[CT_PERIOD] &&
        !(present[CT_REFYEAR] && present[CT_REFMONTH])) {
        *column = "period";
        snprintf(errstr, errlen, "missing required column (or refYear and refMonth)");
        return -1;
    }
    if (s->o.kind == TF_SOURCE_GACC) {
        if (!present[GA_USD] && !present[GA_CNY]) {
            *column = "美元";
            snprintf(errstr, errlen, "missing required column (美元 or 人民币)");
            return -1;
        }
        if (!present[GA_FLOW] && s->o.flow == TF_FLOW_UNKNOWN) {
            *column = "进出口";
            snprintf(errstr, errlen,
                     "no flow column: give --flow export|import (the flow the query was for)");
            return -1;
        }
    }
    return 0;
}

#define BAD(col, ...)                                                                              \
    do {                                                                                           \
        *column = (col);                                                                           \
        snprintf(errstr, errlen, __VA_ARGS__);                                                     \
        return TF_SRC_BAD;                                                                         \
    } while (0)
#define SKIP(...)                                                                                  \
    do {                                                                                           \
        *column = "-";                                                                             \
        snprintf(errstr, errlen, __VA_ARGS__);                                                     \
        return TF_SRC_SKIP;                                                                        \
    } while (0)

static bool empty(const char *v)
{
    return !v || !*v;
}

/* The commodity code of a row against --hs-level: 1 take, 0 skip (reason in
 * why). code is "TOTAL" or digits (checked by the caller). */
static int level_takes(const tf_source_t *s, bool total, size_t digits, char *why, size_t wl)
{
    int want = s->o.hs_level;
    if (total ? want == TF_HS_LEVEL_TOTAL : (int)digits == want)
        return 1;
    char have[16], w[16];
    snprintf(have, sizeof have, total ? "TOTAL" : "HS%zu", digits);
    snprintf(w, sizeof w, want == TF_HS_LEVEL_TOTAL ? "total" : "%d", want);
    snprintf(why, wl, "commodity level %s is not the chosen --hs-level %s", have, w);
    return 0;
}

static bool all_digits(const char *v, size_t *n)
{
    size_t k = 0;
    for (; v[k]; k++)
        if (v[k] < '0' || v[k] > '9')
            return false;
    *n = k;
    return k > 0;
}

/* Money: value (scale 4, in the currency) -> cents, through the rate table
 * unless the currency is USD. */
static tf_source_status_t money(tf_source_t *s, const char *col, const char *v, bool thousands,
                                const char *cur, int32_t period, int64_t *cents,
                                const char **column, char *errstr, size_t errlen)
{
    char why[160];
    int64_t units_e4;
    if (tf_source_number(v, 4, thousands, &units_e4, why, sizeof why))
        BAD(col, "%s", why);
    if (strcmp(cur, "USD") == 0) {
        *cents = (units_e4 + 50) / 100;
        return TF_SRC_OK;
    }
    int64_t rate;
    if (tf_fx_rate(s->o.fx, period, cur, &rate)) {
        char p[8];
        tf_period_format(period, p, sizeof p);
        BAD(col, "no %s rate for %s in the --fx table%s", cur, p,
            s->o.fx ? "" : " (no --fx given)");
    }
    /* units_e4 * rate_e10 = cents * 10^12 */
    unsigned __int128 prod = (unsigned __int128)units_e4 * (uint64_t)rate;
    unsigned __int128 c = (prod + 500000000000ULL) / 1000000000000ULL;
    if (c > INT64_MAX / 1)
        BAD(col, "value \"%.40s\" %s is too large in USD", v, cur);
    *cents = (int64_t)c;
    return TF_SRC_OK;
}

static tf_source_status_t quantity(const char *col, const char *v, bool thousands,
                                   tf_record_t *out, const char **column, char *errstr,
                                   size_t errlen)
{
    char why[160];
    if (empty(v))
        return TF_SRC_OK;
    if (tf_source_number(v, 3, thousands, &out->quantity_milli, why, sizeof why))
        BAD(col, "%s", why);
    out->has_quantity = true;
    return TF_SRC_OK;
}

static tf_source_status_t build_comtrade(tf_source_t *s, const char *const *v, tf_record_t *out,
                                         const char **column, char *errstr, size_t errlen)
{
    if (!empty(v[CT_TYPE]) && strcmp(v[CT_TYPE], "C") != 0)
        BAD("typeCode", "typeCode \"%.8s\" is not C (goods); services are not customs data",
            v[CT_TYPE]);
    if (empty(v[CT_FREQ]))
        BAD("freqCode", "empty required field");
    if (strcmp(v[CT_FREQ], "A") == 0)
        BAD("freqCode", "annual row (freqCode A): tradeflow takes monthly data (freqCode M)");
    if (strcmp(v[CT_FREQ], "M") != 0)
        BAD("freqCode", "bad freqCode \"%.8s\" (expected M)", v[CT_FREQ]);
    /* Period: `period` (YYYYMM) or refYear + refMonth. */
    if (!empty(v[CT_PERIOD])) {
        if (yyyymm(v[CT_PERIOD], &out->period))
            BAD("period", "bad period \"%.20s\" (expected YYYYMM for a monthly row)",
                v[CT_PERIOD]);
    } else {
        char buf[16];
        if (empty(v[CT_REFYEAR]) || empty(v[CT_REFMONTH]))
            BAD("period", "empty required field (and no refYear/refMonth)");
        snprintf(buf, sizeof buf, "%.4s%02d", v[CT_REFYEAR], atoi(v[CT_REFMONTH]));
        if (strlen(v[CT_REFYEAR]) != 4 || yyyymm(buf, &out->period))
            BAD("refMonth", "bad refYear/refMonth \"%.8s\"/\"%.8s\"", v[CT_REFYEAR],
                v[CT_REFMONTH]);
    }
    if (empty(v[CT_REPORTERISO]))
        BAD("reporterISO", "empty required field");
    const char *rep = tf_econ_from_alpha3(s->o.econ, v[CT_REPORTERISO]);
    if (!rep)
        BAD("reporterISO", "reporterISO \"%.16s\" is not an ISO 3166-1 alpha-3 code in iso-codes",
            v[CT_REPORTERISO]);
    const char *par;
    if (empty(v[CT_PARTNERISO]))
        BAD("partnerISO", "empty required field");
    if (strcmp(v[CT_PARTNERISO], "W00") == 0 ||
        (!empty(v[CT_PARTNERCODE]) && strcmp(v[CT_PARTNERCODE], "0") == 0))
        par = "WLD";
    else if (!(par = tf_econ_from_alpha3(s->o.econ, v[CT_PARTNERISO])))
        BAD("partnerISO",
            "partnerISO \"%.16s\" is not an ISO 3166-1 alpha-3 code in iso-codes (a Comtrade "
            "area such as 'Other Asia, nes' is not mapped)",
            v[CT_PARTNERISO]);
    snprintf(out->reporter, sizeof out->reporter, "%s", rep);
    snprintf(out->partner, sizeof out->partner, "%s", par);
    if (empty(v[CT_FLOW]))
        BAD("flowCode", "empty required field");
    if (strcmp(v[CT_FLOW], "M") == 0)
        out->flow = TF_FLOW_IMPORT;
    else if (strcmp(v[CT_FLOW], "X") == 0)
        out->flow = TF_FLOW_EXPORT;
    else
        SKIP("flowCode %.8s is not mapped (only M import and X export)", v[CT_FLOW]);
    /* Breakdowns by second partner, customs procedure, mode of transport or
     * of supply would add up to their total row: only totals are taken. */
    if (!empty(v[CT_PARTNER2CODE]) && strcmp(v[CT_PARTNER2CODE], "0") != 0)
        SKIP("partner2Code other than 0 (a breakdown by second partner)");
    if (!empty(v[CT_CUSTOMS]) && strcmp(v[CT_CUSTOMS], "C00") != 0)
        SKIP("customsCode other than C00 (a breakdown by customs procedure)");
    if (!empty(v[CT_MOT]) && strcmp(v[CT_MOT], "0") != 0)
        SKIP("motCode other than 0 (a breakdown by mode of transport)");
    if (!empty(v[CT_MOS]) && strcmp(v[CT_MOS], "0") != 0)
        SKIP("mosCode other than 0 (a breakdown by mode of supply)");
    const char *cmd = v[CT_CMD];
    size_t nd = 0;
    bool total = !empty(cmd) && strcmp(cmd, "TOTAL") == 0;
    if (empty(cmd))
        BAD("cmdCode", "empty required field");
    if (!total && (!all_digits(cmd, &nd) || nd < 2 || nd > 6 || nd % 2))
        BAD("cmdCode", "bad cmdCode \"%.16s\" (TOTAL or 2, 4 or 6 digits)", cmd);
    if (!level_takes(s, total, nd, errstr, errlen)) {
        *column = "-";
        return TF_SRC_SKIP;
    }
    if (!total)
        memcpy(out->hs_code, cmd, nd + 1);
    if (empty(v[CT_VALUE]))
        BAD("primaryValue", "empty required field");
    tf_source_status_t st =
        money(s, "primaryValue", v[CT_VALUE], false, "USD", out->period, &out->value_cents,
              column, errstr, errlen);
    if (st != TF_SRC_OK)
        return st;
    const char *unit = v[CT_QTYUNIT];
    if (!empty(unit) && strcmp(unit, "N/A") != 0 && !empty(v[CT_QTY])) {
        if (strlen(unit) > TF_UNIT_MAX)
            BAD("qtyUnitAbbr", "longer than %d bytes", TF_UNIT_MAX);
        if ((st = quantity("qty", v[CT_QTY], false, out, column, errstr, errlen)) != TF_SRC_OK)
            return st;
        snprintf(out->unit, sizeof out->unit, "%s", unit);
    }
    char per[16];
    snprintf(per, sizeof per, "%04d%02d", tf_period_year(out->period),
             tf_period_month(out->period));
    const char *key[] = {"comtrade", out->reporter, out->partner, v[CT_FLOW], per,
                         total ? "TOTAL" : cmd};
    tf_source_record_id("ct", out->reporter, out->period, key, 6, out->record_id,
                        sizeof out->record_id);
    return TF_SRC_OK;
}

static tf_source_status_t build_comext(tf_source_t *s, const char *const *v, tf_record_t *out,
                                       const char **column, char *errstr, size_t errlen)
{
    const char *p = v[CX_PERIOD];
    if (empty(p))
        BAD("PERIOD", "empty required field");
    if (strlen(p) == 6 && p[4] == '5' && p[5] == '2')
        BAD("PERIOD", "annual total (PERIOD %.6s, month 52): tradeflow takes monthly data", p);
    if (yyyymm(p, &out->period) || strlen(p) != 6)
        BAD("PERIOD", "bad PERIOD \"%.20s\" (expected YYYYMM)", p);
    const char *rep = NULL, *par = NULL;
    if (empty(v[CX_DECLARANT]))
        BAD("DECLARANT_ISO", "empty required field");
    if (!(rep = tf_econ_from_alpha2(s->o.econ, v[CX_DECLARANT])))
        BAD("DECLARANT_ISO",
            "DECLARANT_ISO \"%.16s\" is not an ISO 3166-1 alpha-2 code in iso-codes",
            v[CX_DECLARANT]);
    if (empty(v[CX_PARTNER]))
        BAD("PARTNER_ISO", "empty required field");
    if (!(par = tf_econ_from_alpha2(s->o.econ, v[CX_PARTNER])))
        BAD("PARTNER_ISO",
            "PARTNER_ISO \"%.16s\" is not an ISO 3166-1 alpha-2 code in iso-codes (Comext's "
            "secret or unspecified partners such as QU, QV, QY, QZ are not economies)",
            v[CX_PARTNER]);
    snprintf(out->reporter, sizeof out->reporter, "%s", rep);
    snprintf(out->partner, sizeof out->partner, "%s", par);
    const char *f = v[CX_FLOW];
    if (empty(f))
        BAD("FLOW", "empty required field");
    if (strcmp(f, "1") == 0)
        out->flow = TF_FLOW_IMPORT;
    else if (strcmp(f, "2") == 0)
        out->flow = TF_FLOW_EXPORT;
    else
        BAD("FLOW", "bad FLOW \"%.8s\" (1 import, 2 export)", f);
    /* PRODUCT_NC: 8-digit CN code, TOTAL, or a confidential code (digits
     * then X: the chapter or heading is known, the detail is secret). */
    const char *pc = v[CX_PRODUCT];
    if (empty(pc))
        BAD("PRODUCT_NC", "empty required field");
    bool total = strcmp(pc, "TOTAL") == 0;
    size_t nd = 0, len = strlen(pc);
    bool confidential = false;
    if (!total) {
        while (nd < len && pc[nd] >= '0' && pc[nd] <= '9')
            nd++;
        confidential = nd < len;
        for (size_t i = nd; i < len; i++)
            if (pc[i] != 'X')
                BAD("PRODUCT_NC", "bad PRODUCT_NC \"%.16s\" (8 digits, TOTAL, or digits then X "
                    "for confidential trade)", pc);
        if (len != 8 || (!confidential && nd != 8))
            BAD("PRODUCT_NC", "bad PRODUCT_NC \"%.16s\" (8 characters expected)", pc);
    }
    /* Confidential rows are trade recorded at chapter level instead of CN8:
     * they belong to the CN8 detail (without them the detail does not add
     * up to the total), with the known leading digits as the HS code. */
    if (!level_takes(s, total, total ? 0 : 8, errstr, errlen)) {
        *column = "-";
        return TF_SRC_SKIP;
    }
    if (!total && nd >= 2) {
        size_t k = confidential ? nd - nd % 2 : nd;
        memcpy(out->hs_code, pc, k);
        out->hs_code[k] = '\0';
    }
    if (empty(v[CX_VALUE]))
        BAD("VALUE_IN_EUROS", "empty required field");
    tf_source_status_t st = money(s, "VALUE_IN_EUROS", v[CX_VALUE], false, "EUR", out->period,
                                  &out->value_cents, column, errstr, errlen);
    if (st != TF_SRC_OK)
        return st;
    if (!empty(v[CX_KG])) {
        if ((st = quantity("QUANTITY_IN_KG", v[CX_KG], false, out, column, errstr, errlen)) !=
            TF_SRC_OK)
            return st;
        snprintf(out->unit, sizeof out->unit, "kg");
    }
    const char *key[] = {"comext", out->reporter, out->partner, f, p, pc,
                         v[CX_REGIME] ? v[CX_REGIME] : "",
                         v[CX_TRADE_TYPE] ? v[CX_TRADE_TYPE] : ""};
    tf_source_record_id("cx", out->reporter, out->period, key, 8, out->record_id,
                        sizeof out->record_id);
    return TF_SRC_OK;
}

static tf_source_status_t build_gacc(tf_source_t *s, const char *const *v, tf_record_t *out,
                                     const char **column, char *errstr, size_t errlen)
{
    const char *p = v[GA_PERIOD];
    if (empty(p))
        BAD("数据年月", "empty required field");
    if (yyyymm(p, &out->period))
        BAD("数据年月", "bad 数据年月 \"%.20s\" (expected YYYYMM)", p);
    snprintf(out->reporter, sizeof out->reporter, "CHN");
    const char *name = v[GA_PNAME];
    if (empty(name))
        BAD("贸易伙伴名称", "empty required field");
    const char *par = tf_econ_from_zh(s->o.econ, name);
    if (!par)
        BAD("贸易伙伴名称",
            "partner \"%.40s\" is not a Chinese name in iso-codes nor in the alias table", name);
    snprintf(out->partner, sizeof out->partner, "%s", par);
    if (!empty(v[GA_FLOW])) {
        if (strcmp(v[GA_FLOW], "出口") == 0)
            out->flow = TF_FLOW_EXPORT;
        else if (strcmp(v[GA_FLOW], "进口") == 0)
            out->flow = TF_FLOW_IMPORT;
        else
            BAD("进出口", "bad flow \"%.20s\" (出口 export or 进口 import)", v[GA_FLOW]);
    } else if (s->o.flow != TF_FLOW_UNKNOWN) {
        out->flow = s->o.flow;
    } else {
        BAD("进出口", "empty flow and no --flow");
    }
    const char *hs = v[GA_HS];
    size_t nd = 0;
    if (empty(hs))
        BAD("商品编码", "empty required field");
    bool total = strcmp(hs, "总值") == 0 || strcmp(hs, "TOTAL") == 0;
    if (!total && (!all_digits(hs, &nd) || nd < 2 || nd > 10 || nd % 2))
        BAD("商品编码", "bad 商品编码 \"%.16s\" (2-10 digits, an even count, or 总值)", hs);
    if (!level_takes(s, total, nd, errstr, errlen)) {
        *column = "-";
        return TF_SRC_SKIP;
    }
    if (!total)
        memcpy(out->hs_code, hs, nd + 1);
    tf_source_status_t st;
    if (!empty(v[GA_USD]))
        st = money(s, "美元", v[GA_USD], true, "USD", out->period, &out->value_cents, column,
                   errstr, errlen);
    else if (!empty(v[GA_CNY]))
        st = money(s, "人民币", v[GA_CNY], true, "CNY", out->period, &out->value_cents, column,
                   errstr, errlen);
    else
        BAD(v[GA_USD] ? "美元" : "人民币", "empty required field");
    if (st != TF_SRC_OK)
        return st;
    if (!empty(v[GA_Q1]) && !empty(v[GA_U1])) {
        if (strlen(v[GA_U1]) > TF_UNIT_MAX)
            BAD("第一计量单位", "longer than %d bytes", TF_UNIT_MAX);
        if ((st = quantity("第一数量", v[GA_Q1], true, out, column, errstr, errlen)) != TF_SRC_OK)
            return st;
        snprintf(out->unit, sizeof out->unit, "%s", v[GA_U1]);
    }
    char fl[2] = {out->flow == TF_FLOW_EXPORT ? 'X' : 'M', 0};
    char per[16];
    snprintf(per, sizeof per, "%04d%02d", tf_period_year(out->period),
             tf_period_month(out->period));
    const char *key[] = {"gacc", out->reporter, out->partner, fl, per, total ? "TOTAL" : hs,
                         v[GA_MODE] ? v[GA_MODE] : "", v[GA_REG] ? v[GA_REG] : ""};
    tf_source_record_id("gacc", out->reporter, out->period, key, 8, out->record_id,
                        sizeof out->record_id);
    return TF_SRC_OK;
}

tf_source_status_t tf_source_build(tf_source_t *s, const char *const *vals, tf_record_t *out,
                                   const char **column, char *errstr, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->dataset = TF_DATASET_CUSTOMS;
    out->revision = s->o.release;
    tf_source_status_t st;
    switch (s->o.kind) {
    case TF_SOURCE_COMTRADE: st = build_comtrade(s, vals, out, column, errstr, errlen); break;
    case TF_SOURCE_COMEXT: st = build_comext(s, vals, out, column, errstr, errlen); break;
    default: st = build_gacc(s, vals, out, column, errstr, errlen); break;
    }
    if (st != TF_SRC_OK)
        return st;
    char why[256];
    if (tf_record_validate(out, column, why, sizeof why)) {
        snprintf(errstr, errlen, "%s", why);
        return TF_SRC_BAD;
    }
    return TF_SRC_OK;
}
