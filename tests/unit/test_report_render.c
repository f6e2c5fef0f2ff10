/*
 * test_report_render.c - tradeflow-report's renderers on a hand-made report
 * (no database): HTML escaping of every text, the machine-readable series
 * attributes with gaps, number display, CSV quoting, the text table, period
 * labels, and an empty report.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_report_data.h"
#include "tf_report_render.h"
#include "tf_test.h"

static int32_t per(int y, int m)
{
    return y * 12 + (m - 1);
}

/* Renders into a malloc'd string; the caller frees it. */
static char *render(const tf_report_t *r, tf_report_format_t fmt, const char *note)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    tf_report_render_opts_t o = {.note = note, .generated_at = "2026-01-01 00:00 UTC",
                                 .version = "<v>"};
    int rc = tf_report_render(f, r, fmt, &o);
    fclose(f);
    if (rc != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void set_row(tf_report_row_t *row, int rank, const char *partner, const char *value,
                    const char *bn, const char *yoy1, const char *share, const char *share1,
                    const char *chg1)
{
    memset(row, 0, sizeof(*row));
    row->rank = rank;
    snprintf(row->partner, sizeof(row->partner), "%s", partner);
    snprintf(row->value_usd, sizeof(row->value_usd), "%s", value);
    snprintf(row->value_bn, sizeof(row->value_bn), "%s", bn);
    snprintf(row->yoy_1, sizeof(row->yoy_1), "%s", yoy1);
    snprintf(row->yoy_pct, sizeof(row->yoy_pct), "%s", *yoy1 ? yoy1 : "");
    snprintf(row->share_pct, sizeof(row->share_pct), "%s", share);
    snprintf(row->share_1, sizeof(row->share_1), "%s", share1);
    snprintf(row->share_change_1, sizeof(row->share_change_1), "%s", chg1);
    snprintf(row->share_change_pp, sizeof(row->share_change_pp), "%s", chg1);
    row->share = *share ? strtod(share, NULL) : NAN;
}

/* A report of three ranked partners (one with a hostile name, one with a
 * comma) and WLD, three history periods with gaps, and two alerts. */
typedef struct fixture {
    tf_report_t r;
    tf_report_row_t rows[4];
    tf_report_series_t series[3];
    int ranks[3][3];
    double shares[3][4];
    int32_t rank_periods[3], share_periods[4];
    tf_report_alert_t alerts[2];
} fixture_t;

static void fixture_init(fixture_t *fx)
{
    memset(fx, 0, sizeof(*fx));
    tf_report_t *r = &fx->r;
    snprintf(r->dataset, sizeof(r->dataset), "customs");
    snprintf(r->reporter, sizeof(r->reporter), "CHN");
    snprintf(r->flow, sizeof(r->flow), "total");
    snprintf(r->level, sizeof(r->level), "group");
    snprintf(r->basis, sizeof(r->basis), "ytd");
    snprintf(r->database, sizeof(r->database), "db<&>");
    r->period = per(2020, 11);
    r->top = 3;
    set_row(&fx->rows[0], 1, "ASEAN", "609580000000.00", "609.58", "5.6", "14.6000", "14.6", "0.6");
    set_row(&fx->rows[1], 2, "A<B>&\"'", "1234567890123.45", "1234.57", "-0.0", "3.5000", "3.5",
            "-1.2");
    set_row(&fx->rows[2], 3, "X,Y", "5.00", "0.00", "", "", "", "");
    set_row(&fx->rows[3], 0, "WLD", "4175210000000.00", "4175.21", "1.3", "100.0000", "100.0",
            "0.0");
    r->rows = fx->rows;
    r->nrows = 4;
    r->nranked_total = 17;
    fx->rank_periods[0] = per(2018, 12);
    fx->rank_periods[1] = per(2019, 12);
    fx->rank_periods[2] = per(2020, 11);
    r->rank_periods = fx->rank_periods;
    r->nrank_periods = 3;
    for (int i = 0; i < 4; i++)
        fx->share_periods[i] = per(2020, 8 + i);
    r->share_periods = fx->share_periods;
    r->nshare_periods = 4;
    static const int ranks[3][3] = {{3, 2, 1}, {1, 0, 2}, {0, 0, 3}};
    static const double shares[3][4] = {{14.0, 14.25, 14.5, 14.6},
                                        {3.0, NAN, 3.4, 3.5},
                                        {NAN, NAN, NAN, NAN}};
    const char *names[3] = {"ASEAN", "A<B>&\"'", "X,Y"};
    for (int k = 0; k < 3; k++) {
        memcpy(fx->ranks[k], ranks[k], sizeof(ranks[k]));
        memcpy(fx->shares[k], shares[k], sizeof(shares[k]));
        snprintf(fx->series[k].partner, sizeof(fx->series[k].partner), "%s", names[k]);
        fx->series[k].ranks = fx->ranks[k];
        fx->series[k].shares = fx->shares[k];
    }
    r->series = fx->series;
    r->nseries = 3;
    fx->alerts[0] = (tf_report_alert_t){.alert_id = 42, .period = per(2020, 2), .old_rank = 2,
                                        .new_rank = 1};
    snprintf(fx->alerts[0].partner, sizeof(fx->alerts[0].partner), "ASEAN");
    snprintf(fx->alerts[0].value_bn, sizeof(fx->alerts[0].value_bn), "85.32");
    snprintf(fx->alerts[0].detected_at, sizeof(fx->alerts[0].detected_at), "2026-01-01 00:00 UTC");
    fx->alerts[1] = (tf_report_alert_t){.alert_id = 7, .period = per(2019, 6), .old_rank = 0,
                                        .new_rank = 3};
    snprintf(fx->alerts[1].partner, sizeof(fx->alerts[1].partner), "A<B>&\"'");
    r->alerts = fx->alerts;
    r->nalerts = 2;
}

static void test_period_labels(void)
{
    char b[48];
    tf_report_period_label("ytd", per(2020, 11), 0, b, sizeof(b));
    CHECK_STR(b, "Jan\u2013Nov 2020");
    tf_report_period_label("ytd", per(2020, 11), 1, b, sizeof(b));
    CHECK_STR(b, "Jan-Nov 2020");
    tf_report_period_label("ytd", per(2021, 1), 1, b, sizeof(b));
    CHECK_STR(b, "Jan 2021");
    tf_report_period_label("month", per(2019, 6), 1, b, sizeof(b));
    CHECK_STR(b, "Jun 2019");
    tf_report_format_t f;
    CHECK(tf_report_format_parse("html", &f) == 0 && f == TF_REPORT_HTML);
    CHECK(tf_report_format_parse("csv", &f) == 0 && f == TF_REPORT_CSV);
    CHECK(tf_report_format_parse("text", &f) == 0 && f == TF_REPORT_TEXT);
    CHECK(tf_report_format_parse("pdf", &f) == -1);
}

static void test_html(void)
{
    fixture_t fx;
    fixture_init(&fx);
    char *h = render(&fx.r, TF_REPORT_HTML, "SYNTHETIC <i>data</i> & \"more\"");
    CHECK(h != NULL);
    if (!h)
        return;
    /* Escaped everywhere, never raw. */
    CHECK(strstr(h, "A<B") == NULL);
    CHECK(strstr(h, "<i>") == NULL);
    CHECK(strstr(h, "db<&>") == NULL);
    CHECK(strstr(h, "<v>") == NULL);
    CHECK(strstr(h, "data-partner=\"A&lt;B&gt;&amp;&quot;&#39;\"") != NULL);
    CHECK(strstr(h, "SYNTHETIC &lt;i&gt;data&lt;/i&gt; &amp; &quot;more&quot;") != NULL);
    CHECK(strstr(h, "<code>db&lt;&amp;&gt;</code>") != NULL);
    /* No script, no external references. */
    CHECK(strstr(h, "<script") == NULL);
    CHECK(strstr(h, "src=") == NULL && strstr(h, "href=") == NULL && strstr(h, "url(") == NULL);
    /* Series attributes, with gaps as empty values. */
    CHECK(strstr(h, "id=\"bump-chart\"") != NULL);
    CHECK(strstr(h, "data-periods=\"2018-12,2019-12,2020-11\"") != NULL);
    CHECK(strstr(h, "data-partner=\"ASEAN\" data-ranks=\"3,2,1\"") != NULL);
    CHECK(strstr(h, "data-ranks=\"1,,2\"") != NULL);
    CHECK(strstr(h, "data-partner=\"X,Y\" data-ranks=\",,3\"") != NULL);
    CHECK(strstr(h, "data-periods=\"2020-08,2020-09,2020-10,2020-11\"") != NULL);
    CHECK(strstr(h, "data-partner=\"ASEAN\" data-shares=\"14.00,14.25,14.50,14.60\"") != NULL);
    CHECK(strstr(h, "data-shares=\"3.00,,3.40,3.50\"") != NULL);
    CHECK(strstr(h, "data-shares=\",,,\"") != NULL);
    /* A series with a gap is drawn as two sub-paths (a move after the gap). */
    CHECK(strstr(h, "d=\"M") != NULL);
    /* Table: thousands, signs, n/a, WLD in the footer. */
    CHECK(strstr(h, ">1,234.57<") != NULL);
    CHECK(strstr(h, ">4,175.21<") != NULL);
    CHECK(strstr(h, "<td class=\"yoy up\">+5.6</td>") != NULL);
    CHECK(strstr(h, "<td class=\"yoy \">0.0</td>") != NULL); /* "-0.0" shows as 0.0 */
    CHECK(strstr(h, "<td class=\"yoy none\">n/a</td>") != NULL);
    CHECK(strstr(h, "<tfoot>\n<tr class=\"total\" data-partner=\"WLD\" data-rank=\"0\"") != NULL);
    CHECK(strstr(h, "data-value-usd=\"609580000000.00\"") != NULL);
    CHECK(strstr(h, "17 partners ranked in Jan\u2013Nov 2020") != NULL);
    CHECK(strstr(h, "against Jan\u2013Nov 2019") != NULL);
    /* Alerts: both, with the "outside" rank. */
    CHECK(strstr(h, "data-alert-id=\"42\" data-period=\"2020-02\" data-partner=\"ASEAN\" "
                    "data-old-rank=\"2\" data-new-rank=\"1\"") != NULL);
    CHECK(strstr(h, "\u25b2 outside \u2192 #3") != NULL);
    CHECK(strstr(h, "</html>\n") != NULL);
    free(h);
}

static void test_text_csv(void)
{
    fixture_t fx;
    fixture_init(&fx);
    char *t = render(&fx.r, TF_REPORT_TEXT, "SYNTHETIC");
    CHECK(t != NULL);
    if (t) {
        CHECK(strstr(t, "CHN: top trading partners, Jan-Nov 2020\n") != NULL);
        CHECK(strstr(t, "\nSYNTHETIC\n") != NULL);
        CHECK(strstr(t, "ASEAN             609.58     +5.6     14.6          +0.6\n") != NULL);
        CHECK(strstr(t, "WLD (total)     4,175.21") != NULL);
        CHECK(strstr(t, "(17 partners ranked)\n") != NULL);
        CHECK(strstr(t, "2018  2019  Jan-Nov 2020\n") != NULL);
        CHECK(strstr(t, "  ASEAN          #3    #2            #1\n") != NULL);
        CHECK(strstr(t, "  X,Y" "             -     -" "            #3\n") != NULL);
        CHECK(strstr(t, "#2 -> #1") != NULL);
        CHECK(strstr(t, "outside -> #3") != NULL);
        free(t);
    }
    char *c = render(&fx.r, TF_REPORT_CSV, NULL);
    CHECK(c != NULL);
    if (c) {
        static const char header[] =
            "dataset,reporter,flow,basis,level,period,rank,partner,value_usd,"
            "prev_year_value_usd,yoy_pct,share_pct,share_change_pp\n";
        CHECK(strncmp(c, header, strlen(header)) == 0);
        CHECK(strstr(c, "\ncustoms,CHN,total,ytd,group,2020-11,1,ASEAN,609580000000.00,,5.6,"
                        "14.6000,0.6\n") != NULL);
        /* Quotes doubled, fields with a comma or a quote quoted. */
        CHECK(strstr(c, ",2,\"A<B>&\"\"'\",1234567890123.45,") != NULL);
        CHECK(strstr(c, ",3,\"X,Y\",5.00,,,,\n") != NULL);
        CHECK(strstr(c, ",2020-11,,WLD,4175210000000.00,") != NULL);
        CHECK(strchr(c, '\r') == NULL);
        free(c);
    }
}

static void test_empty(void)
{
    /* A report with neither rows nor history renders (no division by zero,
     * no series). */
    tf_report_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.dataset, sizeof(r.dataset), "investment");
    snprintf(r.reporter, sizeof(r.reporter), "CHN");
    snprintf(r.flow, sizeof(r.flow), "outward");
    snprintf(r.level, sizeof(r.level), "partner");
    snprintf(r.basis, sizeof(r.basis), "month");
    r.period = per(2020, 1);
    r.top = 10;
    for (int fmt = TF_REPORT_HTML; fmt <= TF_REPORT_CSV; fmt++) {
        char *s = render(&r, (tf_report_format_t)fmt, NULL);
        CHECK(s != NULL);
        if (s && fmt == TF_REPORT_HTML) {
            CHECK(strstr(s, "top direct-investment partners, Jan 2020") != NULL);
            CHECK(strstr(s, "id=\"no-alerts\"") != NULL);
            CHECK(strstr(s, "class=\"series\"") == NULL);
        }
        free(s);
    }
}

int main(void)
{
    TF_TEST_RUN(test_period_labels);
    TF_TEST_RUN(test_html);
    TF_TEST_RUN(test_text_csv);
    TF_TEST_RUN(test_empty);
    return TF_TEST_REPORT();
}
