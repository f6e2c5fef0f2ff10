/*
 * test_source.c - the source profiles of tradeflow-produce
 * (producers/tf_source.c and the profile paths of producers/tf_input.c):
 * iso-codes economy codes (alpha-2/3, numeric, Chinese names from the
 * gettext catalogue, the alias table), numbers with exponents and thousands
 * separators, release dates, the --fx table and its errors, and the sample
 * files of tests/data/source (written from the public layouts of UN
 * Comtrade's API v1 / bulk files, Eurostat Comext's bulk files and GACC's
 * query exports) record by record, in UTF-8 and GBK, CSV, TSV, JSON Lines
 * and the API's JSON document, also fed through a pipe one byte at a time.
 */
#define _GNU_SOURCE
#include "tf_input.h"
#include "tf_source.h"
#include "tf_test.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TF_SOURCE_DATA
#define TF_SOURCE_DATA "tests/data/source"
#endif

static tf_econ_t *econ;
static tf_fx_t *fx;

/* ---- economy codes ---------------------------------------------------- */

static void test_econ(void)
{
    CHECK(tf_econ_count(econ) >= 249);
    CHECK_STR(tf_econ_from_alpha2(econ, "DE"), "DEU");
    CHECK_STR(tf_econ_from_alpha2(econ, "CN"), "CHN");
    CHECK(tf_econ_from_alpha2(econ, "QV") == NULL);
    CHECK(tf_econ_from_alpha2(econ, "EL") == NULL); /* Eurostat's Greece: not ISO */
    CHECK_STR(tf_econ_from_alpha3(econ, "USA"), "USA");
    CHECK(tf_econ_from_alpha3(econ, "W00") == NULL);
    CHECK(tf_econ_from_alpha3(econ, "usa") == NULL);
    CHECK_STR(tf_econ_from_numeric(econ, "156"), "CHN");
    CHECK_STR(tf_econ_from_numeric(econ, "36"), "AUS");  /* leading zero optional */
    CHECK_STR(tf_econ_from_numeric(econ, "036"), "AUS");
    CHECK(tf_econ_from_numeric(econ, "842") == NULL);    /* Comtrade's USA code is not ISO */
    CHECK(tf_econ_from_numeric(econ, "1560") == NULL);
    /* Chinese names from iso-codes' zh_CN catalogue. */
    CHECK_STR(tf_econ_from_zh(econ, "美国"), "USA");
    CHECK_STR(tf_econ_from_zh(econ, "日本"), "JPN");
    CHECK_STR(tf_econ_from_zh(econ, "德国"), "DEU");
    CHECK_STR(tf_econ_from_zh(econ, "越南"), "VNM");
    CHECK_STR(tf_econ_from_zh(econ, "香港"), "HKG");
    CHECK_STR(tf_econ_from_zh(econ, "大韩民国"), "KOR"); /* name */
    CHECK_STR(tf_econ_from_zh(econ, "韩国"), "KOR");     /* common name */
    /* The alias table (GACC's short names). */
    CHECK_STR(tf_econ_from_zh(econ, "中国香港"), "HKG");
    CHECK_STR(tf_econ_from_zh(econ, "中国台湾"), "TWN");
    CHECK_STR(tf_econ_from_zh(econ, "俄罗斯联邦"), "RUS");
    CHECK_STR(tf_econ_from_zh(econ, "刚果（金）"), "COD");
    CHECK(tf_econ_from_zh(econ, "火星") == NULL);
    for (const tf_econ_alias_t *a = tf_econ_aliases; a->name; a++)
        CHECK_STR(tf_econ_from_zh(econ, a->name), a->alpha3);
    CHECK(tf_econ_currency_known(econ, "EUR"));
    CHECK(tf_econ_currency_known(econ, "CNY"));
    CHECK(!tf_econ_currency_known(econ, "XYZ"));

    char err[256];
    CHECK(tf_econ_load("/nonexistent/iso_3166-1.json", NULL, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "iso-codes") != NULL);
    /* Without the Chinese catalogue the aliases still load. */
    tf_econ_t *e2 = tf_econ_load(NULL, NULL, NULL, err, sizeof err);
    CHECK(e2 != NULL);
    if (e2) {
        CHECK(tf_econ_from_zh(e2, "美国") != NULL); /* an alias too */
        CHECK(tf_econ_from_zh(e2, "日本") == NULL);
        CHECK(tf_econ_currency_known(e2, "XYZ")); /* no table: not checked */
        tf_econ_free(e2);
    }
}

/* ---- numbers and dates ------------------------------------------------ */

static void num_ok(const char *s, int scale, bool th, int64_t want)
{
    int64_t v = -1;
    char err[128] = "";
    int rc = tf_source_number(s, scale, th, &v, err, sizeof err);
    CHECK_MSG(rc == 0 && v == want, "%s -> rc %d v %lld (%s), want %lld", s, rc, (long long)v,
              err, (long long)want);
}

static void num_bad(const char *s, bool th, const char *frag)
{
    int64_t v;
    char err[128] = "";
    int rc = tf_source_number(s, 2, th, &v, err, sizeof err);
    CHECK_MSG(rc == -1 && strstr(err, frag), "%s -> rc %d err \"%s\", want \"%s\"", s, rc, err,
              frag);
}

static void test_numbers(void)
{
    num_ok("0", 2, false, 0);
    num_ok("12", 2, false, 1200);
    num_ok("12.5", 2, false, 1250);
    num_ok(".5", 2, false, 50);
    num_ok("0012.345", 2, false, 1235);  /* half up */
    num_ok("12.344999", 2, false, 1234); /* rounding looks at one digit past the scale... */
    num_ok("15000000.005", 2, false, 1500000001);
    num_ok("1.2345E10", 2, false, 1234500000000LL);
    num_ok("2.2075e+11", 2, false, 22075000000000LL);
    num_ok("12345e-2", 2, false, 12345);
    num_ok("5e-3", 2, false, 1);
    num_ok("4e-3", 2, false, 0);
    num_ok("+7", 0, false, 7);
    num_ok("1,234,567", 0, true, 1234567);
    num_ok("9,876,543.21", 2, true, 987654321);
    num_ok("1234567", 0, true, 1234567);
    num_ok("92233720368547758.07", 2, false, INT64_MAX);
    num_bad("-5", false, "negative value");
    num_bad("abc", false, "not a number");
    num_bad("", false, "not a number");
    num_bad("1e", false, "not a number");
    num_bad("1.2.3", false, "not a number");
    num_bad("1,234", false, "not a number");             /* no separators without thousands */
    num_bad("1,00", true, "group 3 digits");
    num_bad("1,2345", true, "group 3 digits");
    num_bad(",123", true, "not a number");
    num_bad("12,345.6,7", true, "not a number");
    num_bad("92233720368547758.08", false, "too large");
    num_bad("1e30", false, "too large");
    num_bad("NaN", false, "not a number");
    num_bad("1 000", true, "not a number");

    int64_t rel;
    char err[160];
    CHECK(tf_release_parse("2024-03-15", &rel, err, sizeof err) == 0 && rel == 20240315000000LL);
    CHECK(tf_release_parse("2024-03-15T08:30", &rel, err, sizeof err) == 0 &&
          rel == 20240315083000LL);
    CHECK(tf_release_parse("2024-03-15 08:30:59", &rel, err, sizeof err) == 0 &&
          rel == 20240315083059LL);
    CHECK(tf_release_parse("2024-02-29", &rel, err, sizeof err) == 0);
    CHECK(tf_release_parse("2023-02-29", &rel, err, sizeof err) == -1);
    CHECK(strstr(err, "bad release date \"2023-02-29\"") != NULL);
    CHECK(tf_release_parse("2024-13-01", &rel, err, sizeof err) == -1);
    CHECK(tf_release_parse("20240315", &rel, err, sizeof err) == -1);
    CHECK(tf_release_parse("2024-03-15T25:00", &rel, err, sizeof err) == -1);
    CHECK(tf_release_parse("2024-03-15Tx", &rel, err, sizeof err) == -1);
    CHECK(tf_release_parse("2024-3-15", &rel, err, sizeof err) == -1);
}

/* ---- the rate table --------------------------------------------------- */

static tf_fx_t *fx_from(const char *text, char *err, size_t errlen)
{
    char path[] = "/tmp/tf_test_fx_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        close(fd);
        return NULL;
    }
    close(fd);
    tf_fx_t *f = tf_fx_load(path, econ, err, errlen);
    /* Messages name the file: make them comparable ("FX:LINE: ..."). */
    if (!f && strncmp(err, path, strlen(path)) == 0) {
        size_t pl = strlen(path);
        memmove(err + 2, err + pl, strlen(err + pl) + 1);
        memcpy(err, "FX", 2);
    }
    unlink(path);
    return f;
}

static void fx_bad(const char *text, const char *want)
{
    char err[256] = "";
    tf_fx_t *f = fx_from(text, err, sizeof err);
    CHECK_MSG(f == NULL && strcmp(err, want) == 0, "got \"%s\", want \"%s\"", err, want);
    tf_fx_free(f);
}

static void test_fx(void)
{
    int64_t r;
    CHECK_INT(tf_fx_count(fx), 4);
    CHECK(tf_fx_rate(fx, 2024 * 12 + 0, "EUR", &r) == 0 && r == 10905000000LL);
    CHECK(tf_fx_rate(fx, 2024 * 12 + 0, "CNY", &r) == 0 && r == 1406000000LL); /* YYYYMM form */
    CHECK(tf_fx_rate(fx, 2024 * 12 + 1, "EUR", &r) == 0 && r == 10795000000LL);
    CHECK(tf_fx_rate(fx, 2023 * 12 + 11, "EUR", &r) == -1);
    CHECK(tf_fx_rate(fx, 2024 * 12 + 0, "GBP", &r) == -1);
    CHECK(tf_fx_rate(NULL, 2024 * 12, "EUR", &r) == -1);

    char err[256];
    tf_fx_t *f = fx_from("# rates\n\nperiod,currency,usd_per_unit\n2024-01,EUR,1.1\n", err,
                         sizeof err);
    CHECK(f != NULL && tf_fx_count(f) == 1);
    tf_fx_free(f);
    fx_bad("", "FX: empty (expected the header period,currency,usd_per_unit)");
    fx_bad("period,cur,rate\n", "FX:1: expected the header period,currency,usd_per_unit");
    fx_bad("period,currency,usd_per_unit\n2024-01,EUR\n", "FX:2: expected 3 fields, got 2");
    fx_bad("period,currency,usd_per_unit\n2024-13,EUR,1\n",
           "FX:2: bad period \"2024-13\" (YYYY-MM or YYYYMM)");
    fx_bad("period,currency,usd_per_unit\n2024-01,XYZ,1\n",
           "FX:2: unknown currency \"XYZ\" (ISO 4217 code)");
    fx_bad("period,currency,usd_per_unit\n2024-01,eur,1\n",
           "FX:2: unknown currency \"eur\" (ISO 4217 code)");
    fx_bad("period,currency,usd_per_unit\n2024-01,EUR,0\n",
           "FX:2: usd_per_unit: the rate must be > 0");
    fx_bad("period,currency,usd_per_unit\n2024-01,EUR,1e3\n",
           "FX:2: usd_per_unit: not a decimal number: \"1e3\"");
    fx_bad("period,currency,usd_per_unit\n2024-01,EUR,1.1\n202401,EUR,1.2\n",
           "FX:3: duplicate rate for 202401 EUR");
}

/* ---- profiles on the sample files -------------------------------------- */

struct run_opts {
    tf_source_kind_t kind;
    int hs_level;
    tf_format_t fmt;
    tf_flow_t flow;
    tf_encoding_t enc;
    size_t chunk; /* > 0: through a pipe, this many bytes per write */
};

struct feeder {
    int fd;
    const char *data;
    size_t len, chunk;
};

static void *feed_thread(void *arg)
{
    struct feeder *f = arg;
    for (size_t i = 0; i < f->len; i += f->chunk) {
        size_t n = f->len - i < f->chunk ? f->len - i : f->chunk;
        if (write(f->fd, f->data + i, n) != (ssize_t)n)
            break;
    }
    close(f->fd);
    return NULL;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    *len = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    return buf;
}

/* Reads a sample and renders every result as one line:
 *   OK LINE reporter partner flow YYYY-MM hs value [quantity unit] | record_id
 *   BAD <the reader's error, the file name cut>
 *   FATAL <error>
 *   SKIP count first-line reason
 * into out (newline-separated). Returns the number of OK records. */
static int run(const char *file, const struct run_opts *ro, char *out, size_t outlen,
               FILE *rejects)
{
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/%s", TF_SOURCE_DATA, file);
    tf_source_opts_t o = {.kind = ro->kind, .hs_level = ro->hs_level, .release = 20240315000000LL,
                          .flow = ro->flow, .encoding = ro->enc, .econ = econ, .fx = fx};
    tf_source_t *s = tf_source_new(&o, err, sizeof err);
    out[0] = '\0';
    CHECK_MSG(s != NULL, "%s", err);
    if (!s)
        return 0;
    int fd;
    pthread_t th;
    struct feeder fe = {0};
    char *data = NULL;
    if (ro->chunk) {
        int p[2];
        size_t len = 0;
        data = slurp(path, &len);
        CHECK(data != NULL && pipe(p) == 0);
        fe = (struct feeder){p[1], data, len, ro->chunk};
        pthread_create(&th, NULL, feed_thread, &fe);
        fd = p[0];
    } else {
        fd = open(path, O_RDONLY);
    }
    CHECK(fd >= 0);
    tf_reader_t *r = tf_reader_new_source(fd, file, ro->fmt, s, err, sizeof err);
    CHECK(r != NULL);
    size_t o_len = 0;
    int ok = 0;
    for (; r;) {
        tf_record_t rec;
        tf_read_status_t st = tf_reader_next(r, &rec);
        char line[700];
        if (st == TF_READ_EOF)
            break;
        if (st == TF_READ_FATAL) {
            snprintf(line, sizeof line, "FATAL %s\n", tf_reader_error(r));
        } else if (st == TF_READ_BAD) {
            snprintf(line, sizeof line, "BAD %s\n", tf_reader_error(r));
            if (rejects)
                tf_reader_write_reject(r, rejects, tf_reader_reason(r));
        } else {
            char v[40], q[40] = "", per[8];
            const char *col;
            char why[256];
            CHECK_MSG(tf_record_validate(&rec, &col, why, sizeof why) == 0, "%s", why);
            CHECK_INT(rec.revision, 20240315000000LL);
            CHECK(strlen(rec.record_id) <= TF_RECORD_ID_MAX);
            tf_decimal_format(rec.value_cents, 2, v, sizeof v);
            if (rec.has_quantity) {
                q[0] = ' ';
                tf_decimal_format(rec.quantity_milli, 3, q + 1, sizeof q - 1);
            }
            tf_period_format(rec.period, per, sizeof per);
            snprintf(line, sizeof line, "OK %ld %s %s %s %s %s %s%s%s%s | %s\n",
                     tf_reader_line(r), rec.reporter, rec.partner, tf_flow_name(rec.flow), per,
                     rec.hs_code[0] ? rec.hs_code : "-", v, q, rec.unit[0] ? " " : "", rec.unit,
                     rec.record_id);
            ok++;
        }
        size_t n = strlen(line);
        if (o_len + n < outlen) {
            memcpy(out + o_len, line, n + 1);
            o_len += n;
        }
        if (st == TF_READ_FATAL)
            break;
    }
    for (size_t k = 0; r && k < tf_reader_skip_kinds(r); k++) {
        const struct tf_reader_skip *sk = tf_reader_skip_at(r, k);
        o_len += (size_t)snprintf(out + o_len, outlen - o_len, "SKIP %llu %ld %s\n",
                                  (unsigned long long)sk->count, sk->first_line, sk->reason);
    }
    tf_reader_destroy(r);
    close(fd);
    if (ro->chunk) {
        pthread_join(th, NULL);
        free(data);
    }
    tf_source_free(s);
    return ok;
}

/* The lines of got without the " | record_id" parts. */
static void strip_ids(const char *got, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = got; *p && o + 1 < outlen;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        const char *bar = memmem(p, n, " | ", 3);
        size_t keep = bar ? (size_t)(bar - p) : n;
        if (o + keep + 2 >= outlen)
            break;
        memcpy(out + o, p, keep);
        o += keep;
        out[o++] = '\n';
        p += n + (nl ? 1 : 0);
    }
    out[o] = '\0';
}

static void expect(const char *file, const struct run_opts *ro, const char *want)
{
    static char got[16384], bare[16384];
    run(file, ro, got, sizeof got, NULL);
    strip_ids(got, bare, sizeof bare);
    CHECK_MSG(strcmp(bare, want) == 0, "%s:\n--- got\n%s--- want\n%s", file, bare, want);
}

static const char comtrade_csv_want[] =
    "OK 2 CHN USA export 2024-01 - 42351234567.12\n"
    "OK 3 CHN WLD export 2024-01 - 280000000000.50\n"
    "OK 4 CHN JPN import 2024-01 - 12345000000.00\n"
    "BAD comtrade_monthly.csv:7: freqCode: annual row (freqCode A): tradeflow takes monthly data "
    "(freqCode M)\n"
    "BAD comtrade_monthly.csv:8: partnerISO: partnerISO \"S19\" is not an ISO 3166-1 alpha-3 code "
    "in iso-codes (a Comtrade area such as 'Other Asia, nes' is not mapped)\n"
    "BAD comtrade_monthly.csv:10: primaryValue: negative value \"-5\"\n"
    "BAD comtrade_monthly.csv:11: typeCode: typeCode \"S\" is not C (goods); services are not "
    "customs data\n"
    "OK 12 CHN VNM export 2024-01 - 15000000.01 1234.568 kg\n"
    "SKIP 1 5 commodity level HS2 is not the chosen --hs-level total\n"
    "SKIP 1 6 flowCode RX is not mapped (only M import and X export)\n"
    "SKIP 1 9 motCode other than 0 (a breakdown by mode of transport)\n";

static void test_comtrade(void)
{
    struct run_opts ro = {.kind = TF_SOURCE_COMTRADE, .hs_level = TF_HS_LEVEL_TOTAL};
    expect("comtrade_monthly.csv", &ro, comtrade_csv_want);
    /* The same rows at HS level 2: only the chapter row is taken. */
    ro.hs_level = 2;
    expect("comtrade_monthly.csv", &ro,
           "OK 5 CHN USA export 2024-01 85 1000.00\n"
           "BAD comtrade_monthly.csv:7: freqCode: annual row (freqCode A): tradeflow takes monthly "
           "data (freqCode M)\n"
           "BAD comtrade_monthly.csv:8: partnerISO: partnerISO \"S19\" is not an ISO 3166-1 "
           "alpha-3 code in iso-codes (a Comtrade area such as 'Other Asia, nes' is not mapped)\n"
           "BAD comtrade_monthly.csv:11: typeCode: typeCode \"S\" is not C (goods); services are "
           "not customs data\n"
           /* the negative value of line 10 is in a TOTAL row: skipped first */
           "SKIP 5 2 commodity level TOTAL is not the chosen --hs-level 2\n"
           "SKIP 1 6 flowCode RX is not mapped (only M import and X export)\n"
           "SKIP 1 9 motCode other than 0 (a breakdown by mode of transport)\n");
    ro.hs_level = TF_HS_LEVEL_TOTAL;
    /* The bulk file: tab-separated, the same cells, the same record ids. */
    static char a[16384], b[16384];
    run("comtrade_monthly.csv", &ro, a, sizeof a, NULL);
    int n = run("comtrade_bulk.txt", &ro, b, sizeof b, NULL);
    CHECK_INT(n, 3);
    CHECK(strncmp(a, b, strlen(b)) == 0);
    /* The API's JSON document, read element by element; numbers exact. */
    ro.fmt = TF_FORMAT_JSONL;
    const char *api_want =
        "OK 2 CHN USA export 2024-02 - 31234567890.12\n"
        "OK 3 CHN WLD export 2024-02 - 220750000000.00\n"
        "BAD comtrade_api.json:5: primaryValue: not a number: \"abc\"\n"
        "SKIP 1 4 commodity level HS4 is not the chosen --hs-level total\n";
    expect("comtrade_api.json", &ro, api_want);
    for (size_t chunk = 1; chunk <= 7; chunk += 3) {
        ro.chunk = chunk;
        expect("comtrade_api.json", &ro, api_want);
        ro.fmt = TF_FORMAT_CSV;
        expect("comtrade_monthly.csv", &ro, comtrade_csv_want);
        ro.fmt = TF_FORMAT_JSONL;
    }
    ro.chunk = 0;
    /* JSON Lines and a top-level array of the same objects. */
    expect("comtrade_lines.jsonl", &ro,
           "OK 1 CHN USA export 2024-02 - 31234567890.12\n"
           "BAD comtrade_lines.jsonl:2: -: invalid JSON: '}' expected near '\"x\"' (at "
           "character 20)\n"
           "BAD comtrade_lines.jsonl:3: freqCode: annual row (freqCode A): tradeflow takes monthly "
           "data (freqCode M)\n"
           "BAD comtrade_lines.jsonl:4: partnerISO: empty required field\n"
           "BAD comtrade_lines.jsonl:5: cmdCode: missing required column\n"
           "BAD comtrade_lines.jsonl:6: primaryValue: expected a string or a number\n");
    expect("comtrade_array.json", &ro,
           "OK 2 CHN USA export 2024-02 - 31234567890.12\n"
           "BAD comtrade_array.json:3: -: invalid JSON: '[' or '{' expected near '\"42\"' (at "
           "character 4)\n"
           "OK 4 CHN KOR import 2024-02 - 7.00\n");

    char err[256];
    tf_source_opts_t o = {.kind = TF_SOURCE_COMTRADE, .hs_level = TF_HS_LEVEL_UNSET,
                          .release = 1, .econ = econ};
    CHECK(tf_source_new(&o, err, sizeof err) == NULL);
    CHECK(strstr(err, "needs --hs-level") != NULL);
    o.hs_level = 8;
    CHECK(tf_source_new(&o, err, sizeof err) == NULL);
    CHECK(strstr(err, "total, 2, 4 and 6 only") != NULL);
    o.hs_level = 0;
    o.release = 0;
    CHECK(tf_source_new(&o, err, sizeof err) == NULL);
    CHECK(strstr(err, "needs --release") != NULL);
    o.release = 1;
    o.hs_level = 3;
    CHECK(tf_source_new(&o, err, sizeof err) == NULL);
    o.kind = TF_SOURCE_PLAIN;
    o.hs_level = 0;
    CHECK(tf_source_new(&o, err, sizeof err) == NULL);
}

static void test_comext(void)
{
    struct run_opts ro = {.kind = TF_SOURCE_COMEXT, .hs_level = TF_HS_LEVEL_UNSET};
    expect("comext_full.dat", &ro,
           "OK 2 DEU CHN import 2024-01 85176200 134629628.40 45678.500 kg\n"
           "OK 3 DEU USA export 2024-01 85176200 107703703.60 1200.000 kg\n"
           "OK 4 DEU USA export 2024-01 8517 5452500.00\n"
           "BAD comext_full.dat:6: PERIOD: annual total (PERIOD 202452, month 52): tradeflow takes "
           "monthly data\n"
           "BAD comext_full.dat:7: PARTNER_ISO: PARTNER_ISO \"QV\" is not an ISO 3166-1 alpha-2 "
           "code in iso-codes (Comext's secret or unspecified partners such as QU, QV, QY, QZ are "
           "not economies)\n"
           "BAD comext_full.dat:8: FLOW: bad FLOW \"3\" (1 import, 2 export)\n"
           "BAD comext_full.dat:9: VALUE_IN_EUROS: no EUR rate for 2023-12 in the --fx table\n"
           "OK 10 FRA USA export 2024-01 85176200 1091.05 10.000 kg\n"
           "SKIP 1 5 commodity level TOTAL is not the chosen --hs-level 8\n");
    ro.hs_level = TF_HS_LEVEL_TOTAL;
    expect("comext_full.dat", &ro,
           "OK 5 DEU USA export 2024-01 - 1.09\n"
           "BAD comext_full.dat:6: PERIOD: annual total (PERIOD 202452, month 52): tradeflow takes "
           "monthly data\n"
           "BAD comext_full.dat:7: PARTNER_ISO: PARTNER_ISO \"QV\" is not an ISO 3166-1 alpha-2 "
           "code in iso-codes (Comext's secret or unspecified partners such as QU, QV, QY, QZ are "
           "not economies)\n"
           "BAD comext_full.dat:8: FLOW: bad FLOW \"3\" (1 import, 2 export)\n"
           "SKIP 5 2 commodity level HS8 is not the chosen --hs-level total\n");
    /* Without --fx every euro value is rejected, with the reason. */
    tf_fx_t *keep = fx;
    fx = NULL;
    ro.hs_level = TF_HS_LEVEL_UNSET;
    static char got[8192];
    CHECK_INT(run("comext_full.dat", &ro, got, sizeof got, NULL), 0);
    CHECK(strstr(got, "VALUE_IN_EUROS: no EUR rate for 2024-01 in the --fx table (no --fx given)"));
    fx = keep;
    expect("comext_missing.dat", &ro,
           "FATAL comext_missing.dat:1: VALUE_IN_EUROS: missing required column\n");
}

static const char gacc_want[] =
    "OK 2 CHN USA export 2024-01 85176200 12345678.00 1234567.000 千克\n"
    "OK 3 CHN HKG export 2024-01 85176200 9876543.21 500.000 千克\n"
    "OK 4 CHN TWN export 2024-01 85176200 100.00\n"
    "BAD %s:5: 美元: not a number: \"1,00\" (thousands separators must group 3 digits)\n"
    "BAD %s:6: 贸易伙伴名称: partner \"火星\" is not a Chinese name in iso-codes nor in the alias "
    "table\n"
    "OK 8 CHN RUS export 2024-01 85176200 2500.00\n"
    "OK 9 CHN JPN export 2024-01 85176200 3000.00\n"
    "SKIP 1 7 commodity level HS4 is not the chosen --hs-level 8\n";

static void test_gacc(void)
{
    char want[4096];
    struct run_opts ro = {.kind = TF_SOURCE_GACC, .hs_level = TF_HS_LEVEL_UNSET,
                          .flow = TF_FLOW_EXPORT};
    const char *files[] = {"gacc_export_utf8.csv", "gacc_export_gbk.csv"};
    static char ids[2][8192];
    for (int i = 0; i < 2; i++) {
        snprintf(want, sizeof want, gacc_want, files[i], files[i]);
        expect(files[i], &ro, want);
        run(files[i], &ro, ids[i], sizeof ids[i], NULL);
        /* GBK through a pipe, one byte (and 3, 7 bytes) per write: the
         * converter keeps characters cut between reads. */
        for (size_t chunk = 1; chunk <= 7; chunk += 3) {
            ro.chunk = chunk;
            expect(files[i], &ro, want);
            ro.chunk = 0;
        }
    }
    /* Same cells in both encodings: same record ids (the names differ). */
    char *a = strstr(ids[0], " | "), *b = strstr(ids[1], " | ");
    CHECK(a && b && strncmp(a, b, 40) == 0);
    ro.enc = TF_ENC_GBK;
    snprintf(want, sizeof want, gacc_want, files[1], files[1]);
    expect(files[1], &ro, want);
    /* Forced UTF-8 on a GBK file: the header is not UTF-8. */
    ro.enc = TF_ENC_UTF8;
    expect(files[1], &ro, "FATAL gacc_export_gbk.csv:1: -: invalid UTF-8 in header column 1\n");
    /* Forced GBK on a UTF-8 file: the header's names are not found. */
    ro.enc = TF_ENC_GBK;
    static char got[4096];
    run(files[0], &ro, got, sizeof got, NULL);
    CHECK(strncmp(got, "FATAL ", 6) == 0);
    ro.enc = TF_ENC_AUTO;
    /* RMB values through the CNY rates; flow from --flow. */
    ro.flow = TF_FLOW_IMPORT;
    expect("gacc_import_rmb_gbk.csv", &ro,
           "OK 2 CHN USA import 2024-02 85176200 973000.00\n"
           "OK 3 CHN USA import 2024-01 85176200 14.06\n"
           "BAD gacc_import_rmb_gbk.csv:4: 人民币: no CNY rate for 2024-03 in the --fx table\n");
    ro.flow = TF_FLOW_UNKNOWN;
    expect("gacc_import_rmb_gbk.csv", &ro,
           "FATAL gacc_import_rmb_gbk.csv:1: 进出口: no flow column: give --flow export|import "
           "(the flow the query was for)\n");
    /* A flow column, and a file that is GB18030 but broken. */
    expect("gacc_flow_column.csv", &ro,
           "OK 2 CHN DEU export 2024-01 85176200 1.00\n"
           "OK 3 CHN DEU import 2024-01 85176200 2.00\n"
           "BAD gacc_flow_column.csv:4: 进出口: bad flow \"转口\" (出口 export or 进口 import)\n");
    ro.flow = TF_FLOW_EXPORT;
    expect("gacc_bad_gbk.csv", &ro,
           "OK 2 CHN USA export 2024-01 85176200 1.00\n"
           "FATAL gacc_bad_gbk.csv:3: -: not valid GB18030 at byte 90 of the input (give "
           "--encoding)\n");
}

static void test_identity(void)
{
    char a[80], b[80], c[80];
    const char *k1[] = {"comtrade", "CHN", "USA", "X", "202401", "TOTAL"};
    const char *k2[] = {"comtrade", "CHN", "USA", "M", "202401", "TOTAL"};
    const char *k3[] = {"comtrade", "CHN", "USAX", "", "202401", "TOTAL"}; /* fields shifted */
    tf_source_record_id("ct", "CHN", 2024 * 12, k1, 6, a, sizeof a);
    tf_source_record_id("ct", "CHN", 2024 * 12, k2, 6, b, sizeof b);
    tf_source_record_id("ct", "CHN", 2024 * 12, k3, 6, c, sizeof c);
    CHECK(strncmp(a, "ct:CHN:202401:", 14) == 0 && strlen(a) == 14 + 32);
    CHECK(strcmp(a, b) != 0 && strcmp(a, c) != 0);
    /* Stable across builds and machines: ids must never change. */
    CHECK_STR(a, "ct:CHN:202401:f491d61aae9cb3f97446020521d98fcb");
    char d[80];
    tf_source_record_id("gacc", "ABCDEFGHIJKLMNOP", 2999 * 12 + 11, k1, 6, d, sizeof d);
    CHECK(strlen(d) <= TF_RECORD_ID_MAX);
}

static void test_rejects(void)
{
    /* A source's rejects file is the header as read plus reason, readable
     * again by the same profile (rows still wrong are rejected again). */
    char path[] = "/tmp/tf_test_srcrej_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w+");
    struct run_opts ro = {.kind = TF_SOURCE_COMEXT, .hs_level = TF_HS_LEVEL_UNSET};
    static char got[8192];
    run("comext_full.dat", &ro, got, sizeof got, f);
    fflush(f);
    rewind(f);
    char line[1024];
    CHECK(fgets(line, sizeof line, f) != NULL);
    CHECK_MSG(strncmp(line, "\"DECLARANT\",\"DECLARANT_ISO\",", 28) == 0 &&
                  strstr(line, ",\"reason\"\n"),
              "%s", line);
    int rows = 0;
    while (fgets(line, sizeof line, f))
        rows++;
    CHECK_INT(rows, 4);
    fclose(f);
    tf_source_opts_t o = {.kind = TF_SOURCE_COMEXT, .hs_level = TF_HS_LEVEL_UNSET,
                          .release = 1, .econ = econ, .fx = fx};
    char err[256];
    tf_source_t *s = tf_source_new(&o, err, sizeof err);
    fd = open(path, O_RDONLY);
    tf_reader_t *r = tf_reader_new_source(fd, "rej", TF_FORMAT_CSV, s, err, sizeof err);
    int bad = 0;
    tf_record_t rec;
    for (tf_read_status_t st; (st = tf_reader_next(r, &rec)) != TF_READ_EOF && st != TF_READ_FATAL;)
        bad += st == TF_READ_BAD;
    CHECK_INT(bad, 4);
    tf_reader_destroy(r);
    tf_source_free(s);
    close(fd);
    unlink(path);
}

int main(void)
{
    char err[512];
    econ = tf_econ_load(NULL, TF_ISO3166_ZH_MO, TF_ISO4217_JSON, err, sizeof err);
    if (!econ) {
        fprintf(stderr, "iso-codes: %s\n", err);
        return 1;
    }
    fx = tf_fx_load(TF_SOURCE_DATA "/fx.csv", econ, err, sizeof err);
    if (!fx) {
        fprintf(stderr, "fx: %s\n", err);
        return 1;
    }
    TF_TEST_RUN(test_econ);
    TF_TEST_RUN(test_numbers);
    TF_TEST_RUN(test_fx);
    TF_TEST_RUN(test_comtrade);
    TF_TEST_RUN(test_comext);
    TF_TEST_RUN(test_gacc);
    TF_TEST_RUN(test_identity);
    TF_TEST_RUN(test_rejects);
    tf_fx_free(fx);
    tf_econ_free(econ);
    return TF_TEST_REPORT();
}
