/*
 * tf_codec.h - Avro encoding of tradeflow records and alerts, with writer ->
 * reader schema resolution and the two standard wire formats.
 *
 * Wire formats (every message carries the identity of its writer schema):
 *   - Avro single-object encoding (default): C3 01 + 8-byte little-endian
 *     CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form +
 *     Avro binary body. Writer schemas are looked up among the schemas the
 *     codec knows (the reader schema directory plus an optional extra
 *     directory of other versions).
 *   - Confluent Schema Registry framing: 00 + 4-byte big-endian schema id +
 *     body, when a registry URL is configured (tf_codec_use_registry()).
 *
 * Reader schemas are the project's schemas/ *.avsc: tradeflow.CustomsRecord,
 * tradeflow.InvestmentRecord, tradeflow.RankingAlert. Decoding resolves the
 * writer schema against the reader schema per the Avro specification
 * (defaults, aliases, promotions, enum defaults, unions) - see tf_avro.h.
 *
 * Threading: a tf_codec_t is not thread-safe; use one per thread.
 * Errors: functions return 0 / a pointer on success, -1 / NULL on failure
 * and write a one-line reason into errstr.
 */
#ifndef TF_CODEC_H
#define TF_CODEC_H

#include <stddef.h>
#include "tf_buf.h"
#include "tf_record.h"

typedef struct tf_codec tf_codec_t;

/* Directory of the installed schemas: $TRADEFLOW_SCHEMA_DIR if set, else
 * <dir of the executable>/../share/tradeflow/schemas if it exists, else the
 * source tree's schemas/ directory (compile-time path). Static string. */
const char *tf_codec_default_schema_dir(void);

/* Loads the reader schemas from schema_dir (NULL = default) and, if
 * extra_dir is not NULL, further writer schemas (*.avsc) from it.
 * Caller frees with tf_codec_destroy(). */
tf_codec_t *tf_codec_new(const char *schema_dir, const char *extra_dir, char *errstr,
                         size_t errlen);
void tf_codec_destroy(tf_codec_t *c);

/* Registers one more known writer schema from its JSON text. */
int tf_codec_add_writer_schema(tf_codec_t *c, const char *json, char *errstr, size_t errlen);

/* Switches to Confluent framing with the registry at url ("http(s)://host:port[/path]").
 * userinfo "user:password" for basic auth or NULL; ca_file for TLS or NULL.
 * Produce registers the writer schema under "<topic>-value"; consume fetches
 * unknown ids. Results are cached. */
int tf_codec_use_registry(tf_codec_t *c, const char *url, const char *userinfo,
                          const char *ca_file, char *errstr, size_t errlen);

/* Encodes r with the reader (= current writer) schema of its dataset and
 * appends the framed message to out. topic is used only with a registry. */
int tf_codec_encode_record(tf_codec_t *c, const char *topic, const tf_record_t *r, tf_buf_t *out,
                           char *errstr, size_t errlen);
/* Decodes one framed message into *out (zeroed first). Never crashes on bad
 * input: truncated data, bad magic, unknown fingerprint/id, absurd lengths,
 * invalid UTF-8 and values that do not fit the record all return -1. */
int tf_codec_decode_record(tf_codec_t *c, const void *data, size_t len, tf_record_t *out,
                           char *errstr, size_t errlen);

int tf_codec_encode_alert(tf_codec_t *c, const char *topic, const tf_alert_t *a, tf_buf_t *out,
                          char *errstr, size_t errlen);
int tf_codec_decode_alert(tf_codec_t *c, const void *data, size_t len, tf_alert_t *out,
                          char *errstr, size_t errlen);

#endif
