/*
 * tf_err.h - the project's one error-reporting helper for library code:
 * functions return -1 / NULL and describe the failure in a caller-provided
 * buffer (librdkafka's errstr convention).
 */
#ifndef TF_ERR_H
#define TF_ERR_H

#include <stddef.h>

/* Exit statuses of every program when its servers fail it at start-up
 * (sysexits.h; docs/operations.md): */
#define TF_EXIT_UNAVAILABLE 69 /* EX_UNAVAILABLE: Kafka or PostgreSQL unreachable within
                                * startup.timeout */
#define TF_EXIT_NOPERM 77      /* EX_NOPERM: a server refused us (authentication,
                                * authorisation, TLS verification, unknown database) */

/* printf into errstr (truncating); a NULL or empty buffer is ignored. */
void tf_seterr(char *errstr, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
