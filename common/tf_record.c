#include "tf_record.h"

#include <stdio.h>
#include <string.h>

static const char *const flow_names[] = {"unknown", "export", "import", "outward", "inward",
                                         "total"};

const char *tf_dataset_name(tf_dataset_t d)
{
    return d == TF_DATASET_INVESTMENT ? "investment" : "customs";
}

int tf_dataset_parse(const char *s, tf_dataset_t *out)
{
    if (strcmp(s, "customs") == 0)
        *out = TF_DATASET_CUSTOMS;
    else if (strcmp(s, "investment") == 0)
        *out = TF_DATASET_INVESTMENT;
    else
        return -1;
    return 0;
}

const char *tf_flow_name(tf_flow_t f)
{
    if ((unsigned)f >= sizeof(flow_names) / sizeof(flow_names[0]))
        return "unknown";
    return flow_names[f];
}

bool tf_flow_valid_for(tf_dataset_t d, tf_flow_t f)
{
    if (d == TF_DATASET_CUSTOMS)
        return f == TF_FLOW_EXPORT || f == TF_FLOW_IMPORT;
    return f == TF_FLOW_OUTWARD || f == TF_FLOW_INWARD;
}

int tf_flow_parse(tf_dataset_t d, const char *s, tf_flow_t *out)
{
    for (int f = TF_FLOW_EXPORT; f <= TF_FLOW_INWARD; f++) {
        if (strcmp(s, flow_names[f]) == 0 && tf_flow_valid_for(d, (tf_flow_t)f)) {
            *out = (tf_flow_t)f;
            return 0;
        }
    }
    return -1;
}

int tf_period_parse(const char *s, int32_t *out, char *errstr, size_t errlen)
{
    size_t n = strlen(s);
    if (n != 7 || s[4] != '-') {
        snprintf(errstr, errlen, "malformed period \"%.32s\": expected YYYY-MM", s);
        return -1;
    }
    for (int i = 0; i < 7; i++) {
        if (i != 4 && (s[i] < '0' || s[i] > '9')) {
            snprintf(errstr, errlen, "malformed period \"%.32s\": expected YYYY-MM", s);
            return -1;
        }
    }
    int year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int month = (s[5] - '0') * 10 + (s[6] - '0');
    if (month < 1 || month > 12) {
        snprintf(errstr, errlen, "impossible period \"%s\": month must be 01..12", s);
        return -1;
    }
    if (year < 1900 || year > 2999) {
        snprintf(errstr, errlen, "impossible period \"%s\": year must be 1900..2999", s);
        return -1;
    }
    *out = year * 12 + (month - 1);
    return 0;
}

void tf_period_format(int32_t period, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%04d-%02d", tf_period_year(period), tf_period_month(period));
}

int tf_decimal_parse(const char *s, int scale, int64_t *out, char *errstr, size_t errlen)
{
    const char *p = s;
    int64_t v = 0;
    int digits = 0, frac = 0;
    bool dot = false;
    if (*p == '\0') {
        snprintf(errstr, errlen, "empty number");
        return -1;
    }
    if (*p == '-') {
        snprintf(errstr, errlen, "negative value \"%.40s\"", s);
        return -1;
    }
    for (; *p; p++) {
        if (*p == '.' && !dot) {
            dot = true;
            continue;
        }
        if (*p < '0' || *p > '9') {
            snprintf(errstr, errlen, "not a decimal number: \"%.40s\"", s);
            return -1;
        }
        if (dot && ++frac > scale) {
            snprintf(errstr, errlen, "too many decimal places in \"%.40s\" (at most %d)", s,
                     scale);
            return -1;
        }
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10) {
            snprintf(errstr, errlen, "value \"%.40s\" is too large", s);
            return -1;
        }
        v = v * 10 + d;
        digits++;
    }
    if (digits == 0 || (dot && frac == 0)) {
        snprintf(errstr, errlen, "not a decimal number: \"%.40s\"", s);
        return -1;
    }
    for (; frac < scale; frac++) {
        if (v > INT64_MAX / 10) {
            snprintf(errstr, errlen, "value \"%.40s\" is too large", s);
            return -1;
        }
        v *= 10;
    }
    *out = v;
    return 0;
}

int tf_decimal_format(int64_t v, int scale, char *buf, size_t buflen)
{
    /* Digits from the right (no printf: the consumer formats every record). */
    char d[48];
    int n = sizeof(d);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    for (int i = 0; i < scale; i++) {
        d[--n] = (char)('0' + u % 10);
        u /= 10;
    }
    if (scale > 0)
        d[--n] = '.';
    do {
        d[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        d[--n] = '-';
    int len = (int)sizeof(d) - n;
    if (buflen > 0) {
        size_t c = (size_t)len < buflen ? (size_t)len : buflen - 1;
        memcpy(buf, d + n, c);
        buf[c] = 0;
    }
    return len;
}

bool tf_code_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > TF_CODE_MAX || !(s[0] >= 'A' && s[0] <= 'Z'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

bool tf_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

static int check_text(const char *v, size_t max, bool required, const char *col,
                      const char **column, char *errstr, size_t errlen)
{
    size_t n = strnlen(v, max + 1);
    if (n > max) {
        *column = col;
        snprintf(errstr, errlen, "longer than %zu bytes", max);
        return -1;
    }
    if (required && n == 0) {
        *column = col;
        snprintf(errstr, errlen, "empty required field");
        return -1;
    }
    if (!tf_utf8_valid(v, n)) {
        *column = col;
        snprintf(errstr, errlen, "invalid UTF-8");
        return -1;
    }
    return 0;
}

int tf_record_validate(const tf_record_t *r, const char **column, char *errstr, size_t errlen)
{
    if (r->dataset != TF_DATASET_CUSTOMS && r->dataset != TF_DATASET_INVESTMENT) {
        *column = "dataset";
        snprintf(errstr, errlen, "unknown dataset");
        return -1;
    }
    if (check_text(r->record_id, TF_RECORD_ID_MAX, true, "record_id", column, errstr, errlen))
        return -1;
    if (r->revision < 0) {
        *column = "revision";
        snprintf(errstr, errlen, "negative revision");
        return -1;
    }
    if (!tf_code_valid(r->reporter)) {
        *column = "reporter";
        snprintf(errstr, errlen, "bad economy code \"%.20s\" (2-16 of A-Z0-9, starting A-Z)",
                 r->reporter);
        return -1;
    }
    if (!tf_code_valid(r->partner)) {
        *column = "partner";
        snprintf(errstr, errlen, "bad economy code \"%.20s\" (2-16 of A-Z0-9, starting A-Z)",
                 r->partner);
        return -1;
    }
    if (strcmp(r->reporter, r->partner) == 0) {
        *column = "partner";
        snprintf(errstr, errlen, "partner equals reporter");
        return -1;
    }
    if (!tf_flow_valid_for(r->dataset, r->flow)) {
        *column = "flow";
        snprintf(errstr, errlen, "flow \"%s\" is not valid for %s", tf_flow_name(r->flow),
                 tf_dataset_name(r->dataset));
        return -1;
    }
    if (r->period < TF_PERIOD_MIN || r->period > TF_PERIOD_MAX) {
        *column = "period";
        snprintf(errstr, errlen, "period out of range 1900-01..2999-12");
        return -1;
    }
    if (r->value_cents < 0) {
        *column = "value_usd";
        snprintf(errstr, errlen, "negative value");
        return -1;
    }
    if (r->value_cents > TF_VALUE_CENTS_MAX) {
        char v[32];
        tf_decimal_format(r->value_cents, 2, v, sizeof(v));
        *column = "value_usd";
        snprintf(errstr, errlen,
                 "value %s exceeds the schema's decimal(18,2) (at most 9999999999999999.99)", v);
        return -1;
    }
    if (r->dataset == TF_DATASET_CUSTOMS) {
        size_t n = strnlen(r->hs_code, TF_HS_MAX + 1);
        if (n > 0) {
            bool ok = n >= 2 && n <= TF_HS_MAX;
            for (size_t i = 0; ok && i < n; i++)
                ok = r->hs_code[i] >= '0' && r->hs_code[i] <= '9';
            if (!ok) {
                *column = "hs_code";
                snprintf(errstr, errlen, "HS code must be 2-10 digits");
                return -1;
            }
        }
        if (r->has_quantity && r->quantity_milli < 0) {
            *column = "quantity";
            snprintf(errstr, errlen, "negative quantity");
            return -1;
        }
        if (r->has_quantity && r->quantity_milli > TF_QUANTITY_MILLI_MAX) {
            char v[32];
            tf_decimal_format(r->quantity_milli, 3, v, sizeof(v));
            *column = "quantity";
            snprintf(errstr, errlen,
                     "quantity %s exceeds the schema's decimal(18,3) (at most "
                     "999999999999999.999)",
                     v);
            return -1;
        }
        if (check_text(r->unit, TF_UNIT_MAX, false, "unit", column, errstr, errlen))
            return -1;
        if (r->sector[0]) {
            *column = "sector";
            snprintf(errstr, errlen, "sector is not a customs field");
            return -1;
        }
    } else {
        if (check_text(r->sector, TF_SECTOR_MAX, false, "sector", column, errstr, errlen))
            return -1;
        if (r->hs_code[0] || r->has_quantity || r->unit[0]) {
            *column = r->hs_code[0] ? "hs_code" : r->has_quantity ? "quantity" : "unit";
            snprintf(errstr, errlen, "not an investment field");
            return -1;
        }
    }
    return 0;
}
