/*
 * tf_registry.h - a client for the Confluent Schema Registry REST API (also
 * served by Apicurio Registry under /apis/ccompat/v7), on libcurl.
 *
 *   register: POST <url>/subjects/<subject>/versions  {"schema": "<json>"} -> {"id": N}
 *   fetch:    GET  <url>/schemas/ids/<id>                                 -> {"schema": "<json>"}
 *
 * Both directions are cached for the life of the client, so a producer asks
 * once per (subject, schema) and a consumer once per id.
 *
 * Ownership: the caller frees the client with tf_registry_destroy(); strings
 * returned by the client belong to it and live until it is destroyed.
 * Threading: one client per thread (it owns a curl easy handle).
 */
#ifndef TF_REGISTRY_H
#define TF_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

typedef struct tf_registry tf_registry_t;

/* url: "http(s)://host:port[/path]" (no trailing slash needed).
 * userinfo: "user:password" for HTTP basic auth, or NULL.
 * ca_file: PEM CA bundle to verify the server's TLS certificate, or NULL for
 * the system's. timeout_ms: whole-request timeout (0 = 10 s).
 * Nothing is sent until the first request. */
tf_registry_t *tf_registry_new(const char *url, const char *userinfo, const char *ca_file,
                               long timeout_ms, char *errstr, size_t errlen);
void tf_registry_destroy(tf_registry_t *r);

/* Registers schema_json under subject (or finds it already registered) and
 * returns its id in *id. Returns 0, or -1 with the HTTP status and the
 * registry's message in errstr. */
int tf_registry_register(tf_registry_t *r, const char *subject, const char *schema_json,
                         int32_t *id, char *errstr, size_t errlen);

/* The schema text registered under id, or NULL with a reason. The string
 * belongs to the client. */
const char *tf_registry_schema_by_id(tf_registry_t *r, int32_t id, char *errstr, size_t errlen);

/* Number of HTTP requests made so far (for tests of the cache). */
unsigned long tf_registry_requests(const tf_registry_t *r);

#endif
