/*
 * fuzz_decode.c - libFuzzer target for the codec's decoder: framing,
 * writer-schema lookup, resolution (including an older writer schema with
 * skipped fields, defaults and enum defaults) and the mapping to the C
 * structs. Any crash, sanitizer report or leak is a bug; -1 is fine.
 *
 * The first input byte picks the path, so that the fuzzer need not discover
 * fingerprints: 0 = the rest is a whole framed message; 1/2/3 = the rest is
 * an Avro body after the header of the customs / investment / alert schema;
 * 4 = a body written with an older customs schema (evolution path).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_avro.h"
#include "tf_codec.h"

static tf_codec_t *codec;
static uint8_t headers[5][10];

static const char *v0 =
    "{\"type\":\"record\",\"name\":\"CustomsRecord\",\"namespace\":\"tradeflow\",\"fields\":["
    "{\"name\":\"record_id\",\"type\":\"string\"},"
    "{\"name\":\"notes\",\"type\":{\"type\":\"map\",\"values\":[\"null\",\"long\",\"string\"]}},"
    "{\"name\":\"reporter\",\"type\":\"string\"},{\"name\":\"partner\",\"type\":\"string\"},"
    "{\"name\":\"flow\",\"type\":{\"type\":\"enum\",\"name\":\"CustomsFlow\","
    "\"symbols\":[\"EXPORT\",\"IMPORT\",\"REEXPORT\"]}},"
    "{\"name\":\"revision\",\"type\":\"int\"},"
    "{\"name\":\"period\",\"type\":\"int\"},"
    "{\"name\":\"hs_code\",\"type\":[\"bytes\",\"null\"]},"
    "{\"name\":\"value_usd\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\","
    "\"precision\":18,\"scale\":2}}]}";

static void header_of(const char *json, uint8_t *h)
{
    char err[256];
    tf_avro_schema_t *s = tf_avro_schema_parse(json, strlen(json), err, sizeof err);
    if (!s)
        abort();
    uint64_t fp = tf_avro_schema_fingerprint(s);
    h[0] = 0xC3;
    h[1] = 0x01;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)(fp >> (8 * i));
    tf_avro_schema_free(s);
}

static void init(void)
{
    char err[512];
    codec = tf_codec_new(NULL, NULL, err, sizeof err);
    if (!codec || tf_codec_add_writer_schema(codec, v0, err, sizeof err) < 0)
        abort();
    /* Headers of the reader schemas: encode one record/alert of each. */
    static const char *const files[] = {"CustomsRecord", "InvestmentRecord", "RankingAlert"};
    for (int i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.avsc", tf_codec_default_schema_dir(), files[i]);
        FILE *f = fopen(path, "rb");
        static char text[1 << 16];
        size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
        if (f)
            fclose(f);
        text[n] = '\0';
        header_of(text, headers[i + 1]);
    }
    header_of(v0, headers[4]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    if (!codec)
        init();
    if (size == 0)
        return 0;
    unsigned mode = data[0] % 5;
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    uint8_t *buf = NULL;
    if (mode != 0) {
        buf = malloc(len + 10);
        memcpy(buf, headers[mode], 10);
        memcpy(buf + 10, data + 1, len);
        msg = buf;
        len += 10;
    }
    tf_record_t r;
    tf_alert_t a;
    if (tf_codec_decode_record(codec, msg, len, &r, err, sizeof err) == 0) {
        /* What decodes must re-encode (strings fit, enums are known). */
        tf_buf_t out = {0};
        if (r.flow != TF_FLOW_UNKNOWN && r.value_cents >= 0 && r.value_cents < 1000000000000000000LL &&
            (!r.has_quantity || (r.quantity_milli >= 0 && r.quantity_milli < 1000000000000000000LL)) &&
            tf_codec_encode_record(codec, NULL, &r, &out, err, sizeof err) != 0)
            abort();
        tf_buf_free(&out);
    }
    tf_codec_decode_alert(codec, msg, len, &a, err, sizeof err);
    free(buf);
    return 0;
}
