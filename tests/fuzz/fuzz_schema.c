/*
 * fuzz_schema.c - libFuzzer target for the schema parser, the canonical form
 * and the resolver: the input is split at the first NUL into a writer schema
 * and Avro data; the data is decoded with the writer resolved against itself
 * and against the customs reader schema.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tf_avro.h"

static tf_avro_schema_t *customs;
static tf_avro_arena_t *arena;

static const char *reader =
    "{\"type\":\"record\",\"name\":\"R\",\"aliases\":[\"S\"],\"fields\":["
    "{\"name\":\"a\",\"type\":\"long\",\"default\":1},"
    "{\"name\":\"b\",\"type\":[\"null\",\"string\",\"double\"],\"default\":null},"
    "{\"name\":\"c\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\",\"Y\"],"
    "\"default\":\"X\"},\"default\":\"Y\"},"
    "{\"name\":\"d\",\"type\":{\"type\":\"array\",\"items\":\"R\"},\"default\":[]},"
    "{\"name\":\"e\",\"aliases\":[\"f\"],\"type\":{\"type\":\"map\",\"values\":\"bytes\"},"
    "\"default\":{}}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    if (!customs) {
        customs = tf_avro_schema_parse(reader, strlen(reader), err, sizeof err);
        arena = tf_avro_arena_new();
        if (!customs || !arena)
            abort();
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t slen = nul ? (size_t)(nul - data) : size;
    const uint8_t *body = nul ? nul + 1 : data + size;
    size_t blen = size - slen - (nul ? 1 : 0);
    tf_avro_schema_t *w = tf_avro_schema_parse((const char *)data, slen, err, sizeof err);
    if (!w)
        return 0;
    /* The canonical form must parse again. (It need not give the same form:
     * a type declared with an empty namespace inside a namespaced record is
     * written by its bare name, which then takes the enclosing namespace.) */
    const char *canon = tf_avro_schema_canonical(w);
    tf_avro_schema_t *again = tf_avro_schema_parse(canon, strlen(canon), err, sizeof err);
    if (!again)
        abort();
    tf_avro_schema_free(again);
    tf_avro_value_t v;
    tf_avro_resolver_t *self = tf_avro_resolver_new(w, w, err, sizeof err);
    if (self) {
        if (tf_avro_decode(self, body, blen, arena, &v, err, sizeof err) == 0) {
            /* Decoded with the writer's own shape: encoding gives the bytes
             * back unless blocks or varints were non-canonical. */
            tf_buf_t out = {0};
            if (tf_avro_encode(tf_avro_schema_root(w), &v, &out, err, sizeof err) != 0)
                abort();
            tf_buf_free(&out);
        }
        tf_avro_resolver_free(self);
    }
    tf_avro_resolver_t *r = tf_avro_resolver_new(w, customs, err, sizeof err);
    if (r) {
        tf_avro_decode(r, body, blen, arena, &v, err, sizeof err);
        tf_avro_resolver_free(r);
    }
    tf_avro_schema_free(w);
    return 0;
}
