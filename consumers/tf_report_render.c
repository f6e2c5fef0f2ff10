/*
 * tf_report_render.c - HTML (inline CSS + SVG), text and CSV output of a
 * partner report.
 */
#include "tf_report_render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const MONTHS[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Tableau 10: distinct on screen and in print; series beyond 10 reuse a
 * colour with a dashed line. */
static const char *const PALETTE[10] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                        "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

int tf_report_format_parse(const char *s, tf_report_format_t *out)
{
    if (strcmp(s, "html") == 0)
        *out = TF_REPORT_HTML;
    else if (strcmp(s, "text") == 0)
        *out = TF_REPORT_TEXT;
    else if (strcmp(s, "csv") == 0)
        *out = TF_REPORT_CSV;
    else
        return -1;
    return 0;
}

void tf_report_period_label(const char *basis, int32_t period, int ascii, char *buf, size_t len)
{
    int m = tf_period_month(period), y = tf_period_year(period);
    if (strcmp(basis, "ytd") == 0 && m > 1)
        snprintf(buf, len, "Jan%s%s %d", ascii ? "-" : "\u2013", MONTHS[m - 1], y);
    else
        snprintf(buf, len, "%s %d", MONTHS[m - 1], y);
}

/* A rank-history x label: a whole year on the YTD basis is just the year. */
static void history_label(const char *basis, int32_t p, int ascii, char *buf, size_t len)
{
    if (strcmp(basis, "ytd") == 0 && tf_period_month(p) == 12)
        snprintf(buf, len, "%d", tf_period_year(p));
    else
        tf_report_period_label(basis, p, ascii, buf, len);
}

static const char *flow_words(const char *flow)
{
    if (strcmp(flow, "total") == 0)
        return "total trade (export + import)";
    if (strcmp(flow, "export") == 0)
        return "exports";
    if (strcmp(flow, "import") == 0)
        return "imports";
    if (strcmp(flow, "outward") == 0)
        return "outward direct investment";
    if (strcmp(flow, "inward") == 0)
        return "inward direct investment";
    return flow;
}

static const char *level_words(const char *level)
{
    return strcmp(level, "group") == 0 ? "groups (ASEAN, EU) as one partner"
                                       : "partners as reported";
}

static const char *basis_words(const char *basis)
{
    return strcmp(basis, "ytd") == 0 ? "year to date" : "single month";
}

/* "4175.21" -> "4,175.21"; "-1234" -> "-1,234". */
static void thousands(const char *num, char *out, size_t len)
{
    const char *s = num;
    size_t o = 0;
    if (*s == '-' && o + 1 < len)
        out[o++] = *s++;
    size_t intlen = strcspn(s, ".");
    for (size_t i = 0; i < intlen && o + 2 < len; i++) {
        out[o++] = s[i];
        size_t left = intlen - i - 1;
        if (left > 0 && left % 3 == 0)
            out[o++] = ',';
    }
    for (const char *p = s + intlen; *p && o + 1 < len; p++)
        out[o++] = *p;
    out[o] = '\0';
}

static int is_zero(const char *s)
{
    for (; *s; s++)
        if (*s >= '1' && *s <= '9')
            return 0;
    return 1;
}

/* A signed display value: "+5.6", "-9.1", "0.0"; "" stays "" (no value). */
static void signed_num(const char *s, char *out, size_t len)
{
    if (!*s)
        snprintf(out, len, "%s", "");
    else if (s[0] == '-' && is_zero(s))
        snprintf(out, len, "%s", s + 1);
    else if (s[0] != '-' && !is_zero(s))
        snprintf(out, len, "+%s", s);
    else
        snprintf(out, len, "%s", s);
}

/* ------------------------------------------------------------------ HTML */

static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char CSS[] =
    "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "color:#1d2733;background:#f4f6f8;margin:0}\n"
    "main{max-width:1000px;margin:0 auto;padding:24px 28px 40px;background:#fff}\n"
    "h1{font-size:26px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;"
    "border-bottom:2px solid #e3e8ee;padding-bottom:4px}\n"
    ".scope{color:#5a6675;margin:0}.caption{color:#5a6675;font-size:13px;margin:6px 0 0}\n"
    "table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}\n"
    "th,td{padding:5px 10px;border-bottom:1px solid #e3e8ee;text-align:right;white-space:nowrap}\n"
    "th{background:#f0f3f6;font-weight:600;font-size:13px}\n"
    "td.name,th.name{text-align:left}td.rank{font-weight:700;width:2.5em}\n"
    "tr.total td{border-top:2px solid #9aa5b1;font-weight:600;color:#3b4654}\n"
    ".up{color:#1a7f37}.down{color:#c62828}.none{color:#9aa5b1}\n"
    "td.share{width:170px}.bar{display:inline-block;height:10px;background:#4e79a7;"
    "vertical-align:middle;margin-right:6px;border-radius:2px}\n"
    ".swatch{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:7px}\n"
    "svg{display:block;margin:4px 0;font-family:system-ui,'DejaVu Sans',sans-serif}\n"
    "svg .grid{stroke:#e3e8ee;stroke-width:1}svg .axis{fill:#5a6675;font-size:12px}\n"
    "svg .rk{fill:#fff;font-size:11px;font-weight:700}\n"
    "svg .lbl{font-size:12.5px;font-weight:600}\n"
    "footer{margin-top:30px;color:#5a6675;font-size:12.5px;border-top:1px solid #e3e8ee;"
    "padding-top:8px}\n"
    ".note{color:#8a4b00;font-weight:600}\n";

static void html_row(FILE *f, const tf_report_row_t *row, double max_share, int color)
{
    char v[64], yoy[64], chg[64];
    thousands(row->value_bn, v, sizeof(v));
    signed_num(row->yoy_1, yoy, sizeof(yoy));
    signed_num(row->share_change_1, chg, sizeof(chg));
    int total = row->rank == 0;
    fputs(total ? "<tr class=\"total\" data-partner=\"" : "<tr data-partner=\"", f);
    esc(f, row->partner);
    fprintf(f, "\" data-rank=\"%d\" data-value-usd=\"", row->rank);
    esc(f, row->value_usd);
    fputs("\">", f);
    if (total)
        fputs("<td class=\"rank\"></td>", f);
    else
        fprintf(f, "<td class=\"rank\">%d</td>", row->rank);
    fputs("<td class=\"name\">", f);
    if (color >= 0)
        fprintf(f, "<span class=\"swatch\" style=\"background:%s\"></span>", PALETTE[color % 10]);
    esc(f, row->partner);
    if (total)
        fputs(" (world total)", f);
    fputs("</td><td class=\"value\">", f);
    esc(f, v);
    fprintf(f, "</td><td class=\"yoy %s\">", !*yoy ? "none" : yoy[0] == '+' ? "up" : yoy[0] == '-' ? "down" : "");
    esc(f, *yoy ? yoy : "n/a");
    fputs("</td><td class=\"share\">", f);
    if (!total && !isnan(row->share) && max_share > 0)
        fprintf(f, "<span class=\"bar\" style=\"width:%.0fpx\"></span>",
                row->share / max_share * 100.0 < 1 ? 1.0 : row->share / max_share * 100.0);
    esc(f, *row->share_1 ? row->share_1 : "n/a");
    fprintf(f, "</td><td class=\"chg %s\">", !*chg ? "none" : chg[0] == '+' ? "up" : chg[0] == '-' ? "down" : "");
    esc(f, *chg ? chg : "n/a");
    fputs("</td></tr>\n", f);
}

/* Places end-of-line labels at ys[] (sorted by the caller's order in idx)
 * at least gap apart and within [lo, hi]. */
static void spread_labels(double *ys, size_t n, double gap, double lo, double hi)
{
    /* Simple insertion sort of indices by y. */
    size_t *idx = malloc((n ? n : 1) * sizeof(size_t));
    double *out = malloc((n ? n : 1) * sizeof(double));
    if (!idx || !out) {
        free(idx);
        free(out);
        return; /* labels may overlap: cosmetic only */
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && ys[idx[j - 1]] > ys[i]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    for (size_t k = 0; k < n; k++) {
        double y = ys[idx[k]];
        if (k > 0 && y < out[k - 1] + gap)
            y = out[k - 1] + gap;
        out[k] = y;
    }
    if (n > 0 && out[n - 1] > hi) {
        out[n - 1] = hi;
        for (size_t k = n - 1; k > 0; k--)
            if (out[k - 1] > out[k] - gap)
                out[k - 1] = out[k] - gap;
    }
    for (size_t k = 0; k < n; k++)
        ys[idx[k]] = out[k] < lo ? lo : out[k];
    free(idx);
    free(out);
}

static void svg_periods_attr(FILE *f, const int32_t *p, size_t n)
{
    fputs(" data-periods=\"", f);
    for (size_t i = 0; i < n; i++) {
        char b[8];
        tf_period_format(p[i], b, sizeof(b));
        fprintf(f, "%s%s", i ? "," : "", b);
    }
    fputs("\"", f);
}

static void bump_chart(FILE *f, const tf_report_t *r)
{
    const size_t n = r->nrank_periods;
    /* Rows 1..cap are drawn to scale; a partner that was ranked lower than
     * cap in some period is drawn on one "lower" row below them, its true
     * rank written in its dot, so that one distant past rank cannot stretch
     * the chart. */
    const int cap = (int)r->nseries > r->top + 5 ? (int)r->nseries : r->top + 5;
    int maxrank = (int)r->nseries, lower = 0;
    for (size_t k = 0; k < r->nseries; k++)
        for (size_t i = 0; i < n; i++)
            if (r->series[k].ranks[i] > maxrank)
                maxrank = r->series[k].ranks[i];
    if (maxrank > cap) {
        maxrank = cap;
        lower = 1;
    }
    if (maxrank < 1)
        maxrank = 1;
    const double last_row = lower ? maxrank + 1.6 : maxrank;
    const double W = 944, left = 56, right = 150, top = 26, bottom = 46;
    const double row_h = last_row <= 12 ? 34.0 : fmax(16.0, 408.0 / last_row);
    const double H = top + (last_row - 1) * row_h + bottom + 10;
    const double plot_w = W - left - right;
#define BX(i) (n <= 1 ? left + plot_w / 2 : left + (double)(i) * plot_w / (double)(n - 1))
#define BY(rank) (top + (((rank) > cap ? cap + 1.6 : (double)(rank)) - 1) * row_h)

    fprintf(f, "<svg id=\"bump-chart\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
               "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\"",
            W, H, W, H);
    svg_periods_attr(f, r->rank_periods, n);
    fputs(" aria-label=\"Rank history of the top partners\">\n", f);
    /* Rank grid, labelled every row up to 15 rows, else every 5th. */
    for (int k = 1; k <= maxrank; k++) {
        if (maxrank > 15 && k != 1 && k % 5 != 0)
            continue;
        fprintf(f, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
                   "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">#%d</text>\n",
                left - 18, W - right + 10, BY(k), BY(k), left - 24, BY(k) + 4, k);
    }
    if (lower)
        fprintf(f, "<line class=\"grid\" stroke-dasharray=\"3 3\" x1=\"%.1f\" x2=\"%.1f\" "
                   "y1=\"%.1f\" y2=\"%.1f\"/><text class=\"axis\" x=\"%.1f\" y=\"%.1f\" "
                   "text-anchor=\"end\">lower</text>\n",
                left - 18, W - right + 10, BY(cap + 1), BY(cap + 1), left - 20, BY(cap + 1) + 4);
    /* Period labels, thinned to keep them apart. */
    size_t every = 1;
    while (n > 1 && plot_w / (double)(n - 1) * (double)every < 70)
        every++;
    for (size_t i = 0; i < n; i++) {
        if (i % every != 0 && i != n - 1)
            continue;
        char lb[48];
        history_label(r->basis, r->rank_periods[i], 0, lb, sizeof(lb));
        fprintf(f, "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", BX(i),
                H - 16);
        esc(f, lb);
        fputs("</text>\n", f);
    }
    /* End labels at each series' last point, pushed apart where ranks tie. */
    double *ly = calloc(r->nseries ? r->nseries : 1, sizeof(double));
    if (ly) {
        for (size_t k = 0; k < r->nseries; k++) {
            ly[k] = top;
            for (size_t i = 0; i < n; i++)
                if (r->series[k].ranks[i] > 0)
                    ly[k] = BY(r->series[k].ranks[i]) + 4.5;
        }
        spread_labels(ly, r->nseries, 14, top - 6, H - bottom);
    }
    for (size_t k = 0; k < r->nseries; k++) {
        const tf_report_series_t *s = &r->series[k];
        const char *col = PALETTE[k % 10];
        fputs("<g class=\"series\" data-partner=\"", f);
        esc(f, s->partner);
        fputs("\" data-ranks=\"", f);
        for (size_t i = 0; i < n; i++) {
            if (i)
                fputc(',', f);
            if (s->ranks[i] > 0)
                fprintf(f, "%d", s->ranks[i]);
        }
        fputs("\"><title>", f);
        esc(f, s->partner);
        for (size_t i = 0; i < n; i++) {
            char lb[48];
            history_label(r->basis, r->rank_periods[i], 0, lb, sizeof(lb));
            fputs(i ? ", " : ": ", f);
            esc(f, lb);
            if (s->ranks[i] > 0)
                fprintf(f, " #%d", s->ranks[i]);
            else
                fputs(" n/a", f);
        }
        fputs("</title>\n<path fill=\"none\" stroke-width=\"3.5\" stroke-linejoin=\"round\" ", f);
        fprintf(f, "stroke=\"%s\"%s d=\"", col, k >= 10 ? " stroke-dasharray=\"6 4\"" : "");
        int pen = 0;
        for (size_t i = 0; i < n; i++) {
            if (s->ranks[i] <= 0) {
                pen = 0;
                continue;
            }
            fprintf(f, "%s%.1f %.1f ", pen ? "L" : "M", BX(i), BY(s->ranks[i]));
            pen = 1;
        }
        fputs("\"/>\n", f);
        long last = -1;
        for (size_t i = 0; i < n; i++) {
            if (s->ranks[i] <= 0)
                continue;
            last = (long)i;
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"11\" fill=\"%s\"/>"
                       "<text class=\"rk\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n",
                    BX(i), BY(s->ranks[i]), col, BX(i), BY(s->ranks[i]) + 4, s->ranks[i]);
        }
        if (last >= 0) {
            fprintf(f, "<text class=\"lbl\" x=\"%.1f\" y=\"%.1f\" fill=\"%s\">", BX(last) + 18,
                    ly ? ly[k] : BY(s->ranks[last]) + 4.5, col);
            esc(f, s->partner);
            fputs("</text>\n", f);
        }
        fputs("</g>\n", f);
    }
    free(ly);
    fputs("</svg>\n", f);
#undef BX
#undef BY
}

static void share_chart(FILE *f, const tf_report_t *r)
{
    const size_t n = r->nshare_periods;
    double maxv = 0;
    for (size_t k = 0; k < r->nseries; k++)
        for (size_t i = 0; i < n; i++)
            if (!isnan(r->series[k].shares[i]) && r->series[k].shares[i] > maxv)
                maxv = r->series[k].shares[i];
    static const double steps[] = {0.5, 1, 2, 5, 10, 20, 25, 50};
    double step = 50;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (maxv / steps[i] <= 8) {
            step = steps[i];
            break;
        }
    }
    double ymax = ceil(maxv / step) * step;
    if (ymax <= 0)
        ymax = step;
    const double W = 944, H = 400, left = 52, right = 150, top = 16, bottom = 46;
    const double plot_w = W - left - right, plot_h = H - top - bottom;
#define SX(i) (n <= 1 ? left + plot_w / 2 : left + (double)(i) * plot_w / (double)(n - 1))
#define SY(v) (top + plot_h - (v) / ymax * plot_h)

    fprintf(f, "<svg id=\"share-chart\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
               "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\"",
            W, H, W, H);
    svg_periods_attr(f, r->share_periods, n);
    fputs(" aria-label=\"Shares over time of the top partners\">\n", f);
    for (double v = 0; v <= ymax + step / 2; v += step) {
        fprintf(f, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
                   "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g%%</text>\n",
                left, W - right + 6, SY(v), SY(v), left - 8, SY(v) + 4, v);
    }
    /* X labels: every period when few, else the first period of each year
     * with a year line. */
    for (size_t i = 0; i < n; i++) {
        int32_t p = r->share_periods[i];
        char lb[32];
        if (n <= 13) {
            snprintf(lb, sizeof(lb), "%s %02d", MONTHS[tf_period_month(p) - 1],
                     tf_period_year(p) % 100);
        } else {
            if (i > 0 && tf_period_year(r->share_periods[i - 1]) == tf_period_year(p))
                continue;
            snprintf(lb, sizeof(lb), "%d", tf_period_year(p));
            fprintf(f, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>\n",
                    SX(i), SX(i), top, top + plot_h);
        }
        fprintf(f, "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%s</text>\n",
                SX(i), H - 18, n <= 13 ? "middle" : "start", lb);
    }
    double *ly = calloc(r->nseries ? r->nseries : 1, sizeof(double));
    long *lastp = calloc(r->nseries ? r->nseries : 1, sizeof(long));
    for (size_t k = 0; k < r->nseries; k++) {
        long last = -1;
        for (size_t i = 0; i < n; i++)
            if (!isnan(r->series[k].shares[i]))
                last = (long)i;
        if (lastp)
            lastp[k] = last;
        if (ly)
            ly[k] = last >= 0 ? SY(r->series[k].shares[last]) + 4 : top;
    }
    if (ly)
        spread_labels(ly, r->nseries, 14, top + 4, top + plot_h + 4);
    for (size_t k = 0; k < r->nseries; k++) {
        const tf_report_series_t *s = &r->series[k];
        const char *col = PALETTE[k % 10];
        fputs("<g class=\"series\" data-partner=\"", f);
        esc(f, s->partner);
        fputs("\" data-shares=\"", f);
        for (size_t i = 0; i < n; i++) {
            if (i)
                fputc(',', f);
            if (!isnan(s->shares[i]))
                fprintf(f, "%.2f", s->shares[i]);
        }
        fputs("\"><title>", f);
        esc(f, s->partner);
        fputs(" share %</title>\n<path fill=\"none\" stroke-width=\"2.4\" stroke-linejoin=\"round\" ", f);
        fprintf(f, "stroke=\"%s\"%s d=\"", col, k >= 10 ? " stroke-dasharray=\"6 4\"" : "");
        int pen = 0;
        for (size_t i = 0; i < n; i++) {
            if (isnan(s->shares[i])) {
                pen = 0;
                continue;
            }
            fprintf(f, "%s%.1f %.1f ", pen ? "L" : "M", SX(i), SY(s->shares[i]));
            pen = 1;
        }
        fputs("\"/>\n", f);
        long last = lastp ? lastp[k] : -1;
        if (last >= 0) {
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>"
                       "<text class=\"lbl\" x=\"%.1f\" y=\"%.1f\" fill=\"%s\">",
                    SX(last), SY(s->shares[last]), col, SX(n - 1) + 12,
                    ly ? ly[k] : SY(s->shares[last]) + 4, col);
            esc(f, s->partner);
            fprintf(f, " %.1f%%</text>\n", s->shares[last]);
        }
        fputs("</g>\n", f);
    }
    free(ly);
    free(lastp);
    fputs("</svg>\n", f);
#undef SX
#undef SY
}

static void shift_cell(FILE *f, const tf_report_alert_t *a)
{
    const char *cls = "";
    const char *arrow = "";
    if (a->new_rank > 0 && (a->old_rank == 0 || a->new_rank < a->old_rank)) {
        cls = "up";
        arrow = "\u25b2 ";
    } else if (a->old_rank > 0 && (a->new_rank == 0 || a->new_rank > a->old_rank)) {
        cls = "down";
        arrow = "\u25bc ";
    }
    fprintf(f, "<td class=\"shift %s\">%s", cls, arrow);
    if (a->old_rank > 0)
        fprintf(f, "#%d", a->old_rank);
    else
        fputs("outside", f);
    fputs(" \u2192 ", f);
    if (a->new_rank > 0)
        fprintf(f, "#%d", a->new_rank);
    else
        fputs("outside", f);
    fputs("</td>", f);
}

static void render_html(FILE *f, const tf_report_t *r, const tf_report_render_opts_t *o)
{
    char plabel[48], pstr[8];
    tf_report_period_label(r->basis, r->period, 0, plabel, sizeof(plabel));
    tf_period_format(r->period, pstr, sizeof(pstr));
    const char *what = strcmp(r->dataset, "investment") == 0 ? "direct-investment" : "trading";

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    esc(f, r->reporter);
    fprintf(f, ": top %s partners, ", what);
    esc(f, plabel);
    fputs("</title>\n<style>\n", f);
    fputs(CSS, f);
    fputs("</style>\n</head>\n<body>\n<main>\n<header>\n<h1 id=\"title\">", f);
    esc(f, r->reporter);
    fprintf(f, ": top %s partners, ", what);
    esc(f, plabel);
    fputs("</h1>\n<p class=\"scope\" id=\"scope\" data-dataset=\"", f);
    esc(f, r->dataset);
    fputs("\" data-reporter=\"", f);
    esc(f, r->reporter);
    fputs("\" data-flow=\"", f);
    esc(f, r->flow);
    fputs("\" data-basis=\"", f);
    esc(f, r->basis);
    fputs("\" data-level=\"", f);
    esc(f, r->level);
    fprintf(f, "\" data-period=\"%s\">", pstr);
    esc(f, r->dataset);
    fputs(" \u00b7 ", f);
    esc(f, flow_words(r->flow));
    fputs(" \u00b7 ", f);
    esc(f, basis_words(r->basis));
    fputs(" \u00b7 ", f);
    esc(f, level_words(r->level));
    fputs(" \u00b7 values in US$</p>\n", f);
    if (o && o->note && *o->note) {
        fputs("<p class=\"note\" id=\"note\">", f);
        esc(f, o->note);
        fputs("</p>\n", f);
    }
    fputs("</header>\n", f);

    /* The table. */
    double max_share = 0;
    const tf_report_row_t *wld = NULL;
    for (size_t i = 0; i < r->nrows; i++) {
        if (r->rows[i].rank == 0)
            wld = &r->rows[i];
        else if (!isnan(r->rows[i].share) && r->rows[i].share > max_share)
            max_share = r->rows[i].share;
    }
    char prev[48];
    tf_report_period_label(r->basis, r->period - 12, 0, prev, sizeof(prev));
    fprintf(f, "<section id=\"top\">\n<h2>Top %d partners</h2>\n"
               "<table id=\"top-partners\">\n<thead><tr><th>#</th><th class=\"name\">Partner</th>"
               "<th>Value, US$ bn</th><th>YoY %%</th><th>Share %%</th>"
               "<th>Share change, pp</th></tr></thead>\n<tbody>\n",
            r->top);
    size_t series_i = 0;
    for (size_t i = 0; i < r->nrows; i++)
        if (r->rows[i].rank > 0)
            html_row(f, &r->rows[i], max_share, (int)series_i++);
    fputs("</tbody>\n", f);
    if (wld) {
        fputs("<tfoot>\n", f);
        html_row(f, wld, max_share, -1);
        fputs("</tfoot>\n", f);
    }
    fputs("</table>\n<p class=\"caption\">", f);
    fprintf(f, "%zu partners ranked in ", r->nranked_total);
    esc(f, plabel);
    fputs(". YoY and share change against ", f);
    esc(f, prev);
    fputs(". Share: of the reporter's world total (WLD) where published, else of the sum over "
          "partners. Ties share a rank.</p>\n</section>\n",
          f);

    /* The charts. */
    fputs("<section id=\"rank-history\">\n<h2>Rank history</h2>\n", f);
    if (r->nseries > 0 && r->nrank_periods > 0)
        bump_chart(f, r);
    fputs("<p class=\"caption\">Rank among ", f);
    esc(f, r->reporter);
    fputs("'s partners (#1 at the top) of today's top partners", f);
    if (strcmp(r->basis, "ytd") == 0)
        fputs(": each earlier year's full year (or its latest month published), then ", f);
    else
        fputs(" by month, up to ", f);
    esc(f, plabel);
    fputs(".</p>\n</section>\n", f);

    fputs("<section id=\"shares\">\n<h2>Shares over time</h2>\n", f);
    if (r->nseries > 0 && r->nshare_periods > 0)
        share_chart(f, r);
    fputs("<p class=\"caption\">Share of ", f);
    esc(f, r->reporter);
    fputs("'s total, %, ", f);
    esc(f, basis_words(r->basis));
    fputs(", each period with data.</p>\n</section>\n", f);

    /* The alerts. */
    fputs("<section id=\"alerts\">\n<h2>Latest ranking shifts</h2>\n", f);
    if (r->nalerts == 0) {
        fputs("<p class=\"caption\" id=\"no-alerts\">No ranking-shift alerts for this scope up to "
              "this period.</p>\n",
              f);
    } else {
        fputs("<table id=\"alerts-table\">\n<thead><tr><th class=\"name\">Period</th>"
              "<th class=\"name\">Partner</th><th>Rank</th><th>Value, US$ bn</th>"
              "<th>Detected</th></tr></thead>\n<tbody>\n",
              f);
        for (size_t i = 0; i < r->nalerts; i++) {
            const tf_report_alert_t *a = &r->alerts[i];
            char lb[48], pb[8], v[64];
            tf_report_period_label(r->basis, a->period, 0, lb, sizeof(lb));
            tf_period_format(a->period, pb, sizeof(pb));
            thousands(a->value_bn, v, sizeof(v));
            fprintf(f, "<tr data-alert-id=\"%lld\" data-period=\"%s\" data-partner=\"",
                    (long long)a->alert_id, pb);
            esc(f, a->partner);
            fprintf(f, "\" data-old-rank=\"%d\" data-new-rank=\"%d\"><td class=\"name\">",
                    a->old_rank, a->new_rank);
            esc(f, lb);
            fputs("</td><td class=\"name\">", f);
            esc(f, a->partner);
            fputs("</td>", f);
            shift_cell(f, a);
            fputs("<td>", f);
            esc(f, *v ? v : "n/a");
            fputs("</td><td>", f);
            esc(f, a->detected_at);
            fputs("</td></tr>\n", f);
        }
        fputs("</tbody>\n</table>\n<p class=\"caption\">Shifts of the partners the aggregator "
              "watches (its top N) against the previous period with data; retracted shifts "
              "are left out. \u201coutside\u201d = not in that top N.</p>\n",
              f);
    }
    fputs("</section>\n<footer>\n", f);
    if (o && o->note && *o->note) {
        fputs("<p>Data: <span class=\"note\">", f);
        esc(f, o->note);
        fputs("</span></p>\n", f);
    }
    fputs("<p>From the views reporting.partner_ranking and reporting.ranking_alerts of "
          "database <code>",
          f);
    esc(f, r->database);
    fputs("</code>", f);
    if (o && o->version) {
        fputs("; tradeflow-report ", f);
        esc(f, o->version);
    }
    if (o && o->generated_at) {
        fputs("; generated ", f);
        esc(f, o->generated_at);
    }
    fputs(".</p>\n</footer>\n</main>\n</body>\n</html>\n", f);
}

/* ------------------------------------------------------------------ text */

static void render_text(FILE *f, const tf_report_t *r, const tf_report_render_opts_t *o)
{
    char plabel[48];
    tf_report_period_label(r->basis, r->period, 1, plabel, sizeof(plabel));
    int pw = 7;
    for (size_t i = 0; i < r->nrows; i++) {
        int l = (int)strlen(r->rows[i].partner) + (r->rows[i].rank == 0 ? 8 : 0);
        if (l > pw)
            pw = l;
    }
    fprintf(f, "%s: top %s partners, %s\n", r->reporter,
            strcmp(r->dataset, "investment") == 0 ? "direct-investment" : "trading", plabel);
    fprintf(f, "%s, %s, %s, %s, US$\n", r->dataset, flow_words(r->flow), basis_words(r->basis),
            level_words(r->level));
    if (o && o->note && *o->note)
        fprintf(f, "%s\n", o->note);
    fprintf(f, "\n%4s  %-*s %12s %8s %8s %13s\n", "#", pw, "Partner", "US$ bn", "YoY %",
            "Share %", "Share chg pp");
    for (size_t i = 0; i < r->nrows; i++) {
        const tf_report_row_t *row = &r->rows[i];
        char v[64], yoy[64], chg[64], name[64], rk[16] = "";
        thousands(row->value_bn, v, sizeof(v));
        signed_num(row->yoy_1, yoy, sizeof(yoy));
        signed_num(row->share_change_1, chg, sizeof(chg));
        if (row->rank > 0) {
            snprintf(rk, sizeof(rk), "%d", row->rank);
            snprintf(name, sizeof(name), "%s", row->partner);
        } else {
            snprintf(name, sizeof(name), "%s (total)", row->partner);
        }
        fprintf(f, "%4s  %-*s %12s %8s %8s %13s\n", rk, pw, name, v, *yoy ? yoy : "n/a",
                *row->share_1 ? row->share_1 : "n/a", *chg ? chg : "n/a");
    }
    fprintf(f, "(%zu partners ranked)\n", r->nranked_total);

    if (r->nseries > 0 && r->nrank_periods > 1) {
        fputs("\nRank history:\n", f);
        int cw[64];
        size_t n = r->nrank_periods < 64 ? r->nrank_periods : 64;
        size_t from = r->nrank_periods - n;
        fprintf(f, "  %-*s", pw, "");
        for (size_t i = 0; i < n; i++) {
            char lb[48];
            history_label(r->basis, r->rank_periods[from + i], 1, lb, sizeof(lb));
            cw[i] = (int)strlen(lb) < 4 ? 4 : (int)strlen(lb);
            fprintf(f, "  %*s", cw[i], lb);
        }
        fputc('\n', f);
        for (size_t k = 0; k < r->nseries; k++) {
            const tf_report_series_t *s = &r->series[k];
            fprintf(f, "  %-*s", pw, s->partner);
            for (size_t i = 0; i < n; i++) {
                char rk[16] = "-";
                if (s->ranks[from + i] > 0)
                    snprintf(rk, sizeof(rk), "#%d", s->ranks[from + i]);
                fprintf(f, "  %*s", cw[i], rk);
            }
            fputc('\n', f);
        }
    }
    if (r->nalerts > 0) {
        fputs("\nLatest ranking shifts:\n", f);
        for (size_t i = 0; i < r->nalerts; i++) {
            const tf_report_alert_t *a = &r->alerts[i];
            char lb[48], o1[16] = "outside", n1[16] = "outside", v[64];
            tf_report_period_label(r->basis, a->period, 1, lb, sizeof(lb));
            if (a->old_rank > 0)
                snprintf(o1, sizeof(o1), "#%d", a->old_rank);
            if (a->new_rank > 0)
                snprintf(n1, sizeof(n1), "#%d", a->new_rank);
            thousands(a->value_bn, v, sizeof(v));
            fprintf(f, "  %-14s %-*s %8s -> %-8s %12s bn\n", lb, pw, a->partner, o1, n1,
                    *v ? v : "n/a");
        }
    }
}

/* ------------------------------------------------------------------- CSV */

/* RFC 4180 fields (quoted only when needed, quotes doubled), with Unix line
 * ends as psql's COPY writes them. */
static void csv_field(FILE *f, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputs(last ? "\n" : ",", f);
}

static void render_csv(FILE *f, const tf_report_t *r)
{
    fputs("dataset,reporter,flow,basis,level,period,rank,partner,value_usd,"
          "prev_year_value_usd,yoy_pct,share_pct,share_change_pp\n",
          f);
    char pstr[8];
    tf_period_format(r->period, pstr, sizeof(pstr));
    for (size_t i = 0; i < r->nrows; i++) {
        const tf_report_row_t *row = &r->rows[i];
        char rk[16] = "";
        if (row->rank > 0)
            snprintf(rk, sizeof(rk), "%d", row->rank);
        csv_field(f, r->dataset, 0);
        csv_field(f, r->reporter, 0);
        csv_field(f, r->flow, 0);
        csv_field(f, r->basis, 0);
        csv_field(f, r->level, 0);
        csv_field(f, pstr, 0);
        csv_field(f, rk, 0);
        csv_field(f, row->partner, 0);
        csv_field(f, row->value_usd, 0);
        csv_field(f, row->prev_year_value_usd, 0);
        csv_field(f, row->yoy_pct, 0);
        csv_field(f, row->share_pct, 0);
        csv_field(f, row->share_change_pp, 1);
    }
}

int tf_report_render(FILE *f, const tf_report_t *r, tf_report_format_t fmt,
                     const tf_report_render_opts_t *opts)
{
    switch (fmt) {
    case TF_REPORT_HTML: render_html(f, r, opts); break;
    case TF_REPORT_TEXT: render_text(f, r, opts); break;
    case TF_REPORT_CSV: render_csv(f, r); break;
    }
    return ferror(f) ? -1 : 0;
}
