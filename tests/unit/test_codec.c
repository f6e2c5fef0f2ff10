/*
 * test_codec.c - tf_codec: round trips of records and alerts in the
 * single-object format, evolution through older writer schemas, and bad
 * bytes that must be refused with a message (never a crash).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_avro.h"
#include "tf_codec.h"
#include "tf_test.h"

static tf_codec_t *codec;
static char err[512];

static tf_record_t customs(void)
{
    tf_record_t r;
    memset(&r, 0, sizeof r);
    r.dataset = TF_DATASET_CUSTOMS;
    strcpy(r.record_id, "GACC-2020-11-CHN-VNM-85");
    r.revision = 3;
    strcpy(r.reporter, "CHN");
    strcpy(r.partner, "VNM");
    r.flow = TF_FLOW_EXPORT;
    tf_period_parse("2020-11", &r.period, err, sizeof err);
    strcpy(r.hs_code, "8517");
    r.value_cents = 60958000000012; /* 609,580,000,000.12 USD */
    r.has_quantity = true;
    r.quantity_milli = 1234567;
    strcpy(r.unit, "kg");
    return r;
}

static bool record_eq(const tf_record_t *a, const tf_record_t *b)
{
    return a->dataset == b->dataset && !strcmp(a->record_id, b->record_id) &&
           a->revision == b->revision && !strcmp(a->reporter, b->reporter) &&
           !strcmp(a->partner, b->partner) && a->flow == b->flow && a->period == b->period &&
           a->value_cents == b->value_cents && !strcmp(a->hs_code, b->hs_code) &&
           a->has_quantity == b->has_quantity &&
           (!a->has_quantity || a->quantity_milli == b->quantity_milli) &&
           !strcmp(a->unit, b->unit) && !strcmp(a->sector, b->sector);
}

static void test_roundtrip_customs(void)
{
    tf_record_t r = customs(), back;
    tf_buf_t b = {0};
    CHECK_MSG(tf_codec_encode_record(codec, NULL, &r, &b, err, sizeof err) == 0, "%s", err);
    CHECK(b.len > 10);
    CHECK(b.data[0] == 0xC3 && b.data[1] == 0x01);
    CHECK_MSG(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == 0, "%s",
              err);
    CHECK(record_eq(&r, &back));

    /* Optional fields absent, zero and extreme values. */
    r.hs_code[0] = '\0';
    r.unit[0] = '\0';
    r.has_quantity = false;
    r.value_cents = 0;
    r.revision = 0;
    r.flow = TF_FLOW_IMPORT;
    tf_period_parse("1900-01", &r.period, err, sizeof err);
    tf_buf_reset(&b);
    CHECK(tf_codec_encode_record(codec, NULL, &r, &b, err, sizeof err) == 0);
    CHECK(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == 0);
    CHECK(record_eq(&r, &back));
    CHECK(!back.has_quantity);

    r.value_cents = 999999999999999999LL; /* the largest decimal(18,2) */
    r.has_quantity = true;
    r.quantity_milli = 0;
    tf_period_parse("2999-12", &r.period, err, sizeof err);
    tf_buf_reset(&b);
    CHECK(tf_codec_encode_record(codec, NULL, &r, &b, err, sizeof err) == 0);
    CHECK(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == 0);
    CHECK(record_eq(&r, &back));
    CHECK(back.has_quantity && back.quantity_milli == 0);

    /* Past precision 18 the encoder refuses rather than write a value
     * other readers would reject. */
    r.value_cents = 1000000000000000000LL;
    tf_buf_reset(&b);
    CHECK(tf_codec_encode_record(codec, NULL, &r, &b, err, sizeof err) == -1);
    CHECK(b.len == 0);

    /* A release marker (CustomsRecord version 2's record_kind). */
    r = customs();
    CHECK(r.kind == TF_KIND_FACT);
    r.kind = TF_KIND_RELEASE;
    tf_buf_reset(&b);
    CHECK(tf_codec_encode_record(codec, NULL, &r, &b, err, sizeof err) == 0);
    CHECK(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == 0);
    CHECK(back.kind == TF_KIND_RELEASE && record_eq(&r, &back));
    r.kind = TF_KIND_FACT;
    tf_buf_reset(&b);
    CHECK(tf_codec_encode_record(codec, NULL, &r, &b, err, sizeof err) == 0);
    CHECK(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == 0);
    CHECK(back.kind == TF_KIND_FACT);

    /* TOTAL is not a customs flow symbol. */
    r = customs();
    r.flow = TF_FLOW_TOTAL;
    CHECK(tf_codec_encode_record(codec, NULL, &r, &b, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "flow") != NULL, "%s", err);
    tf_buf_free(&b);
}

static void test_roundtrip_investment(void)
{
    tf_record_t r, back;
    memset(&r, 0, sizeof r);
    r.dataset = TF_DATASET_INVESTMENT;
    strcpy(r.record_id, "MOFCOM-2020Q3-ASEAN");
    strcpy(r.reporter, "CHN");
    strcpy(r.partner, "ASEAN");
    r.flow = TF_FLOW_OUTWARD;
    tf_period_parse("2020-09", &r.period, err, sizeof err);
    strcpy(r.sector, "Manufacturing \xe2\x80\x94 electronics"); /* UTF-8 em dash */
    r.value_cents = 1072000000000;
    tf_buf_t b = {0};
    CHECK_MSG(tf_codec_encode_record(codec, "t", &r, &b, err, sizeof err) == 0, "%s", err);
    CHECK(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == 0);
    CHECK(record_eq(&r, &back));
    CHECK(back.dataset == TF_DATASET_INVESTMENT);
    /* An investment message is not an alert. */
    tf_alert_t a;
    CHECK(tf_codec_decode_alert(codec, b.data, b.len, &a, err, sizeof err) == -1);
    tf_buf_free(&b);
}

static void test_roundtrip_alert(void)
{
    tf_alert_t a, back;
    memset(&a, 0, sizeof a);
    a.alert_id = 42;
    a.dataset = TF_DATASET_CUSTOMS;
    strcpy(a.reporter, "CHN");
    a.flow = TF_FLOW_TOTAL;
    a.basis = TF_BASIS_YTD;
    a.level = TF_LEVEL_GROUP;
    tf_period_parse("2020-11", &a.period, err, sizeof err);
    strcpy(a.partner, "ASEAN");
    a.old_rank = 2;
    a.new_rank = 1;
    a.value_cents = 60958000000000;
    a.kind = TF_ALERT_SHIFT;
    a.detected_at_us = 1606780800123456LL;
    tf_buf_t b = {0};
    CHECK_MSG(tf_codec_encode_alert(codec, NULL, &a, &b, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(tf_codec_decode_alert(codec, b.data, b.len, &back, err, sizeof err) == 0, "%s",
              err);
    CHECK(memcmp(&a, &back, sizeof a) == 0);
    a.old_rank = 0; /* entered the top N */
    a.kind = TF_ALERT_RETRACTION;
    tf_buf_reset(&b);
    CHECK(tf_codec_encode_alert(codec, NULL, &a, &b, err, sizeof err) == 0);
    CHECK(tf_codec_decode_alert(codec, b.data, b.len, &back, err, sizeof err) == 0);
    CHECK(back.old_rank == 0 && back.new_rank == 1 && back.kind == TF_ALERT_RETRACTION);
    tf_record_t r;
    CHECK(tf_codec_decode_record(codec, b.data, b.len, &r, err, sizeof err) == -1);
    tf_buf_free(&b);
}

/* Every prefix of a valid message, and every single-byte corruption of it,
 * either decodes or fails with a message; none may crash (ASan/UBSan runs
 * check the rest). */
static void test_bad_bytes(void)
{
    tf_record_t r = customs(), back;
    tf_buf_t b = {0};
    CHECK(tf_codec_encode_record(codec, NULL, &r, &b, err, sizeof err) == 0);
    for (size_t n = 0; n < b.len; n++) {
        err[0] = '\0';
        CHECK_MSG(tf_codec_decode_record(codec, b.data, n, &back, err, sizeof err) == -1,
                  "prefix of %zu bytes decoded", n);
        CHECK(err[0] != '\0');
        /* Every prefix says what is wrong: empty, or truncated at byte N of
         * n with the numbers (issue 14). */
        char want[64];
        snprintf(want, sizeof want, " of %zu", n);
        if (n == 0)
            CHECK_MSG(strcmp(err, "empty message") == 0, "%s", err);
        else if (n >= 2) /* (one byte C3 is just unknown framing) */
            CHECK_MSG(strncmp(err, "truncated at byte ", 18) == 0 && strstr(err, want),
                      "prefix of %zu: %s", n, err);
    }
    /* A 10-byte message (the single-object header alone) and a 25-byte one. */
    CHECK(tf_codec_decode_record(codec, b.data, 10, &back, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "truncated at byte 10 of 10") != NULL, "%s", err);
    CHECK(b.len > 25 && tf_codec_decode_record(codec, b.data, 25, &back, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "truncated at byte ") && strstr(err, " of 25"), "%s", err);
    uint8_t *m = malloc(b.len + 1);
    int failures = 0;
    for (size_t i = 0; i < b.len; i++)
        for (int v = 0; v < 256; v += 17) {
            memcpy(m, b.data, b.len);
            m[i] = (uint8_t)v;
            err[0] = '\0';
            if (tf_codec_decode_record(codec, m, b.len, &back, err, sizeof err) < 0) {
                failures++;
                CHECK(err[0] != '\0');
            }
        }
    CHECK(failures > 0);

    /* Wrong magic. */
    memcpy(m, b.data, b.len);
    m[1] = 0x02;
    CHECK(tf_codec_decode_record(codec, m, b.len, &back, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "framing") != NULL, "%s", err);
    /* Unknown fingerprint. */
    memcpy(m, b.data, b.len);
    m[5] ^= 0x55;
    CHECK(tf_codec_decode_record(codec, m, b.len, &back, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "unknown writer schema fingerprint") != NULL, "%s", err);
    /* Registry framing without a registry. */
    m[0] = 0;
    CHECK(tf_codec_decode_record(codec, m, b.len, &back, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "no registry") != NULL, "%s", err);
    /* A trailing byte. */
    memcpy(m, b.data, b.len);
    m[b.len] = 0;
    CHECK(tf_codec_decode_record(codec, m, b.len + 1, &back, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "trailing") != NULL, "%s", err);
    /* An absurd string length: record_id's length varint is the first body
     * byte; make it a 9-byte varint of about 2^62. */
    {
        uint8_t big[64];
        memcpy(big, b.data, 10);
        size_t n = 10 + tf_avro_write_long(big + 10, INT64_C(1) << 61);
        memcpy(big + n, "abc", 3);
        CHECK(tf_codec_decode_record(codec, big, n + 3, &back, err, sizeof err) == -1);
        CHECK_MSG(strstr(err, "truncated at byte 19 of 22: 2305843009213693952 bytes announced"),
                  "%s", err);
        big[10] = 0x01; /* -1 */
        CHECK(tf_codec_decode_record(codec, big, 11, &back, err, sizeof err) == -1);
    }
    /* Invalid UTF-8 in record_id (first body string: length byte, then data). */
    memcpy(m, b.data, b.len);
    m[11] = 0xC0; /* overlong start byte */
    CHECK(tf_codec_decode_record(codec, m, b.len, &back, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "UTF-8") != NULL, "%s", err);
    free(m);
    CHECK(tf_codec_decode_record(codec, NULL, 0, &back, err, sizeof err) == -1);
    CHECK_MSG(strcmp(err, "empty message") == 0, "%s", err);
    tf_buf_free(&b);
}

/* Builds a single-object message with an arbitrary writer schema. */
static int frame(const tf_avro_schema_t *s, const tf_avro_value_t *v, tf_buf_t *out)
{
    uint64_t fp = tf_avro_schema_fingerprint(s);
    uint8_t h[10] = {0xC3, 0x01};
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)(fp >> (8 * i));
    tf_buf_reset(out);
    tf_buf_append(out, h, 10);
    return tf_avro_encode(tf_avro_schema_root(s), v, out, err, sizeof err);
}

#define STRV(x) ((tf_avro_value_t){.type = TF_AVRO_STRING, .branch = -1, .u.s = {x, sizeof x - 1}})

/* An older writer: no revision/hs_code/quantity/unit, an int field the
 * reader lacks, a flow symbol the reader lacks, period as date. */
static const char *v0 =
    "{\"type\":\"record\",\"name\":\"CustomsRecord\",\"namespace\":\"tradeflow\",\"fields\":["
    "{\"name\":\"record_id\",\"type\":\"string\"},"
    "{\"name\":\"legacy_office\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"reporter\",\"type\":\"string\"},"
    "{\"name\":\"partner\",\"type\":\"string\"},"
    "{\"name\":\"flow\",\"type\":{\"type\":\"enum\",\"name\":\"CustomsFlow\","
    "\"symbols\":[\"EXPORT\",\"IMPORT\",\"REEXPORT\"]}},"
    "{\"name\":\"period\",\"type\":{\"type\":\"int\",\"logicalType\":\"date\"}},"
    "{\"name\":\"value_usd\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\","
    "\"precision\":18,\"scale\":2}}]}";

static void test_evolution(void)
{
    tf_avro_schema_t *w = tf_avro_schema_parse(v0, strlen(v0), err, sizeof err);
    CHECK_MSG(w != NULL, "%s", err);
    if (!w)
        return;
    tf_buf_t b = {0};
    tf_record_t back;
    tf_avro_value_t offices[2] = {STRV("Hanoi"), STRV("Nanning")};
    tf_avro_value_t f[7] = {
        STRV("old-1"),
        {.type = TF_AVRO_ARRAY, .branch = -1, .u.c = {offices, NULL, 2}},
        STRV("CHN"),
        STRV("VNM"),
        {.type = TF_AVRO_ENUM, .branch = -1, .u.l = 1},        /* IMPORT */
        {.type = TF_AVRO_INT, .branch = -1, .u.l = 18262},     /* 2020-01-01 */
        {.type = TF_AVRO_BYTES, .branch = -1, .u.s = {"\x01\x00", 2}}, /* 256 cents */
    };
    tf_avro_value_t root = {.type = TF_AVRO_RECORD, .branch = -1, .u.c = {f, NULL, 7}};
    CHECK_MSG(frame(w, &root, &b) == 0, "%s", err);
    /* Not known yet: unknown fingerprint. */
    CHECK(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == -1);
    CHECK(tf_codec_add_writer_schema(codec, v0, err, sizeof err) == 0);
    CHECK_MSG(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == 0, "%s",
              err);
    CHECK_STR(back.record_id, "old-1");
    CHECK_INT(back.revision, 0); /* the reader's default */
    CHECK(back.flow == TF_FLOW_IMPORT);
    CHECK_INT(back.period, 2020 * 12);
    CHECK_INT(back.value_cents, 256);
    CHECK(!back.has_quantity && back.hs_code[0] == '\0' && back.unit[0] == '\0');
    /* REEXPORT is unknown to the reader: its enum default UNKNOWN. */
    f[4].u.l = 2;
    CHECK(frame(w, &root, &b) == 0);
    CHECK(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == 0);
    CHECK(back.flow == TF_FLOW_UNKNOWN);
    /* A date that is not the first of a month. */
    f[4].u.l = 0;
    f[5].u.l = 18263;
    CHECK(frame(w, &root, &b) == 0);
    CHECK(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "first of a month") != NULL, "%s", err);
    /* A decimal wider than 64 bits, and one that is only sign-extended. */
    f[5].u.l = 18262;
    f[6].u.s = (tf_avro_str_t){"\x01\x00\x00\x00\x00\x00\x00\x00\x00", 9};
    CHECK(frame(w, &root, &b) == 0);
    CHECK(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "value_usd") != NULL, "%s", err);
    f[6].u.s = (tf_avro_str_t){"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07", 10};
    CHECK(frame(w, &root, &b) == 0);
    CHECK(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == 0);
    CHECK_INT(back.value_cents, 7);
    /* A record_id longer than the record holds. */
    f[6].u.s = (tf_avro_str_t){"\x07", 1};
    char longid[100];
    memset(longid, 'x', sizeof longid);
    f[0].u.s = (tf_avro_str_t){longid, sizeof longid};
    CHECK(frame(w, &root, &b) == 0);
    CHECK(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "record_id") != NULL, "%s", err);
    tf_buf_free(&b);
    tf_avro_schema_free(w);

    /* An incompatible writer is refused with the reason. */
    const char *bad =
        "{\"type\":\"record\",\"name\":\"CustomsRecord\",\"namespace\":\"tradeflow\",\"fields\":["
        "{\"name\":\"value_usd\",\"type\":\"double\"},{\"name\":\"record_id\",\"type\":\"string\"},"
        "{\"name\":\"reporter\",\"type\":\"string\"},{\"name\":\"partner\",\"type\":\"string\"},"
        "{\"name\":\"flow\",\"type\":{\"type\":\"enum\",\"name\":\"CustomsFlow\",\"symbols\":[\"EXPORT\"]}},"
        "{\"name\":\"period\",\"type\":\"int\"}]}";
    CHECK(tf_codec_add_writer_schema(codec, bad, err, sizeof err) == 0);
    tf_avro_schema_t *bs = tf_avro_schema_parse(bad, strlen(bad), err, sizeof err);
    tf_avro_value_t bf[6] = {{.type = TF_AVRO_DOUBLE, .branch = -1, .u.d = 12.34}, STRV("id"), STRV("CHN"), STRV("VNM"),
                             {.type = TF_AVRO_ENUM, .branch = -1, .u.l = 0},
                             {.type = TF_AVRO_INT, .branch = -1, .u.l = 0}};
    tf_avro_value_t broot = {.type = TF_AVRO_RECORD, .branch = -1, .u.c = {bf, NULL, 6}};
    CHECK(frame(bs, &broot, &b) == 0);
    CHECK(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "incompatible") != NULL && strstr(err, "value_usd") != NULL, "%s",
              err);
    /* The second message of that writer gets the same answer (cached). */
    err[0] = '\0';
    CHECK(tf_codec_decode_record(codec, b.data, b.len, &back, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "incompatible") != NULL, "%s", err);
    tf_avro_schema_free(bs);
    tf_buf_free(&b);
}

static void test_schema_dir(void)
{
    tf_codec_t *c = tf_codec_new("/nonexistent-dir", NULL, err, sizeof err);
    CHECK(c == NULL);
    CHECK_MSG(strstr(err, "nonexistent") != NULL, "%s", err);
    CHECK(tf_codec_default_schema_dir() != NULL);
}

int main(void)
{
    codec = tf_codec_new(NULL, NULL, err, sizeof err);
    if (!codec) {
        fprintf(stderr, "tf_codec_new: %s\n", err);
        return 1;
    }
    TF_TEST_RUN(test_roundtrip_customs);
    TF_TEST_RUN(test_roundtrip_investment);
    TF_TEST_RUN(test_roundtrip_alert);
    TF_TEST_RUN(test_bad_bytes);
    TF_TEST_RUN(test_evolution);
    TF_TEST_RUN(test_schema_dir);
    tf_codec_destroy(codec);
    return TF_TEST_REPORT();
}
