/*
 * tf_avro.h - a small, self-contained Avro schema model with the parts of the
 * specification that Avro C 1.11.1 lacks or gets wrong:
 *
 *   - schema parsing (jansson) that keeps defaults, aliases, logical types and
 *     enum defaults;
 *   - Parsing Canonical Form and the CRC-64-AVRO fingerprint;
 *   - writer -> reader schema resolution ("Schema Resolution" in the
 *     specification), compiled once per (writer, reader) pair into a
 *     resolver, then applied to Avro binary data;
 *   - a schema-driven binary encoder.
 *
 * Decoded values are a tree of tf_avro_value_t in the shape of the READER
 * schema. Strings, bytes and fixed values point into the input buffer or into
 * memory owned by the resolver (defaults): they are not NUL-terminated and are
 * valid only while both the input and the resolver live, and until the next
 * decode with the same arena.
 *
 * Ownership: tf_avro_schema_t owns all its nodes, fields and default values;
 * a tf_avro_resolver_t keeps pointers into both schemas, which must outlive
 * it. A tf_avro_arena_t owns the value arrays of the last decode.
 * Threading: schemas and resolvers are read-only after creation and can be
 * shared between threads; arenas cannot.
 */
#ifndef TF_AVRO_H
#define TF_AVRO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tf_buf.h"

typedef enum tf_avro_type {
    TF_AVRO_NULL = 0,
    TF_AVRO_BOOLEAN,
    TF_AVRO_INT,
    TF_AVRO_LONG,
    TF_AVRO_FLOAT,
    TF_AVRO_DOUBLE,
    TF_AVRO_BYTES,
    TF_AVRO_STRING,
    TF_AVRO_RECORD,
    TF_AVRO_ENUM,
    TF_AVRO_ARRAY,
    TF_AVRO_MAP,
    TF_AVRO_UNION,
    TF_AVRO_FIXED,
} tf_avro_type_t;

typedef struct tf_avro_node tf_avro_node_t;
typedef struct tf_avro_value tf_avro_value_t;

typedef struct tf_avro_field {
    char *name;
    char **aliases;
    size_t naliases;
    tf_avro_node_t *type;
    /* The field's default converted to the field's type, or NULL when the
     * field has none. A default that does not match the type is ignored
     * (bad_default is set), as other implementations do when parsing; it is
     * an error only when resolution needs it. */
    tf_avro_value_t *defval;
    bool bad_default;
} tf_avro_field_t;

/* A schema node. Read-only view; all memory belongs to the tf_avro_schema_t.
 * Named-type references point at the defining node, so the graph may be
 * cyclic (recursive records). */
struct tf_avro_node {
    tf_avro_type_t type;
    char *fullname;    /* records, enums, fixed */
    char **aliases;    /* full names */
    size_t naliases;
    char *logical;     /* "logicalType" or NULL */
    int precision;     /* decimal */
    int scale;         /* decimal */
    tf_avro_field_t *fields; /* records */
    size_t nfields;
    char **symbols;    /* enums */
    size_t nsymbols;
    int enum_default;  /* index of the enum's "default" symbol, or -1 */
    tf_avro_node_t *items;     /* array items, map values */
    tf_avro_node_t **branches; /* union */
    size_t nbranches;
    size_t size;               /* fixed */
    size_t min_size;           /* smallest possible encoding, in bytes */
};

typedef struct tf_avro_str {
    const char *p;
    size_t n;
} tf_avro_str_t;

struct tf_avro_value {
    tf_avro_type_t type; /* the type of the content; never TF_AVRO_UNION */
    int32_t branch;      /* index in the enclosing reader union, or -1 */
    union {
        int64_t l;        /* boolean (0/1), int, long, enum symbol index */
        double d;         /* float, double */
        tf_avro_str_t s;  /* string, bytes, fixed */
        struct {
            tf_avro_value_t *v;   /* record fields in schema order, items, map values */
            tf_avro_str_t *keys;  /* map keys, else NULL */
            size_t n;
        } c;
    } u;
};

/* --- schemas ------------------------------------------------------------ */

typedef struct tf_avro_schema tf_avro_schema_t;

/* Parses schema JSON text. Checks names, duplicate fields/symbols, unions
 * (no nested unions, no duplicate unnamed types) and decimal parameters;
 * defaults are converted to their field's type (see bad_default). Caller frees with
 * tf_avro_schema_free(). */
tf_avro_schema_t *tf_avro_schema_parse(const char *json, size_t len, char *errstr, size_t errlen);
void tf_avro_schema_free(tf_avro_schema_t *s);

const tf_avro_node_t *tf_avro_schema_root(const tf_avro_schema_t *s);
/* Parsing Canonical Form (NUL-terminated, owned by the schema). */
const char *tf_avro_schema_canonical(const tf_avro_schema_t *s);
/* CRC-64-AVRO of the canonical form. */
uint64_t tf_avro_schema_fingerprint(const tf_avro_schema_t *s);
/* The original JSON text (owned by the schema), for registries. */
const char *tf_avro_schema_json(const tf_avro_schema_t *s);

/* CRC-64-AVRO (Rabin) fingerprint of arbitrary bytes. */
uint64_t tf_avro_crc64(const void *data, size_t len);

/* Index of a record field by name, or -1. */
int tf_avro_field_index(const tf_avro_node_t *record, const char *name);
/* Index of an enum symbol, or -1. */
int tf_avro_symbol_index(const tf_avro_node_t *en, const char *symbol);

/* --- decoding ------------------------------------------------------------ */

typedef struct tf_avro_arena tf_avro_arena_t;

/* An arena for decoded values; reused (reset) by every decode. Caller frees
 * with tf_avro_arena_free(). */
tf_avro_arena_t *tf_avro_arena_new(void);
void tf_avro_arena_free(tf_avro_arena_t *a);

typedef struct tf_avro_resolver tf_avro_resolver_t;

/* Compiles the resolution of data written with `writer` into the shape of
 * `reader`. Returns NULL with a reason (naming the path of the first
 * incompatibility, e.g. "field value_usd: writer string cannot be read as
 * long") when the pair cannot be resolved. Writer and reader schemas must
 * outlive the resolver; caller frees with tf_avro_resolver_free(). */
tf_avro_resolver_t *tf_avro_resolver_new(const tf_avro_schema_t *writer,
                                         const tf_avro_schema_t *reader, char *errstr,
                                         size_t errlen);
void tf_avro_resolver_free(tf_avro_resolver_t *r);

/* Decodes exactly len bytes of Avro binary (written with the resolver's
 * writer schema) into *out, shaped like the reader schema. Trailing bytes,
 * truncation, bad lengths, invalid UTF-8 in strings, enum or union indexes
 * out of range, writer symbols unknown to a reader enum without default and
 * writer union branches that the reader cannot take all return -1. Values
 * live in `arena` (reset first) and in `data`. */
int tf_avro_decode(const tf_avro_resolver_t *r, const void *data, size_t len,
                   tf_avro_arena_t *arena, tf_avro_value_t *out, char *errstr, size_t errlen);
/* The same for a framed message: the Avro binary starts after `header`
 * bytes of msg (single-object or registry framing), and byte positions in
 * errors ("truncated at byte N of M") count from the start of msg. */
int tf_avro_decode_at(const tf_avro_resolver_t *r, const void *msg, size_t len, size_t header,
                      tf_avro_arena_t *arena, tf_avro_value_t *out, char *errstr,
                      size_t errlen);

/* --- encoding ------------------------------------------------------------ */

/* Appends the Avro binary encoding of v (shaped like `schema`; for a union,
 * v->branch selects the branch) to out. Returns -1 if v does not fit the
 * schema (wrong type, bad enum index, fixed size mismatch) or memory runs
 * out. */
int tf_avro_encode(const tf_avro_node_t *schema, const tf_avro_value_t *v, tf_buf_t *out,
                   char *errstr, size_t errlen);

/* Zig-zag varint helpers, exposed for framing and tests. buf needs 10 bytes.
 * tf_avro_read_long returns bytes consumed, or 0 on truncation/overlong. */
size_t tf_avro_write_long(uint8_t *buf, int64_t v);
size_t tf_avro_read_long(const uint8_t *p, size_t len, int64_t *out);

const char *tf_avro_type_name(tf_avro_type_t t);

#endif
