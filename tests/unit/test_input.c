/*
 * test_input.c - the CSV / JSON Lines readers (producers/tf_input.c): every
 * field, header orders, RFC 4180 quoting, CRLF, BOM, the bad-input catalogue
 * in tests/data/input reason by reason, streaming through a pipe, and
 * rejects files in both formats.
 */
#include "tf_input.h"
#include "tf_test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------- */

/* A file descriptor reading the given bytes (a rewound temporary file). */
static int fd_from(const char *data, size_t len)
{
    FILE *f = tmpfile();
    if (!f)
        return -1;
    if (len && fwrite(data, 1, len, f) != len)
        return -1;
    fflush(f);
    int fd = dup(fileno(f));
    fclose(f);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

#define MAXREC 32
struct result {
    char seq[MAXREC + 2]; /* O ok, B bad, E eof, F fatal */
    tf_record_t rec[MAXREC];
    char err[MAXREC][640];
    long line[MAXREC];
    int n;
    uint64_t bytes;
};

/* Reads everything from fd with a reader named `name`. */
static void read_fd(int fd, const char *name, tf_format_t fmt, tf_dataset_t ds, struct result *res)
{
    char errstr[256];
    memset(res, 0, sizeof *res);
    tf_reader_t *r = tf_reader_new(fd, name, fmt, ds, errstr, sizeof errstr);
    CHECK(r != NULL);
    if (!r)
        return;
    for (;;) {
        tf_record_t rec;
        tf_read_status_t st = tf_reader_next(r, &rec);
        if (res->n < MAXREC) {
            res->seq[res->n] = st == TF_READ_OK    ? 'O'
                               : st == TF_READ_BAD ? 'B'
                               : st == TF_READ_EOF ? 'E'
                                                   : 'F';
            res->rec[res->n] = rec;
            snprintf(res->err[res->n], sizeof res->err[0], "%s", tf_reader_error(r));
            res->line[res->n] = tf_reader_line(r);
            res->n++;
        }
        if (st == TF_READ_EOF || st == TF_READ_FATAL)
            break;
    }
    res->bytes = tf_reader_bytes(r);
    tf_reader_destroy(r);
}

static void read_str(const char *data, size_t len, tf_format_t fmt, tf_dataset_t ds,
                     struct result *res)
{
    int fd = fd_from(data, len);
    CHECK(fd >= 0);
    read_fd(fd, "t.in", fmt, ds, res);
    close(fd);
}

#define READ_CSV(s, res) read_str((s), sizeof(s) - 1, TF_FORMAT_CSV, TF_DATASET_CUSTOMS, (res))
#define READ_JSONL(s, res)                                                                         \
    read_str((s), sizeof(s) - 1, TF_FORMAT_JSONL, TF_DATASET_CUSTOMS, (res))

static bool rec_equal(const tf_record_t *a, const tf_record_t *b)
{
    return a->dataset == b->dataset && strcmp(a->record_id, b->record_id) == 0 &&
           a->revision == b->revision && strcmp(a->reporter, b->reporter) == 0 &&
           strcmp(a->partner, b->partner) == 0 && a->flow == b->flow && a->period == b->period &&
           a->value_cents == b->value_cents && strcmp(a->hs_code, b->hs_code) == 0 &&
           a->has_quantity == b->has_quantity && a->quantity_milli == b->quantity_milli &&
           strcmp(a->unit, b->unit) == 0 && strcmp(a->sector, b->sector) == 0;
}

/* ---- formats ---------------------------------------------------------- */

static void test_formats(void)
{
    tf_format_t f = TF_FORMAT_JSONL;
    CHECK(tf_format_parse("csv", &f) == 0 && f == TF_FORMAT_CSV);
    CHECK(tf_format_parse("jsonl", &f) == 0 && f == TF_FORMAT_JSONL);
    CHECK(tf_format_parse("ndjson", &f) == 0 && f == TF_FORMAT_JSONL);
    CHECK(tf_format_parse("json", &f) == 0 && f == TF_FORMAT_JSONL);
    CHECK(tf_format_parse("xml", &f) == -1);
    CHECK(tf_format_parse("CSV", &f) == -1);
    CHECK(tf_format_from_path("/data/feed.csv", &f) == 0 && f == TF_FORMAT_CSV);
    CHECK(tf_format_from_path("a.b/feed.ndjson", &f) == 0 && f == TF_FORMAT_JSONL);
    CHECK(tf_format_from_path("feed.jsonl", &f) == 0 && f == TF_FORMAT_JSONL);
    CHECK(tf_format_from_path("feed.csv.gz", &f) == -1);
    CHECK(tf_format_from_path("a.csv/feed", &f) == -1);
    CHECK(tf_format_from_path(".csv", &f) == -1);
    CHECK(tf_format_from_path("-", &f) == -1);
    CHECK_STR(tf_format_name(TF_FORMAT_CSV), "csv");
    CHECK_STR(tf_format_name(TF_FORMAT_JSONL), "jsonl");
}

/* ---- CSV -------------------------------------------------------------- */

static void test_csv_all_fields(void)
{
    struct result res;
    READ_CSV("record_id,revision,reporter,partner,flow,period,hs_code,value_usd,quantity,unit\n"
             "R-1,7,CHN,VNM,export,2020-11,85171200,609580000000.99,12.345,kg\n"
             "R-2,,CHN,ASEAN,import,1900-01,,0,,\n"
             "R-3,0,CHN,WLD,import,2999-12,01,.5,0,\n",
             &res);
    CHECK_STR(res.seq, "OOOE");
    const tf_record_t *a = &res.rec[0];
    CHECK_INT(a->dataset, TF_DATASET_CUSTOMS);
    CHECK_STR(a->record_id, "R-1");
    CHECK_INT(a->revision, 7);
    CHECK_STR(a->reporter, "CHN");
    CHECK_STR(a->partner, "VNM");
    CHECK_INT(a->flow, TF_FLOW_EXPORT);
    CHECK_INT(a->period, 2020 * 12 + 10);
    CHECK_STR(a->hs_code, "85171200");
    CHECK_INT(a->value_cents, 60958000000099LL);
    CHECK(a->has_quantity);
    CHECK_INT(a->quantity_milli, 12345);
    CHECK_STR(a->unit, "kg");
    CHECK_STR(a->sector, "");
    CHECK_INT(res.line[0], 2);

    const tf_record_t *b = &res.rec[1];
    CHECK_INT(b->revision, 0); /* empty revision */
    CHECK_STR(b->partner, "ASEAN");
    CHECK_INT(b->flow, TF_FLOW_IMPORT);
    CHECK_INT(b->period, TF_PERIOD_MIN);
    CHECK_STR(b->hs_code, "");
    CHECK_INT(b->value_cents, 0);
    CHECK(!b->has_quantity);
    CHECK_STR(b->unit, "");

    const tf_record_t *c = &res.rec[2];
    CHECK_INT(c->period, TF_PERIOD_MAX);
    CHECK_STR(c->hs_code, "01");
    CHECK_INT(c->value_cents, 50);
    CHECK(c->has_quantity);
    CHECK_INT(c->quantity_milli, 0);
    CHECK_INT(res.line[2], 4);
}

static void test_csv_investment(void)
{
    struct result res;
    static const char in[] = "value_usd,sector,period,flow,partner,reporter,record_id\n"
                             "10720000000.00,Manufacturing,2020-09,outward,ASEAN,CHN,I-1\n"
                             "1,,2020-09,inward,SGP,CHN,I-2\n"
                             "1,,2020-09,export,SGP,CHN,I-3\n";
    read_str(in, sizeof in - 1, TF_FORMAT_CSV, TF_DATASET_INVESTMENT, &res);
    CHECK_STR(res.seq, "OOBE");
    CHECK_INT(res.rec[0].dataset, TF_DATASET_INVESTMENT);
    CHECK_STR(res.rec[0].sector, "Manufacturing");
    CHECK_INT(res.rec[0].flow, TF_FLOW_OUTWARD);
    CHECK_INT(res.rec[0].value_cents, 1072000000000LL);
    CHECK_INT(res.rec[0].revision, 0); /* missing revision column */
    CHECK_INT(res.rec[1].flow, TF_FLOW_INWARD);
    CHECK_STR(res.err[2], "t.in:4: flow: bad flow \"export\" (expected outward or inward)");
}

/* The same record under every rotation of the columns, reversed, and in
 * pseudo-random orders (a fixed seed, so a failure can be reproduced). */
static void test_csv_header_orders(void)
{
    static const char *names[] = {"record_id", "revision", "reporter", "partner", "flow",
                                  "period",    "hs_code",  "value_usd", "quantity", "unit"};
    static const char *vals[] = {"X9", "3", "CHN", "KOR", "import", "2021-02", "8703", "1.5",
                                 "2", "u"};
    enum { N = 10 };
    tf_record_t first;
    memset(&first, 0, sizeof first);
    unsigned seed = 12345;
    for (int variant = 0; variant < 2 * N + 200; variant++) {
        int order[N];
        for (int i = 0; i < N; i++)
            order[i] = variant < N ? (i + variant) % N : (N - 1 - (i + variant) % N);
        if (variant >= 2 * N) {
            for (int i = N - 1; i > 0; i--) {
                seed = seed * 1103515245u + 12345u;
                int j = (int)((seed >> 16) % (unsigned)(i + 1));
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }
        char buf[512];
        size_t o = 0;
        for (int i = 0; i < N; i++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", i ? "," : "", names[order[i]]);
        o += (size_t)snprintf(buf + o, sizeof buf - o, "\n");
        for (int i = 0; i < N; i++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", i ? "," : "", vals[order[i]]);
        o += (size_t)snprintf(buf + o, sizeof buf - o, "\n");
        struct result res;
        read_str(buf, o, TF_FORMAT_CSV, TF_DATASET_CUSTOMS, &res);
        CHECK_MSG(strcmp(res.seq, "OE") == 0, "variant %d: %s %s", variant, res.seq, res.err[0]);
        if (variant == 0) {
            first = res.rec[0];
            CHECK_STR(first.record_id, "X9");
            CHECK_INT(first.revision, 3);
            CHECK_STR(first.partner, "KOR");
            CHECK_INT(first.value_cents, 150);
            CHECK_INT(first.quantity_milli, 2000);
            CHECK_STR(first.unit, "u");
        } else {
            CHECK_MSG(rec_equal(&first, &res.rec[0]), "variant %d differs", variant);
        }
    }
}

static void test_csv_quoting(void)
{
    struct result res;
    READ_CSV("record_id,reporter,partner,flow,period,value_usd,unit\n"
             "\"a,b\",CHN,VNM,export,2020-01,1,\"k\"\"g\"\n"
             "\"line1\nline2\n\",CHN,VNM,export,2020-01,\"2.50\",\"\"\n"
             "after,CHN,VNM,export,2020-13,3,\n"
             "  \"  padded  \"  , CHN ,VNM , export,2020-01, 4 ,\n"
             "\"\"\"q\"\"\",CHN,VNM,export,2020-01,5,\"a\r\nb\"\n",
             &res);
    CHECK_STR(res.seq, "OOBOOE");
    CHECK_STR(res.rec[0].record_id, "a,b");
    CHECK_STR(res.rec[0].unit, "k\"g");
    CHECK_STR(res.rec[1].record_id, "line1\nline2\n"); /* only spaces and tabs are trimmed */
    CHECK_INT(res.rec[1].value_cents, 250);
    CHECK_INT(res.line[1], 3);
    /* The record after a three-line record starts on physical line 6. */
    CHECK_STR(res.err[2], "t.in:6: period: impossible period \"2020-13\": month must be 01..12");
    CHECK_INT(res.line[2], 6);
    /* Leading and trailing spaces are trimmed, quoted or not. */
    CHECK_STR(res.rec[3].record_id, "padded");
    CHECK_STR(res.rec[3].reporter, "CHN");
    CHECK_INT(res.rec[3].flow, TF_FLOW_EXPORT);
    CHECK_INT(res.rec[3].value_cents, 400);
    CHECK_STR(res.rec[4].record_id, "\"q\"");
    CHECK_STR(res.rec[4].unit, "a\r\nb");
    CHECK_INT(res.line[4], 8);
}

static void test_csv_crlf_bom(void)
{
    struct result res;
    READ_CSV("\xEF\xBB\xBFrecord_id,reporter,partner,flow,period,value_usd\r\n"
             "A,CHN,VNM,export,2020-01,1\r\n"
             "\r\n"
             "B,CHN,VNM,export,2020-1,1\r\n"
             "C,CHN,VNM,export,2020-01,3",
             &res);
    CHECK_STR(res.seq, "OBOE");
    CHECK_STR(res.rec[0].record_id, "A");
    CHECK_STR(res.err[1], "t.in:4: period: malformed period \"2020-1\": expected YYYY-MM");
    CHECK_STR(res.rec[2].record_id, "C"); /* no final newline */
    CHECK_INT(res.rec[2].value_cents, 300);
    CHECK_INT(res.line[2], 5);
    CHECK_INT(res.bytes, 3 + 50 + 28 + 2 + 27 + 26);

    /* A BOM is only skipped at the very start: elsewhere it is data. */
    READ_CSV("record_id,reporter,partner,flow,period,value_usd\n"
             "\xEF\xBB\xBF"
             "A,CHN,VNM,export,2020-01,1\n",
             &res);
    CHECK_STR(res.seq, "OE");
    CHECK_STR(res.rec[0].record_id, "\xEF\xBB\xBF"
                                    "A");

    /* Half a BOM is data, and not valid UTF-8. */
    READ_CSV("\xEF\xBBrecord_id,reporter,partner,flow,period,value_usd\n", &res);
    CHECK_STR(res.seq, "F");
    CHECK_STR(res.err[0], "t.in:1: -: invalid UTF-8 in header column 1");
    READ_JSONL("\xEF", &res);
    CHECK_STR(res.seq, "BE");
    CHECK_STR(res.err[0], "t.in:1: -: invalid UTF-8 (or NUL) near byte 1");
    READ_JSONL("\xEF\xBB\xBF", &res);
    CHECK_STR(res.seq, "E");
}

static void test_csv_header_errors(void)
{
    struct result res;
    READ_CSV("", &res);
    CHECK_STR(res.seq, "E"); /* empty input: nothing to read, not an error */
    READ_CSV("\n\n", &res);
    CHECK_STR(res.seq, "E");
    READ_CSV("record_id,reporter,partner,flow,period\n", &res);
    CHECK_STR(res.seq, "F");
    CHECK_STR(res.err[0], "t.in:1: value_usd: missing required column");
    READ_CSV("record_id,reporter,,partner,flow,period,value_usd\nx\n", &res);
    CHECK_STR(res.err[0], "t.in:1: -: empty column name in header (column 3)");
    READ_CSV("record_id,reporter,partner,flow,period,value_usd,Unit\n", &res);
    CHECK_STR(res.err[0], "t.in:1: Unit: unknown column for customs");
    READ_CSV("record_id,reporter,partner,flow,period,value_usd,sector\n", &res);
    CHECK_STR(res.err[0], "t.in:1: sector: unknown column for customs");
    READ_CSV("record_id,\"reporter,partner,flow,period,value_usd\n", &res);
    CHECK_STR(res.seq, "F");
    CHECK_STR(res.err[0], "t.in:1: -: malformed CSV: quoted field not closed before end of input");
    /* After a fatal error the reader keeps saying so. */
    int fd = fd_from("a\nb\n", 4);
    char e[128];
    tf_reader_t *r = tf_reader_new(fd, "-", TF_FORMAT_CSV, TF_DATASET_CUSTOMS, e, sizeof e);
    tf_record_t rec;
    CHECK(tf_reader_next(r, &rec) == TF_READ_FATAL);
    CHECK_STR(tf_reader_error(r), "<stdin>:1: a: unknown column for customs");
    CHECK_STR(tf_reader_reason(r), "unknown column for customs");
    CHECK(tf_reader_next(r, &rec) == TF_READ_FATAL);
    tf_reader_destroy(r);
    close(fd);
}

static void test_oversize(void)
{
    size_t big = 1100 * 1024;
    char *buf = malloc(big + 256);
    size_t o = (size_t)sprintf(buf, "record_id,reporter,partner,flow,period,value_usd\n\"");
    memset(buf + o, 'x', big);
    o += big;
    o += (size_t)sprintf(buf + o, "\",CHN,VNM,export,2020-01,1\nok,CHN,VNM,export,2020-01,1\n");
    struct result res;
    read_str(buf, o, TF_FORMAT_CSV, TF_DATASET_CUSTOMS, &res);
    CHECK_STR(res.seq, "BOE");
    CHECK_STR(res.err[0], "t.in:2: -: record longer than 1048576 bytes");
    CHECK_STR(res.rec[1].record_id, "ok");
    CHECK_INT(res.bytes, o);
    free(buf);
}

/* ---- JSON Lines ------------------------------------------------------- */

static void test_jsonl(void)
{
    struct result res;
    READ_JSONL("{\"record_id\":\"J1\",\"revision\":4,\"reporter\":\"CHN\",\"partner\":\"VNM\","
               "\"flow\":\"export\",\"period\":\"2020-11\",\"hs_code\":\"8517\","
               "\"value_usd\":\"609580000000.99\",\"quantity\":\"1.5\",\"unit\":\"kg\"}\n"
               "\n"
               "{\"unit\":null,\"value_usd\":12,\"period\":\"2020-01\",\"flow\":\"import\","
               "\"partner\":\"USA\",\"reporter\":\"CHN\",\"record_id\":77,\"revision\":\"\","
               "\"quantity\":3}\r\n"
               "  {\"record_id\":\" sp \",\"reporter\":\"CHN\",\"partner\":\"USA\",\"flow\":"
               "\"import\",\"period\":\"2020-01\",\"value_usd\":\"0.10\"}  \n"
               "{\"record_id\":\"J4\",\"reporter\":\"CHN\",\"partner\":\"USA\",\"flow\":\"import\","
               "\"period\":\"2020-01\",\"value_usd\":0.1}\n"
               "{\"record_id\":\"J5\",\"reporter\":\"CHN\",\"partner\":\"USA\",\"flow\":\"import\","
               "\"period\":\"2020-01\",\"value_usd\":true}\n"
               "{\"record_id\":\"J6\",\"reporter\":\"CHN\",\"partner\":\"USA\",\"flow\":\"import\","
               "\"period\":\"2020-01\",\"value_usd\":\"1\",\"hs_code\":85}\n"
               "{\"record_id\":\"J8\",\"revision\":1.0,\"reporter\":\"CHN\",\"partner\":\"USA\","
               "\"flow\":\"import\",\"period\":\"2020-01\",\"value_usd\":\"1\"}\n"
               "{\"record_id\":\"J7\",\"reporter\":\"CHN\",\"partner\":\"USA\",\"flow\":\"import\","
               "\"period\":\"2020-01\",\"value_usd\":\"1\",\"unit\":\"\\u00e9\\ud83d\\ude00\"}",
               &res);
    CHECK_STR(res.seq, "OOOBBBBOE");
    const tf_record_t *a = &res.rec[0];
    CHECK_STR(a->record_id, "J1");
    CHECK_INT(a->revision, 4);
    CHECK_STR(a->reporter, "CHN");
    CHECK_STR(a->partner, "VNM");
    CHECK_INT(a->flow, TF_FLOW_EXPORT);
    CHECK_INT(a->period, 2020 * 12 + 10);
    CHECK_STR(a->hs_code, "8517");
    CHECK_INT(a->value_cents, 60958000000099LL);
    CHECK(a->has_quantity);
    CHECK_INT(a->quantity_milli, 1500);
    CHECK_STR(a->unit, "kg");
    const tf_record_t *b = &res.rec[1];
    CHECK_STR(b->record_id, "77");
    CHECK_INT(b->revision, 0);
    CHECK_INT(b->value_cents, 1200);
    CHECK_INT(b->quantity_milli, 3000);
    CHECK_STR(b->unit, "");
    CHECK_INT(res.line[1], 3);
    CHECK_STR(res.rec[2].record_id, "sp");
    CHECK_INT(res.rec[2].value_cents, 10);
    CHECK_STR(res.err[3], "t.in:5: value_usd: JSON real number 0.10000000000000001 is not exact: "
                          "write it as a string, e.g. \"123.45\"");
    CHECK_STR(res.err[4], "t.in:6: value_usd: expected a string or an integer");
    CHECK_STR(res.err[5], "t.in:7: hs_code: expected a string");
    CHECK_STR(res.err[6], "t.in:8: revision: expected a string or an integer, not the real 1");
    CHECK_STR(res.rec[7].unit, "\xC3\xA9\xF0\x9F\x98\x80");
    CHECK_INT(res.line[7], 9);
}

/* ---- the bad-input catalogue ------------------------------------------ */

struct catalogue_case {
    const char *file;
    const char *seq;
    const char *error;
};

static const struct catalogue_case catalogue[] = {
    {"bad_field_count.csv", "OBOE", "bad_field_count.csv:3: -: expected 10 fields as in the header, got 9"},
    {"bad_empty_record_id.csv", "OBOE", "bad_empty_record_id.csv:3: record_id: empty required field"},
    {"bad_empty_reporter.csv", "OBOE", "bad_empty_reporter.csv:3: reporter: empty required field"},
    {"bad_empty_value.csv", "OBOE", "bad_empty_value.csv:3: value_usd: empty required field"},
    {"bad_period_month.csv", "OBOE", "bad_period_month.csv:3: period: impossible period \"2020-13\": month must be 01..12"},
    {"bad_period_short.csv", "OBOE", "bad_period_short.csv:3: period: malformed period \"2020-1\": expected YYYY-MM"},
    {"bad_period_year.csv", "OBOE", "bad_period_year.csv:3: period: impossible period \"1899-12\": year must be 1900..2999"},
    {"bad_value_text.csv", "OBOE", "bad_value_text.csv:3: value_usd: not a decimal number: \"12a\""},
    {"bad_value_negative.csv", "OBOE", "bad_value_negative.csv:3: value_usd: negative value \"-5.00\""},
    {"bad_value_nan.csv", "OBOE", "bad_value_nan.csv:3: value_usd: not a decimal number: \"NaN\""},
    {"bad_value_inf.csv", "OBOE", "bad_value_inf.csv:3: value_usd: not a decimal number: \"inf\""},
    {"bad_value_exponent.csv", "OBOE", "bad_value_exponent.csv:3: value_usd: not a decimal number: \"1e6\""},
    {"bad_value_precision.csv", "OBOE", "bad_value_precision.csv:3: value_usd: too many decimal places in \"1.234\" (at most 2)"},
    {"bad_value_overflow.csv", "OBOE", "bad_value_overflow.csv:3: value_usd: value \"92233720368547758.08\" is too large"},
    {"bad_value_thousands.csv", "OBOE", "bad_value_thousands.csv:3: value_usd: not a decimal number: \"1,234.00\""},
    {"bad_quantity_precision.csv", "OBOE", "bad_quantity_precision.csv:3: quantity: too many decimal places in \"1.2345\" (at most 3)"},
    {"bad_flow.csv", "OBOE", "bad_flow.csv:3: flow: bad flow \"exports\" (expected export or import)"},
    {"bad_flow_dataset.csv", "OBOE", "bad_flow_dataset.csv:3: flow: bad flow \"outward\" (expected export or import)"},
    {"bad_reporter_code.csv", "OBOE", "bad_reporter_code.csv:3: reporter: bad economy code \"chn\" (2-16 of A-Z0-9, starting with A-Z)"},
    {"bad_partner_same.csv", "OBOE", "bad_partner_same.csv:3: partner: partner equals reporter"},
    {"bad_partner_long.csv", "OBOE", "bad_partner_long.csv:3: partner: longer than 16 bytes (17)"},
    {"bad_record_id_long.csv", "OBOE", "bad_record_id_long.csv:3: record_id: longer than 64 bytes (65)"},
    {"bad_hs_code.csv", "OBOE", "bad_hs_code.csv:3: hs_code: bad HS code \"85A7\" (2-10 digits)"},
    {"bad_unit_long.csv", "OBOE", "bad_unit_long.csv:3: unit: longer than 16 bytes (18)"},
    {"bad_utf8.csv", "OBOE", "bad_utf8.csv:3: unit: invalid UTF-8"},
    {"bad_utf8_overlong.csv", "OBOE", "bad_utf8_overlong.csv:3: record_id: invalid UTF-8"},
    {"bad_nul.csv", "OBOE", "bad_nul.csv:3: record_id: contains a NUL byte"},
    {"bad_revision.csv", "OBOE", "bad_revision.csv:3: revision: not a whole number: \"1.5\""},
    {"bad_revision_negative.csv", "OBOE", "bad_revision_negative.csv:3: revision: negative revision \"-1\""},
    {"bad_quote.csv", "OBOE", "bad_quote.csv:3: -: malformed CSV: stray quote at byte 14 of the record (a quote may only enclose a whole field, and is doubled inside one)"},
    {"bad_unterminated_quote.csv", "OBE", "bad_unterminated_quote.csv:3: -: malformed CSV: quoted field not closed before end of input"},
    {"bad_bare_cr.csv", "OBOE", "bad_bare_cr.csv:3: -: bare carriage return outside quotes (lines must end with LF or CRLF)"},
    {"bad_unknown_column.csv", "F", "bad_unknown_column.csv:1: colour: unknown column for customs"},
    {"bad_missing_column.csv", "F", "bad_missing_column.csv:1: value_usd: missing required column"},
    {"bad_duplicate_column.csv", "F", "bad_duplicate_column.csv:1: partner: duplicate column"},
    {"bad_inv_flow.csv", "OBOE", "bad_inv_flow.csv:3: flow: bad flow \"export\" (expected outward or inward)"},
    {"bad_inv_sector_long.csv", "OBOE", "bad_inv_sector_long.csv:3: sector: longer than 128 bytes (129)"},
    {"bad_inv_hs_code_column.csv", "F", "bad_inv_hs_code_column.csv:1: hs_code: unknown column for investment"},
    {"bad_json_syntax.jsonl", "OBOE", "bad_json_syntax.jsonl:2: -: invalid JSON: '}' expected near end of file (at character 104)"},
    {"bad_json_not_object.jsonl", "OBOE", "bad_json_not_object.jsonl:2: -: expected one JSON object per line"},
    {"bad_json_unknown_key.jsonl", "OBOE", "bad_json_unknown_key.jsonl:2: colour: unknown column for customs"},
    {"bad_json_missing_key.jsonl", "OBOE", "bad_json_missing_key.jsonl:2: value_usd: missing required column"},
    {"bad_json_real.jsonl", "OBOE", "bad_json_real.jsonl:2: value_usd: JSON real number 12.5 is not exact: write it as a string, e.g. \"123.45\""},
    {"bad_json_type.jsonl", "OBOE", "bad_json_type.jsonl:2: reporter: expected a string"},
    {"bad_json_utf8.jsonl", "OBOE", "bad_json_utf8.jsonl:2: -: invalid UTF-8 (or NUL) near byte 115"},
    {"bad_json_duplicate.jsonl", "OBOE", "bad_json_duplicate.jsonl:2: -: invalid JSON: duplicate object key near '\"value_usd\"' (at character 116)"},
    {"bad_json_period.jsonl", "OBOE", "bad_json_period.jsonl:2: period: malformed period \"2020-1\": expected YYYY-MM"},
    {"bad_json_negative.jsonl", "OBOE", "bad_json_negative.jsonl:2: value_usd: negative value \"-5\""},
    {"bad_json_nan.jsonl", "OBOE", "bad_json_nan.jsonl:2: value_usd: not a decimal number: \"NaN\""},
};

static char data_dir[1024];

static int open_data(const char *file)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", data_dir, file);
    int fd = open(path, O_RDONLY);
    CHECK_MSG(fd >= 0, "%s: %s", path, strerror(errno));
    return fd;
}

static off_t file_size(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_size : -1;
}

static void test_catalogue(void)
{
    for (size_t i = 0; i < sizeof catalogue / sizeof catalogue[0]; i++) {
        const struct catalogue_case *c = &catalogue[i];
        tf_format_t fmt;
        CHECK(tf_format_from_path(c->file, &fmt) == 0);
        tf_dataset_t ds = strncmp(c->file, "bad_inv_", 8) == 0 ? TF_DATASET_INVESTMENT
                                                               : TF_DATASET_CUSTOMS;
        int fd = open_data(c->file);
        if (fd < 0)
            continue;
        struct result res;
        read_fd(fd, c->file, fmt, ds, &res);
        CHECK_MSG(strcmp(res.seq, c->seq) == 0, "%s: %s, expected %s", c->file, res.seq, c->seq);
        int bad = c->seq[0] == 'F' ? 0 : 1;
        CHECK_MSG(strcmp(res.err[bad], c->error) == 0, "%s:\n   got \"%s\"\n  want \"%s\"",
                  c->file, res.err[bad], c->error);
        /* The good records around the bad one are whole and valid. */
        for (int k = 0; k < res.n; k++) {
            if (res.seq[k] == 'O') {
                const char *column;
                char why[128];
                CHECK_MSG(tf_record_validate(&res.rec[k], &column, why, sizeof why) == 0,
                          "%s record %d", c->file, k);
            }
        }
        if (c->seq[0] != 'F')
            CHECK_MSG(res.bytes == (uint64_t)file_size(fd), "%s: bytes %llu", c->file,
                      (unsigned long long)res.bytes);
        close(fd);
    }
}

static void test_mixed(void)
{
    struct result res;
    int fd = open_data("mixed_customs.csv");
    read_fd(fd, "mixed_customs.csv", TF_FORMAT_CSV, TF_DATASET_CUSTOMS, &res);
    close(fd);
    CHECK_STR(res.seq, "OBBOBOOBOE");
    CHECK_STR(res.rec[0].record_id, "M1");
    CHECK_INT(res.rec[0].value_cents, 10000);
    CHECK_INT(res.rec[0].revision, 0);
    CHECK_STR(res.err[1], "mixed_customs.csv:4: period: impossible period \"2020-13\": month must be 01..12");
    CHECK_STR(res.err[2], "mixed_customs.csv:5: value_usd: not a decimal number: \"1,000.50\"");
    CHECK_STR(res.rec[3].record_id, "M4, multi-line");
    CHECK_STR(res.rec[3].unit, "pieces\r\nof");
    CHECK_INT(res.rec[3].revision, 3);
    CHECK_INT(res.line[3], 6);
    CHECK_STR(res.err[4], "mixed_customs.csv:8: value_usd: too many decimal places in \"1.001\" (at most 2)");
    CHECK_STR(res.rec[5].record_id, "M6");
    CHECK_STR(res.rec[6].record_id, "M7\n\nthree lines");
    CHECK_INT(res.line[6], 10);
    CHECK_STR(res.err[7], "mixed_customs.csv:13: partner: empty required field");
    CHECK_STR(res.rec[8].partner, "WLD");
    CHECK_INT(res.line[8], 14);

    fd = open_data("mixed_customs.jsonl");
    read_fd(fd, "mixed_customs.jsonl", TF_FORMAT_JSONL, TF_DATASET_CUSTOMS, &res);
    close(fd);
    CHECK_STR(res.seq, "OBOBBOE");
    CHECK_STR(res.err[1], "mixed_customs.jsonl:3: value_usd: too many decimal places in \"100.001\" (at most 2)");
    CHECK_INT(res.rec[2].value_cents, 60958000000000LL);
    CHECK_INT(res.rec[2].revision, 2);
    CHECK_INT(res.line[2], 5);
    CHECK_STR(res.err[3], "mixed_customs.jsonl:6: -: invalid JSON: '[' or '{' expected near 'not' (at character 3)");
    CHECK_STR(res.err[4], "mixed_customs.jsonl:7: sector: unknown column for customs");
    CHECK_STR(res.rec[5].record_id, "K5"); /* its "reason" member is ignored */
    CHECK_INT(res.line[5], 8);

    fd = open_data("mixed_investment.csv");
    read_fd(fd, "mixed_investment.csv", TF_FORMAT_CSV, TF_DATASET_INVESTMENT, &res);
    close(fd);
    CHECK_STR(res.seq, "OBOBOE");
    CHECK_STR(res.rec[0].partner, "ASEAN");
    CHECK_INT(res.rec[0].value_cents, 1072000000000LL);
    CHECK_STR(res.err[1], "mixed_investment.csv:3: value_usd: negative value \"-1\"");
    CHECK_STR(res.rec[2].sector, "Wholesale, retail");
    CHECK_STR(res.err[3], "mixed_investment.csv:5: flow: bad flow \"import\" (expected outward or inward)");
    CHECK_INT(res.rec[4].revision, 0);
}

/* ---- pipes ------------------------------------------------------------ */

static void write_all(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* A record is returned as soon as its newline has arrived: the write end of
 * the pipe stays open, so a reader that waited for more input (or for EOF)
 * would block here and the alarm would end the test. */
static void test_pipe_incremental(void)
{
    int p[2];
    CHECK(pipe(p) == 0);
    char e[128];
    tf_reader_t *r = tf_reader_new(p[0], "-", TF_FORMAT_CSV, TF_DATASET_CUSTOMS, e, sizeof e);
    tf_record_t rec;
    alarm(20);
    write_all(p[1], "record_id,reporter,partner,flow,period,value_usd\nA,CHN,VNM,export,2020-01,1\nB,CHN");
    CHECK(tf_reader_next(r, &rec) == TF_READ_OK);
    CHECK_STR(rec.record_id, "A");
    write_all(p[1], ",VNM,export,2020-01,2\n\"C\n");
    CHECK(tf_reader_next(r, &rec) == TF_READ_OK);
    CHECK_STR(rec.record_id, "B");
    /* Record C has a quoted newline: it is not complete until the quote closes. */
    write_all(p[1], "more\",CHN,VNM,export,2020-01,3\nD,CHN,VNM,export,2020-13,4\n");
    CHECK(tf_reader_next(r, &rec) == TF_READ_OK);
    CHECK_STR(rec.record_id, "C\nmore");
    CHECK(tf_reader_next(r, &rec) == TF_READ_BAD);
    CHECK_STR(tf_reader_error(r), "<stdin>:6: period: impossible period \"2020-13\": month must be 01..12");
    close(p[1]);
    CHECK(tf_reader_next(r, &rec) == TF_READ_EOF);
    CHECK(tf_reader_next(r, &rec) == TF_READ_EOF);
    alarm(0);
    tf_reader_destroy(r);
    close(p[0]);

    /* The same for JSON Lines, a line without its newline is not a record yet. */
    CHECK(pipe(p) == 0);
    r = tf_reader_new(p[0], "live.jsonl", TF_FORMAT_JSONL, TF_DATASET_CUSTOMS, e, sizeof e);
    alarm(20);
    write_all(p[1], "{\"record_id\":\"A\",\"reporter\":\"CHN\",\"partner\":\"VNM\",\"flow\":\"export\","
                    "\"period\":\"2020-01\",\"value_usd\":\"1\"}\n{\"record_id\":");
    CHECK(tf_reader_next(r, &rec) == TF_READ_OK);
    CHECK_STR(rec.record_id, "A");
    write_all(p[1], "\"B\"}\n");
    CHECK(tf_reader_next(r, &rec) == TF_READ_BAD);
    CHECK_STR(tf_reader_error(r), "live.jsonl:2: reporter: missing required column");
    close(p[1]);
    CHECK(tf_reader_next(r, &rec) == TF_READ_EOF);
    alarm(0);
    tf_reader_destroy(r);
    close(p[0]);
}

struct feeder {
    int fd;
    const char *data;
    size_t chunk;
};

static void *feed(void *arg)
{
    struct feeder *f = arg;
    size_t n = strlen(f->data);
    for (size_t o = 0; o < n; o += f->chunk) {
        size_t k = n - o < f->chunk ? n - o : f->chunk;
        if (write(f->fd, f->data + o, k) != (ssize_t)k)
            break;
        if (o % 64 == 0) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
    }
    close(f->fd);
    return NULL;
}

/* Every chunking of the input gives the same records as reading a file. */
static void test_pipe_chunks(void)
{
    static const char in[] =
        "\xEF\xBB\xBFrecord_id,revision,reporter,partner,flow,period,hs_code,value_usd,quantity,unit\r\n"
        "\"x\r\ny\",1,CHN,VNM,export,2020-01,85,1.25,2,kg\r\n"
        "b,,CHN,VNM,export,2020-13,85,1.25,2,kg\r\n"
        "\"c,\"\"d\"\"\",2,CHN,THA,import,2021-12,,1000000.01,,\r\n"
        "\r\n"
        "e,3,CHN,THA,import,2021-12,,5,,\r\n";
    struct result want;
    read_str(in, sizeof in - 1, TF_FORMAT_CSV, TF_DATASET_CUSTOMS, &want);
    CHECK_STR(want.seq, "OBOOE");
    static const size_t chunks[] = {1, 2, 3, 7, 64};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        int p[2];
        CHECK(pipe(p) == 0);
        struct feeder f = {p[1], in, chunks[i]};
        pthread_t t;
        pthread_create(&t, NULL, feed, &f);
        struct result got;
        read_fd(p[0], "t.in", TF_FORMAT_CSV, TF_DATASET_CUSTOMS, &got);
        pthread_join(t, NULL);
        close(p[0]);
        CHECK_MSG(strcmp(got.seq, want.seq) == 0, "chunk %zu: %s", chunks[i], got.seq);
        for (int k = 0; k < want.n && k < got.n; k++) {
            if (want.seq[k] == 'O')
                CHECK_MSG(rec_equal(&want.rec[k], &got.rec[k]), "chunk %zu record %d", chunks[i], k);
            CHECK_STR(got.err[k], want.err[k]);
            CHECK_INT(got.line[k], want.line[k]);
        }
        CHECK_INT(got.bytes, sizeof in - 1);
    }
}

/* ---- rejects ---------------------------------------------------------- */

static char *slurp(FILE *f, size_t *len)
{
    fflush(f);
    long n = ftell(f);
    rewind(f);
    char *s = calloc(1, (size_t)n + 1);
    *len = fread(s, 1, (size_t)n, f);
    return s;
}

static void test_rejects_csv(void)
{
    static const char in[] = "record_id,reporter,partner,flow,period,value_usd\n"
                             "A,CHN,VNM,export,2020-01,1\n"
                             "\"B,\"\"x\"\"\nz\",CHN,VNM,export,2020-13,2\n"
                             "C,CHN,VNM,export,2020-01\n"
                             "D,CHN,\"V\"N,export,2020-01,1\n"
                             "E,CHN,VNM,export,2020-01,1.005\n";
    int fd = fd_from(in, sizeof in - 1);
    char e[128];
    tf_reader_t *r = tf_reader_new(fd, "in.csv", TF_FORMAT_CSV, TF_DATASET_CUSTOMS, e, sizeof e);
    FILE *out = tmpfile();
    tf_record_t rec;
    tf_read_status_t st;
    int bad = 0;
    while ((st = tf_reader_next(r, &rec)) == TF_READ_OK || st == TF_READ_BAD) {
        if (st == TF_READ_BAD) {
            CHECK(tf_reader_write_reject(r, out, tf_reader_reason(r)) == 0);
            bad++;
        }
    }
    CHECK_INT(bad, 4);
    tf_reader_destroy(r);
    close(fd);
    size_t len;
    char *text = slurp(out, &len);
    CHECK_STR(text,
              "\"record_id\",\"reporter\",\"partner\",\"flow\",\"period\",\"value_usd\",\"reason\"\n"
              "\"B,\"\"x\"\"\nz\",\"CHN\",\"VNM\",\"export\",\"2020-13\",\"2\",\"impossible period "
              "\"\"2020-13\"\": month must be 01..12\"\n"
              "\"C\",\"CHN\",\"VNM\",\"export\",\"2020-01\",\"expected 6 fields as in the header, "
              "got 5\"\n"
              "\"D,CHN,\"\"V\"\"N,export,2020-01,1\",\"malformed CSV: stray quote at byte 10 of the "
              "record (a quote may only enclose a whole field, and is doubled inside one)\"\n"
              "\"E\",\"CHN\",\"VNM\",\"export\",\"2020-01\",\"1.005\",\"too many decimal places in "
              "\"\"1.005\"\" (at most 2)\"\n");
    /* The rejects file parses back: its reason column is ignored, the rows
     * keep their fields, and each is rejected again for the same reason. */
    struct result res;
    read_str(text, len, TF_FORMAT_CSV, TF_DATASET_CUSTOMS, &res);
    CHECK_STR(res.seq, "BBBBE");
    CHECK_STR(res.err[0], "t.in:2: period: impossible period \"2020-13\": month must be 01..12");
    CHECK_INT(res.line[1], 4);
    CHECK_STR(res.err[1], "t.in:4: -: expected 7 fields as in the header, got 6");
    CHECK_STR(res.err[2], "t.in:5: -: expected 7 fields as in the header, got 2");
    CHECK_STR(res.err[3], "t.in:6: value_usd: too many decimal places in \"1.005\" (at most 2)");
    /* Fixed by hand, the first row goes through. */
    char *fix = strstr(text, "2020-13");
    memcpy(fix, "2020-12", 7);
    read_str(text, len, TF_FORMAT_CSV, TF_DATASET_CUSTOMS, &res);
    CHECK_STR(res.seq, "OBBBE");
    CHECK_STR(res.rec[0].record_id, "B,\"x\"\nz");
    free(text);
    fclose(out);

    /* OK records can be written too (for --strict), with the caller's reason. */
    fd = fd_from(in, sizeof in - 1);
    r = tf_reader_new(fd, "in.csv", TF_FORMAT_CSV, TF_DATASET_CUSTOMS, e, sizeof e);
    out = tmpfile();
    CHECK(tf_reader_next(r, &rec) == TF_READ_OK);
    CHECK(tf_reader_write_reject(r, out, "not published: the file has bad records") == 0);
    tf_reader_destroy(r);
    close(fd);
    text = slurp(out, &len);
    CHECK_STR(text, "\"record_id\",\"reporter\",\"partner\",\"flow\",\"period\",\"value_usd\",\"reason\"\n"
                    "\"A\",\"CHN\",\"VNM\",\"export\",\"2020-01\",\"1\",\"not published: the file has "
                    "bad records\"\n");
    free(text);
    fclose(out);
}

static void test_rejects_jsonl(void)
{
    static const char in[] =
        "{\"record_id\":\"A\",\"reporter\":\"CHN\",\"partner\":\"VNM\",\"flow\":\"export\","
        "\"period\":\"2020-13\",\"value_usd\":\"1\"}\n"
        "{\"record_id\": \"B\", \"unit\": \"\xff\"}\n"
        "[1]\n"
        "{\"record_id\":\"C\",\"reason\":\"old\",\"value_usd\":2.5}\n";
    int fd = fd_from(in, sizeof in - 1);
    char e[128];
    tf_reader_t *r = tf_reader_new(fd, "in.jsonl", TF_FORMAT_JSONL, TF_DATASET_CUSTOMS, e, sizeof e);
    FILE *out = tmpfile();
    tf_record_t rec;
    tf_read_status_t st;
    while ((st = tf_reader_next(r, &rec)) == TF_READ_BAD)
        CHECK(tf_reader_write_reject(r, out, tf_reader_reason(r)) == 0);
    CHECK(st == TF_READ_EOF);
    tf_reader_destroy(r);
    close(fd);
    size_t len;
    char *text = slurp(out, &len);
    CHECK_STR(text,
              "{\"record_id\":\"A\",\"reporter\":\"CHN\",\"partner\":\"VNM\",\"flow\":\"export\","
              "\"period\":\"2020-13\",\"value_usd\":\"1\",\"reason\":\"impossible period "
              "\\\"2020-13\\\": month must be 01..12\"}\n"
              "{\"raw\":\"{\\\"record_id\\\": \\\"B\\\", \\\"unit\\\": \\\"\xEF\xBF\xBD\\\"}\","
              "\"reason\":\"invalid UTF-8 (or NUL) near byte 29\"}\n"
              "{\"raw\":\"[1]\",\"reason\":\"expected one JSON object per line\"}\n"
              "{\"record_id\":\"C\",\"reason\":\"JSON real number 2.5 is not exact: write it as a "
              "string, e.g. \\\"123.45\\\"\",\"value_usd\":2.5}\n");
    /* Every line of the rejects file is valid JSON read back by the reader. */
    struct result res;
    read_str(text, len, TF_FORMAT_JSONL, TF_DATASET_CUSTOMS, &res);
    CHECK_STR(res.seq, "BBBBE");
    CHECK_STR(res.err[0], "t.in:1: period: impossible period \"2020-13\": month must be 01..12");
    CHECK_STR(res.err[1], "t.in:2: raw: unknown column for customs");
    free(text);
    fclose(out);
}

int main(void)
{
    const char *src = getenv("TF_SOURCE_DIR");
    if (src) {
        snprintf(data_dir, sizeof data_dir, "%s/tests/data/input", src);
    } else {
        /* Run by hand: find the data next to this source file. */
        snprintf(data_dir, sizeof data_dir, "%s", __FILE__);
        char *unit = strstr(data_dir, "/unit/test_input.c");
        if (unit)
            snprintf(unit, sizeof data_dir - (size_t)(unit - data_dir), "/data/input");
        else
            snprintf(data_dir, sizeof data_dir, "tests/data/input");
    }
    signal(SIGPIPE, SIG_IGN);
    TF_TEST_RUN(test_formats);
    TF_TEST_RUN(test_csv_all_fields);
    TF_TEST_RUN(test_csv_investment);
    TF_TEST_RUN(test_csv_header_orders);
    TF_TEST_RUN(test_csv_quoting);
    TF_TEST_RUN(test_csv_crlf_bom);
    TF_TEST_RUN(test_csv_header_errors);
    TF_TEST_RUN(test_oversize);
    TF_TEST_RUN(test_jsonl);
    TF_TEST_RUN(test_catalogue);
    TF_TEST_RUN(test_mixed);
    TF_TEST_RUN(test_pipe_incremental);
    TF_TEST_RUN(test_pipe_chunks);
    TF_TEST_RUN(test_rejects_csv);
    TF_TEST_RUN(test_rejects_jsonl);
    return TF_TEST_REPORT();
}
