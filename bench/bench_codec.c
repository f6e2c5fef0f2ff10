/*
 * bench_codec.c - records/s of the tradeflow codec's full path (single-object
 * framing + writer->reader resolution + mapping to tf_record_t) side by side
 * with plain Avro C (avro_value generic interface, no framing, no
 * resolution) on the same records, in the same run.
 *
 * Usage: bench_codec [N_RECORDS [ROUNDS]]   (defaults 100000 and 5)
 * Both sides convert to/from tf_record_t, so the comparison is per record
 * in and out of the program's struct. Prints one line per measurement and
 * the ratios; the best of ROUNDS is kept for each.
 */
#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tf_avro.h"
#include "tf_codec.h"

/* An older writer of CustomsRecord: no revision/quantity/unit (reader
 * defaults), an extra field the reader skips, enum symbols at other indexes. */
static const char *v0 =
    "{\"type\":\"record\",\"name\":\"CustomsRecord\",\"namespace\":\"tradeflow\",\"fields\":["
    "{\"name\":\"record_id\",\"type\":\"string\"},{\"name\":\"office\",\"type\":\"string\"},"
    "{\"name\":\"reporter\",\"type\":\"string\"},{\"name\":\"partner\",\"type\":\"string\"},"
    "{\"name\":\"flow\",\"type\":{\"type\":\"enum\",\"name\":\"CustomsFlow\","
    "\"symbols\":[\"EXPORT\",\"IMPORT\",\"REEXPORT\"]}},"
    "{\"name\":\"period\",\"type\":{\"type\":\"int\",\"logicalType\":\"date\"}},"
    "{\"name\":\"hs_code\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"value_usd\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\","
    "\"precision\":18,\"scale\":2}}]}";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void make_records(tf_record_t *r, size_t n)
{
    static const char *const partners[] = {"VNM", "THA", "MYS", "SGP", "IDN", "PHL", "USA", "DEU"};
    char err[128];
    for (size_t i = 0; i < n; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].dataset = TF_DATASET_CUSTOMS;
        snprintf(r[i].record_id, sizeof r[i].record_id, "GACC-%zu", i);
        r[i].revision = (int64_t)(i % 3);
        strcpy(r[i].reporter, "CHN");
        strcpy(r[i].partner, partners[i % 8]);
        r[i].flow = i % 2 ? TF_FLOW_EXPORT : TF_FLOW_IMPORT;
        char p[8];
        snprintf(p, sizeof p, "%04zu-%02zu", 2015 + i % 10, 1 + i % 12);
        tf_period_parse(p, &r[i].period, err, sizeof err);
        snprintf(r[i].hs_code, sizeof r[i].hs_code, "%04zu", 1000 + i % 9000);
        r[i].value_cents = (int64_t)(i * 7919 % 1000000007) * 100 + 37;
        r[i].has_quantity = i % 4 != 0;
        r[i].quantity_milli = (int64_t)i * 13;
        strcpy(r[i].unit, r[i].has_quantity ? "kg" : "");
    }
}

/* --- plain Avro C ---------------------------------------------------------- */

static size_t dec_bytes(int64_t v, uint8_t *buf)
{
    uint8_t tmp[8];
    for (int i = 0; i < 8; i++)
        tmp[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
    int s = 0;
    while (s < 7 && ((tmp[s] == 0 && !(tmp[s + 1] & 0x80)) || (tmp[s] == 0xff && (tmp[s + 1] & 0x80))))
        s++;
    memcpy(buf, tmp + s, (size_t)(8 - s));
    return (size_t)(8 - s);
}

static int64_t from_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t u = n && (b[0] & 0x80) ? UINT64_MAX : 0;
    for (size_t i = 0; i < n && i < 8; i++)
        u = (u << 8) | b[i];
    return (int64_t)u;
}

/* Days since the epoch of the first of a month (same as the codec). */
static int32_t month_days(int32_t period)
{
    int64_t y = period / 12;
    unsigned m = (unsigned)(period % 12 + 1);
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + (int64_t)doe - 719468);
}

static int plain_fill(avro_value_t *v, const tf_record_t *r)
{
    avro_value_t f, b;
    uint8_t d[8];
    avro_value_get_by_index(v, 0, &f, NULL);
    avro_value_set_string(&f, r->record_id);
    avro_value_get_by_index(v, 1, &f, NULL);
    avro_value_set_long(&f, r->revision);
    avro_value_get_by_index(v, 2, &f, NULL);
    avro_value_set_string(&f, r->reporter);
    avro_value_get_by_index(v, 3, &f, NULL);
    avro_value_set_string(&f, r->partner);
    avro_value_get_by_index(v, 4, &f, NULL);
    avro_value_set_enum(&f, r->flow == TF_FLOW_EXPORT ? 1 : 2);
    avro_value_get_by_index(v, 5, &f, NULL);
    avro_value_set_int(&f, month_days(r->period));
    avro_value_get_by_index(v, 6, &f, NULL);
    if (r->hs_code[0]) {
        avro_value_set_branch(&f, 1, &b);
        avro_value_set_string(&b, r->hs_code);
    } else {
        avro_value_set_branch(&f, 0, &b);
        avro_value_set_null(&b);
    }
    avro_value_get_by_index(v, 7, &f, NULL);
    avro_value_set_bytes(&f, d, dec_bytes(r->value_cents, d));
    avro_value_get_by_index(v, 8, &f, NULL);
    if (r->has_quantity) {
        avro_value_set_branch(&f, 1, &b);
        avro_value_set_bytes(&b, d, dec_bytes(r->quantity_milli, d));
    } else {
        avro_value_set_branch(&f, 0, &b);
        avro_value_set_null(&b);
    }
    avro_value_get_by_index(v, 9, &f, NULL);
    if (r->unit[0]) {
        avro_value_set_branch(&f, 1, &b);
        avro_value_set_string(&b, r->unit);
    } else {
        avro_value_set_branch(&f, 0, &b);
        avro_value_set_null(&b);
    }
    return 0;
}

static void copy_str(avro_value_t *f, char *dst, size_t cap)
{
    const char *s;
    size_t n = 0;
    avro_value_get_string(f, &s, &n); /* n includes the NUL */
    if (n > cap)
        n = cap;
    memcpy(dst, s, n);
    dst[cap - 1] = '\0';
}

static void plain_extract(avro_value_t *v, tf_record_t *r)
{
    avro_value_t f, b;
    int32_t i32 = 0;
    int64_t i64 = 0;
    int disc = 0;
    const void *p;
    size_t n = 0;
    memset(r, 0, sizeof *r);
    avro_value_get_by_index(v, 0, &f, NULL);
    copy_str(&f, r->record_id, sizeof r->record_id);
    avro_value_get_by_index(v, 1, &f, NULL);
    avro_value_get_long(&f, &i64);
    r->revision = i64;
    avro_value_get_by_index(v, 2, &f, NULL);
    copy_str(&f, r->reporter, sizeof r->reporter);
    avro_value_get_by_index(v, 3, &f, NULL);
    copy_str(&f, r->partner, sizeof r->partner);
    avro_value_get_by_index(v, 4, &f, NULL);
    avro_value_get_enum(&f, &disc);
    r->flow = disc == 1 ? TF_FLOW_EXPORT : TF_FLOW_IMPORT;
    avro_value_get_by_index(v, 5, &f, NULL);
    avro_value_get_int(&f, &i32);
    r->period = i32; /* days; not converted back, which favours plain Avro C */
    avro_value_get_by_index(v, 6, &f, NULL);
    avro_value_get_discriminant(&f, &disc);
    if (disc == 1) {
        avro_value_get_current_branch(&f, &b);
        copy_str(&b, r->hs_code, sizeof r->hs_code);
    }
    avro_value_get_by_index(v, 7, &f, NULL);
    avro_value_get_bytes(&f, &p, &n);
    r->value_cents = from_bytes(p, n);
    avro_value_get_by_index(v, 8, &f, NULL);
    avro_value_get_discriminant(&f, &disc);
    if (disc == 1) {
        avro_value_get_current_branch(&f, &b);
        avro_value_get_bytes(&b, &p, &n);
        r->quantity_milli = from_bytes(p, n);
        r->has_quantity = true;
    }
    avro_value_get_by_index(v, 9, &f, NULL);
    avro_value_get_discriminant(&f, &disc);
    if (disc == 1) {
        avro_value_get_current_branch(&f, &b);
        copy_str(&b, r->unit, sizeof r->unit);
    }
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b)
        b[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return b;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    char err[512];
    if (n == 0 || rounds <= 0) {
        fprintf(stderr, "usage: %s [N_RECORDS [ROUNDS]]\n", argv[0]);
        return 2;
    }
    tf_record_t *recs = malloc(n * sizeof *recs), *back = malloc(n * sizeof *back);
    make_records(recs, n);

    tf_codec_t *codec = tf_codec_new(NULL, NULL, err, sizeof err);
    if (!codec) {
        fprintf(stderr, "tf_codec_new: %s\n", err);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/CustomsRecord.avsc", tf_codec_default_schema_dir());
    size_t slen;
    char *json = slurp(path, &slen);
    avro_schema_t schema;
    if (!json || avro_schema_from_json_length(json, slen, &schema) != 0) {
        fprintf(stderr, "%s: %s\n", path, json ? avro_strerror() : "cannot read");
        return 1;
    }
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t val;
    avro_generic_value_new(iface, &val);

    /* Encoded messages, kept for the decode runs: one flat buffer plus
     * offsets for each side. */
    tf_buf_t ours = {0}, plain = {0};
    size_t *ooff = malloc((n + 1) * sizeof *ooff), *poff = malloc((n + 1) * sizeof *poff);
    char *wbuf = malloc(4096);
    double best[4] = {1e30, 1e30, 1e30, 1e30};
    for (int round = 0; round < rounds; round++) {
        /* Plain Avro C encode: fill + write. */
        tf_buf_reset(&plain);
        double t0 = now();
        for (size_t i = 0; i < n; i++) {
            avro_value_reset(&val);
            plain_fill(&val, &recs[i]);
            avro_writer_t w = avro_writer_memory(wbuf, 4096);
            if (avro_value_write(w, &val) != 0) {
                fprintf(stderr, "avro_value_write: %s\n", avro_strerror());
                return 1;
            }
            poff[i] = plain.len;
            tf_buf_append(&plain, wbuf, (size_t)avro_writer_tell(w));
            avro_writer_free(w);
        }
        poff[n] = plain.len;
        double t1 = now();
        /* Full path encode. */
        tf_buf_reset(&ours);
        for (size_t i = 0; i < n; i++) {
            ooff[i] = ours.len;
            if (tf_codec_encode_record(codec, NULL, &recs[i], &ours, err, sizeof err) < 0) {
                fprintf(stderr, "encode: %s\n", err);
                return 1;
            }
        }
        ooff[n] = ours.len;
        double t2 = now();
        /* Plain Avro C decode: read + extract. */
        for (size_t i = 0; i < n; i++) {
            avro_reader_t rd = avro_reader_memory((const char *)plain.data + poff[i],
                                                  (int64_t)(poff[i + 1] - poff[i]));
            avro_value_reset(&val);
            if (avro_value_read(rd, &val) != 0) {
                fprintf(stderr, "avro_value_read: %s\n", avro_strerror());
                return 1;
            }
            plain_extract(&val, &back[i]);
            avro_reader_free(rd);
        }
        double t3 = now();
        /* Full path decode. */
        for (size_t i = 0; i < n; i++)
            if (tf_codec_decode_record(codec, ours.data + ooff[i], ooff[i + 1] - ooff[i], &back[i],
                                       err, sizeof err) < 0) {
                fprintf(stderr, "decode: %s\n", err);
                return 1;
            }
        double t4 = now();
        double d[4] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3};
        for (int k = 0; k < 4; k++)
            if (d[k] < best[k])
                best[k] = d[k];
    }
    /* The last decode must give back what was encoded. */
    for (size_t i = 0; i < n; i++)
        if (back[i].value_cents != recs[i].value_cents || strcmp(back[i].record_id, recs[i].record_id) ||
            back[i].period != recs[i].period) {
            fprintf(stderr, "round trip mismatch at record %zu\n", i);
            return 1;
        }
    /* Resolution with real work: messages of the older writer. */
    tf_avro_schema_t *ws = tf_avro_schema_parse(v0, strlen(v0), err, sizeof err);
    if (!ws || tf_codec_add_writer_schema(codec, v0, err, sizeof err) < 0) {
        fprintf(stderr, "v0: %s\n", err);
        return 1;
    }
    tf_buf_t old = {0};
    uint64_t fp = tf_avro_schema_fingerprint(ws);
    for (size_t i = 0; i < n; i++) {
        uint8_t h[10] = {0xC3, 0x01}, d[8];
        for (int k = 0; k < 8; k++)
            h[2 + k] = (uint8_t)(fp >> (8 * k));
        tf_avro_value_t f[8] = {
            {.type = TF_AVRO_STRING, .branch = -1, .u.s = {recs[i].record_id, strlen(recs[i].record_id)}},
            {.type = TF_AVRO_STRING, .branch = -1, .u.s = {"Nanning", 7}},
            {.type = TF_AVRO_STRING, .branch = -1, .u.s = {recs[i].reporter, strlen(recs[i].reporter)}},
            {.type = TF_AVRO_STRING, .branch = -1, .u.s = {recs[i].partner, strlen(recs[i].partner)}},
            {.type = TF_AVRO_ENUM, .branch = -1, .u.l = recs[i].flow == TF_FLOW_EXPORT ? 0 : 1},
            {.type = TF_AVRO_INT, .branch = -1, .u.l = month_days(recs[i].period)},
            {.type = TF_AVRO_STRING, .branch = 1, .u.s = {recs[i].hs_code, strlen(recs[i].hs_code)}},
            {.type = TF_AVRO_BYTES, .branch = -1},
        };
        f[7].u.s.p = (const char *)d;
        f[7].u.s.n = dec_bytes(recs[i].value_cents, d);
        tf_avro_value_t root = {.type = TF_AVRO_RECORD, .branch = -1, .u.c = {f, NULL, 8}};
        ooff[i] = old.len;
        tf_buf_append(&old, h, 10);
        if (tf_avro_encode(tf_avro_schema_root(ws), &root, &old, err, sizeof err) < 0) {
            fprintf(stderr, "v0 encode: %s\n", err);
            return 1;
        }
    }
    ooff[n] = old.len;
    double bestold = 1e30;
    for (int round = 0; round < rounds; round++) {
        double t0 = now();
        for (size_t i = 0; i < n; i++)
            if (tf_codec_decode_record(codec, old.data + ooff[i], ooff[i + 1] - ooff[i], &back[i],
                                       err, sizeof err) < 0) {
                fprintf(stderr, "v0 decode: %s\n", err);
                return 1;
            }
        double d = now() - t0;
        if (d < bestold)
            bestold = d;
    }
    if (back[n - 1].revision != 0 || back[n - 1].has_quantity ||
        back[n - 1].value_cents != recs[n - 1].value_cents) {
        fprintf(stderr, "v0 round trip mismatch\n");
        return 1;
    }
    tf_buf_free(&old);
    tf_avro_schema_free(ws);

    double pe = n / best[0], oe = n / best[1], pd = n / best[2], od = n / best[3];
    printf("records %zu, rounds %d (best), bytes/record: plain %.1f, framed %.1f\n", n, rounds,
           (double)plain.len / n, (double)ours.len / n);
    printf("encode  plain Avro C %10.0f rec/s   full path %10.0f rec/s   ratio %.2f\n", pe, oe,
           oe / pe);
    printf("decode  plain Avro C %10.0f rec/s   full path %10.0f rec/s   ratio %.2f\n", pd, od,
           od / pd);
    printf("decode  older writer (skip, defaults, enum remap) full path %10.0f rec/s   ratio %.2f "
           "to plain Avro C decode of the current schema\n",
           n / bestold, n / bestold / pd);
    double pr = n / (best[0] + best[2]), orr = n / (best[1] + best[3]);
    printf("enc+dec plain Avro C %10.0f rec/s   full path %10.0f rec/s   ratio %.2f\n", pr, orr,
           orr / pr);
    avro_value_decref(&val);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    free(json);
    free(wbuf);
    free(ooff);
    free(poff);
    tf_buf_free(&ours);
    tf_buf_free(&plain);
    free(recs);
    free(back);
    tf_codec_destroy(codec);
    return 0;
}
