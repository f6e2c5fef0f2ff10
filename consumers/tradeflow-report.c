/*
 * tradeflow-report - a report people can look at: a reporter's top partners
 * for one period with value, rank, YoY and share, the rank history (a bump
 * chart), shares over time and the latest ranking-shift alerts.
 *
 *   tradeflow-report --reporter CHN                       HTML, latest period
 *   tradeflow-report --reporter CHN --period 2020-11 --format text
 *
 * It reads only the stable reporting views (docs/reporting.md), with
 * parameterised queries in one read-only snapshot, so it works as the
 * read-only role tradeflow_reader. HTML is one self-contained file (inline
 * CSS and SVG, no script, no external asset); see docs/report.md.
 *
 * Exit statuses: 0 written, 1 error, 2 no data for that scope (and
 * period), 64 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tf_log.h"
#include "tf_pg.h"
#include "tf_record.h"
#include "tf_report_data.h"
#include "tf_report_render.h"

#ifndef TF_VERSION
#define TF_VERSION "dev"
#endif

#define EXIT_OK 0
#define EXIT_ERROR 1
#define EXIT_NO_DATA 2
#define EXIT_USAGE 64

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: tradeflow-report --reporter CODE [OPTIONS]\n"
        "\n"
        "Writes a report of a reporter's top partners for one period from the reporting\n"
        "views: the top-partner table (rank, value, YoY, share, share change), a rank\n"
        "history chart, shares over time and the latest ranking-shift alerts.\n"
        "\n"
        "Scope:\n"
        "      --reporter CODE    reporting economy, e.g. CHN (required)\n"
        "      --dataset D        customs (default) | investment\n"
        "      --flow F           customs: total (default) | export | import;\n"
        "                         investment: outward (default) | inward\n"
        "      --level L          group (default) | partner\n"
        "      --basis B          ytd (default) | month\n"
        "      --period YYYY-MM   the period (default: the latest with data)\n"
        "      --top N            partners in the table and charts (default 10, max 100)\n"
        "      --alerts N         latest ranking shifts to list (default 10; 0 = none)\n"
        "      --history N        month basis: months of rank history (default 24)\n"
        "      --share-months N   months in the shares chart (default 60)\n"
        "\n"
        "Output:\n"
        "      --format F         html (default) | text | csv\n"
        "      --out FILE         output file; '-' = stdout (default: stdout for text\n"
        "                         and csv, report-<reporter>-<period>.html for html)\n"
        "      --note TEXT        data-source footnote, e.g. \"SYNTHETIC data\"\n"
        "  -q, --quiet            do not print the path of a file written\n"
        "\n"
        "Connection and logs:\n"
        "      --pg CONNINFO      libpq conninfo or URI (default: the PG* variables)\n"
        "      --log-level L      error | warning | notice (default) | info | debug\n"
        "      --log-format F     text (default) | json\n"
        "  -h, --help             this help\n"
        "      --version          the version\n"
        "\n"
        "A file is written under a temporary name and renamed when complete; its path is\n"
        "then printed on stdout (unless --quiet).\n"
        "\n"
        "Exit status: 0 written, 1 error, 2 no data for that scope (and period), 64 usage.\n");
}

enum {
    O_REPORTER = 256,
    O_DATASET,
    O_FLOW,
    O_LEVEL,
    O_BASIS,
    O_PERIOD,
    O_TOP,
    O_ALERTS,
    O_HISTORY,
    O_SHARE_MONTHS,
    O_FORMAT,
    O_OUT,
    O_NOTE,
    O_PG,
    O_LOG_LEVEL,
    O_LOG_FORMAT,
    O_VERSION
};

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* Writes the rendered report to path atomically: a temporary file in the
 * same directory, fsync'd and renamed, so a reader never sees half a
 * report and a failed run leaves the previous report in place. */
static int write_file(const char *path, const tf_report_t *r, tf_report_format_t fmt,
                      const tf_report_render_opts_t *ro, char *errstr, size_t errlen)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        snprintf(errstr, errlen, "output path too long");
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(errstr, errlen, "cannot create %.400s: %s", tmp, strerror(errno));
        return -1;
    }
    int rc = tf_report_render(f, r, fmt, ro);
    if (rc == 0 && fflush(f) != 0)
        rc = -1;
    if (rc == 0 && fsync(fileno(f)) != 0)
        rc = -1;
    int saved = errno;
    if (fclose(f) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        snprintf(errstr, errlen, "cannot write %.400s: %s", tmp, strerror(saved));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(errstr, errlen, "cannot rename %.300s to %.300s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *reporter = NULL, *dataset = "customs", *flow = NULL, *level = "group",
               *basis = "ytd", *out = NULL, *note = NULL, *pg = NULL;
    int32_t period = -1;
    int top = 10, alerts = 10, history = 24, share_months = 60, quiet = 0;
    int log_level = TF_LOG_NOTICE;
    tf_log_format_t log_format = TF_LOG_TEXT;
    tf_report_format_t fmt = TF_REPORT_HTML;
    char errstr[1024];
    static const struct option opts[] = {
        {"reporter", required_argument, 0, O_REPORTER},
        {"dataset", required_argument, 0, O_DATASET},
        {"flow", required_argument, 0, O_FLOW},
        {"level", required_argument, 0, O_LEVEL},
        {"basis", required_argument, 0, O_BASIS},
        {"period", required_argument, 0, O_PERIOD},
        {"top", required_argument, 0, O_TOP},
        {"alerts", required_argument, 0, O_ALERTS},
        {"history", required_argument, 0, O_HISTORY},
        {"share-months", required_argument, 0, O_SHARE_MONTHS},
        {"format", required_argument, 0, O_FORMAT},
        {"out", required_argument, 0, O_OUT},
        {"note", required_argument, 0, O_NOTE},
        {"pg", required_argument, 0, O_PG},
        {"log-level", required_argument, 0, O_LOG_LEVEL},
        {"log-format", required_argument, 0, O_LOG_FORMAT},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
        switch (c) {
        case O_REPORTER: reporter = optarg; break;
        case O_DATASET: dataset = optarg; break;
        case O_FLOW: flow = optarg; break;
        case O_LEVEL: level = optarg; break;
        case O_BASIS: basis = optarg; break;
        case O_PERIOD:
            if (tf_period_parse(optarg, &period, errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "tradeflow-report: --period: %s\n", errstr);
                return EXIT_USAGE;
            }
            break;
        case O_TOP:
            if (parse_int(optarg, 1, 100, &top) != 0)
                goto bad;
            break;
        case O_ALERTS:
            if (parse_int(optarg, 0, 1000, &alerts) != 0)
                goto bad;
            break;
        case O_HISTORY:
            if (parse_int(optarg, 1, 240, &history) != 0)
                goto bad;
            break;
        case O_SHARE_MONTHS:
            if (parse_int(optarg, 1, 600, &share_months) != 0)
                goto bad;
            break;
        case O_FORMAT:
            if (tf_report_format_parse(optarg, &fmt) != 0)
                goto bad;
            break;
        case O_OUT: out = optarg; break;
        case O_NOTE: note = optarg; break;
        case O_PG: pg = optarg; break;
        case O_LOG_LEVEL:
            if ((log_level = tf_log_level_parse(optarg)) < 0)
                goto bad;
            break;
        case O_LOG_FORMAT:
            if (strcmp(optarg, "text") == 0)
                log_format = TF_LOG_TEXT;
            else if (strcmp(optarg, "json") == 0)
                log_format = TF_LOG_JSON;
            else
                goto bad;
            break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        case O_VERSION: printf("tradeflow-report %s\n", TF_VERSION); return EXIT_OK;
        default:
            fprintf(stderr, "tradeflow-report: unknown option or missing argument: %s "
                            "(see --help)\n",
                    argv[optind - 1]);
            return EXIT_USAGE;
        bad:
            fprintf(stderr, "tradeflow-report: invalid value \"%s\" for %s\n", optarg,
                    argv[optind - 1][0] == '-' ? argv[optind - 1] : argv[optind - 2]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tradeflow-report: unexpected argument: %s\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!reporter) {
        fprintf(stderr, "tradeflow-report: --reporter is required (see --help)\n");
        return EXIT_USAGE;
    }
    if (!tf_code_valid(reporter) || strcmp(reporter, "WLD") == 0) {
        fprintf(stderr, "tradeflow-report: invalid reporter \"%s\" (e.g. CHN)\n", reporter);
        return EXIT_USAGE;
    }
    tf_dataset_t ds;
    if (tf_dataset_parse(dataset, &ds) != 0) {
        fprintf(stderr, "tradeflow-report: invalid dataset \"%s\" (customs | investment)\n",
                dataset);
        return EXIT_USAGE;
    }
    if (!flow)
        flow = ds == TF_DATASET_CUSTOMS ? "total" : "outward";
    tf_flow_t fl;
    int flow_ok = strcmp(flow, "total") == 0 ? ds == TF_DATASET_CUSTOMS
                                              : tf_flow_parse(ds, flow, &fl) == 0;
    if (!flow_ok) {
        fprintf(stderr, "tradeflow-report: flow \"%s\" is not one of %s's (%s)\n", flow,
                dataset,
                ds == TF_DATASET_CUSTOMS ? "total | export | import" : "outward | inward");
        return EXIT_USAGE;
    }
    if (strcmp(level, "group") != 0 && strcmp(level, "partner") != 0) {
        fprintf(stderr, "tradeflow-report: invalid level \"%s\" (group | partner)\n", level);
        return EXIT_USAGE;
    }
    if (strcmp(basis, "ytd") != 0 && strcmp(basis, "month") != 0) {
        fprintf(stderr, "tradeflow-report: invalid basis \"%s\" (ytd | month)\n", basis);
        return EXIT_USAGE;
    }
    tf_log_init("tradeflow-report", log_level, log_format);

    PGconn *conn = tf_pg_connect(pg, "tradeflow-report", errstr, sizeof(errstr));
    if (!conn) {
        TF_LOG(TF_LOG_ERR, "pg", "%s", errstr);
        return EXIT_ERROR;
    }
    tf_report_query_t q = {.dataset = dataset,
                           .reporter = reporter,
                           .flow = flow,
                           .level = level,
                           .basis = basis,
                           .period = period,
                           .top = top,
                           .alerts = alerts,
                           .history_months = history,
                           .share_months = share_months};
    tf_report_t *r = NULL;
    int rc = tf_report_load(conn, &q, &r, errstr, sizeof(errstr));
    PQfinish(conn);
    if (rc == 1) {
        TF_LOG(TF_LOG_ERR, "report", "%s", errstr);
        return EXIT_NO_DATA;
    }
    if (rc != 0) {
        TF_LOG(TF_LOG_ERR, "report", "%s", errstr);
        return EXIT_ERROR;
    }

    char generated[48];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(generated, sizeof(generated), "%Y-%m-%d %H:%M UTC", &tm);
    tf_report_render_opts_t ro = {.note = note, .generated_at = generated, .version = TF_VERSION};

    char defpath[64];
    if (!out && fmt == TF_REPORT_HTML) {
        char p[8];
        tf_period_format(r->period, p, sizeof(p));
        snprintf(defpath, sizeof(defpath), "report-%s-%s.html", r->reporter, p);
        out = defpath;
    }
    int exit_code = EXIT_OK;
    if (!out || strcmp(out, "-") == 0) {
        if (tf_report_render(stdout, r, fmt, &ro) != 0 || fflush(stdout) != 0) {
            TF_LOG(TF_LOG_ERR, "report", "cannot write to stdout: %s", strerror(errno));
            exit_code = EXIT_ERROR;
        }
    } else if (write_file(out, r, fmt, &ro, errstr, sizeof(errstr)) != 0) {
        TF_LOG(TF_LOG_ERR, "report", "%s", errstr);
        exit_code = EXIT_ERROR;
    } else {
        TF_LOG(TF_LOG_INFO, "report", "wrote %s (%zu partners, %zu alerts)", out, r->nrows,
               r->nalerts);
        if (!quiet)
            printf("%s\n", out);
    }
    tf_report_destroy(r);
    return exit_code;
}
