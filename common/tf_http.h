/*
 * tf_http.h - the operations endpoint of a tradeflow program, served by
 * libmicrohttpd on its own thread:
 *
 *   GET /metrics   200, the registry in the Prometheus text format 0.0.4
 *   GET /healthz   200 "ok" while the program's main loop is alive (it calls
 *                  tf_http_heartbeat() more often than the stale bound),
 *                  503 with the reason once the heartbeat is stale
 *   GET /readyz    200 "ready" when alive and the program's ready callback
 *                  says so, 503 with the callback's reason otherwise
 *   anything else  404 (405 for a method other than GET or HEAD)
 *
 * Life cycle: tf_http_start() binds and starts serving; tf_http_stop() stops
 * the server thread (in-flight requests are finished or cut) and frees the
 * handle. The registry and the callback's argument are borrowed: they must
 * outlive the server, so stop it before freeing them.
 *
 * Threads: the ready callback and the rendering of the registry run on
 * libmicrohttpd's thread, concurrently with the program. The callback must
 * therefore only read state that is safe to read from another thread
 * (atomics, or data under the program's own lock), and return quickly.
 * tf_http_heartbeat() may be called from any thread.
 *
 * Errors: tf_http_start() returns NULL and fills errstr. libmicrohttpd's own
 * messages go to tf_log (facility "http"). Nothing here exits.
 */
#ifndef TF_HTTP_H
#define TF_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "tf_metrics.h"

typedef struct tf_http tf_http_t;

/* Returns 1 if the program is ready to do its work, 0 if not; when not, it
 * writes a one-line reason (no newline needed) into reason. May be called
 * concurrently with the program: see the thread note above. */
typedef int (*tf_http_ready_fn)(void *arg, char *reason, size_t reasonlen);

/* The default bound after which a silent main loop makes /healthz fail. */
#define TF_HTTP_STALE_MS_DEFAULT 30000

/* Starts serving on addr: "HOST:PORT" with HOST an IPv4 address, a name, or
 * "[IPv6]"; ":PORT" binds to 127.0.0.1 (loopback is the default: bind
 * elsewhere only on purpose). PORT 0 asks the system for a free port (read it
 * back with tf_http_port()). m may be NULL (then /metrics is empty), ready
 * may be NULL (then alive means ready). The start counts as the first
 * heartbeat. The caller frees the result with tf_http_stop(). */
tf_http_t *tf_http_start(const char *addr, tf_metrics_t *m, tf_http_ready_fn ready, void *arg,
                         char *errstr, size_t errlen);

/* The port actually bound (useful after ":0"). */
int tf_http_port(const tf_http_t *h);

/* Marks the main loop as alive now. NULL is a no-op, so a program can call
 * it every loop whether or not its endpoint is on. */
void tf_http_heartbeat(tf_http_t *h);

/* Changes the stale bound of /healthz (milliseconds, > 0). */
void tf_http_set_stale_ms(tf_http_t *h, int64_t ms);

/* Stops the server and frees h. NULL is a no-op. */
void tf_http_stop(tf_http_t *h);

#endif
