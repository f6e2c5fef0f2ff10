#include "tf_pg.h"
#include "tf_config.h"

#include <dirent.h>
#include <time.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TF_MIGRATIONS_SRC_DIR
#define TF_MIGRATIONS_SRC_DIR "schemas/migrations"
#endif

/* Advisory lock key for migrations ("tradeflow" in ASCII, truncated). */
#define TF_MIGRATE_LOCK 0x7472616465666cLL

static void pg_err(char *errstr, size_t errlen, const char *what, const char *msg)
{
    char m[512];
    snprintf(m, sizeof(m), "%s", msg ? msg : "unknown error");
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        m[--n] = '\0';
    for (char *p = m; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    snprintf(errstr, errlen, "%s: %s", what, m);
}

const char *tf_pg_default_migrations_dir(void)
{
    static char buf[PATH_MAX + 64];
    const char *env = getenv("TRADEFLOW_MIGRATIONS_DIR");
    if (env && *env)
        return env;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            struct stat st;
            snprintf(buf, sizeof(buf), "%s/../share/tradeflow/migrations", exe);
            if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
                return buf;
        }
    }
    return TF_MIGRATIONS_SRC_DIR;
}

/* Server notices ("... already exists, skipping") are not errors: drop them. */
static void quiet_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

PGconn *tf_pg_connect(const char *conninfo, const char *app, char *errstr, size_t errlen)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {conninfo ? conninfo : "", app ? app : "tradeflow", "10", NULL};
    /* expand_dbname=1: dbname may be a full conninfo string or URI; PG* fill the rest. */
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        snprintf(errstr, errlen, "PostgreSQL: out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        pg_err(errstr, errlen, "PostgreSQL connection failed", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    return c;
}

int tf_pg_check_conninfo(const char *conninfo, char *errstr, size_t errlen)
{
    if (!conninfo || !*conninfo)
        return 0;
    char *err = NULL;
    PQconninfoOption *o = PQconninfoParse(conninfo, &err);
    if (!o) {
        pg_err(errstr, errlen, "pg", err ? err : "out of memory");
        PQfreemem(err);
        return -1;
    }
    PQconninfoFree(o);
    return 0;
}

int tf_pg_refusal(const char *m)
{
    static const char *const refusals[] = {
        "authentication", "pg_hba.conf", "does not exist",
        "password", /* (supplied but none required / none supplied: "fe_sendauth: no password") */
        "permission denied", "certificate", "SSL error", "server does not support SSL",
        "must be superuser", "not permitted to log in", NULL};
    if (!m)
        return 0;
    for (int i = 0; refusals[i]; i++)
        if (strstr(m, refusals[i]))
            return 1;
    return 0;
}

PGconn *tf_pg_connect_wait(const char *conninfo, const char *app, int timeout_ms,
                           const volatile sig_atomic_t *stop, int *refused, char *errstr,
                           size_t errlen)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    *refused = 0;
    for (int attempt = 1;; attempt++) {
        PGconn *c = tf_pg_connect(conninfo, app, errstr, errlen);
        if (c)
            return c;
        if (tf_pg_refusal(errstr)) {
            *refused = 1;
            char why[1024];
            snprintf(why, sizeof(why), "%s", errstr);
            snprintf(errstr, errlen, "PostgreSQL refused the connection: %s", why);
            return NULL;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        long ms = (t.tv_sec - t0.tv_sec) * 1000L + (t.tv_nsec - t0.tv_nsec) / 1000000L;
        if (ms >= timeout_ms || (stop && *stop)) {
            char why[1024];
            snprintf(why, sizeof(why), "%s", errstr);
            snprintf(errstr, errlen,
                     "PostgreSQL unreachable: %d attempt(s) in %.1f s (startup.timeout %d s): %s",
                     attempt, ms / 1000.0, timeout_ms / 1000, why);
            return NULL;
        }
        struct timespec nap = {0, 500 * 1000000L};
        nanosleep(&nap, NULL);
    }
}

int tf_pg_check_config(const struct tf_config *cfg, char *errstr, size_t errlen)
{
    char *ci = tf_config_pg_conninfo(cfg);
    int rc = tf_pg_check_conninfo(ci, errstr, errlen);
    free(ci);
    return rc;
}

int tf_pg_exec(PGconn *c, const char *sql, char *errstr, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        pg_err(errstr, errlen, "PostgreSQL", PQresultErrorMessage(r));
        rc = -1;
    }
    PQclear(r);
    return rc;
}

tf_pg_errclass_t tf_pg_classify(const char *s)
{
    if (!s || strlen(s) != 5)
        return TF_PG_ERR_TRANSIENT; /* no SQLSTATE: the connection failed */
    if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 || strcmp(s, "55P03") == 0 ||
        strcmp(s, "23505") == 0)
        return TF_PG_ERR_RETRY;
    if (strncmp(s, "22", 2) == 0 || strcmp(s, "40002") == 0 || strncmp(s, "23", 2) == 0)
        return TF_PG_ERR_DATA;
    if (strncmp(s, "08", 2) == 0 || strncmp(s, "53", 2) == 0 || strncmp(s, "58", 2) == 0 ||
        strncmp(s, "XX", 2) == 0 || strncmp(s, "57", 2) == 0 || strncmp(s, "40", 2) == 0)
        return TF_PG_ERR_TRANSIENT;
    return TF_PG_ERR_OTHER;
}

const char *tf_pg_errclass_name(tf_pg_errclass_t c)
{
    static const char *const names[TF_PG_ERR_NCLASSES] = {"retry", "transient", "data", "other"};
    return (unsigned)c < TF_PG_ERR_NCLASSES ? names[c] : "other";
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *read_file(const char *path, char *errstr, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errstr, errlen, "%s: cannot open", path);
        return NULL;
    }
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
    } else {
        free(buf);
        buf = NULL;
        snprintf(errstr, errlen, "%s: cannot read", path);
    }
    fclose(f);
    return buf;
}

/* Returns 0 if every migration file is recorded with its checksum, 1 if
 * some are not (or the table does not exist yet), -1 on error (a changed
 * migration, or a query failure). */
static int up_to_date(PGconn *c, const char *dir, char **files, size_t nfiles, char *errstr,
                      size_t errlen)
{
    int rc = 1;
    PGresult *r = PQexec(c, "SELECT to_regclass('tradeflow.schema_migrations') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_err(errstr, errlen, "PostgreSQL", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    int exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!exists)
        return 1;
    size_t recorded = 0;
    for (size_t i = 0; i < nfiles; i++) {
        char path[PATH_MAX], vbuf[16];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        char *sql = read_file(path, errstr, errlen);
        if (!sql)
            return -1;
        snprintf(vbuf, sizeof(vbuf), "%d", atoi(files[i]));
        const char *p[] = {vbuf, sql};
        r = PQexecParams(c,
                         "SELECT md5 = md5($2) FROM tradeflow.schema_migrations "
                         "WHERE version = $1::int",
                         2, NULL, p, NULL, NULL, 0);
        free(sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            pg_err(errstr, errlen, "reading tradeflow.schema_migrations",
                   PQresultErrorMessage(r));
            PQclear(r);
            return -1;
        }
        if (PQntuples(r) == 1) {
            if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
                snprintf(errstr, errlen,
                         "%s: migration %s was changed after it was applied; "
                         "add a new migration instead",
                         path, vbuf);
                PQclear(r);
                return -1;
            }
            recorded++;
        }
        PQclear(r);
    }
    if (recorded == nfiles)
        rc = 0;
    return rc;
}

int tf_pg_migrate(PGconn *c, const char *dir, int *applied, char *errstr, size_t errlen)
{
    int rc = -1, count = 0;
    char lock_sql[96];
    size_t nfiles = 0;
    char **files = NULL;
    PGresult *r = NULL;
    char *sql = NULL;

    if (applied)
        *applied = 0;
    if (!dir)
        dir = tf_pg_default_migrations_dir();
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(errstr, errlen, "migrations directory %s: cannot open", dir);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 8 && e->d_name[0] >= '0' && e->d_name[0] <= '9' &&
            strcmp(e->d_name + l - 4, ".sql") == 0) {
            char **nf = realloc(files, (nfiles + 1) * sizeof(*files));
            if (!nf)
                break;
            files = nf;
            files[nfiles++] = strdup(e->d_name);
        }
    }
    closedir(d);
    if (nfiles == 0) {
        snprintf(errstr, errlen, "migrations directory %s: no NNN_name.sql files", dir);
        goto out;
    }
    qsort(files, nfiles, sizeof(*files), name_cmp);

    /* Nothing to do (the usual case, and the only one that a role without
     * DDL rights, e.g. tradeflow_writer, can pass): every file is recorded
     * with the same checksum. Checked without locks or DDL. */
    int pending = up_to_date(c, dir, files, nfiles, errstr, errlen);
    if (pending < 0)
        goto out;
    if (pending == 0) {
        rc = 0;
        goto out;
    }

    /* A session-level lock serialises concurrent migrators across the
     * per-file transactions below. */
    snprintf(lock_sql, sizeof(lock_sql), "SELECT pg_advisory_lock(%lld)", TF_MIGRATE_LOCK);
    if (tf_pg_exec(c, lock_sql, errstr, errlen))
        goto out;
    if (tf_pg_exec(c,
                   "CREATE SCHEMA IF NOT EXISTS tradeflow;"
                   "CREATE TABLE IF NOT EXISTS tradeflow.schema_migrations ("
                   " version integer PRIMARY KEY, name text NOT NULL, md5 text NOT NULL,"
                   " applied_at timestamptz NOT NULL DEFAULT now())",
                   errstr, errlen))
        goto unlock;

    for (size_t i = 0; i < nfiles; i++) {
        int version = atoi(files[i]);
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        free(sql);
        if (!(sql = read_file(path, errstr, errlen)))
            goto unlock;
        char vbuf[16];
        snprintf(vbuf, sizeof(vbuf), "%d", version);
        const char *p1[] = {vbuf, sql};
        PQclear(r);
        r = PQexecParams(c,
                         "SELECT name, md5 = md5($2) FROM tradeflow.schema_migrations "
                         "WHERE version = $1::int",
                         2, NULL, p1, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            pg_err(errstr, errlen, "reading tradeflow.schema_migrations",
                   PQresultErrorMessage(r));
            goto unlock;
        }
        if (PQntuples(r) == 1) {
            if (strcmp(PQgetvalue(r, 0, 1), "t") != 0) {
                snprintf(errstr, errlen,
                         "%s: migration %d was changed after it was applied; "
                         "add a new migration instead",
                         path, version);
                goto unlock;
            }
            continue;
        }
        if (tf_pg_exec(c, "BEGIN", errstr, errlen))
            goto unlock;
        PQclear(r);
        r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
            char what[PATH_MAX + 32];
            snprintf(what, sizeof(what), "migration %s", path);
            pg_err(errstr, errlen, what, PQresultErrorMessage(r));
            tf_pg_exec(c, "ROLLBACK", what, sizeof(what));
            goto unlock;
        }
        const char *p2[] = {vbuf, files[i], sql};
        PQclear(r);
        r = PQexecParams(c,
                         "INSERT INTO tradeflow.schema_migrations (version, name, md5) "
                         "VALUES ($1::int, $2, md5($3))",
                         3, NULL, p2, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            char tmp[64];
            pg_err(errstr, errlen, "recording migration", PQresultErrorMessage(r));
            tf_pg_exec(c, "ROLLBACK", tmp, sizeof(tmp));
            goto unlock;
        }
        if (tf_pg_exec(c, "COMMIT", errstr, errlen))
            goto unlock;
        count++;
    }
    rc = 0;
    if (applied)
        *applied = count;
unlock:;
    char tmp[256];
    snprintf(lock_sql, sizeof(lock_sql), "SELECT pg_advisory_unlock(%lld)", TF_MIGRATE_LOCK);
    tf_pg_exec(c, lock_sql, tmp, sizeof(tmp));
out:
    PQclear(r);
    free(sql);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    return rc;
}
