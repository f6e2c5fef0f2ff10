/*
 * tradeflow-alerts - follows the ranking-shift alerts as they happen.
 *
 *   tradeflow-alerts [filters] [--json]          follow new alerts
 *   tradeflow-alerts --since 2019-01 --no-follow  print history and exit
 *
 * Gap-free and without duplicates: the follower LISTENs on tradeflow_alerts
 * before it reads anything, then reads reporting.ranking_alerts through a
 * gap-free cursor (tf_alerts_feed.h) by alert_id; a notification only wakes
 * it up (its payload is not trusted for content), and a 1 s poll covers a
 * lost connection. It reconnects by itself and resumes after the last alert
 * it printed. Works as the read-only role tradeflow_reader.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tf_alerts_feed.h"
#include "tf_alerts_format.h"
#include "tf_err.h"
#include "tf_log.h"
#include "tf_config.h"
#include "tf_pg.h"

#define EXIT_OK 0
#define EXIT_ERROR 1
#define EXIT_TIMEOUT 2
#define EXIT_USAGE 64

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: tradeflow-alerts [OPTIONS]\n"
        "\n"
        "Prints ranking-shift alerts as they happen, one per line, gap-free and without\n"
        "duplicates (LISTEN tradeflow_alerts + reporting.ranking_alerts by alert_id).\n"
        "Without --since or --after-id it prints the alerts that commit after it started.\n"
        "\n"
        "Filters (all must match):\n"
        "      --reporter CODE    reporting economy (e.g. CHN)\n"
        "      --partner CODE     partner (e.g. ASEAN)\n"
        "      --dataset D        customs | investment\n"
        "      --flow F           export | import | total | outward | inward\n"
        "      --basis B          month | ytd\n"
        "      --level L          partner | group\n"
        "      --max-rank N       old or new rank <= N\n"
        "      --include-suppressed  also alerts kept out of notifications by the\n"
        "                         consumer's --alerts-from (history only)\n"
        "History and ending:\n"
        "      --since YYYY-MM    first print the stored alerts of periods >= YYYY-MM\n"
        "      --after-id N       resume after alert N (e.g. the last one a hook saw)\n"
        "      --no-follow        print the matching history and exit\n"
        "      --count N          exit after N alerts\n"
        "      --timeout S        stop after S seconds; exit 2 if no alert was printed\n"
        "Output:\n"
        "      --json             one JSON object per line instead of a readable line\n"
        "PostgreSQL:\n"
        "      --pg CONNINFO      libpq conninfo or URI (default: the PG* variables)\n"
        "      --log-level L      emerg..debug or 0..7 (default: notice)\n"
        "      --log-format F     text or json (default: text)\n"
        "  -c, --config FILE      key = value settings (default: $TRADEFLOW_CONFIG);\n"
        "                         precedence: defaults < file < TRADEFLOW_<KEY> < flags\n"
        "      --print-config     print the effective settings (secrets masked), exit\n"
        "      --help-config      print the reference of every setting, exit\n"
        "  -h, --help             this help\n"
        "      --version          print the version\n"
        "\n"
        "Output is line-buffered. A retraction withdraws an earlier alert that later\n"
        "data or a revision undid; readable lines start with \"RETRACTED\".\n"
        "\n"
        "Exit status: 0 ok (history printed, --count reached, or stopped by a signal\n"
        "after printing), 1 error (bad data), 2 --timeout elapsed without any\n"
        "matching alert, 64 usage error, 69 PostgreSQL unreachable within\n"
        "startup.timeout (default 30 s), 77 PostgreSQL refused the login.\n");
}






/* Writes one alert to stdout (line-buffered). 0 ok, -1 on error. */
static int emit(const tf_alert_row_t *row, int json)
{
    if (json) {
        char *s = tf_alerts_format_json(row);
        int rc = s && printf("%s\n", s) >= 0 ? 0 : -1;
        free(s);
        return rc;
    }
    char line[512];
    tf_alerts_format_line(row, line, sizeof(line));
    return printf("%s\n", line) >= 0 ? 0 : -1;
}

/* Waits up to ms for a notification. -1 if the connection broke. */
static int wait_notify(PGconn *c, int ms)
{
    return tf_alerts_feed_wait(c, ms);
}

static PGconn *connect_listen(const char *pg, char *errstr, size_t errlen)
{
    PGconn *c = tf_pg_connect(pg, "tradeflow-alerts", errstr, errlen);
    if (!c)
        return NULL;
    if (tf_pg_exec(c, "LISTEN tradeflow_alerts", errstr, errlen) != 0) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

enum {
    O_REPORTER = 256,
    O_PARTNER,
    O_DATASET,
    O_FLOW,
    O_BASIS,
    O_LEVEL,
    O_MAX_RANK,
    O_SINCE,
    O_AFTER_ID,
    O_NO_FOLLOW,
    O_COUNT,
    O_TIMEOUT,
    O_SUPPRESSED,
    O_JSON,
    O_PG,
    O_LOG_LEVEL,
    O_LOG_FORMAT,
    O_VERSION,
    O_PRINT,
    O_HELPCFG
};

/* How far below the newest alert a transaction still open at start may
 * have drawn its alert_id (see tf_alerts_feed_visible_tail()). */
#define START_WINDOW 10000

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The configuration table (docs/configuration.md is generated from it). */
static const tf_cfg_prop_t alerts_props[] = {
    {"reporter", TF_CFG_STRING, NULL, 0, 0, NULL, 0, "only alerts of this reporting economy"},
    {"partner", TF_CFG_STRING, NULL, 0, 0, NULL, 0, "only alerts about this partner"},
    {"dataset", TF_CFG_ENUM, NULL, 0, 0, "customs|investment", 0, "only this dataset"},
    {"flow", TF_CFG_ENUM, NULL, 0, 0, "export|import|total|outward|inward", 0, "only this flow"},
    {"basis", TF_CFG_ENUM, NULL, 0, 0, "month|ytd", 0, "only this basis"},
    {"level", TF_CFG_ENUM, NULL, 0, 0, "partner|group", 0, "only this level"},
    {"max.rank", TF_CFG_INT, "0", 0, 1000000, NULL, 0,
     "only alerts whose old or new rank is at most this (0: any)"},
    {"since", TF_CFG_PERIOD, NULL, 0, 0, NULL, 0, "history: alerts for periods from YYYY-MM"},
    {"after.id", TF_CFG_INT, "-1", -1, LONG_MAX, NULL, 0,
     "history: alerts with a larger alert_id (-1: none)"},
    {"follow", TF_CFG_BOOL, "true", 0, 0, NULL, 0,
     "keep following new alerts (false: print the history and exit)"},
    {"count", TF_CFG_INT, "0", 0, LONG_MAX, NULL, 0, "exit after this many alerts (0: no limit)"},
    {"timeout", TF_CFG_INT, "0", 0, 100000000, NULL, 0,
     "exit 2 if no matching alert arrived within this many seconds (0: wait forever)"},
    {"include.suppressed", TF_CFG_BOOL, "false", 0, 0, NULL, 0,
     "also alerts kept out of notifications (--alerts-from)"},
    {"json", TF_CFG_BOOL, "false", 0, 0, NULL, 0, "one JSON object per line"},
    {"pg", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "libpq conninfo or URI; unset = the PG* variables (password masked in output)"},
    {"log.level", TF_CFG_ENUM, "notice", 0, 0,
     "emerg|alert|crit|error|err|warning|warn|notice|info|debug|0|1|2|3|4|5|6|7", 0, "log level"},
    {"startup.timeout", TF_CFG_INT, "30", 1, 3600, NULL, 0,
     "seconds to wait at start for PostgreSQL to answer; then exit 69 (a refusal, e.g. a "
     "wrong password: exit 77 at once)"},
    {"log.format", TF_CFG_ENUM, "text", 0, 0, "text|json", 0, "log format"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL}};

/* Settings and the assembled conninfo, freed at exit on every path. */
static tf_config_t *g_cfg;
static char *g_pg;

static void free_config(void)
{
    tf_config_destroy(g_cfg);
    free(g_pg);
}

int main(int argc, char **argv)
{
    tf_alerts_filter_t fl = {.since = -1};
    char errstr[1024];
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"reporter", required_argument, 0, O_REPORTER},
        {"partner", required_argument, 0, O_PARTNER},
        {"dataset", required_argument, 0, O_DATASET},
        {"flow", required_argument, 0, O_FLOW},
        {"basis", required_argument, 0, O_BASIS},
        {"level", required_argument, 0, O_LEVEL},
        {"max-rank", required_argument, 0, O_MAX_RANK},
        {"since", required_argument, 0, O_SINCE},
        {"after-id", required_argument, 0, O_AFTER_ID},
        {"no-follow", no_argument, 0, O_NO_FOLLOW},
        {"count", required_argument, 0, O_COUNT},
        {"timeout", required_argument, 0, O_TIMEOUT},
        {"include-suppressed", no_argument, 0, O_SUPPRESSED},
        {"json", no_argument, 0, O_JSON},
        {"pg", required_argument, 0, O_PG},
        {"log-level", required_argument, 0, O_LOG_LEVEL},
        {"log-format", required_argument, 0, O_LOG_FORMAT},
        {"print-config", no_argument, 0, O_PRINT},
        {"help-config", no_argument, 0, O_HELPCFG},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0}};
    static const tf_cfg_flag_t flags[] = {
        {O_REPORTER, "reporter", NULL}, {O_PARTNER, "partner", NULL},
        {O_DATASET, "dataset", NULL},   {O_FLOW, "flow", NULL},
        {O_BASIS, "basis", NULL},       {O_LEVEL, "level", NULL},
        {O_MAX_RANK, "max.rank", NULL}, {O_SINCE, "since", NULL},
        {O_AFTER_ID, "after.id", NULL}, {O_NO_FOLLOW, "follow", "false"},
        {O_COUNT, "count", NULL},       {O_TIMEOUT, "timeout", NULL},
        {O_SUPPRESSED, "include.suppressed", "true"}, {O_JSON, "json", "true"},
        {O_PG, "pg", NULL},             {O_LOG_LEVEL, "log.level", NULL},
        {O_LOG_FORMAT, "log.format", NULL}, {0, NULL, NULL}};
    tf_cfg_std_t cli = {.program = "tradeflow-alerts", .version = TF_VERSION,
                        .props = alerts_props, .usage = usage, .code_version = O_VERSION,
                        .code_help_config = O_HELPCFG, .code_print_config = O_PRINT,
                        .exit_code = -1};
    if (!(g_cfg = tf_config_new("tradeflow-alerts", alerts_props))) {
        fprintf(stderr, "tradeflow-alerts: out of memory\n");
        return EXIT_ERROR;
    }
    atexit(free_config);
    if (tf_config_parse_args(g_cfg, argc, argv, "c:h", opts, flags, tf_config_std_other, &cli,
                             errstr, sizeof(errstr)) != 0) {
        if (cli.exit_code >= 0)
            return cli.exit_code;
        if (errstr[0])
            fprintf(stderr, "tradeflow-alerts: %s\n", errstr);
        else
            usage(stderr);
        return EXIT_USAGE;
    }
    /* pg.* keys as libpq will take them, for --print-config as for a run */
    if (tf_pg_check_config(g_cfg, errstr, sizeof(errstr))) {
        fprintf(stderr, "tradeflow-alerts: %s\n", errstr);
        return EXIT_USAGE;
    }
    if (cli.print_config) {
        tf_config_print(g_cfg, stdout);
        return EXIT_OK;
    }
    if (optind < argc) {
        fprintf(stderr, "tradeflow-alerts: unexpected argument %s\n", argv[optind]);
        return EXIT_USAGE;
    }
    const char *v;
    fl.reporter = tf_config_str(g_cfg, "reporter");
    fl.partner = tf_config_str(g_cfg, "partner");
    if ((v = tf_config_str(g_cfg, "dataset"))) {
        tf_dataset_parse(v, &fl.dataset);
        fl.has_dataset = true;
    }
    if ((v = tf_config_str(g_cfg, "flow"))) {
        tf_alerts_flow_parse(v, &fl.flow);
        fl.has_flow = true;
    }
    if ((v = tf_config_str(g_cfg, "basis"))) {
        tf_alerts_basis_parse(v, &fl.basis);
        fl.has_basis = true;
    }
    if ((v = tf_config_str(g_cfg, "level"))) {
        tf_alerts_level_parse(v, &fl.level);
        fl.has_level = true;
    }
    fl.max_rank = (int)tf_config_int(g_cfg, "max.rank");
    if ((v = tf_config_str(g_cfg, "since")))
        tf_period_parse(v, &fl.since, errstr, sizeof(errstr));
    fl.include_suppressed = tf_config_bool(g_cfg, "include.suppressed");
    long after_id = tf_config_int(g_cfg, "after.id");
    long count = tf_config_int(g_cfg, "count"), timeout_s = tf_config_int(g_cfg, "timeout");
    int follow = tf_config_bool(g_cfg, "follow"), json = tf_config_bool(g_cfg, "json");
    g_pg = tf_config_pg_conninfo(g_cfg);
    const char *pg = g_pg;
    int log_level = tf_log_level_parse(tf_config_str(g_cfg, "log.level"));
    tf_log_format_t log_format =
        strcmp(tf_config_str(g_cfg, "log.format"), "json") == 0 ? TF_LOG_JSON : TF_LOG_TEXT;
    if (!follow && fl.since < 0 && after_id < 0) {
        fprintf(stderr, "tradeflow-alerts: --no-follow needs --since or --after-id\n");
        return EXIT_USAGE;
    }
    tf_log_init("tradeflow-alerts", log_level, log_format);
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* LISTEN before the first read: whatever commits after this point wakes
     * us, and whatever committed before it is found by the read. */
    {
        /* At start: reachable and willing within startup.timeout (69 / 77). */
        int refused;
        PGconn *probe = tf_pg_connect_wait(pg, "tradeflow-alerts",
                                           (int)(1000 * tf_config_int(g_cfg, "startup.timeout")),
                                           &stop_requested, &refused, errstr, sizeof(errstr));
        if (!probe) {
            TF_LOG(TF_LOG_CRIT, "pg", "%s", errstr);
            return refused ? TF_EXIT_NOPERM : TF_EXIT_UNAVAILABLE;
        }
        PQfinish(probe);
    }
    PGconn *conn = connect_listen(pg, errstr, sizeof(errstr));
    if (!conn) {
        TF_LOG(TF_LOG_ERR, "pg", "%s", errstr);
        return EXIT_ERROR;
    }
    /* Without --since/--after-id: the alerts visible now are history, and
     * skipped; everything else is new, including an alert with a lower id
     * whose transaction is still open at this instant. */
    int64_t start = 0, start_max = 0, *history = NULL;
    size_t nhistory = 0;
    if (after_id >= 0)
        start = after_id;
    else if (fl.since < 0) {
        if (tf_alerts_feed_visible_tail(conn, START_WINDOW, &start_max, &history, &nhistory,
                                        errstr, sizeof(errstr)) != 0) {
            TF_LOG(TF_LOG_ERR, "pg", "%s", errstr);
            PQfinish(conn);
            return EXIT_ERROR;
        }
        start = start_max > START_WINDOW ? start_max - START_WINDOW : 0;
    }
    tf_alerts_feed_t *feed = tf_alerts_feed_new(start, errstr, sizeof(errstr));
    if (!feed) {
        TF_LOG(TF_LOG_ERR, "alerts", "%s", errstr);
        free(history);
        PQfinish(conn);
        return EXIT_ERROR;
    }

    TF_LOG(TF_LOG_INFO, "alerts", "listening; reading after alert %" PRId64 "%s", start,
           nhistory ? " (alerts visible at start skipped)" : "");
    int rc = EXIT_OK, backoff = 200;
    long printed = 0;
    int64_t deadline = timeout_s > 0 ? now_ms() + timeout_s * 1000 : 0;
    while (!stop_requested) {
        if (!conn) {
            conn = connect_listen(pg, errstr, sizeof(errstr));
            if (!conn) {
                TF_LOG(TF_LOG_WARNING, "pg", "%s (retrying in %d ms)", errstr, backoff);
                usleep((useconds_t)backoff * 1000);
                if (backoff < 5000)
                    backoff *= 2;
                if (deadline && now_ms() >= deadline)
                    break;
                continue;
            }
            TF_LOG(TF_LOG_NOTICE, "pg", "reconnected; resuming after alert %" PRId64,
                   tf_alerts_feed_cursor(feed));
            backoff = 200;
        }
        const tf_alert_row_t *rows;
        size_t n;
        int held = 0;
        if (tf_alerts_feed_fetch(feed, conn, 1000, &rows, &n, &held, errstr, sizeof(errstr)) !=
            0) {
            if (PQstatus(conn) == CONNECTION_OK) {
                /* The connection works, the data does not: not worth a retry. */
                TF_LOG(TF_LOG_ERR, "alerts", "%s", errstr);
                rc = EXIT_ERROR;
                break;
            }
            TF_LOG(TF_LOG_WARNING, "pg", "%s", errstr);
            PQfinish(conn);
            conn = NULL;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            tf_alerts_feed_advance(feed, rows[i].a.alert_id);
            if (nhistory && rows[i].a.alert_id <= start_max &&
                bsearch(&rows[i].a.alert_id, history, nhistory, sizeof(*history), cmp_id))
                continue;
            if (!tf_alerts_filter_match(&fl, &rows[i]))
                continue;
            if (emit(&rows[i], json) != 0) {
                TF_LOG(TF_LOG_ERR, "alerts", "cannot write the output");
                rc = EXIT_ERROR;
                goto done;
            }
            if (++printed >= count && count > 0)
                goto done;
        }
        if (n == 1000)
            continue;
        if (!follow && !held)
            break;
        int wait = held ? 50 : 1000;
        if (deadline) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                break;
            if (left < wait)
                wait = (int)left;
        }
        if (wait_notify(conn, wait) != 0) {
            TF_LOG(TF_LOG_WARNING, "pg", "connection lost: %s", PQerrorMessage(conn));
            PQfinish(conn);
            conn = NULL;
        }
    }
done:
    if (rc == EXIT_OK && deadline && printed == 0 && !stop_requested)
        rc = EXIT_TIMEOUT;
    tf_alerts_feed_destroy(feed);
    free(history);
    if (conn)
        PQfinish(conn);
    return rc;
}
