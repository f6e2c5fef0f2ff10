/*
 * test_record.c - the helpers of common/tf_record.c: periods, exact decimals,
 * economy codes, UTF-8, flows and whole-record validation.
 */
#include "tf_record.h"
#include "tf_test.h"

#include <stdint.h>
#include <string.h>

static void test_period(void)
{
    int32_t p = -1;
    char err[128];
    CHECK(tf_period_parse("2020-01", &p, err, sizeof err) == 0);
    CHECK_INT(p, 2020 * 12);
    CHECK_INT(tf_period_year(p), 2020);
    CHECK_INT(tf_period_month(p), 1);
    CHECK(tf_period_parse("2020-12", &p, err, sizeof err) == 0);
    CHECK_INT(tf_period_month(p), 12);
    CHECK(tf_period_parse("1900-01", &p, err, sizeof err) == 0 && p == TF_PERIOD_MIN);
    CHECK(tf_period_parse("2999-12", &p, err, sizeof err) == 0 && p == TF_PERIOD_MAX);

    static const struct {
        const char *in, *why;
    } bad[] = {
        {"2020-13", "impossible period \"2020-13\": month must be 01..12"},
        {"2020-00", "impossible period \"2020-00\": month must be 01..12"},
        {"1899-12", "impossible period \"1899-12\": year must be 1900..2999"},
        {"3000-01", "impossible period \"3000-01\": year must be 1900..2999"},
        {"2020-1", "malformed period \"2020-1\": expected YYYY-MM"},
        {"2020-001", "malformed period \"2020-001\": expected YYYY-MM"},
        {"2020/01", "malformed period \"2020/01\": expected YYYY-MM"},
        {"202a-01", "malformed period \"202a-01\": expected YYYY-MM"},
        {" 2020-1", "malformed period \" 2020-1\": expected YYYY-MM"},
        {"+020-01", "malformed period \"+020-01\": expected YYYY-MM"},
        {"2020-+1", "malformed period \"2020-+1\": expected YYYY-MM"},
        {"", "malformed period \"\": expected YYYY-MM"},
        {"2020-01-01", "malformed period \"2020-01-01\": expected YYYY-MM"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = 42;
        err[0] = '\0';
        CHECK_MSG(tf_period_parse(bad[i].in, &p, err, sizeof err) == -1, "%s", bad[i].in);
        CHECK_STR(err, bad[i].why);
        CHECK_INT(p, 42); /* untouched on error */
    }

    char buf[8];
    tf_period_format(2021 * 12 + 1, buf, sizeof buf);
    CHECK_STR(buf, "2021-02");
    tf_period_format(TF_PERIOD_MIN, buf, sizeof buf);
    CHECK_STR(buf, "1900-01");
    /* format and parse are inverse over the whole range */
    int mismatches = 0;
    for (int32_t q = TF_PERIOD_MIN; q <= TF_PERIOD_MAX; q++) {
        int32_t back;
        tf_period_format(q, buf, sizeof buf);
        if (tf_period_parse(buf, &back, err, sizeof err) != 0 || back != q)
            mismatches++;
    }
    CHECK_INT(mismatches, 0);
}

static void test_decimal(void)
{
    int64_t v = -7;
    char err[128];
    static const struct {
        const char *in;
        int scale;
        int64_t want;
    } good[] = {
        {"0", 2, 0},
        {"1", 2, 100},
        {"1.5", 2, 150},
        {"1.05", 2, 105},
        {"0.01", 2, 1},
        {".5", 2, 50},
        {"007", 2, 700},
        {"609580000000.00", 2, 60958000000000LL},
        {"92233720368547758.07", 2, INT64_MAX},
        {"92233720368547758", 2, 9223372036854775800LL},
        {"9223372036854775807", 0, INT64_MAX},
        {"12.345", 3, 12345},
        {"12", 3, 12000},
        {"0.001", 3, 1},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        v = -7;
        CHECK_MSG(tf_decimal_parse(good[i].in, good[i].scale, &v, err, sizeof err) == 0, "%s: %s",
                  good[i].in, err);
        CHECK_MSG(v == good[i].want, "%s -> %lld", good[i].in, (long long)v);
    }
    static const struct {
        const char *in;
        int scale;
        const char *why;
    } bad[] = {
        {"", 2, "empty number"},
        {"-1", 2, "negative value \"-1\""},
        {"-0.00", 2, "negative value \"-0.00\""},
        {"+1", 2, "not a decimal number: \"+1\""},
        {"1.234", 2, "too many decimal places in \"1.234\" (at most 2)"},
        {"1.0001", 3, "too many decimal places in \"1.0001\" (at most 3)"},
        {"1.5", 0, "too many decimal places in \"1.5\" (at most 0)"},
        {"1.", 2, "not a decimal number: \"1.\""},
        {".", 2, "not a decimal number: \".\""},
        {"1..2", 2, "not a decimal number: \"1..2\""},
        {"1.2.3", 2, "not a decimal number: \"1.2.3\""},
        {"1e5", 2, "not a decimal number: \"1e5\""},
        {"NaN", 2, "not a decimal number: \"NaN\""},
        {"inf", 2, "not a decimal number: \"inf\""},
        {" 1", 2, "not a decimal number: \" 1\""},
        {"1 ", 2, "not a decimal number: \"1 \""},
        {"1,000", 2, "not a decimal number: \"1,000\""},
        {"0x10", 2, "not a decimal number: \"0x10\""},
        {"92233720368547758.08", 2, "value \"92233720368547758.08\" is too large"},
        {"92233720368547759", 2, "value \"92233720368547759\" is too large"},
        {"9223372036854775808", 0, "value \"9223372036854775808\" is too large"},
        {"99999999999999999999999999", 2, "value \"99999999999999999999999999\" is too large"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = -7;
        err[0] = '\0';
        CHECK_MSG(tf_decimal_parse(bad[i].in, bad[i].scale, &v, err, sizeof err) == -1, "%s",
                  bad[i].in);
        CHECK_STR(err, bad[i].why);
        CHECK_INT(v, -7);
    }

    char buf[32];
    tf_decimal_format(60958000000099LL, 2, buf, sizeof buf);
    CHECK_STR(buf, "609580000000.99");
    tf_decimal_format(5, 2, buf, sizeof buf);
    CHECK_STR(buf, "0.05");
    tf_decimal_format(-5, 2, buf, sizeof buf);
    CHECK_STR(buf, "-0.05");
    tf_decimal_format(INT64_MAX, 2, buf, sizeof buf);
    CHECK_STR(buf, "92233720368547758.07");
    tf_decimal_format(INT64_MIN, 2, buf, sizeof buf);
    CHECK_STR(buf, "-92233720368547758.08");
    tf_decimal_format(1234, 0, buf, sizeof buf);
    CHECK_STR(buf, "1234");
    tf_decimal_format(1, 3, buf, sizeof buf);
    CHECK_STR(buf, "0.001");
    /* format then parse gives the value back */
    static const int64_t round[] = {0, 1, 99, 100, 12345678901234LL, INT64_MAX};
    for (size_t i = 0; i < sizeof round / sizeof round[0]; i++) {
        tf_decimal_format(round[i], 2, buf, sizeof buf);
        CHECK(tf_decimal_parse(buf, 2, &v, err, sizeof err) == 0 && v == round[i]);
    }
}

static void test_codes(void)
{
    CHECK(tf_code_valid("CHN"));
    CHECK(tf_code_valid("WLD"));
    CHECK(tf_code_valid("ASEAN"));
    CHECK(tf_code_valid("EU27"));
    CHECK(tf_code_valid("AB"));
    CHECK(tf_code_valid("ABCDEFGHIJKLMNOP")); /* 16 */
    CHECK(!tf_code_valid("ABCDEFGHIJKLMNOPQ"));
    CHECK(!tf_code_valid("A"));
    CHECK(!tf_code_valid(""));
    CHECK(!tf_code_valid("chn"));
    CHECK(!tf_code_valid("Chn"));
    CHECK(!tf_code_valid("1CH"));
    CHECK(!tf_code_valid("CH N"));
    CHECK(!tf_code_valid("CH-N"));
    CHECK(!tf_code_valid("CHN "));
    CHECK(!tf_code_valid("\xC3\x84U")); /* non-ASCII letter */
}

static void test_utf8(void)
{
#define U(s) tf_utf8_valid((s), sizeof(s) - 1)
    CHECK(U(""));
    CHECK(U("plain ASCII"));
    CHECK(U("\xC3\xA9"));                 /* é */
    CHECK(U("\xE4\xB8\xAD\xE5\x9B\xBD")); /* 中国 */
    CHECK(U("\xF0\x9F\x98\x80"));         /* U+1F600 */
    CHECK(U("\xEF\xBF\xBF"));             /* U+FFFF */
    CHECK(U("\xF4\x8F\xBF\xBF"));         /* U+10FFFF */
    CHECK(U("\xED\x9F\xBF"));             /* U+D7FF, just below the surrogates */
    CHECK(U("\xEE\x80\x80"));             /* U+E000, just above */
    CHECK(!U("\x80"));                    /* lone continuation */
    CHECK(!U("\xBF"));
    CHECK(!U("\xC3"));                    /* truncated */
    CHECK(!U("\xE4\xB8"));
    CHECK(!U("\xF0\x9F\x98"));
    CHECK(!U("a\xC3"));
    CHECK(!U("\xC0\xAF"));         /* overlong '/' */
    CHECK(!U("\xC1\xBF"));         /* overlong */
    CHECK(!U("\xE0\x80\xAF"));     /* overlong 3-byte */
    CHECK(!U("\xE0\x9F\xBF"));     /* overlong U+07FF */
    CHECK(!U("\xF0\x80\x80\xAF")); /* overlong 4-byte */
    CHECK(!U("\xF0\x8F\xBF\xBF")); /* overlong U+FFFF */
    CHECK(!U("\xED\xA0\x80"));     /* U+D800 surrogate */
    CHECK(!U("\xED\xBF\xBF"));     /* U+DFFF surrogate */
    CHECK(!U("\xF4\x90\x80\x80")); /* U+110000 */
    CHECK(!U("\xF5\x80\x80\x80"));
    CHECK(!U("\xFE"));
    CHECK(!U("\xFF"));
    CHECK(!U("\xC3\x28")); /* bad continuation */
    CHECK(!U("\xE4\x28\xAD"));
    CHECK(!U("a\0b")); /* NUL */
#undef U
    /* len bounds the check: a valid prefix of a longer buffer */
    CHECK(tf_utf8_valid("ab\xFF", 2));
    CHECK(!tf_utf8_valid("\xC3\xA9", 1));
}

static void test_flows(void)
{
    tf_flow_t f = TF_FLOW_UNKNOWN;
    CHECK(tf_flow_parse(TF_DATASET_CUSTOMS, "export", &f) == 0 && f == TF_FLOW_EXPORT);
    CHECK(tf_flow_parse(TF_DATASET_CUSTOMS, "import", &f) == 0 && f == TF_FLOW_IMPORT);
    CHECK(tf_flow_parse(TF_DATASET_INVESTMENT, "outward", &f) == 0 && f == TF_FLOW_OUTWARD);
    CHECK(tf_flow_parse(TF_DATASET_INVESTMENT, "inward", &f) == 0 && f == TF_FLOW_INWARD);
    CHECK(tf_flow_parse(TF_DATASET_CUSTOMS, "outward", &f) == -1);
    CHECK(tf_flow_parse(TF_DATASET_INVESTMENT, "export", &f) == -1);
    CHECK(tf_flow_parse(TF_DATASET_CUSTOMS, "total", &f) == -1);
    CHECK(tf_flow_parse(TF_DATASET_CUSTOMS, "unknown", &f) == -1);
    CHECK(tf_flow_parse(TF_DATASET_CUSTOMS, "Export", &f) == -1);
    CHECK(tf_flow_parse(TF_DATASET_CUSTOMS, "", &f) == -1);
    CHECK_STR(tf_flow_name(TF_FLOW_TOTAL), "total");
    CHECK_STR(tf_flow_name((tf_flow_t)99), "unknown");
    tf_dataset_t d;
    CHECK(tf_dataset_parse("investment", &d) == 0 && d == TF_DATASET_INVESTMENT);
    CHECK(tf_dataset_parse("Customs", &d) == -1);
    CHECK_STR(tf_dataset_name(TF_DATASET_CUSTOMS), "customs");
}

static tf_record_t good_customs(void)
{
    tf_record_t r;
    memset(&r, 0, sizeof r);
    r.dataset = TF_DATASET_CUSTOMS;
    strcpy(r.record_id, "R1");
    strcpy(r.reporter, "CHN");
    strcpy(r.partner, "VNM");
    r.flow = TF_FLOW_EXPORT;
    r.period = 2020 * 12;
    r.value_cents = 100;
    strcpy(r.hs_code, "8517");
    r.has_quantity = true;
    r.quantity_milli = 5;
    strcpy(r.unit, "kg");
    return r;
}

#define CHECK_INVALID(rec, col)                                                                    \
    do {                                                                                           \
        const char *c_ = NULL;                                                                     \
        char w_[128] = "";                                                                         \
        CHECK(tf_record_validate(&(rec), &c_, w_, sizeof w_) == -1);                               \
        CHECK_STR(c_ ? c_ : "(null)", col);                                                        \
        CHECK(w_[0] != '\0');                                                                      \
    } while (0)

static void test_validate(void)
{
    const char *col = NULL;
    char why[128];
    tf_record_t r = good_customs();
    CHECK(tf_record_validate(&r, &col, why, sizeof why) == 0);

    r = good_customs();
    r.record_id[0] = '\0';
    CHECK_INVALID(r, "record_id");
    r = good_customs();
    strcpy(r.record_id, "\xC3");
    CHECK_INVALID(r, "record_id");
    r = good_customs();
    r.revision = -1;
    CHECK_INVALID(r, "revision");
    /* The schemas' decimal(18,2) / (18,3), the same rule on both sides of
     * Kafka (issue 14): the largest is valid, one cent more is not. */
    r = good_customs();
    r.value_cents = TF_VALUE_CENTS_MAX;
    r.quantity_milli = TF_QUANTITY_MILLI_MAX;
    r.has_quantity = true;
    CHECK(tf_record_validate(&r, &col, why, sizeof why) == 0);
    r.value_cents = TF_VALUE_CENTS_MAX + 1;
    CHECK_INVALID(r, "value_usd");
    CHECK(tf_record_validate(&r, &col, why, sizeof why) == -1);
    CHECK_MSG(strcmp(why, "value 10000000000000000.00 exceeds the schema's decimal(18,2) (at "
                          "most 9999999999999999.99)") == 0,
              "%s", why);
    r.value_cents = INT64_MAX;
    CHECK_INVALID(r, "value_usd");
    r = good_customs();
    r.has_quantity = true;
    r.quantity_milli = TF_QUANTITY_MILLI_MAX + 1;
    CHECK_INVALID(r, "quantity");
    r = good_customs();
    strcpy(r.reporter, "cn");
    CHECK_INVALID(r, "reporter");
    r = good_customs();
    strcpy(r.partner, "CHN");
    CHECK_INVALID(r, "partner");
    r = good_customs();
    r.flow = TF_FLOW_INWARD;
    CHECK_INVALID(r, "flow");
    r = good_customs();
    r.flow = TF_FLOW_TOTAL;
    CHECK_INVALID(r, "flow");
    r = good_customs();
    r.period = TF_PERIOD_MAX + 1;
    CHECK_INVALID(r, "period");
    r = good_customs();
    r.value_cents = -1;
    CHECK_INVALID(r, "value_usd");
    r = good_customs();
    strcpy(r.hs_code, "8");
    CHECK_INVALID(r, "hs_code");
    r = good_customs();
    strcpy(r.hs_code, "85x7");
    CHECK_INVALID(r, "hs_code");
    r = good_customs();
    r.quantity_milli = -1;
    CHECK_INVALID(r, "quantity");
    r = good_customs();
    strcpy(r.sector, "Mining");
    CHECK_INVALID(r, "sector");

    tf_record_t i = good_customs();
    i.dataset = TF_DATASET_INVESTMENT;
    i.flow = TF_FLOW_OUTWARD;
    CHECK_INVALID(i, "hs_code");
    i.hs_code[0] = '\0';
    CHECK_INVALID(i, "quantity");
    i.has_quantity = false;
    CHECK_INVALID(i, "unit");
    i.unit[0] = '\0';
    strcpy(i.sector, "Mining");
    CHECK(tf_record_validate(&i, &col, why, sizeof why) == 0);
}

int main(void)
{
    TF_TEST_RUN(test_period);
    TF_TEST_RUN(test_decimal);
    TF_TEST_RUN(test_codes);
    TF_TEST_RUN(test_utf8);
    TF_TEST_RUN(test_flows);
    TF_TEST_RUN(test_validate);
    return TF_TEST_REPORT();
}
