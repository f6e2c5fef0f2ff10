#include "tf_secret.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool has(const char *s, const char *sub)
{
    size_t n = strlen(sub);
    for (; *s; s++)
        if (strncasecmp(s, sub, n) == 0)
            return true;
    return false;
}

bool tf_secret_key(const char *key)
{
    if (!key)
        return false;
    return has(key, "password") || has(key, "passwd") || has(key, "secret") ||
           has(key, "token") || has(key, "credential") || has(key, "private") ||
           has(key, "sasl.oauthbearer.config") || has(key, "ssl.key.pem") ||
           has(key, "auth_header") || has(key, "authorization");
}

/* Appends n bytes of s to buf at *at, keeping room for the NUL. */
static void put(char *buf, size_t buflen, size_t *at, const char *s, size_t n)
{
    if (*at + 1 >= buflen)
        return;
    if (n > buflen - 1 - *at)
        n = buflen - 1 - *at;
    memcpy(buf + *at, s, n);
    *at += n;
    buf[*at] = '\0';
}

static bool scheme_char(char c)
{
    return isalnum((unsigned char)c) || c == '+' || c == '-' || c == '.';
}

/* Where a password=VALUE value ends: a quoted conninfo value ('...' with
 * backslash escapes), else the next blank, '&' (URI query) or the end. */
static const char *value_end(const char *v)
{
    if (*v == '\'') {
        for (v++; *v && *v != '\''; v++)
            if (*v == '\\' && v[1])
                v++;
        return *v ? v + 1 : v;
    }
    while (*v && !isspace((unsigned char)*v) && *v != '&' && *v != '#')
        v++;
    return v;
}

const char *tf_secret_mask_text(const char *text, char *buf, size_t buflen)
{
    size_t at = 0;
    if (!buf || buflen == 0)
        return "";
    buf[0] = '\0';
    if (!text)
        return buf;
    const char *p = text;
    while (*p) {
        /* scheme://user:password@ -> scheme://user:********@ */
        if (p[0] == ':' && p[1] == '/' && p[2] == '/' && p > text && scheme_char(p[-1])) {
            const char *auth = p + 3, *end = auth;
            while (*end && *end != '/' && *end != '?' && *end != '#' && *end != '@' &&
                   !isspace((unsigned char)*end))
                end++;
            if (*end == '@') {
                /* (the last '@' of the authority: a password may hold '@') */
                const char *last = end, *q = end + 1;
                while (*q && *q != '/' && *q != '?' && *q != '#' && !isspace((unsigned char)*q)) {
                    if (*q == '@')
                        last = q;
                    q++;
                }
                const char *colon = memchr(auth, ':', (size_t)(last - auth));
                put(buf, buflen, &at, p, (size_t)(auth - p));
                if (colon) {
                    put(buf, buflen, &at, auth, (size_t)(colon + 1 - auth));
                    put(buf, buflen, &at, TF_SECRET_MASK, strlen(TF_SECRET_MASK));
                } else {
                    put(buf, buflen, &at, auth, (size_t)(last - auth));
                }
                p = last; /* the '@' is copied below */
            } else {
                put(buf, buflen, &at, p, (size_t)(auth - p));
                p = auth;
                continue;
            }
        }
        /* password=VALUE (conninfo: also "password = VALUE") */
        if (strncasecmp(p, "password", 8) == 0 &&
            (p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'))) {
            const char *eq = p + 8;
            while (*eq == ' ')
                eq++;
            if (*eq == '=') {
                const char *v = eq + 1;
                while (*v == ' ')
                    v++;
                put(buf, buflen, &at, p, (size_t)(v - p));
                put(buf, buflen, &at, TF_SECRET_MASK, strlen(TF_SECRET_MASK));
                p = value_end(v);
                continue;
            }
        }
        put(buf, buflen, &at, p, 1);
        p++;
    }
    return buf;
}

const char *tf_secret_mask_value(const char *key, const char *value, char *buf, size_t buflen)
{
    if (!value)
        return NULL;
    if (tf_secret_key(key)) {
        snprintf(buf, buflen, "%s", TF_SECRET_MASK);
        return buf;
    }
    size_t kl = key ? strlen(key) : 0;
    if (kl > 12 && strncmp(key, "deliver.", 8) == 0 && strcmp(key + kl - 4, ".url") == 0) {
        /* Webhook URLs carry their token in the path or the query (Slack's
         * /services/T/B/TOKEN, Teams' sig=): only scheme://host[:port]. */
        const char *scheme = strstr(value, "://");
        const char *rest = scheme ? strpbrk(scheme + 3, "/?#") : NULL;
        if (rest && rest[1]) {
            char host[1024];
            tf_secret_mask_text(value, host, sizeof(host));
            char *cut = strstr(host, "://");
            cut = cut ? strpbrk(cut + 3, "/?#") : NULL;
            if (cut)
                *cut = '\0';
            snprintf(buf, buflen, "%s/%s", host, TF_SECRET_MASK);
            return buf;
        }
    }
    if (kl >= 4 && strcasecmp(key + kl - 4, "user") == 0 && !strstr(value, "://")) {
        const char *colon = strchr(value, ':');
        if (colon) {
            snprintf(buf, buflen, "%.*s:%s", (int)(colon - value), value, TF_SECRET_MASK);
            return buf;
        }
    }
    return tf_secret_mask_text(value, buf, buflen);
}
