/*
 * codec_tool.c - drives tf_codec from a simple text form, so that an
 * independent Avro implementation (tests/integration/codec_interop.py, with
 * fastavro) can check our bytes and hand us theirs.
 *
 *   codec_tool [OPTIONS] encode            text lines on stdin -> hex lines
 *   codec_tool [OPTIONS] decode            hex lines on stdin  -> text lines
 *   codec_tool fingerprint FILE.avsc      canonical form, then the
 *                                         fingerprint as 16 hex digits
 *
 * Text lines, fields separated by '|', empty = absent:
 *   customs|record_id|revision|reporter|partner|flow|YYYY-MM|hs_code|value|quantity|unit
 *   investment|record_id|revision|reporter|partner|flow|YYYY-MM|sector|value
 *   alert|alert_id|dataset|reporter|flow|basis|level|YYYY-MM|partner|old_rank|new_rank|value|kind|detected_at_us
 * value has 2 decimals, quantity 3. A line that fails prints "ERROR <reason>".
 * Reader schemas come from $TRADEFLOW_SCHEMA_DIR (or the default).
 * OPTIONS: --extra DIR (more writer schemas), --registry URL (Confluent
 * framing; records are registered under TOPIC-value, see --topic),
 * --topic TOPIC (default "codec-tool").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tf_avro.h"
#include "tf_codec.h"

#define MAXF 16

static int split(char *line, char **f)
{
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < MAXF; p++)
        if (*p == '|') {
            *p = '\0';
            f[n++] = p + 1;
        }
    return n;
}

static int cpy(char *dst, size_t cap, const char *s)
{
    if (strlen(s) >= cap)
        return -1;
    strcpy(dst, s);
    return 0;
}

static int parse_enum(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -1;
}

static const char *const flows[] = {"unknown", "export", "import", "outward", "inward", "total"};
static const char *const bases[] = {"month", "ytd"};
static const char *const levels[] = {"partner", "group"};
static const char *const kinds[] = {"shift", "retraction"};

static const char *topic = "codec-tool";

static int encode_line(tf_codec_t *c, char *line, tf_buf_t *out, char *err, size_t errlen)
{
    char *f[MAXF];
    int n = split(line, f);
    if (strcmp(f[0], "alert") == 0) {
        tf_alert_t a;
        memset(&a, 0, sizeof a);
        if (n != 14) {
            snprintf(err, errlen, "alert needs 14 fields, got %d", n);
            return -1;
        }
        a.alert_id = strtoll(f[1], NULL, 10);
        a.dataset = strcmp(f[2], "investment") == 0 ? TF_DATASET_INVESTMENT : TF_DATASET_CUSTOMS;
        int fl = parse_enum(f[4], flows, 6), b = parse_enum(f[5], bases, 2),
            l = parse_enum(f[6], levels, 2), k = parse_enum(f[12], kinds, 2);
        if (cpy(a.reporter, sizeof a.reporter, f[3]) < 0 || fl < 0 || b < 0 || l < 0 || k < 0 ||
            tf_period_parse(f[7], &a.period, err, errlen) < 0 ||
            cpy(a.partner, sizeof a.partner, f[8]) < 0 ||
            tf_decimal_parse(f[11], 2, &a.value_cents, err, errlen) < 0) {
            if (!err[0])
                snprintf(err, errlen, "bad alert line");
            return -1;
        }
        a.flow = (tf_flow_t)fl;
        a.basis = (tf_basis_t)b;
        a.level = (tf_level_t)l;
        a.kind = (tf_alert_kind_t)k;
        a.old_rank = (int32_t)atoi(f[9]);
        a.new_rank = (int32_t)atoi(f[10]);
        a.detected_at_us = strtoll(f[13], NULL, 10);
        return tf_codec_encode_alert(c, topic, &a, out, err, errlen);
    }
    tf_record_t r;
    memset(&r, 0, sizeof r);
    bool customs = strcmp(f[0], "customs") == 0;
    if (tf_dataset_parse(f[0], &r.dataset) < 0 || n != (customs ? 11 : 9)) {
        snprintf(err, errlen, "bad record line (%d fields)", n);
        return -1;
    }
    int fl = parse_enum(f[5], flows, 6);
    if (cpy(r.record_id, sizeof r.record_id, f[1]) < 0 || cpy(r.reporter, sizeof r.reporter, f[3]) < 0 ||
        cpy(r.partner, sizeof r.partner, f[4]) < 0 || fl < 0 ||
        tf_period_parse(f[6], &r.period, err, errlen) < 0) {
        if (!err[0])
            snprintf(err, errlen, "bad record line");
        return -1;
    }
    r.revision = strtoll(f[2], NULL, 10);
    r.flow = (tf_flow_t)fl;
    if (customs) {
        if (cpy(r.hs_code, sizeof r.hs_code, f[7]) < 0 ||
            tf_decimal_parse(f[8], 2, &r.value_cents, err, errlen) < 0 ||
            (f[9][0] && tf_decimal_parse(f[9], 3, &r.quantity_milli, err, errlen) < 0) ||
            cpy(r.unit, sizeof r.unit, f[10]) < 0) {
            if (!err[0])
                snprintf(err, errlen, "bad customs line");
            return -1;
        }
        r.has_quantity = f[9][0] != '\0';
    } else if (cpy(r.sector, sizeof r.sector, f[7]) < 0 ||
               tf_decimal_parse(f[8], 2, &r.value_cents, err, errlen) < 0) {
        if (!err[0])
            snprintf(err, errlen, "bad investment line");
        return -1;
    }
    return tf_codec_encode_record(c, topic, &r, out, err, errlen);
}

static void print_decoded(tf_codec_t *c, const uint8_t *b, size_t n)
{
    char err[512] = "", p[8], v[32], q[32];
    tf_record_t r;
    tf_alert_t a;
    if (tf_codec_decode_record(c, b, n, &r, err, sizeof err) == 0) {
        tf_period_format(r.period, p, sizeof p);
        tf_decimal_format(r.value_cents, 2, v, sizeof v);
        if (r.dataset == TF_DATASET_CUSTOMS) {
            q[0] = '\0';
            if (r.has_quantity)
                tf_decimal_format(r.quantity_milli, 3, q, sizeof q);
            printf("customs|%s|%lld|%s|%s|%s|%s|%s|%s|%s|%s\n", r.record_id,
                   (long long)r.revision, r.reporter, r.partner, tf_flow_name(r.flow), p,
                   r.hs_code, v, q, r.unit);
        } else {
            printf("investment|%s|%lld|%s|%s|%s|%s|%s|%s\n", r.record_id, (long long)r.revision,
                   r.reporter, r.partner, tf_flow_name(r.flow), p, r.sector, v);
        }
        return;
    }
    if (strstr(err, "RankingAlert") && tf_codec_decode_alert(c, b, n, &a, err, sizeof err) == 0) {
        tf_period_format(a.period, p, sizeof p);
        tf_decimal_format(a.value_cents, 2, v, sizeof v);
        printf("alert|%lld|%s|%s|%s|%s|%s|%s|%s|%d|%d|%s|%s|%lld\n", (long long)a.alert_id,
               tf_dataset_name(a.dataset), a.reporter, tf_flow_name(a.flow), bases[a.basis],
               levels[a.level], p, a.partner, (int)a.old_rank, (int)a.new_rank, v,
               kinds[a.kind], (long long)a.detected_at_us);
        return;
    }
    printf("ERROR %s\n", err);
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int main(int argc, char **argv)
{
    const char *extra = NULL, *registry = NULL;
    char err[512];
    int ai = 1;
    while (ai + 1 < argc && strncmp(argv[ai], "--", 2) == 0) {
        if (strcmp(argv[ai], "--extra") == 0)
            extra = argv[ai + 1];
        else if (strcmp(argv[ai], "--registry") == 0)
            registry = argv[ai + 1];
        else if (strcmp(argv[ai], "--topic") == 0)
            topic = argv[ai + 1];
        else
            break;
        ai += 2;
    }
    if (ai >= argc) {
        fprintf(stderr, "usage: %s [--extra DIR] [--registry URL] [--topic T] encode|decode | fingerprint FILE\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[ai], "fingerprint") == 0) {
        if (ai + 1 >= argc)
            return 2;
        FILE *f = fopen(argv[ai + 1], "rb");
        if (!f) {
            perror(argv[ai + 1]);
            return 1;
        }
        static char text[1 << 20];
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        tf_avro_schema_t *s = tf_avro_schema_parse(text, n, err, sizeof err);
        if (!s) {
            fprintf(stderr, "%s: %s\n", argv[ai + 1], err);
            return 1;
        }
        printf("%s\n%016llx\n", tf_avro_schema_canonical(s),
               (unsigned long long)tf_avro_schema_fingerprint(s));
        tf_avro_schema_free(s);
        return 0;
    }
    tf_codec_t *c = tf_codec_new(NULL, extra, err, sizeof err);
    if (!c) {
        fprintf(stderr, "tf_codec_new: %s\n", err);
        return 1;
    }
    if (registry && tf_codec_use_registry(c, registry, getenv("TRADEFLOW_REGISTRY_USERINFO"),
                                          getenv("TRADEFLOW_REGISTRY_CA"), err, sizeof err) < 0) {
        fprintf(stderr, "registry: %s\n", err);
        tf_codec_destroy(c);
        return 1;
    }
    bool enc = strcmp(argv[ai], "encode") == 0;
    if (!enc && strcmp(argv[ai], "decode") != 0) {
        fprintf(stderr, "unknown command %s\n", argv[ai]);
        tf_codec_destroy(c);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    tf_buf_t b = {0};
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        tf_buf_reset(&b);
        if (enc) {
            err[0] = '\0';
            if (encode_line(c, line, &b, err, sizeof err) < 0) {
                printf("ERROR %s\n", err);
                continue;
            }
            for (size_t i = 0; i < b.len; i++)
                printf("%02x", b.data[i]);
            printf("\n");
        } else {
            bool ok = len % 2 == 0;
            for (ssize_t i = 0; ok && i < len; i += 2) {
                int h = hexval(line[i]), l = hexval(line[i + 1]);
                uint8_t byte = (uint8_t)(h * 16 + l);
                ok = h >= 0 && l >= 0 && tf_buf_append(&b, &byte, 1) == 0;
            }
            if (!ok) {
                printf("ERROR bad hex line\n");
                continue;
            }
            /* A private copy of exactly the message, so ASan sees any read
             * past its end. */
            uint8_t *m = malloc(b.len ? b.len : 1);
            if (b.len)
                memcpy(m, b.data, b.len);
            print_decoded(c, m, b.len);
            free(m);
        }
    }
    free(line);
    tf_buf_free(&b);
    tf_codec_destroy(c);
    return 0;
}
