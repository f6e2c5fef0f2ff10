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

/* Directory of the SQL migrations: $TRADEFLOW_MIGRATIONS_DIR, else
 * <exe dir>/../share/tradeflow/migrations if it exists, else the source
 * tree's schemas/migrations (compile-time path). Static string. */
const char *tf_pg_default_migrations_dir(void);

/* Connects with conninfo (NULL or "" = only PG* environment variables),
 * application_name set to app. Caller frees with PQfinish(). */
PGconn *tf_pg_connect(const char *conninfo, const char *app, char *errstr, size_t errlen);

/* Executes sql (no parameters) and checks for success (command or tuples).
 * The result is cleared. */
int tf_pg_exec(PGconn *c, const char *sql, char *errstr, size_t errlen);

/* Applies the migrations NNN_name.sql of dir that are not yet recorded in
 * tradeflow.schema_migrations, in order, each in its own transaction under
 * one advisory lock (concurrent callers wait, then find nothing to do).
 * Refuses to start if an applied migration's file changed (md5 mismatch).
 * *applied (may be NULL) receives the number of migrations applied now. */
int tf_pg_migrate(PGconn *c, const char *dir, int *applied, char *errstr, size_t errlen);

/* True if the error is worth retrying the transaction for: serialization
 * failure, deadlock, unique violation in a racing insert. */
int tf_pg_sqlstate_retryable(const char *sqlstate);

#endif
