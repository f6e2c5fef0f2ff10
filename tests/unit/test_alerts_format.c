/*
 * test_alerts_format.c - tradeflow-alerts' filters and output forms
 * (consumers/tf_alerts_format.c), without servers.
 */
#include <stdlib.h>

#include <jansson.h>

#include "tf_alerts_format.h"
#include "tf_test.h"
#include "unit/alerts_fixture.h"

static void test_line(void)
{
    char buf[512];
    tf_alert_row_t r = asean();
    tf_alerts_format_line(&r, buf, sizeof(buf));
    CHECK_STR(buf, "2020-11 customs CHN total ytd group: ASEAN 2 -> 1 (US$609.58 bn)");

    r.a.kind = TF_ALERT_RETRACTION;
    r.a.alert_id = 30;
    r.retracts = 21;
    r.a.value_cents = 57658000000000LL;
    tf_alerts_format_line(&r, buf, sizeof(buf));
    CHECK_STR(buf, "RETRACTED 2020-11 customs CHN total ytd group: ASEAN 2 -> 1 no longer holds "
                   "(US$576.58 bn; alert 21 withdrawn)");

    r = asean();
    r.a.old_rank = 0; /* entered the top N */
    r.a.new_rank = 10;
    r.suppressed = true;
    tf_alerts_format_line(&r, buf, sizeof(buf));
    CHECK_STR(buf, "2020-11 customs CHN total ytd group: ASEAN out -> 10 (US$609.58 bn) [suppressed]");
    r.a.old_rank = 10;
    r.a.new_rank = 0;
    r.has_value = false;
    r.suppressed = false;
    tf_alerts_format_line(&r, buf, sizeof(buf));
    CHECK_STR(buf, "2020-11 customs CHN total ytd group: ASEAN 10 -> out (value n/a)");
}

static void money(int64_t cents, const char *want)
{
    char buf[64];
    tf_alert_row_t r = asean();
    r.a.value_cents = cents;
    tf_alerts_format_money(&r, buf, sizeof(buf));
    CHECK_STR(buf, want);
}

static void test_money(void)
{
    money(0, "US$0.00");
    money(123456, "US$1234.56");
    money(99999999, "US$999999.99");             /* just under 1 mn: exact */
    money(100000000, "US$1.00 mn");
    money(123499999, "US$1.23 mn");              /* rounds down below half */
    money(123500000, "US$1.24 mn");              /* half up */
    money(99999500000LL, "US$1000.00 mn");       /* carries into the units, still mn */
    money(100000000000LL, "US$1.00 bn");
    money(99999999500000LL, "US$1000.00 bn");    /* 999.999995 bn rounds up */
    money(99999999000000000LL, "US$999999.99 bn");
    money(60958499999999LL, "US$609.58 bn");
    money(60958500000000LL, "US$609.59 bn");
    money(9223372036854775807LL, "US$92233720.37 bn"); /* INT64_MAX cents: no overflow */
}

static void test_json(void)
{
    tf_alert_row_t r = asean();
    char *s = tf_alerts_format_json(&r);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_STR(s, "{\"alert_id\":21,\"dataset\":\"customs\",\"reporter\":\"CHN\",\"flow\":\"total\","
                 "\"basis\":\"ytd\",\"level\":\"group\",\"period\":\"2020-11\",\"partner\":\"ASEAN\","
                 "\"old_rank\":2,\"new_rank\":1,\"value_usd\":\"609580000000.00\",\"kind\":\"shift\","
                 "\"detected_at\":\"2020-12-01T00:00:00.123456Z\",\"retracts\":null,"
                 "\"suppressed\":false}");
    free(s);

    /* Nulls, a retraction, an instant before 1970 (floor division). */
    r.a.old_rank = 0;
    r.has_value = false;
    r.a.kind = TF_ALERT_RETRACTION;
    r.retracts = 7;
    r.a.detected_at_us = -1; /* 1969-12-31T23:59:59.999999Z */
    s = tf_alerts_format_json(&r);
    CHECK(s != NULL);
    if (!s)
        return;
    json_error_t err;
    json_t *o = json_loads(s, 0, &err);
    CHECK(o != NULL);
    if (o) {
        CHECK(json_is_null(json_object_get(o, "old_rank")));
        CHECK(json_is_null(json_object_get(o, "value_usd")));
        CHECK_INT(json_integer_value(json_object_get(o, "retracts")), 7);
        CHECK_STR(json_string_value(json_object_get(o, "kind")), "retraction");
        CHECK_STR(json_string_value(json_object_get(o, "detected_at")),
                  "1969-12-31T23:59:59.999999Z");
        json_decref(o);
    }
    free(s);
}

static void test_filter(void)
{
    tf_alert_row_t r = asean();
    tf_alerts_filter_t f = {.since = -1};
    CHECK(tf_alerts_filter_match(&f, &r));

    f.reporter = "CHN";
    f.partner = "ASEAN";
    f.has_dataset = f.has_flow = f.has_basis = f.has_level = true;
    f.dataset = TF_DATASET_CUSTOMS;
    f.flow = TF_FLOW_TOTAL;
    f.basis = TF_BASIS_YTD;
    f.level = TF_LEVEL_GROUP;
    f.since = 2020 * 12 + 10;
    f.max_rank = 1;
    CHECK(tf_alerts_filter_match(&f, &r));

    tf_alerts_filter_t g = f;
    g.reporter = "USA";
    CHECK(!tf_alerts_filter_match(&g, &r));
    g = f;
    g.partner = "EU";
    CHECK(!tf_alerts_filter_match(&g, &r));
    g = f;
    g.dataset = TF_DATASET_INVESTMENT;
    CHECK(!tf_alerts_filter_match(&g, &r));
    g = f;
    g.flow = TF_FLOW_EXPORT;
    CHECK(!tf_alerts_filter_match(&g, &r));
    g = f;
    g.basis = TF_BASIS_MONTH;
    CHECK(!tf_alerts_filter_match(&g, &r));
    g = f;
    g.level = TF_LEVEL_PARTNER;
    CHECK(!tf_alerts_filter_match(&g, &r));
    g = f;
    g.since = 2020 * 12 + 11; /* 2020-12: later than the alert */
    CHECK(!tf_alerts_filter_match(&g, &r));

    /* --max-rank: old OR new rank within; "out" (0) never counts. */
    tf_alerts_filter_t m = {.since = -1, .max_rank = 3};
    r.a.old_rank = 4;
    r.a.new_rank = 3;
    CHECK(tf_alerts_filter_match(&m, &r));
    r.a.old_rank = 3;
    r.a.new_rank = 0;
    CHECK(tf_alerts_filter_match(&m, &r));
    r.a.old_rank = 0;
    r.a.new_rank = 4;
    CHECK(!tf_alerts_filter_match(&m, &r));

    /* Suppressed alerts only on request. */
    r = asean();
    r.suppressed = true;
    tf_alerts_filter_t s = {.since = -1};
    CHECK(!tf_alerts_filter_match(&s, &r));
    s.include_suppressed = true;
    CHECK(tf_alerts_filter_match(&s, &r));
}

static void test_names(void)
{
    tf_flow_t fl;
    tf_basis_t b;
    tf_level_t l;
    CHECK(tf_alerts_flow_parse("total", &fl) == 0 && fl == TF_FLOW_TOTAL);
    CHECK(tf_alerts_flow_parse("inward", &fl) == 0 && fl == TF_FLOW_INWARD);
    CHECK(tf_alerts_flow_parse("unknown", &fl) != 0);
    CHECK(tf_alerts_flow_parse("Total", &fl) != 0);
    CHECK(tf_alerts_basis_parse("ytd", &b) == 0 && b == TF_BASIS_YTD);
    CHECK(tf_alerts_basis_parse("year", &b) != 0);
    CHECK(tf_alerts_level_parse("group", &l) == 0 && l == TF_LEVEL_GROUP);
    CHECK(tf_alerts_level_parse("", &l) != 0);
    CHECK_STR(tf_alerts_kind_name(TF_ALERT_RETRACTION), "retraction");
}

int main(void)
{
    TF_TEST_RUN(test_line);
    TF_TEST_RUN(test_money);
    TF_TEST_RUN(test_json);
    TF_TEST_RUN(test_filter);
    TF_TEST_RUN(test_names);
    return TF_TEST_REPORT();
}
