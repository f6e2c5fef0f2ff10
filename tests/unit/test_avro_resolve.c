/*
 * test_avro_resolve.c - writer -> reader schema resolution, rule by rule, as
 * in the "Schema Resolution" section of the Avro 1.11 specification.
 * Each case writes a value with the writer schema (tf_avro_encode), resolves
 * against the reader schema and checks the reader-shaped value.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_avro.h"
#include "tf_test.h"

static char err[512];
static tf_avro_schema_t *ws, *rs;
static tf_avro_resolver_t *res;
static tf_avro_arena_t *arena;
static tf_buf_t data;

static void reset(void)
{
    tf_avro_resolver_free(res);
    tf_avro_schema_free(ws);
    tf_avro_schema_free(rs);
    res = NULL;
    ws = rs = NULL;
    tf_buf_reset(&data);
}

/* Compiles writer/reader; returns 0, or -1 with err filled. */
static int pair(const char *wj, const char *rj)
{
    reset();
    ws = tf_avro_schema_parse(wj, strlen(wj), err, sizeof err);
    rs = tf_avro_schema_parse(rj, strlen(rj), err, sizeof err);
    if (!ws || !rs) {
        fprintf(stderr, "bad test schema: %s\n", err);
        return -2;
    }
    res = tf_avro_resolver_new(ws, rs, err, sizeof err);
    return res ? 0 : -1;
}

/* Encodes wv with the writer and decodes it into *out. */
static int rt(const char *wj, const char *rj, const tf_avro_value_t *wv, tf_avro_value_t *out)
{
    if (pair(wj, rj) < 0)
        return -1;
    if (tf_avro_encode(tf_avro_schema_root(ws), wv, &data, err, sizeof err) < 0) {
        fprintf(stderr, "encode: %s\n", err);
        return -2;
    }
    return tf_avro_decode(res, data.data, data.len, arena, out, err, sizeof err);
}

static bool incompatible(const char *wj, const char *rj, const char *needle)
{
    err[0] = '\0';
    int rc = pair(wj, rj);
    if (rc != -1) {
        fprintf(stderr, "resolved, expected incompatible: %s -> %s\n", wj, rj);
        return false;
    }
    if (needle && !strstr(err, needle)) {
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err, needle);
        return false;
    }
    return true;
}

#define V(t) ((tf_avro_value_t){.type = (t), .branch = -1})
static tf_avro_value_t L(tf_avro_type_t t, int64_t l)
{
    tf_avro_value_t v = V(t);
    v.u.l = l;
    return v;
}
static tf_avro_value_t D(tf_avro_type_t t, double d)
{
    tf_avro_value_t v = V(t);
    v.u.d = d;
    return v;
}
static tf_avro_value_t S(tf_avro_type_t t, const char *s)
{
    tf_avro_value_t v = V(t);
    v.u.s = (tf_avro_str_t){s, strlen(s)};
    return v;
}
static tf_avro_value_t B(tf_avro_value_t v, int branch)
{
    v.branch = branch;
    return v;
}
static tf_avro_value_t REC(tf_avro_value_t *f, size_t n)
{
    tf_avro_value_t v = V(TF_AVRO_RECORD);
    v.u.c.v = f;
    v.u.c.n = n;
    return v;
}
static bool str_is(const tf_avro_value_t *v, const char *s)
{
    return v->u.s.n == strlen(s) && memcmp(v->u.s.p, s, v->u.s.n) == 0;
}

/* "if both are ... primitive and of the same type": read as written. */
static void test_same_primitives(void)
{
    tf_avro_value_t o, w;
    w = L(TF_AVRO_INT, -123456);
    CHECK(rt("\"int\"", "\"int\"", &w, &o) == 0 && o.type == TF_AVRO_INT && o.u.l == -123456);
    w = L(TF_AVRO_LONG, INT64_MIN);
    CHECK(rt("\"long\"", "\"long\"", &w, &o) == 0 && o.u.l == INT64_MIN);
    w = L(TF_AVRO_BOOLEAN, 1);
    CHECK(rt("\"boolean\"", "\"boolean\"", &w, &o) == 0 && o.u.l == 1);
    w = D(TF_AVRO_DOUBLE, 2.5);
    CHECK(rt("\"double\"", "\"double\"", &w, &o) == 0 && o.u.d == 2.5);
    w = D(TF_AVRO_FLOAT, 0.25);
    CHECK(rt("\"float\"", "\"float\"", &w, &o) == 0 && o.u.d == 0.25);
    w = S(TF_AVRO_STRING, "h\xc3\xa9llo");
    CHECK(rt("\"string\"", "\"string\"", &w, &o) == 0 && str_is(&o, "h\xc3\xa9llo"));
    w = V(TF_AVRO_NULL);
    CHECK(rt("\"null\"", "\"null\"", &w, &o) == 0 && o.type == TF_AVRO_NULL);
}

/* "The writer's schema may be promoted to the reader's": int -> long, float,
 * double; long -> float, double; float -> double; string <-> bytes. */
static void test_promotions(void)
{
    tf_avro_value_t o, w = L(TF_AVRO_INT, 7);
    CHECK(rt("\"int\"", "\"long\"", &w, &o) == 0 && o.type == TF_AVRO_LONG && o.u.l == 7);
    CHECK(rt("\"int\"", "\"float\"", &w, &o) == 0 && o.type == TF_AVRO_FLOAT && o.u.d == 7.0);
    CHECK(rt("\"int\"", "\"double\"", &w, &o) == 0 && o.type == TF_AVRO_DOUBLE && o.u.d == 7.0);
    w = L(TF_AVRO_LONG, 1LL << 40);
    CHECK(rt("\"long\"", "\"double\"", &w, &o) == 0 && o.u.d == (double)(1LL << 40));
    CHECK(rt("\"long\"", "\"float\"", &w, &o) == 0 && o.u.d == (double)(float)(1LL << 40));
    w = D(TF_AVRO_FLOAT, 1.5);
    CHECK(rt("\"float\"", "\"double\"", &w, &o) == 0 && o.type == TF_AVRO_DOUBLE && o.u.d == 1.5);
    w = S(TF_AVRO_STRING, "abc");
    CHECK(rt("\"string\"", "\"bytes\"", &w, &o) == 0 && o.type == TF_AVRO_BYTES &&
          str_is(&o, "abc"));
    w = S(TF_AVRO_BYTES, "xyz");
    CHECK(rt("\"bytes\"", "\"string\"", &w, &o) == 0 && o.type == TF_AVRO_STRING &&
          str_is(&o, "xyz"));
    /* Bytes that are not UTF-8 cannot become a string. */
    w = S(TF_AVRO_BYTES, "\xff\xfe");
    CHECK(rt("\"bytes\"", "\"string\"", &w, &o) == -1);
    CHECK(strstr(err, "UTF-8") != NULL);
}

/* "if the two schemas do not match, it is an error": no demotions. */
static void test_mismatches(void)
{
    CHECK(incompatible("\"long\"", "\"int\"", "writer long cannot be read as reader int"));
    CHECK(incompatible("\"double\"", "\"float\"", NULL));
    CHECK(incompatible("\"float\"", "\"long\"", NULL));
    CHECK(incompatible("\"string\"", "\"int\"", NULL));
    CHECK(incompatible("\"null\"", "\"boolean\"", NULL));
    CHECK(incompatible("{\"type\":\"array\",\"items\":\"int\"}", "{\"type\":\"map\",\"values\":\"int\"}",
                       NULL));
    CHECK(incompatible("{\"type\":\"array\",\"items\":\"long\"}",
                       "{\"type\":\"array\",\"items\":\"int\"}", "array items"));
}

static const char *W_REC =
    "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"gone\",\"type\":{\"type\":\"record\",\"name\":\"Sub\",\"fields\":["
    "  {\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":[\"null\",\"double\"]}},"
    "  {\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F3\",\"size\":3}},"
    "  {\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"float\"}},"
    "  {\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\",\"Y\"]}},"
    "  {\"name\":\"b\",\"type\":\"boolean\"}]}},"
    "{\"name\":\"n\",\"type\":\"int\"}]}";

/* Records: fields matched by name, in any order; writer-only fields are
 * skipped; reader-only fields take their default; no default is an error. */
static void test_records(void)
{
    tf_avro_value_t mv[2] = {B(V(TF_AVRO_NULL), 0), B(D(TF_AVRO_DOUBLE, 1.0), 1)};
    tf_avro_str_t mk[2] = {{"k1", 2}, {"k2", 2}};
    tf_avro_value_t av[2] = {D(TF_AVRO_FLOAT, 1), D(TF_AVRO_FLOAT, 2)};
    tf_avro_value_t sub[5] = {V(TF_AVRO_MAP), S(TF_AVRO_FIXED, "abc"), V(TF_AVRO_ARRAY),
                              L(TF_AVRO_ENUM, 1), L(TF_AVRO_BOOLEAN, 1)};
    sub[0].u.c.v = mv;
    sub[0].u.c.keys = mk;
    sub[0].u.c.n = 2;
    sub[2].u.c.v = av;
    sub[2].u.c.n = 2;
    tf_avro_value_t f[3] = {S(TF_AVRO_STRING, "r1"), REC(sub, 5), L(TF_AVRO_INT, 42)};
    tf_avro_value_t w = REC(f, 3), o;

    /* Reordered, one removed (with every kind of value inside), added ones
     * with defaults of several types, and a promotion. */
    const char *r1 =
        "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a\",\"fields\":["
        "{\"name\":\"n\",\"type\":\"long\"},"
        "{\"name\":\"added_s\",\"type\":\"string\",\"default\":\"dflt\"},"
        "{\"name\":\"id\",\"type\":\"string\"},"
        "{\"name\":\"added_u\",\"type\":[\"null\",\"string\"],\"default\":null},"
        "{\"name\":\"added_a\",\"type\":{\"type\":\"array\",\"items\":\"int\"},\"default\":[1,2,3]},"
        "{\"name\":\"added_r\",\"type\":{\"type\":\"record\",\"name\":\"P\",\"fields\":["
        "  {\"name\":\"x\",\"type\":\"int\",\"default\":5},{\"name\":\"y\",\"type\":\"bytes\"}]},"
        "  \"default\":{\"y\":\"\\u00ff\"}},"
        "{\"name\":\"added_e\",\"type\":{\"type\":\"enum\",\"name\":\"G\",\"symbols\":[\"P\",\"Q\"]},"
        "  \"default\":\"Q\"}]}";
    CHECK_MSG(rt(W_REC, r1, &w, &o) == 0, "%s", err);
    CHECK(o.type == TF_AVRO_RECORD && o.u.c.n == 7);
    CHECK(o.u.c.v[0].type == TF_AVRO_LONG && o.u.c.v[0].u.l == 42);
    CHECK(str_is(&o.u.c.v[1], "dflt"));
    CHECK(str_is(&o.u.c.v[2], "r1"));
    CHECK(o.u.c.v[3].type == TF_AVRO_NULL && o.u.c.v[3].branch == 0);
    CHECK(o.u.c.v[4].u.c.n == 3 && o.u.c.v[4].u.c.v[2].u.l == 3);
    CHECK(o.u.c.v[5].u.c.v[0].u.l == 5 && o.u.c.v[5].u.c.v[1].u.s.n == 1 &&
          (uint8_t)o.u.c.v[5].u.c.v[1].u.s.p[0] == 0xff);
    CHECK(o.u.c.v[6].type == TF_AVRO_ENUM && o.u.c.v[6].u.l == 1);

    /* Reader field without default, missing from the writer. */
    CHECK(incompatible(W_REC,
                       "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a\",\"fields\":["
                       "{\"name\":\"id\",\"type\":\"string\"},{\"name\":\"new\",\"type\":\"int\"}]}",
                       "reader field new is missing from the writer and has no default"));
    /* A field of an incompatible type: the message names the field. */
    CHECK(incompatible(W_REC,
                       "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a\",\"fields\":["
                       "{\"name\":\"id\",\"type\":\"int\"}]}",
                       "field id"));
    /* Record names must match. */
    CHECK(incompatible(W_REC,
                       "{\"type\":\"record\",\"name\":\"Other\",\"fields\":[]}",
                       "cannot be read"));
    /* Unqualified names match across namespaces (specification 1.11). */
    CHECK(pair(W_REC, "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"b\",\"fields\":[]}") ==
          0);
}

/* Aliases: a reader record's aliases name writer records; a reader field's
 * aliases name writer fields. */
static void test_aliases(void)
{
    tf_avro_value_t f[3] = {S(TF_AVRO_STRING, "r1"), V(TF_AVRO_RECORD), L(TF_AVRO_INT, 9)};
    tf_avro_value_t sub[5] = {V(TF_AVRO_MAP), S(TF_AVRO_FIXED, "abc"), V(TF_AVRO_ARRAY),
                              L(TF_AVRO_ENUM, 0), L(TF_AVRO_BOOLEAN, 0)};
    f[1] = REC(sub, 5);
    tf_avro_value_t w = REC(f, 3), o;
    const char *r = "{\"type\":\"record\",\"name\":\"Renamed\",\"namespace\":\"z\","
                    "\"aliases\":[\"a.R\"],\"fields\":["
                    "{\"name\":\"identifier\",\"aliases\":[\"id\"],\"type\":\"string\"},"
                    "{\"name\":\"count\",\"aliases\":[\"n\",\"num\"],\"type\":\"double\"}]}";
    CHECK_MSG(rt(W_REC, r, &w, &o) == 0, "%s", err);
    CHECK(str_is(&o.u.c.v[0], "r1"));
    CHECK(o.u.c.v[1].type == TF_AVRO_DOUBLE && o.u.c.v[1].u.d == 9.0);
    /* Without the record alias, the names do not match. */
    CHECK(incompatible(W_REC,
                       "{\"type\":\"record\",\"name\":\"Renamed\",\"namespace\":\"z\",\"fields\":[]}",
                       NULL));
    /* Two writer fields landing on one reader field is ambiguous. */
    CHECK(incompatible(W_REC,
                       "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a\",\"fields\":["
                       "{\"name\":\"id\",\"aliases\":[\"n\"],\"type\":\"string\"},"
                       "{\"name\":\"x\",\"aliases\":[\"id\"],\"type\":\"string\",\"default\":\"\"}]}",
                       "two writer fields"));
}

/* Enums: symbols matched by name; a writer symbol unknown to the reader
 * takes the reader's default, or is an error when it has none. */
static void test_enums(void)
{
    const char *w = "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\",\"C\"]}";
    const char *r = "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"U\",\"C\",\"A\"],"
                    "\"default\":\"U\"}";
    const char *r_nodef = "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"C\",\"A\"]}";
    tf_avro_value_t o, v = L(TF_AVRO_ENUM, 0);
    CHECK(rt(w, r, &v, &o) == 0 && o.u.l == 2); /* A */
    v.u.l = 2;
    CHECK(rt(w, r, &v, &o) == 0 && o.u.l == 1); /* C */
    v.u.l = 1;
    CHECK(rt(w, r, &v, &o) == 0 && o.u.l == 0); /* B unknown -> default U */
    /* Without a default the pair compiles, but B is an error when read. */
    CHECK(rt(w, r_nodef, &v, &o) == -1);
    CHECK_MSG(strstr(err, "symbol B") != NULL, "%s", err);
    v.u.l = 0;
    CHECK(rt(w, r_nodef, &v, &o) == 0 && o.u.l == 1);
    CHECK(incompatible(w, "{\"type\":\"enum\",\"name\":\"F\",\"symbols\":[\"A\"]}", NULL));
}

/* Fixed: same name and size. */
static void test_fixed(void)
{
    tf_avro_value_t o, v = S(TF_AVRO_FIXED, "abcd");
    CHECK(rt("{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}",
             "{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}", &v, &o) == 0 &&
          str_is(&o, "abcd"));
    CHECK(incompatible("{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}",
                       "{\"type\":\"fixed\",\"name\":\"F\",\"size\":5}", NULL));
    CHECK(incompatible("{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}",
                       "{\"type\":\"fixed\",\"name\":\"G\",\"size\":4}", NULL));
}

/* Arrays and maps: items/values resolved recursively; multi-block data with
 * negative block counts (count + byte size) is read too. */
static void test_arrays_maps(void)
{
    tf_avro_value_t items[3] = {L(TF_AVRO_INT, 1), L(TF_AVRO_INT, -2), L(TF_AVRO_INT, 300)};
    tf_avro_value_t a = V(TF_AVRO_ARRAY), o;
    a.u.c.v = items;
    a.u.c.n = 3;
    CHECK(rt("{\"type\":\"array\",\"items\":\"int\"}", "{\"type\":\"array\",\"items\":\"double\"}",
             &a, &o) == 0);
    CHECK(o.u.c.n == 3 && o.u.c.v[2].type == TF_AVRO_DOUBLE && o.u.c.v[2].u.d == 300.0);
    tf_avro_str_t keys[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
    a.type = TF_AVRO_MAP;
    a.u.c.keys = keys;
    CHECK(rt("{\"type\":\"map\",\"values\":\"int\"}", "{\"type\":\"map\",\"values\":\"long\"}", &a,
             &o) == 0);
    CHECK(o.u.c.n == 3 && o.u.c.keys[1].n == 1 && o.u.c.keys[1].p[0] == 'b' && o.u.c.v[1].u.l == -2);
    /* Two blocks: -2 items (4 bytes), then 1 item, then 0. */
    const uint8_t blocks[] = {0x03, 0x08, 0x02, 0x04, 0x02, 0x06, 0x00};
    CHECK(pair("{\"type\":\"array\",\"items\":\"int\"}", "{\"type\":\"array\",\"items\":\"long\"}") ==
          0);
    CHECK(tf_avro_decode(res, blocks, sizeof blocks, arena, &o, err, sizeof err) == 0);
    CHECK(o.u.c.n == 3 && o.u.c.v[0].u.l == 1 && o.u.c.v[1].u.l == 2 && o.u.c.v[2].u.l == 3);
    /* An absurd count is refused before any allocation. */
    const uint8_t absurd[] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x02};
    CHECK(tf_avro_decode(res, absurd, sizeof absurd, arena, &o, err, sizeof err) == -1);
    CHECK(pair("{\"type\":\"array\",\"items\":\"null\"}", "{\"type\":\"array\",\"items\":\"null\"}") ==
          0);
    CHECK(tf_avro_decode(res, absurd, sizeof absurd - 1, arena, &o, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "empty type") != NULL, "%s", err);
    /* Data whose decoded form would exceed the arena's 64 MiB is refused:
     * a map of 3 million (empty key -> null) entries is 3 MB of input. */
    CHECK(pair("{\"type\":\"map\",\"values\":\"null\"}", "{\"type\":\"map\",\"values\":\"null\"}") == 0);
    size_t cnt = 3000000;
    uint8_t *big = calloc(cnt + 16, 1);
    size_t hl = tf_avro_write_long(big, (int64_t)cnt);
    CHECK(tf_avro_decode(res, big, hl + cnt + 1, arena, &o, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "too large") != NULL, "%s", err);
    /* The arena is still usable afterwards. */
    hl = tf_avro_write_long(big, 1000);
    memset(big + hl, 0, 1001);
    CHECK(tf_avro_decode(res, big, hl + 1001, arena, &o, err, sizeof err) == 0 && o.u.c.n == 1000);
    free(big);
}

/* Unions. */
static void test_unions(void)
{
    tf_avro_value_t o, v;
    /* Both unions: the writer's branch is resolved against the reader union
     * (first matching branch). */
    v = B(L(TF_AVRO_INT, 5), 1);
    CHECK(rt("[\"null\",\"int\",\"string\"]", "[\"string\",\"null\",\"long\"]", &v, &o) == 0);
    CHECK(o.type == TF_AVRO_LONG && o.branch == 2 && o.u.l == 5);
    v = B(S(TF_AVRO_STRING, "s"), 2);
    CHECK(rt("[\"null\",\"int\",\"string\"]", "[\"string\",\"null\",\"long\"]", &v, &o) == 0);
    CHECK(o.type == TF_AVRO_STRING && o.branch == 0);
    /* Reader union, writer not: the first branch that matches, promotions
     * included. */
    v = L(TF_AVRO_INT, 3);
    CHECK(rt("\"int\"", "[\"null\",\"string\",\"double\",\"long\"]", &v, &o) == 0);
    CHECK(o.branch == 2 && o.type == TF_AVRO_DOUBLE && o.u.d == 3.0);
    CHECK(incompatible("\"boolean\"", "[\"null\",\"string\"]", "matches no branch"));
    /* Writer union, reader not: works for branches the reader can take;
     * others are errors when a message uses them. */
    v = B(L(TF_AVRO_INT, 8), 1);
    CHECK(rt("[\"null\",\"int\"]", "\"long\"", &v, &o) == 0 && o.u.l == 8 && o.branch == -1);
    v = B(V(TF_AVRO_NULL), 0);
    CHECK(rt("[\"null\",\"int\"]", "\"long\"", &v, &o) == -1);
    CHECK_MSG(strstr(err, "branch") != NULL, "%s", err);
    CHECK(incompatible("[\"null\",\"boolean\"]", "\"long\"", "no branch"));
    /* Named branches resolve by name. */
    const char *wu = "[\"null\",{\"type\":\"record\",\"name\":\"A\",\"fields\":["
                     "{\"name\":\"x\",\"type\":\"int\"}]}]";
    const char *ru = "[{\"type\":\"record\",\"name\":\"B\",\"fields\":[]},"
                     "{\"type\":\"record\",\"name\":\"A\",\"fields\":["
                     "{\"name\":\"x\",\"type\":\"long\"},{\"name\":\"y\",\"type\":\"int\",\"default\":1}]},"
                     "\"null\"]";
    tf_avro_value_t af[1] = {L(TF_AVRO_INT, 77)};
    v = B(REC(af, 1), 1);
    CHECK_MSG(rt(wu, ru, &v, &o) == 0, "%s", err);
    CHECK(o.branch == 1 && o.u.c.n == 2 && o.u.c.v[0].u.l == 77 && o.u.c.v[1].u.l == 1);
    /* Bad union index in the data. */
    CHECK(pair("[\"null\",\"int\"]", "[\"null\",\"int\"]") == 0);
    const uint8_t bad[] = {0x04};
    CHECK(tf_avro_decode(res, bad, 1, arena, &o, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "union index") != NULL, "%s", err);
}

/* Named type references and recursion (a linked list). */
static void test_recursion(void)
{
    const char *list = "{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
                       "{\"name\":\"v\",\"type\":\"int\"},"
                       "{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}";
    const char *list2 = "{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
                        "{\"name\":\"v\",\"type\":\"long\"},"
                        "{\"name\":\"next\",\"type\":[\"null\",\"Node\"],\"default\":null},"
                        "{\"name\":\"tag\",\"type\":\"string\",\"default\":\"t\"}]}";
    tf_avro_value_t n3[2] = {L(TF_AVRO_INT, 3), B(V(TF_AVRO_NULL), 0)};
    tf_avro_value_t n2[2] = {L(TF_AVRO_INT, 2), B(REC(n3, 2), 1)};
    tf_avro_value_t n1[2] = {L(TF_AVRO_INT, 1), B(REC(n2, 2), 1)};
    tf_avro_value_t w = REC(n1, 2), o;
    CHECK_MSG(rt(list, list2, &w, &o) == 0, "%s", err);
    const tf_avro_value_t *p = &o;
    int64_t sum = 0;
    int len = 0;
    while (p && p->type == TF_AVRO_RECORD) {
        sum += p->u.c.v[0].u.l;
        CHECK(str_is(&p->u.c.v[2], "t"));
        len++;
        p = p->u.c.v[1].type == TF_AVRO_NULL ? NULL : &p->u.c.v[1];
    }
    CHECK(len == 3 && sum == 6);
    /* Data nested deeper than the limit is refused, not a stack overflow. */
    tf_buf_t deep = {0};
    for (int i = 0; i < 1000; i++) {
        uint8_t b[2] = {0x02, 0x02}; /* v=1, branch 1 */
        tf_buf_append(&deep, b, 2);
    }
    CHECK(tf_avro_decode(res, deep.data, deep.len, arena, &o, err, sizeof err) == -1);
    CHECK_MSG(strstr(err, "deep") != NULL, "%s", err);
    tf_buf_free(&deep);
}

/* Decimals read as decimals must agree on scale. */
static void test_decimal_scale(void)
{
    CHECK(incompatible("{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":18,\"scale\":3}",
                       "{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":18,\"scale\":2}",
                       "scale"));
    CHECK(pair("{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":10,\"scale\":2}",
               "{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":18,\"scale\":2}") == 0);
}

/* Truncated data, overlong varints, trailing bytes. */
static void test_bad_data(void)
{
    tf_avro_value_t o;
    CHECK(pair("\"long\"", "\"long\"") == 0);
    const uint8_t overlong[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    CHECK(tf_avro_decode(res, overlong, sizeof overlong, arena, &o, err, sizeof err) == -1);
    const uint8_t trunc[] = {0x80};
    CHECK(tf_avro_decode(res, trunc, 1, arena, &o, err, sizeof err) == -1);
    const uint8_t two[] = {0x02, 0x02};
    CHECK(tf_avro_decode(res, two, 2, arena, &o, err, sizeof err) == -1);
    CHECK(strstr(err, "trailing") != NULL);
    CHECK(pair("\"int\"", "\"int\"") == 0);
    const uint8_t big[] = {0x80, 0x80, 0x80, 0x80, 0x20}; /* 2^32 zig-zag: out of int range */
    CHECK(tf_avro_decode(res, big, sizeof big, arena, &o, err, sizeof err) == -1);
    CHECK(pair("\"boolean\"", "\"boolean\"") == 0);
    const uint8_t b2[] = {0x02};
    CHECK(tf_avro_decode(res, b2, 1, arena, &o, err, sizeof err) == -1);
    CHECK(pair("\"double\"", "\"double\"") == 0);
    CHECK(tf_avro_decode(res, b2, 1, arena, &o, err, sizeof err) == -1);
    /* Varint helpers round-trip the extremes. */
    const int64_t vals[] = {0, -1, 1, 63, -64, 64, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t buf[10];
        int64_t back = 0;
        size_t n = tf_avro_write_long(buf, vals[i]);
        CHECK(tf_avro_read_long(buf, n, &back) == n && back == vals[i]);
        CHECK(tf_avro_read_long(buf, n - 1, &back) == 0);
    }
}

int main(void)
{
    arena = tf_avro_arena_new();
    TF_TEST_RUN(test_same_primitives);
    TF_TEST_RUN(test_promotions);
    TF_TEST_RUN(test_mismatches);
    TF_TEST_RUN(test_records);
    TF_TEST_RUN(test_aliases);
    TF_TEST_RUN(test_enums);
    TF_TEST_RUN(test_fixed);
    TF_TEST_RUN(test_arrays_maps);
    TF_TEST_RUN(test_unions);
    TF_TEST_RUN(test_recursion);
    TF_TEST_RUN(test_decimal_scale);
    TF_TEST_RUN(test_bad_data);
    reset();
    tf_buf_free(&data);
    tf_avro_arena_free(arena);
    return TF_TEST_REPORT();
}
