/*
 * tf_report_render.h - writes a loaded report (tf_report_data.h) as one
 * self-contained HTML page, a terminal table, or CSV.
 *
 * HTML: no external asset and no script: inline CSS, inline SVG charts (a
 * rank-history bump chart and a shares-over-time line chart), every text
 * from the database or the command line HTML-escaped. Each chart series is
 * an SVG <g class="series"> carrying machine-readable attributes:
 * data-partner, and data-ranks (bump chart) or data-shares (share chart)
 * with one comma-separated value per period of the chart's data-periods
 * ("" where the partner has no data in that period), so that tests and
 * scrapers can check the series without reading pixels.
 *
 * Text: a readable table for a terminal, plus the rank history and the
 * alerts. CSV: the table only, with the exact values of the view.
 *
 * Nothing here touches the database, prints to stderr or exits.
 */
#ifndef TF_REPORT_RENDER_H
#define TF_REPORT_RENDER_H

#include <stdio.h>

#include "tf_report_data.h"

typedef enum tf_report_format {
    TF_REPORT_HTML = 0,
    TF_REPORT_TEXT = 1,
    TF_REPORT_CSV = 2,
} tf_report_format_t;

/* Parses "html", "text" or "csv"; 0 ok, -1 unknown. */
int tf_report_format_parse(const char *s, tf_report_format_t *out);

typedef struct tf_report_render_opts {
    const char *note;         /* data-source footnote (any text, escaped); NULL = none */
    const char *generated_at; /* e.g. "2026-11-29 10:30 UTC"; NULL = left out */
    const char *version;      /* program version for the footer; NULL = left out */
} tf_report_render_opts_t;

/* Writes the report to f. Returns 0, or -1 if writing failed (ferror). */
int tf_report_render(FILE *f, const tf_report_t *r, tf_report_format_t fmt,
                     const tf_report_render_opts_t *opts);

/* The report's period in words, e.g. "Jan–Nov 2020" (ytd) or "Nov 2020"
 * (month); ascii = 1 writes "Jan-Nov 2020". */
void tf_report_period_label(const char *basis, int32_t period, int ascii, char *buf, size_t len);

#endif
