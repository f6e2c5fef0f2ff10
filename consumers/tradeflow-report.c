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
 * period), 64 usage, 69 PostgreSQL unreachable, 77 refused.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tf_err.h"
#include "tf_log.h"
#include "tf_config.h"
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
        "  -c, --config FILE      key = value settings (default: $TRADEFLOW_CONFIG);\n"
        "                         precedence: defaults < file < TRADEFLOW_<KEY> < flags\n"
        "      --print-config     print the effective settings (secrets masked), exit\n"
        "      --help-config      print the reference of every setting, exit\n"
        "  -h, --help             this help\n"
        "      --version          the version\n"
        "\n"
        "A file is written under a temporary name and renamed when complete; its path is\n"
        "then printed on stdout (unless --quiet).\n"
        "\n"
        "Exit status: 0 written, 1 error, 2 no data for that scope (and period), 64 usage,\n"
        "69 PostgreSQL unreachable within startup.timeout (default 30 s), 77 PostgreSQL\n"
        "refused the login.\n");
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

/* The configuration table (docs/configuration.md is generated from it). */
static const tf_cfg_prop_t report_props[] = {
    {"reporter", TF_CFG_STRING, NULL, 0, 0, NULL, 0, "reporting economy, e.g. CHN (required)"},
    {"dataset", TF_CFG_ENUM, "customs", 0, 0, "customs|investment", 0, "dataset"},
    {"flow", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "flow (default: total for customs, outward for investment)"},
    {"level", TF_CFG_ENUM, "group", 0, 0, "group|partner", 0, "ranking level"},
    {"basis", TF_CFG_ENUM, "ytd", 0, 0, "ytd|month", 0, "basis"},
    {"period", TF_CFG_PERIOD, NULL, 0, 0, NULL, 0, "period YYYY-MM (default: the latest with data)"},
    {"top", TF_CFG_INT, "10", 1, 100, NULL, 0, "partners in the table and charts"},
    {"alerts", TF_CFG_INT, "10", 0, 1000, NULL, 0, "latest ranking-shift alerts shown"},
    {"history", TF_CFG_INT, "24", 1, 240, NULL, 0, "months of rank history (month basis)"},
    {"share.months", TF_CFG_INT, "60", 1, 600, NULL, 0, "months in the shares chart"},
    {"format", TF_CFG_ENUM, "html", 0, 0, "html|text|csv", 0, "output format"},
    {"out", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "output file (default: stdout; html: report-REPORTER-PERIOD.html)"},
    {"note", TF_CFG_STRING, NULL, 0, 0, NULL, 0, "a note about the data source for the report"},
    {"pg", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "libpq conninfo or URI; unset = the PG* variables (password masked in output)"},
    {"quiet", TF_CFG_BOOL, "false", 0, 0, NULL, 0, "do not print the path of the written file"},
    {"log.level", TF_CFG_ENUM, "notice", 0, 0,
     "emerg|alert|crit|error|err|warning|warn|notice|info|debug|0|1|2|3|4|5|6|7", 0, "log level"},
    {"startup.timeout", TF_CFG_INT, "30", 1, 3600, NULL, 0,
     "seconds to wait at start for PostgreSQL to answer; then exit 69 (a refusal, e.g. a "
     "wrong password: exit 77 at once)"},
    {"log.format", TF_CFG_ENUM, "text", 0, 0, "text|json", 0, "log format"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL}};

enum { O_CONFIG_PRINT = 512, O_CONFIG_HELP };

/* The settings and the assembled conninfo live for the whole run; freed at
 * exit, whichever return is taken. */
static tf_config_t *cfg;
static char *pg_conninfo;

static void free_config(void)
{
    tf_config_destroy(cfg);
    free(pg_conninfo);
}

int main(int argc, char **argv)
{
    int32_t period = -1;
    tf_report_format_t fmt = TF_REPORT_HTML;
    char errstr[1024];
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
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
        {"print-config", no_argument, 0, O_CONFIG_PRINT},
        {"help-config", no_argument, 0, O_CONFIG_HELP},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0}};
    static const tf_cfg_flag_t flags[] = {
        {O_REPORTER, "reporter", NULL}, {O_DATASET, "dataset", NULL},
        {O_FLOW, "flow", NULL},         {O_LEVEL, "level", NULL},
        {O_BASIS, "basis", NULL},       {O_PERIOD, "period", NULL},
        {O_TOP, "top", NULL},           {O_ALERTS, "alerts", NULL},
        {O_HISTORY, "history", NULL},   {O_SHARE_MONTHS, "share.months", NULL},
        {O_FORMAT, "format", NULL},     {O_OUT, "out", NULL},
        {O_NOTE, "note", NULL},         {O_PG, "pg", NULL},
        {O_LOG_LEVEL, "log.level", NULL}, {O_LOG_FORMAT, "log.format", NULL},
        {'q', "quiet", "true"},         {0, NULL, NULL}};
    tf_cfg_std_t cli = {.program = "tradeflow-report", .version = TF_VERSION,
                        .props = report_props, .usage = usage, .code_version = O_VERSION,
                        .code_help_config = O_CONFIG_HELP, .code_print_config = O_CONFIG_PRINT,
                        .exit_code = -1};
    cfg = tf_config_new("tradeflow-report", report_props);
    if (!cfg) {
        fprintf(stderr, "tradeflow-report: out of memory\n");
        return EXIT_ERROR;
    }
    atexit(free_config);
    if (tf_config_parse_args(cfg, argc, argv, "c:hq", opts, flags, tf_config_std_other, &cli,
                             errstr, sizeof(errstr)) != 0) {
        if (cli.exit_code >= 0)
            return cli.exit_code;
        if (errstr[0])
            fprintf(stderr, "tradeflow-report: %s\n", errstr);
        else
            usage(stderr);
        return EXIT_USAGE;
    }
    /* pg.* keys as libpq will take them, for --print-config as for a run */
    if (tf_pg_check_config(cfg, errstr, sizeof(errstr))) {
        fprintf(stderr, "tradeflow-report: %s\n", errstr);
        return EXIT_USAGE;
    }
    if (cli.print_config) {
        tf_config_print(cfg, stdout);
        return EXIT_OK;
    }
    if (optind < argc) {
        fprintf(stderr, "tradeflow-report: unexpected argument: %s\n", argv[optind]);
        return EXIT_USAGE;
    }
    /* Strings below point into cfg, which lives until the end of main. */
    const char *reporter = tf_config_str(cfg, "reporter");
    const char *dataset = tf_config_str(cfg, "dataset");
    const char *flow = tf_config_str(cfg, "flow");
    const char *level = tf_config_str(cfg, "level");
    const char *basis = tf_config_str(cfg, "basis");
    const char *out = tf_config_str(cfg, "out");
    const char *note = tf_config_str(cfg, "note");
    const char *pg_base = tf_config_str(cfg, "pg");
    pg_conninfo = tf_config_pg_conninfo(cfg);
    const char *pg = pg_conninfo ? pg_conninfo : pg_base;
    int top = (int)tf_config_int(cfg, "top"), alerts = (int)tf_config_int(cfg, "alerts");
    int history = (int)tf_config_int(cfg, "history");
    int share_months = (int)tf_config_int(cfg, "share.months");
    int quiet = tf_config_bool(cfg, "quiet");
    int log_level = tf_log_level_parse(tf_config_str(cfg, "log.level"));
    tf_log_format_t log_format =
        strcmp(tf_config_str(cfg, "log.format"), "json") == 0 ? TF_LOG_JSON : TF_LOG_TEXT;
    if (tf_config_str(cfg, "period"))
        tf_period_parse(tf_config_str(cfg, "period"), &period, errstr, sizeof(errstr));
    tf_report_format_parse(tf_config_str(cfg, "format"), &fmt);
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

    int refused;
    PGconn *conn = tf_pg_connect_wait(pg, "tradeflow-report",
                                      (int)(1000 * tf_config_int(cfg, "startup.timeout")), NULL,
                                      &refused, errstr, sizeof(errstr));
    if (!conn) {
        TF_LOG(TF_LOG_CRIT, "pg", "%s", errstr);
        return refused ? TF_EXIT_NOPERM : TF_EXIT_UNAVAILABLE;
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
