#include "tf_config.h"
#include "tf_secret.h"
#include "tf_kafka.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tf_record.h"

typedef struct entry {
    char *key;    /* owned (pass-through keys only; table keys point into props) */
    char *value;  /* owned; for lists, items joined with ',' */
    char *origin; /* owned */
    char **items; /* lists: owned array of owned strings */
    size_t nitems;
} entry_t;

struct tf_config {
    char *program;
    const tf_cfg_prop_t *props;
    size_t nprops;
    entry_t *vals;   /* one per prop */
    entry_t *extra;  /* kafka.* / pg.* (and the program's extra prefix) */
    size_t nextra, capextra;
    char *extra_prefix; /* owned; tf_config_allow_prefix(), NULL = none */
};

static int prop_index(const tf_config_t *c, const char *key)
{
    for (size_t i = 0; i < c->nprops; i++)
        if (strcmp(c->props[i].key, key) == 0)
            return (int)i;
    return -1;
}

static int is_passthrough(const tf_config_t *c, const char *key)
{
    size_t k = c->extra_prefix ? strlen(c->extra_prefix) : 0;
    return (strncmp(key, "kafka.", 6) == 0 && key[6]) || (strncmp(key, "pg.", 3) == 0 && key[3]) ||
           (k && strncmp(key, c->extra_prefix, k) == 0 && key[k]);
}

int tf_config_allow_prefix(tf_config_t *c, const char *prefix)
{
    char *p = strdup(prefix);
    if (!p)
        return -1;
    free(c->extra_prefix);
    c->extra_prefix = p;
    return 0;
}

tf_config_t *tf_config_new(const char *program, const tf_cfg_prop_t *props)
{
    tf_config_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->program = strdup(program);
    c->props = props;
    while (props[c->nprops].key)
        c->nprops++;
    c->vals = calloc(c->nprops ? c->nprops : 1, sizeof(*c->vals));
    if (!c->program || !c->vals) {
        tf_config_destroy(c);
        return NULL;
    }
    for (size_t i = 0; i < c->nprops; i++) {
        if (props[i].def) {
            char err[256];
            if (tf_config_set(c, props[i].key, props[i].def, "default", err, sizeof(err))) {
                tf_config_destroy(c); /* a bad table is a programming error */
                return NULL;
            }
        }
    }
    return c;
}

static void entry_clear(entry_t *e)
{
    free(e->value);
    free(e->origin);
    for (size_t i = 0; i < e->nitems; i++)
        free(e->items[i]);
    free(e->items);
    e->value = e->origin = NULL;
    e->items = NULL;
    e->nitems = 0;
}

void tf_config_destroy(tf_config_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->vals && i < c->nprops; i++)
        entry_clear(&c->vals[i]);
    for (size_t i = 0; i < c->nextra; i++) {
        entry_clear(&c->extra[i]);
        free(c->extra[i].key);
    }
    free(c->extra);
    free(c->vals);
    free(c->program);
    free(c->extra_prefix);
    free(c);
}

static int parse_bool(const char *v, bool *out)
{
    static const char *t[] = {"true", "yes", "on", "1"}, *f[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, t[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, f[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int validate(const tf_cfg_prop_t *p, const char *v, char *errstr, size_t errlen)
{
    switch (p->type) {
    case TF_CFG_INT: {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (!*v || *end || errno || n < p->min || n > p->max) {
            snprintf(errstr, errlen, "%s: expected an integer %ld..%ld, got \"%.40s\"", p->key,
                     p->min, p->max, v);
            return -1;
        }
        return 0;
    }
    case TF_CFG_BOOL: {
        bool b;
        if (parse_bool(v, &b)) {
            snprintf(errstr, errlen, "%s: expected true or false, got \"%.40s\"", p->key, v);
            return -1;
        }
        return 0;
    }
    case TF_CFG_ENUM: {
        size_t n = strlen(v);
        for (const char *s = p->choices; s && *s;) {
            const char *bar = strchr(s, '|');
            size_t l = bar ? (size_t)(bar - s) : strlen(s);
            if (l == n && strncmp(s, v, n) == 0)
                return 0;
            s = bar ? bar + 1 : s + l;
        }
        snprintf(errstr, errlen, "%s: expected one of %s, got \"%.40s\"", p->key, p->choices, v);
        return -1;
    }
    case TF_CFG_PERIOD: {
        int32_t per;
        char why[128];
        if (tf_period_parse(v, &per, why, sizeof(why))) {
            snprintf(errstr, errlen, "%s: %s", p->key, why);
            return -1;
        }
        return 0;
    }
    default:
        return 0;
    }
}

static int set_entry(entry_t *e, const char *value, const char *origin, int list)
{
    char *o = strdup(origin ? origin : "");
    if (!o)
        return -1;
    if (list) {
        /* Each set appends its comma-separated items. */
        char *copy = strdup(value);
        if (!copy) {
            free(o);
            return -1;
        }
        for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
            while (isspace((unsigned char)*tok))
                tok++;
            size_t l = strlen(tok);
            while (l && isspace((unsigned char)tok[l - 1]))
                tok[--l] = '\0';
            if (!l)
                continue;
            char **ni = realloc(e->items, (e->nitems + 1) * sizeof(*ni));
            if (!ni)
                break;
            e->items = ni;
            e->items[e->nitems++] = strdup(tok);
        }
        free(copy);
        size_t total = 1;
        for (size_t i = 0; i < e->nitems; i++)
            total += strlen(e->items[i]) + 1;
        char *joined = calloc(1, total);
        for (size_t i = 0; joined && i < e->nitems; i++) {
            if (i)
                strcat(joined, ",");
            strcat(joined, e->items[i]);
        }
        free(e->value);
        e->value = joined;
    } else {
        char *v = strdup(value);
        if (!v) {
            free(o);
            return -1;
        }
        free(e->value);
        e->value = v;
    }
    free(e->origin);
    e->origin = o;
    return 0;
}

int tf_config_set(tf_config_t *c, const char *key, const char *value, const char *origin,
                  char *errstr, size_t errlen)
{
    int i = prop_index(c, key);
    if (i >= 0) {
        const tf_cfg_prop_t *p = &c->props[i];
        if (validate(p, value, errstr, errlen))
            return -1;
        entry_t *e = &c->vals[i];
        /* A list set from a later source replaces the earlier source's items. */
        if (p->type == TF_CFG_LIST && e->origin && strcmp(e->origin, origin ? origin : "") != 0 &&
            !(origin && origin[0] == '-' && e->origin[0] == '-'))
            entry_clear(e);
        if (set_entry(e, value, origin, p->type == TF_CFG_LIST)) {
            snprintf(errstr, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    if (!is_passthrough(c, key)) {
        snprintf(errstr, errlen, "unknown key \"%.80s\" (see %s --help-config)", key, c->program);
        return -1;
    }
    for (size_t k = 0; k < c->nextra; k++)
        if (strcmp(c->extra[k].key, key) == 0)
            return set_entry(&c->extra[k], value, origin, 0) ? -1 : 0;
    if (c->nextra == c->capextra) {
        size_t cap = c->capextra ? c->capextra * 2 : 16;
        entry_t *ne = realloc(c->extra, cap * sizeof(*ne));
        if (!ne) {
            snprintf(errstr, errlen, "out of memory");
            return -1;
        }
        c->extra = ne;
        c->capextra = cap;
    }
    entry_t *e = &c->extra[c->nextra];
    memset(e, 0, sizeof(*e));
    if (!(e->key = strdup(key)) || set_entry(e, value, origin, 0)) {
        free(e->key);
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    c->nextra++;
    return 0;
}

int tf_config_load_file(tf_config_t *c, const char *path, char *errstr, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(errstr, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char line[4096], origin[600], why[512];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
            snprintf(errstr, errlen, "%s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || isspace((unsigned char)line[n - 1])))
            line[--n] = '\0';
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            snprintf(errstr, errlen, "%s:%d: expected key = value", path, lineno);
            rc = -1;
            break;
        }
        char *k = p, *v = eq + 1;
        *eq = '\0';
        size_t kl = strlen(k);
        while (kl && isspace((unsigned char)k[kl - 1]))
            k[--kl] = '\0';
        while (isspace((unsigned char)*v))
            v++;
        snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
        if (tf_config_set(c, k, v, origin, why, sizeof(why))) {
            snprintf(errstr, errlen, "%s:%d: %s", path, lineno, why);
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

static void env_name(const char *key, char *buf, size_t len)
{
    size_t j = snprintf(buf, len, "TRADEFLOW_");
    for (const char *k = key; *k && j + 1 < len; k++)
        buf[j++] = (*k == '.' || *k == '-') ? '_' : (char)toupper((unsigned char)*k);
    buf[j] = '\0';
}

int tf_config_load_env(tf_config_t *c, char *errstr, size_t errlen)
{
    char name[128], origin[160], why[512];
    for (size_t i = 0; i < c->nprops; i++) {
        env_name(c->props[i].key, name, sizeof(name));
        const char *v = getenv(name);
        if (!v || !*v)
            continue;
        snprintf(origin, sizeof(origin), "environment %s", name);
        if (tf_config_set(c, c->props[i].key, v, origin, why, sizeof(why))) {
            snprintf(errstr, errlen, "environment %s: %s", name, why);
            return -1;
        }
    }
    return 0;
}

static const entry_t *get(const tf_config_t *c, const char *key)
{
    int i = prop_index(c, key);
    return i >= 0 && c->vals[i].value ? &c->vals[i] : NULL;
}

bool tf_config_has(const tf_config_t *c, const char *key)
{
    if (get(c, key))
        return true;
    for (size_t i = 0; i < c->nextra; i++)
        if (strcmp(c->extra[i].key, key) == 0)
            return true;
    return false;
}

const char *tf_config_str(const tf_config_t *c, const char *key)
{
    const entry_t *e = get(c, key);
    return e ? e->value : NULL;
}

long tf_config_int(const tf_config_t *c, const char *key)
{
    const entry_t *e = get(c, key);
    return e ? strtol(e->value, NULL, 10) : 0;
}

bool tf_config_bool(const tf_config_t *c, const char *key)
{
    const entry_t *e = get(c, key);
    bool b = false;
    if (e)
        parse_bool(e->value, &b);
    return b;
}

size_t tf_config_list_len(const tf_config_t *c, const char *key)
{
    const entry_t *e = get(c, key);
    return e ? e->nitems : 0;
}

const char *tf_config_list_item(const tf_config_t *c, const char *key, size_t i)
{
    const entry_t *e = get(c, key);
    return e && i < e->nitems ? e->items[i] : NULL;
}

int tf_config_foreach(const tf_config_t *c, const char *prefix,
                      int (*fn)(const char *name, const char *value, void *arg), void *arg)
{
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < c->nextra; i++) {
        if (strncmp(c->extra[i].key, prefix, pl) != 0)
            continue;
        int r = fn(c->extra[i].key + pl, c->extra[i].value, arg);
        if (r)
            return r;
    }
    return 0;
}

char *tf_config_pg_conninfo(const tf_config_t *c)
{
    const char *base = tf_config_str(c, "pg");
    size_t n = base ? strlen(base) + 1 : 1;
    int any = base && *base;
    for (size_t i = 0; i < c->nextra; i++)
        if (strncmp(c->extra[i].key, "pg.", 3) == 0) {
            n += strlen(c->extra[i].key) + 2 * strlen(c->extra[i].value) + 8;
            any = 1;
        }
    if (!any)
        return NULL;
    char *out = calloc(1, n);
    if (!out)
        return NULL;
    if (base)
        strcpy(out, base);
    /* A URI cannot be followed by keywords: libpq takes either form. Keywords
     * are then appended as URI query parameters. */
    int uri = base && (strncmp(base, "postgresql://", 13) == 0 || strncmp(base, "postgres://", 11) == 0);
    int first_param = uri ? strchr(base, '?') == NULL : 0;
    for (size_t i = 0; i < c->nextra; i++) {
        if (strncmp(c->extra[i].key, "pg.", 3) != 0)
            continue;
        char *p = out + strlen(out);
        if (uri) {
            p += sprintf(p, "%s%s=", first_param ? "?" : "&", c->extra[i].key + 3);
            first_param = 0;
            for (const char *v = c->extra[i].value; *v; v++) {
                if (isalnum((unsigned char)*v) || strchr("-._~", *v))
                    *p++ = *v;
                else
                    p += sprintf(p, "%%%02X", (unsigned char)*v);
            }
            *p = '\0';
        } else {
            p += sprintf(p, "%s%s='", *out ? " " : "", c->extra[i].key + 3);
            for (const char *v = c->extra[i].value; *v; v++) {
                if (*v == '\'' || *v == '\\')
                    *p++ = '\\';
                *p++ = *v;
            }
            *p++ = '\'';
            *p = '\0';
        }
    }
    return out;
}

const char *tf_config_mask(const char *key, const char *value, char *buf, size_t buflen)
{
    return tf_secret_mask_value(key, value, buf, buflen);
}

void tf_config_print(const tf_config_t *c, FILE *out)
{
    char buf[2048];
    fprintf(out, "# effective configuration of %s (secrets masked)\n", c->program);
    for (size_t i = 0; i < c->nprops; i++) {
        const entry_t *e = &c->vals[i];
        const tf_cfg_prop_t *p = &c->props[i];
        if (!e->value) {
            fprintf(out, "# %s is not set\n", p->key);
            continue;
        }
        const char *v = (p->flags & TF_CFG_SECRET) ? "********"
                                                   : tf_config_mask(p->key, e->value, buf, sizeof(buf));
        fprintf(out, "%s = %s%*s# %s\n", p->key, v, 2, "", e->origin);
    }
    for (size_t i = 0; i < c->nextra; i++)
        fprintf(out, "%s = %s  # %s\n", c->extra[i].key,
                tf_config_mask(c->extra[i].key, c->extra[i].value, buf, sizeof(buf)),
                c->extra[i].origin);
}

void tf_config_reference(const char *program, const tf_cfg_prop_t *props, FILE *out)
{
    static const char *types[] = {"string", "integer", "boolean", "choice", "period YYYY-MM", "list"};
    char name[128];
    fprintf(out, "### %s\n\n| key | type | default | environment | description |\n"
                 "|---|---|---|---|---|\n", program);
    for (const tf_cfg_prop_t *p = props; p->key; p++) {
        env_name(p->key, name, sizeof(name));
        fprintf(out, "| `%s` | %s", p->key, types[p->type]);
        if (p->type == TF_CFG_INT)
            fprintf(out, " %ld..%ld", p->min, p->max);
        if (p->type == TF_CFG_ENUM)
            fprintf(out, " (%s)", p->choices);
        fprintf(out, " | %s%s%s | `%s` | %s |\n", p->def ? "`" : "", p->def ? p->def : "—",
                p->def ? "`" : "", name, p->desc);
    }
    fprintf(out, "| `kafka.*` | string | | | any librdkafka property, e.g. `kafka.security.protocol` (same as `-X`) |\n");
    fprintf(out, "| `pg.*` | string | | | any libpq connection keyword, e.g. `pg.sslmode` |\n\n");
}

/* -F FILE: librdkafka properties (key=value lines) as kafka.* settings. */
static int load_kafka_props(tf_config_t *c, const char *path, char *errstr, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(errstr, errlen, "-F %s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char line[2048], key[2100], origin[600], why[512];
    int n = 0, rc = 0;
    while (fgets(line, sizeof(line), f)) {
        n++;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        size_t l = strlen(p);
        while (l && isspace((unsigned char)p[l - 1]))
            p[--l] = '\0';
        if (!*p || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            snprintf(errstr, errlen, "%s:%d: expected key=value", path, n);
            rc = -1;
            break;
        }
        *eq = '\0';
        snprintf(key, sizeof(key), "kafka.%s", p);
        snprintf(origin, sizeof(origin), "%s:%d", path, n);
        if (tf_config_set(c, key, eq + 1, origin, why, sizeof(why))) {
            snprintf(errstr, errlen, "%s:%d: %s", path, n, why);
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

int tf_config_parse_args(tf_config_t *c, int argc, char **argv, const char *optstring,
                         const struct option *longopts, const tf_cfg_flag_t *map,
                         int (*other)(int code, const char *arg, int pass, void *ctx), void *ctx,
                         char *errstr, size_t errlen)
{
    const char *config_path = getenv("TRADEFLOW_CONFIG");
    int code;
    optind = 0;
    opterr = 0;
    while ((code = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
        if (code == 'c')
            config_path = optarg;
        else if (code != '?' && code != ':' && other && other(code, optarg, 1, ctx)) {
            if (errlen)
                errstr[0] = '\0';
            return -1;
        }
    }
    if (config_path && *config_path && tf_config_load_file(c, config_path, errstr, errlen))
        return -1;
    if (tf_config_load_env(c, errstr, errlen))
        return -1;

    optind = 0;
    opterr = 1;
    while ((code = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
        char why[512], kbuf[600];
        if (code == '?' || code == ':') {
            snprintf(errstr, errlen, "invalid command line (see --help)");
            return -1;
        }
        if (code == 'c')
            continue;
        if (code == 'F') {
            if (load_kafka_props(c, optarg, errstr, errlen))
                return -1;
            continue;
        }
        if (code == 'X') {
            const char *eq = strchr(optarg, '=');
            if (!eq) {
                snprintf(errstr, errlen, "-X %.80s: expected key=value", optarg);
                return -1;
            }
            snprintf(kbuf, sizeof(kbuf), "kafka.%.*s", (int)(eq - optarg), optarg);
            if (tf_config_set(c, kbuf, eq + 1, "-X", why, sizeof(why))) {
                snprintf(errstr, errlen, "-X: %s", why);
                return -1;
            }
            continue;
        }
        const tf_cfg_flag_t *m = map;
        while (m->code && m->code != code)
            m++;
        if (m->code) {
            const char *val = m->value ? m->value : optarg;
            if (tf_config_set(c, m->key, val ? val : "", "command line", why, sizeof(why))) {
                snprintf(errstr, errlen, "%s", why);
                return -1;
            }
            continue;
        }
        if (other && other(code, optarg, 2, ctx)) {
            if (errlen)
                errstr[0] = '\0'; /* other() has said why */
            return -1;
        }
    }
    /* kafka.* keys as librdkafka will take them: a misspelled property is
     * refused here, for --print-config as for a real run. */
    return tf_kafka_check_config(c, errstr, errlen);
}

int tf_config_std_other(int code, const char *arg, int pass, void *std)
{
    tf_cfg_std_t *s = std;
    int std_code = code == 'h' || code == s->code_version || code == s->code_help_config ||
                   code == s->code_print_config;
    if (!std_code)
        return s->other ? s->other(code, arg, pass, s) : pass == 1 ? 0 : -1;
    if (pass == 2) {
        if (code == s->code_print_config)
            s->print_config = 1;
        return 0;
    }
    if (code == 'h') {
        s->usage(stdout);
        s->exit_code = 0;
    } else if (code == s->code_version) {
        printf("%s %s%s\n", s->program, s->version, s->version_extra ? s->version_extra : "");
        s->exit_code = 0;
    } else if (code == s->code_help_config) {
        tf_config_reference(s->program, s->props, stdout);
        s->exit_code = 0;
    }
    return s->exit_code >= 0 ? -1 : 0;
}
