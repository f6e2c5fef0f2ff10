/*
 * tf_pg.h - PostgreSQL helpers: connecting through libpq's own conninfo/URI
 * and PG* variables, and the versioned migrations in schemas/migrations/.
 *
 * Errors: -1 / NULL and a one-line reason in errstr (libpq's message with the
 * password never included: libpq does not print it). Nothing here exits.
 */
#ifndef TF_PG_H
#define TF_PG_H

#include <stddef.h>
#include <libpq-fe.h>
#include <signal.h>

/* Directory of the SQL migrations: $TRADEFLOW_MIGRATIONS_DIR, else
 * <exe dir>/../share/tradeflow/migrations if it exists, else the source
 * tree's schemas/migrations (compile-time path). Static string. */
const char *tf_pg_default_migrations_dir(void);

/* Connects with conninfo (NULL or "" = only PG* environment variables),
 * application_name set to app. Caller frees with PQfinish(). */
PGconn *tf_pg_connect(const char *conninfo, const char *app, char *errstr, size_t errlen);

/* Checks a conninfo string or URI with libpq's own parser (unknown
 * keywords, bad syntax): "pg: libpq's reason". NULL/"" is fine (PG*
 * variables). Programs call it before --print-config and before a real
 * run, so both refuse a misspelled pg.* key alike (exit 64). */
int tf_pg_check_conninfo(const char *conninfo, char *errstr, size_t errlen);
struct tf_config;
/* The same for a program's configuration: its `pg` value with the pg.*
 * keys (tf_config_pg_conninfo). */
int tf_pg_check_config(const struct tf_config *cfg, char *errstr, size_t errlen);

/* Connects like tf_pg_connect() at a program's start: while the server is
 * unreachable (or starting up), tries again every half second until
 * timeout_ms has passed or *stop (may be NULL) is set. A refusal ends at
 * once: authentication failed, pg_hba.conf has no entry or rejects us,
 * unknown role or database, TLS verification failed or TLS unavailable (*refused = 1; exit TF_EXIT_NOPERM);
 * else *refused = 0 (exit TF_EXIT_UNAVAILABLE). errstr says which and
 * for how long. Caller frees with PQfinish(). */
PGconn *tf_pg_connect_wait(const char *conninfo, const char *app, int timeout_ms,
                           const volatile sig_atomic_t *stop, int *refused, char *errstr,
                           size_t errlen);
/* True when a connection failure's message (libpq's or the server's) is a
 * refusal in the sense above. */
int tf_pg_refusal(const char *message);

/* Executes sql (no parameters) and checks for success (command or tuples).
 * The result is cleared. */
int tf_pg_exec(PGconn *c, const char *sql, char *errstr, size_t errlen);

/* Applies the migrations NNN_name.sql of dir that are not yet recorded in
 * tradeflow.schema_migrations, in order, each in its own transaction under
 * one advisory lock (concurrent callers wait, then find nothing to do).
 * Refuses to start if an applied migration's file changed (md5 mismatch).
 * *applied (may be NULL) receives the number of migrations applied now. */
int tf_pg_migrate(PGconn *c, const char *dir, int *applied, char *errstr, size_t errlen);

/* What a failed transaction's error means for the batch that caused it; see
 * tf_pg_classify(). */
typedef enum tf_pg_errclass {
    TF_PG_ERR_RETRY = 0, /* retry the transaction at once: serialization failure
                          * (40001, also apply_stage's 'careful' hint), deadlock
                          * (40P01), lock not available (55P03), a unique
                          * violation of a racing insert (23505) */
    TF_PG_ERR_TRANSIENT, /* retry later with back-off: connection (class 08, or
                          * no SQLSTATE: the connection broke), insufficient
                          * resources incl. disk full (class 53), operator
                          * intervention (57P01..57P05, 57014 cancel), system
                          * and internal errors (58, XX) */
    TF_PG_ERR_DATA,      /* deterministic, caused by the data: data exceptions
                          * (class 22: 22003 numeric overflow, 22P02 invalid
                          * text, ...) and integrity violations (class 23
                          * except 23505): retrying the same data fails again */
    TF_PG_ERR_OTHER,     /* anything else (42 missing function/privilege, ...):
                          * not the data's fault, an operator must act; retried
                          * later with back-off */
} tf_pg_errclass_t;
#define TF_PG_ERR_NCLASSES 4

/* Classifies a SQLSTATE ("" or NULL: no server error, i.e. the connection
 * failed). Pure function, no server needed. */
tf_pg_errclass_t tf_pg_classify(const char *sqlstate);
/* "retry", "transient", "data", "other" (metric label values). */
const char *tf_pg_errclass_name(tf_pg_errclass_t c);

#endif
