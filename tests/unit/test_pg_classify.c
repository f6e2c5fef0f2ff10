/*
 * test_pg_classify.c - tf_pg_classify(): which PostgreSQL errors a batch is
 * retried for at once, after a back-off, or split for (issue 14). No server.
 */
#include "tf_pg.h"
#include "tf_test.h"

static void test_classes(void)
{
    static const struct {
        const char *state;
        tf_pg_errclass_t want;
    } cases[] = {
        /* at once: serialization (also apply_stage's 'careful' hint), deadlock,
         * lock not available, a racing insert */
        {"40001", TF_PG_ERR_RETRY},
        {"40P01", TF_PG_ERR_RETRY},
        {"55P03", TF_PG_ERR_RETRY},
        {"23505", TF_PG_ERR_RETRY},
        /* back-off: connection, resources, shutdown, system */
        {NULL, TF_PG_ERR_TRANSIENT},
        {"", TF_PG_ERR_TRANSIENT},
        {"08006", TF_PG_ERR_TRANSIENT},
        {"08001", TF_PG_ERR_TRANSIENT},
        {"53100", TF_PG_ERR_TRANSIENT}, /* disk full */
        {"53200", TF_PG_ERR_TRANSIENT}, /* out of memory */
        {"53300", TF_PG_ERR_TRANSIENT}, /* too many connections */
        {"57P01", TF_PG_ERR_TRANSIENT}, /* admin shutdown */
        {"57P03", TF_PG_ERR_TRANSIENT}, /* cannot connect now */
        {"57014", TF_PG_ERR_TRANSIENT}, /* query canceled */
        {"58030", TF_PG_ERR_TRANSIENT}, /* I/O error */
        {"XX000", TF_PG_ERR_TRANSIENT},
        {"40003", TF_PG_ERR_TRANSIENT}, /* statement completion unknown */
        /* the data's fault: isolate the records */
        {"22003", TF_PG_ERR_DATA}, /* numeric value out of range */
        {"22P02", TF_PG_ERR_DATA}, /* invalid text representation */
        {"22001", TF_PG_ERR_DATA}, /* string data right truncation */
        {"22008", TF_PG_ERR_DATA}, /* datetime field overflow */
        {"23514", TF_PG_ERR_DATA}, /* check violation */
        {"23502", TF_PG_ERR_DATA}, /* not null violation */
        {"23503", TF_PG_ERR_DATA}, /* foreign key violation */
        {"40002", TF_PG_ERR_DATA}, /* integrity violation at commit */
        /* neither: an operator must act */
        {"42883", TF_PG_ERR_OTHER}, /* undefined function (not migrated) */
        {"42501", TF_PG_ERR_OTHER}, /* insufficient privilege */
        {"42P01", TF_PG_ERR_OTHER},
        {"2200", TF_PG_ERR_TRANSIENT}, /* malformed: not a SQLSTATE */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_MSG(tf_pg_classify(cases[i].state) == cases[i].want, "%s: got %s, want %s",
                  cases[i].state ? cases[i].state : "(null)",
                  tf_pg_errclass_name(tf_pg_classify(cases[i].state)),
                  tf_pg_errclass_name(cases[i].want));
    CHECK_STR(tf_pg_errclass_name(TF_PG_ERR_RETRY), "retry");
    CHECK_STR(tf_pg_errclass_name(TF_PG_ERR_TRANSIENT), "transient");
    CHECK_STR(tf_pg_errclass_name(TF_PG_ERR_DATA), "data");
    CHECK_STR(tf_pg_errclass_name(TF_PG_ERR_OTHER), "other");
}

/* Connection failures that end a start at once (77) or are waited out (69):
 * libpq's and the server's messages as they read. */
static void test_refusals(void)
{
    static const char *const refused[] = {
        "FATAL:  password authentication failed for user \"app\"",
        "fe_sendauth: no password supplied",
        "FATAL:  no pg_hba.conf entry for host \"127.0.0.1\", user \"x\", database \"y\", no encryption",
        "FATAL:  pg_hba.conf rejects connection for host \"127.0.0.1\", user \"x\", database \"y\", no encryption",
        "FATAL:  role \"nosuch\" does not exist",
        "FATAL:  database \"nosuch\" does not exist",
        "SSL error: certificate verify failed",
        "server does not support SSL, but SSL was required",
        "FATAL:  permission denied for database \"y\"",
        "FATAL:  role \"r\" is not permitted to log in",
    };
    static const char *const unreachable[] = {
        "connection to server at \"127.0.0.1\", port 1 failed: Connection refused",
        "could not translate host name \"no.such.host\" to address: Name or service not known",
        "FATAL:  the database system is starting up",
        "FATAL:  the database system is shutting down",
        "timeout expired",
        "FATAL:  sorry, too many clients already",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        CHECK_MSG(tf_pg_refusal(refused[i]), "not a refusal: %s", refused[i]);
    for (size_t i = 0; i < sizeof unreachable / sizeof unreachable[0]; i++)
        CHECK_MSG(!tf_pg_refusal(unreachable[i]), "a refusal: %s", unreachable[i]);
    CHECK(!tf_pg_refusal(NULL));
}

int main(void)
{
    TF_TEST_RUN(test_classes);
    TF_TEST_RUN(test_refusals);
    return TF_TEST_REPORT();
}
