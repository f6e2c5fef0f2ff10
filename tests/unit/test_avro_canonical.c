/*
 * test_avro_canonical.c - Parsing Canonical Form and CRC-64-AVRO against the
 * specification's test vectors (tests/data/schema-tests.txt, from the Avro
 * repository), plus schema parsing errors.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_avro.h"
#include "tf_test.h"

static char err[512];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b)
        b[n] = '\0';
    fclose(f);
    return b;
}

/* The file holds blocks of "<<INPUT text" (or "<<INPUT" + lines + "INPUT"),
 * "<<canonical text" and optionally "<<fingerprint signed-decimal". */
static void test_vectors(void)
{
    const char *src = getenv("TF_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/schema-tests.txt", src ? src : ".");
    char *text = slurp(path);
    CHECK_MSG(text != NULL, "cannot read %s", path);
    if (!text)
        return;
    int vectors = 0, fingerprints = 0;
    char input[4096] = "";
    char *save = NULL;
    bool multi = false;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (multi) {
            if (strcmp(line, "INPUT") == 0)
                multi = false;
            else
                strncat(input, line, sizeof input - strlen(input) - 2), strcat(input, "\n");
        } else if (strcmp(line, "<<INPUT") == 0) {
            input[0] = '\0';
            multi = true;
        } else if (strncmp(line, "<<INPUT ", 8) == 0) {
            snprintf(input, sizeof input, "%s", line + 8);
        } else if (strncmp(line, "<<canonical ", 12) == 0) {
            tf_avro_schema_t *s = tf_avro_schema_parse(input, strlen(input), err, sizeof err);
            CHECK_MSG(s != NULL, "%s: %s", input, err);
            if (s) {
                CHECK_STR(tf_avro_schema_canonical(s), line + 12);
                tf_avro_schema_free(s);
            }
            vectors++;
        } else if (strncmp(line, "<<fingerprint ", 14) == 0) {
            int64_t want = strtoll(line + 14, NULL, 10);
            tf_avro_schema_t *s = tf_avro_schema_parse(input, strlen(input), err, sizeof err);
            if (s) {
                CHECK_MSG((int64_t)tf_avro_schema_fingerprint(s) == want,
                          "%s: %" PRId64 " != %" PRId64, input,
                          (int64_t)tf_avro_schema_fingerprint(s), want);
                tf_avro_schema_free(s);
            }
            fingerprints++;
        }
    }
    CHECK_INT(vectors, 34);
    CHECK_INT(fingerprints, 26);
    free(text);
}

static void test_logical_types_in_canonical_form(void)
{
    /* Logical types, defaults, docs, aliases and "order" are not part of the
     * canonical form; a nested named type is written in full once. */
    const char *j = "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n\",\"fields\":["
                    "{\"name\":\"d\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\","
                    "\"precision\":18,\"scale\":2},\"doc\":\"x\"},"
                    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"],"
                    "\"default\":\"A\"},\"default\":\"A\",\"aliases\":[\"ee\"]},"
                    "{\"name\":\"f\",\"type\":[\"null\",\"E\"],\"default\":null}]}";
    tf_avro_schema_t *s = tf_avro_schema_parse(j, strlen(j), err, sizeof err);
    CHECK_MSG(s != NULL, "%s", err);
    if (!s)
        return;
    CHECK_STR(tf_avro_schema_canonical(s),
              "{\"name\":\"n.R\",\"type\":\"record\",\"fields\":[{\"name\":\"d\",\"type\":\"bytes\"},"
              "{\"name\":\"e\",\"type\":{\"name\":\"n.E\",\"type\":\"enum\",\"symbols\":[\"A\"]}},"
              "{\"name\":\"f\",\"type\":[\"null\",\"n.E\"]}]}");
    const tf_avro_node_t *r = tf_avro_schema_root(s);
    CHECK(r->fields[0].type->logical && strcmp(r->fields[0].type->logical, "decimal") == 0);
    CHECK_INT(r->fields[0].type->precision, 18);
    CHECK_INT(r->fields[0].type->scale, 2);
    CHECK(r->fields[1].type->enum_default == 0);
    CHECK(r->fields[1].naliases == 1);
    CHECK(r->fields[2].defval && r->fields[2].defval->type == TF_AVRO_NULL);
    CHECK(tf_avro_schema_fingerprint(s) ==
          tf_avro_crc64(tf_avro_schema_canonical(s), strlen(tf_avro_schema_canonical(s))));
    tf_avro_schema_free(s);
}

static void test_bad_schemas(void)
{
    static const char *const bad[] = {
        "",
        "nope",
        "\"unknown_type\"",
        "{\"type\":\"record\",\"fields\":[]}",                                    /* no name */
        "{\"type\":\"record\",\"name\":\"1x\",\"fields\":[]}",                    /* bad name */
        "{\"type\":\"record\",\"name\":\"R\"}",                                   /* no fields */
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
        "{\"name\":\"a\",\"type\":\"int\"}]}",                                      /* dup field */
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"A\"]}",             /* dup symbol */
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"],\"default\":\"B\"}", /* bad default */
        "{\"type\":\"fixed\",\"name\":\"F\",\"size\":-1}",
        "[\"int\",\"int\"]",                                                        /* dup branch */
        "[\"int\",[\"long\"]]",                                                     /* nested union */
        "{\"type\":\"array\"}",
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
        "{\"type\":\"enum\",\"name\":\"R\",\"symbols\":[\"A\"]}}]}",                /* R twice */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        tf_avro_schema_t *s = tf_avro_schema_parse(bad[i], strlen(bad[i]), err, sizeof err);
        CHECK_MSG(s == NULL, "accepted: %s", bad[i]);
        CHECK_MSG(err[0] != '\0', "no message for: %s", bad[i]);
        tf_avro_schema_free(s);
    }
    /* Deep nesting is refused, not a stack overflow. */
    static char deep[16384];
    for (int i = 0; i < 300; i++)
        strcat(deep, "{\"type\":\"array\",\"items\":");
    strcat(deep, "\"int\"");
    for (int i = 0; i < 300; i++)
        strcat(deep, "}");
    tf_avro_schema_t *s = tf_avro_schema_parse(deep, strlen(deep), err, sizeof err);
    CHECK(s == NULL);
    tf_avro_schema_free(s);
}

/* Defaults that do not match their type are dropped (and flagged), the way
 * other parsers accept such schemas; resolution reports them when needed. */
static void test_bad_defaults(void)
{
    static const char *const j[] = {
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\","
        "\"default\":\"x\"}]}",
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":[\"int\",\"null\"],"
        "\"default\":null}]}", /* a union's default belongs to its first branch */
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\","
        "\"default\":2147483648}]}",
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
        "{\"type\":\"fixed\",\"name\":\"F\",\"size\":2},\"default\":\"abc\"}]}",
    };
    for (size_t i = 0; i < sizeof j / sizeof j[0]; i++) {
        tf_avro_schema_t *s = tf_avro_schema_parse(j[i], strlen(j[i]), err, sizeof err);
        CHECK_MSG(s != NULL, "%s", err);
        if (!s)
            continue;
        const tf_avro_node_t *r = tf_avro_schema_root(s);
        CHECK(r->fields[0].defval == NULL && r->fields[0].bad_default);
        tf_avro_schema_free(s);
    }
}

static void test_project_schemas(void)
{
    const char *src = getenv("TF_SOURCE_DIR");
    static const char *const files[] = {"CustomsRecord", "InvestmentRecord", "RankingAlert"};
    for (size_t i = 0; i < 3; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/schemas/%s.avsc", src ? src : ".", files[i]);
        char *text = slurp(path);
        CHECK_MSG(text != NULL, "cannot read %s", path);
        if (!text)
            continue;
        tf_avro_schema_t *s = tf_avro_schema_parse(text, strlen(text), err, sizeof err);
        CHECK_MSG(s != NULL, "%s: %s", path, err);
        if (s) {
            const tf_avro_node_t *r = tf_avro_schema_root(s);
            char want[64];
            snprintf(want, sizeof want, "tradeflow.%s", files[i]);
            CHECK_STR(r->fullname, want);
            /* The record contract asks for a "doc" on every field. */
            CHECK_MSG(strstr(text, "\"doc\"") != NULL, "%s", path);
            size_t docs = 0;
            for (const char *p = text; (p = strstr(p, "\"doc\"")); p++)
                docs++;
            CHECK_MSG(docs >= r->nfields + 1, "%s: %zu docs for %zu fields", path, docs,
                      r->nfields);
            tf_avro_schema_free(s);
        }
        free(text);
    }
}

int main(void)
{
    TF_TEST_RUN(test_vectors);
    TF_TEST_RUN(test_logical_types_in_canonical_form);
    TF_TEST_RUN(test_bad_schemas);
    TF_TEST_RUN(test_bad_defaults);
    TF_TEST_RUN(test_project_schemas);
    return TF_TEST_REPORT();
}
