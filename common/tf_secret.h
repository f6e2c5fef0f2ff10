/*
 * tf_secret.h - masking secrets for display: the one place that decides what
 * a secret looks like, for --print-config, logs and error messages (issue 14).
 *
 * Secrets are: the password of a URL's userinfo (scheme://user:PASSWORD@host,
 * any scheme: http, https, postgresql, ...), password=... in a libpq
 * conninfo string and in a URI's query (?password=...), the password half of
 * "user:password", and the whole value of a key that names a secret
 * (tf_secret_key()). A mask is "********" in place of the secret; everything
 * else is kept so the output stays useful.
 *
 * Nothing here allocates: results are written into the caller's buffer
 * (truncated to fit, always NUL-terminated) and returned.
 */
#ifndef TF_SECRET_H
#define TF_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#define TF_SECRET_MASK "********"

/* True when a configuration key names a secret, whatever its prefix and
 * whether it is known or not: it contains "password", "passwd", "secret",
 * "token", "credential" or "private", or is librdkafka's
 * sasl.oauthbearer.config / ssl.key.pem, or an HTTP auth header
 * ("auth_header", "authorization"), compared case-insensitively. */
bool tf_secret_key(const char *key);

/* Masks the password of every URL in text (free text: messages, lists of
 * URLs) and every password=VALUE (conninfo keyword or URI query parameter). */
const char *tf_secret_mask_text(const char *text, char *buf, size_t buflen);

/* The display form of a configuration value: the mask for a secret key;
 * "user:********" for keys ending in ".user" / "user" whose value has a
 * colon (basic-auth "user:password"); "scheme://host[:port]/" plus the mask for
 * a delivery URL (deliver.NAME.url: webhooks carry their token in the path
 * or query); else tf_secret_mask_text(). */
const char *tf_secret_mask_value(const char *key, const char *value, char *buf, size_t buflen);

#endif
