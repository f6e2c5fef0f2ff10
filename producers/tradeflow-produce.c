/*
 * tradeflow-produce - validates customs / investment feeds (CSV, JSON Lines,
 * files or a live stream on stdin) and publishes them to Kafka as Avro, each
 * record exactly once per run (idempotent producer, acks=all), a whole file
 * atomically in one Kafka transaction by default.
 *
 * See docs/produce.md and --help. Exit statuses are listed in usage().
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tf_buf.h"
#include "tf_codec.h"
#include "tf_config.h"
#include "tf_http.h"
#include "tf_inbox.h"
#include "tf_metrics.h"
#include "tf_rdstats.h"
#include "tf_input.h"
#include "tf_kafka.h"
#include "tf_log.h"
#include "tf_produce_feed.h"
#include "tf_produce_pub.h"
#include "tf_record.h"
#include "tf_source.h"

#ifndef TF_VERSION
#define TF_VERSION "0.0.0"
#endif

#define PROG "tradeflow-produce"

/* Exit statuses (documented in usage() and docs/produce.md). When several
 * apply, the most serious wins, in this order: 2, 66, 65, 3, 1. */
enum {
    EXIT_ALL_GOOD = 0,
    EXIT_SOME_REJECTED = 1,
    EXIT_DELIVERY = 2,
    EXIT_STRICT = 3,
    EXIT_USAGE = 64,
    EXIT_DATAERR = 65, /* an input was unusable (bad header, read error) */
    EXIT_NOINPUT = 66, /* an input could not be opened */
};

static int exit_rank(int code)
{
    switch (code) {
    case EXIT_DELIVERY: return 6;
    case EXIT_NOINPUT: return 5;
    case EXIT_DATAERR: return 4;
    case EXIT_STRICT: return 3;
    case EXIT_SOME_REJECTED: return 2;
    default: return 0;
    }
}

#define TXN_TIMEOUT_MS 60000     /* init / commit / abort calls */
#define FLUSH_TIMEOUT_MS 30000   /* waiting for acknowledgements at the end */
#define MAX_FAILURES_SHOWN 20    /* per run; the rest are only counted */

/* Set by the SIGINT/SIGTERM handler. */
static volatile sig_atomic_t g_stop;
/* The input descriptor being read, and /dev/null to put in its place: the
 * handler dup2()s /dev/null over the input so that a reader blocked on (or
 * about to call) read() sees end of input at once. */
static volatile sig_atomic_t g_input_fd = -1;
static int g_devnull = -1;
/* Progress, rejects and delivery failures are printed from two threads (the
 * reader's and the publisher's): this lock keeps their lines whole and the
 * progress line's state right. */
static pthread_mutex_t g_out = PTHREAD_MUTEX_INITIALIZER;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    int fd = g_input_fd;
    if (fd >= 0 && g_devnull >= 0)
        dup2(g_devnull, fd);
}

/* A -X or -F argument, applied in command-line order as kcat does. */

typedef struct opts {
    tf_dataset_t kind;
    bool kind_set;
    bool format_set;
    tf_format_t format;
    const char *brokers;
    tf_config_t *cfg; /* owns the strings of this struct */
    const char *topic;
    int partitions;
    int replication_factor;
    const char *rejects_path;
    bool strict;
    bool no_transaction;
    const char *transactional_id;
    int linger_ms; /* -1: default */
    bool quiet;
    int log_level;
    tf_log_format_t log_format;
    const char *schema_dir;
    const char *registry_url;
    const char *registry_user; /* "user:password" or NULL */
    const char *registry_ca;   /* CA file for TLS or NULL */
    long crash_after; /* TF_TEST_CRASH_AFTER: test hook, 0 = off */
    bool crash_after_commit; /* TF_TEST_CRASH_AFTER_COMMIT: --watch test hook */
    /* Source profiles (docs/input-formats.md, "Source profiles"). */
    tf_source_opts_t src;
    const char *fx_path;
    const char *rejects_topic;
    bool complete_release; /* --complete-release: markers per scope */
    bool release_mtime;    /* --release mtime: each file's mtime (UTC) is its release */
    const char *watch_dir;   /* --watch DIR */
    int watch_interval_ms;
    const char *watch_state_topic;
    int startup_ms; /* startup.timeout */
} opts_t;

/* A rejected record waiting for the main thread to send it to
 * --rejects-topic (the reader thread queues it, see on_bad). */
typedef struct dlq_item {
    long line;
    char column[96];
    char reason[384];
    char *raw; /* owned */
    size_t rawlen;
} dlq_item_t;

typedef struct counts {
    uint64_t read, published, rejected, failed, skipped, marks;
} counts_t;

typedef struct run {
    opts_t *o;
    char topic[256];
    tf_codec_t *codec;
    tf_buf_t value;
    rd_kafka_conf_t *base_conf; /* template duplicated for each producer */
    tf_pub_t *live_pub;         /* non-transactional, shared by live inputs */
    tf_pub_t *txn_pub;          /* the transactional producer of the current id */
    bool topic_ready;
    FILE *rejects;
    bool progress;              /* stderr is a terminal and not --quiet */
    bool progress_shown;        /* a progress line is on screen */
    const char *cur_name;       /* input shown in messages */
    int failures_shown;
    int bad_flag;               /* a bad record was met in this pass (atomic) */
    double pass_t0, next_progress; /* progress, on the reader thread */
    off_t pass_size;
    counts_t total;
    int status;
    int files;
    tf_econ_t *econ;       /* iso-codes tables, with --source */
    tf_fx_t *fx;           /* --fx */
    tf_source_t *src;      /* the profile, with --source */
    bool dlq_ready;        /* --rejects-topic exists */
    dlq_item_t *dlq;       /* queued rejects (under g_out) */
    size_t ndlq, dlq_cap;
    bool dlq_lost;         /* out of memory while queueing a reject */
    uint64_t skipped;      /* rows a profile skipped, this run */
    /* --complete-release: the (source, reporter, period) scopes of the file
     * being published (record id prefixes), main thread only. */
    char (*scopes)[TF_RECORD_ID_MAX + 1];
    size_t nscopes, cap_scopes, last_scope;
    /* --watch: the file being published, its identity (written to the state
     * topic in the file's transaction) and how it ended. */
    const char *inbox_identity;
    char state_topic[300];
    bool file_committed;
    counts_t file_counts;
    char file_note[1200];
    char watch_txn_id[256];
} run_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_status(run_t *run, int code)
{
    if (exit_rank(code) > exit_rank(run->status))
        run->status = code;
}

static void clear_progress(run_t *run)
{
    if (run->progress_shown) {
        fputs("\r\033[K", stderr);
        run->progress_shown = false;
    }
}

static void usage(FILE *fp)
{
    fprintf(fp,
"Usage: " PROG " --kind customs|investment [options] FILE... | -\n"
"\n"
"Validates customs or investment records (CSV with a header row, or JSON Lines)\n"
"and publishes them to Kafka as Avro (key \"reporter|partner\"), with an\n"
"idempotent producer and acks=all. A regular file is published atomically in\n"
"one Kafka transaction: read_committed consumers see all of its good records or\n"
"none. '-' (stdin), pipes and FIFOs are live streams: records go out as they\n"
"arrive (no transaction), within linger.ms.\n"
"\n"
"Options:\n"
"  -k, --kind KIND            customs or investment (required unless --source)\n"
"  -f, --format FMT           csv or jsonl (also json, ndjson); default from\n"
"                             the file extension; required for '-'\n"
"  -b, --brokers LIST         bootstrap servers (default $TRADEFLOW_BROKERS)\n"
"  -X KEY=VALUE               librdkafka property (repeatable; -X list shows all)\n"
"  -F FILE                    librdkafka properties file (key=value, # comments)\n"
"  -t, --topic TOPIC          default tradeflow.customs / tradeflow.investment\n"
"      --startup-timeout S    wait at most S s for a broker to answer (default 15;\n"
"                             then exit 2 with \"no answer from the Kafka cluster\")\n"
"      --partitions N         partitions when the topic is created (default 6)\n"
"      --replication-factor N replication factor when the topic is created\n"
"                             (default -1: the broker's default)\n"
"      --rejects FILE         also write rejected records to FILE, in the input's\n"
"                             format plus a reason column ('-' = stdout)\n"
"      --rejects-topic TOPIC  also send rejected records to TOPIC (the record's\n"
"                             text; headers file, line, column, reason), in the\n"
"                             file's transaction\n"
"      --source NAME          input layout: plain (tradeflow's, the default),\n"
"                             comtrade, comext or gacc (customs only)\n"
"      --release DATE         the release's date (YYYY-MM-DD[THH:MM[:SS]]): the\n"
"                             revision of every record (required with --source);\n"
"                             'mtime': each file's modification time (UTC)\n"
"      --hs-level L           commodity rows taken: total, 2, 4, 6, 8 or 10\n"
"                             (comtrade: required; comext, gacc: default 8)\n"
"      --fx FILE              exchange rates (period,currency,usd_per_unit) for\n"
"                             values in EUR (comext) or CNY (gacc 人民币)\n"
"      --encoding ENC         gacc: auto (default), utf-8 or gbk (read as GB18030)\n"
"      --flow FLOW            gacc: export or import, when the file has no flow\n"
"                             column (the flow the query was made for)\n"
"      --watch DIR            publish each file renamed into DIR once (one\n"
"                             transaction per file), move it to DIR/done or\n"
"                             DIR/failed with a report; runs until SIGTERM\n"
"      --watch-interval-ms N  how often DIR is scanned (default 1000)\n"
"      --watch-state-topic T  where published files are recorded (default\n"
"                             TOPIC.inbox)\n"
"      --complete-release     with --source: each file is the complete release of\n"
"                             every (source, reporter, month) it contains: cells of\n"
"                             those scopes that it lacks are withdrawn\n"
"      --strict               publish nothing from a file with any bad record\n"
"                             (live input: stop at the first bad record)\n"
"      --no-transaction       publish files without a transaction (records are\n"
"                             visible as they are acknowledged)\n"
"      --transactional-id ID  use ID for every file instead of the derived\n"
"                             tradeflow-produce-KIND-HOST-HASH(topic, real path)\n"
"      --linger-ms N          batching delay (default 5; bounds live latency)\n"
"  -q, --quiet                no progress, no summary (rejects are still shown)\n"
"      --log-level LEVEL      emerg..debug or 0..7 (default info)\n"
"      --log-format FMT       text or json (default text)\n"
"      --schema-dir DIR       Avro schemas (default $TRADEFLOW_SCHEMA_DIR or the\n"
"                             installed ones)\n"
"      --registry-url URL     Confluent-compatible schema registry: register the\n"
"                             schema under TOPIC-value and frame messages with\n"
"                             its id; default: Avro single-object encoding\n"
"      --registry-user U:P    basic auth for the registry\n"
"      --registry-ca FILE     CA certificate for the registry's TLS\n"
"  -c, --config FILE          key = value settings (default: $TRADEFLOW_CONFIG);\n"
"                             kafka.* go to librdkafka; precedence: defaults <\n"
"                             file < TRADEFLOW_<KEY> environment < flags\n"
"      --print-config         print the effective settings (secrets masked), exit\n"
"      --metrics-addr ADDR    serve /metrics, /healthz, /readyz on HOST:PORT (:PORT\n"
"                             binds 127.0.0.1); for live inputs (default: off)\n"
"      --help-config          print the reference of every setting, exit\n"
"  -h, --help                 this help\n"
"  -V, --version              version\n"
"\n"
"Bad records are reported on stderr as FILE:LINE: column: reason and never\n"
"published; a summary (read, published, rejected, failed, rate) ends the run.\n"
"Progress is shown when stderr is a terminal. SIGINT/SIGTERM: stop reading,\n"
"flush what was read (a file's open transaction is aborted), report what was\n"
"not delivered, exit; a second signal exits at once.\n"
"\n"
"Exit status (if several apply, the first in this list wins):\n"
"  2   delivery or transaction failed: not every good record was acknowledged\n"
"      (for a transactional file: nothing from it is visible)\n"
"  66  an input could not be opened\n"
"  65  an input was unusable (unknown/missing column in the header, read error);\n"
"      nothing from a transactional file is published\n"
"  3   --strict refused a file that had bad records (nothing from it published)\n"
"  1   some records were rejected; all good ones were published\n"
"  0   every record was valid and acknowledged\n"
"  64  usage error\n");
}


enum {
    O_PARTITIONS = 256,
    O_RF,
    O_REJECTS,
    O_STRICT,
    O_NOTXN,
    O_TXNID,
    O_LINGER,
    O_LOGLEVEL,
    O_LOGFMT,
    O_SCHEMADIR,
    O_REGISTRY,
    O_REGUSER,
    O_REGCA,
    O_PRINT,
    O_HELPCFG,
    O_METRICS,
    O_SOURCE,
    O_RELEASE,
    O_HSLEVEL,
    O_FX,
    O_ENCODING,
    O_FLOW,
    O_REJTOPIC,
    O_COMPLETE,
    O_WATCH,
    O_WATCHINT,
    O_STARTUP,
    O_WATCHTOPIC,
};

/* The configuration table (docs/configuration.md is generated from it). */
static const tf_cfg_prop_t produce_props[] = {
    {"kind", TF_CFG_ENUM, NULL, 0, 0, "customs|investment", 0, "dataset of the input (required)"},
    {"format", TF_CFG_ENUM, NULL, 0, 0, "csv|jsonl|json|ndjson", 0,
     "input format (default: from the file name; required for stdin)"},
    {"brokers", TF_CFG_STRING, NULL, 0, 0, NULL, 0, "Kafka bootstrap servers"},
    {"startup.timeout", TF_CFG_INT, "15", 1, 3600, NULL, 0,
     "seconds to wait for a Kafka broker to answer before a file is published; then exit 2"},
    {"topic", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "topic (default: tradeflow.customs / tradeflow.investment)"},
    {"partitions", TF_CFG_INT, "6", 1, 100000, NULL, 0, "partitions when the topic is created"},
    {"replication.factor", TF_CFG_INT, "-1", -1, 1000, NULL, 0,
     "replication factor when the topic is created (-1: the broker's default)"},
    {"rejects", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "write rejected records here, in the input's format plus a reason"},
    {"strict", TF_CFG_BOOL, "false", 0, 0, NULL, 0, "publish nothing from a file with a bad record"},
    {"transaction", TF_CFG_BOOL, "true", 0, 0, NULL, 0, "publish each file in one Kafka transaction"},
    {"transactional.id", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "transactional.id (default: derived from host, topic and file)"},
    {"linger.ms", TF_CFG_INT, "-1", -1, 900000, NULL, 0,
     "batching delay (-1: 5 ms; bounds live latency)"},
    {"quiet", TF_CFG_BOOL, "false", 0, 0, NULL, 0, "no summary or progress, warnings and errors only"},
    {"log.level", TF_CFG_ENUM, "info", 0, 0,
     "emerg|alert|crit|error|err|warning|warn|notice|info|debug|0|1|2|3|4|5|6|7", 0, "log level"},
    {"log.format", TF_CFG_ENUM, "text", 0, 0, "text|json", 0, "log format"},
    {"schema.dir", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "directory of the Avro schemas (default: the installed ones)"},
    {"registry.url", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "Confluent-compatible schema registry; switches to Confluent framing"},
    {"registry.user", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "registry basic auth as user:password (password masked in output)"},
    {"registry.ca", TF_CFG_STRING, NULL, 0, 0, NULL, 0, "CA certificate file for the registry"},
    {"metrics.addr", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "serve /metrics, /healthz, /readyz on HOST:PORT (:PORT = 127.0.0.1); unset = off"},
    {"rejects.topic", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "also send rejected records to this topic, with file, line, column and reason headers"},
    {"source", TF_CFG_ENUM, "plain", 0, 0, "plain|comtrade|comext|gacc", 0,
     "input layout: tradeflow's own (plain) or a statistics office's"},
    {"release", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "release date of a source file (YYYY-MM-DD[THH:MM[:SS]], or mtime): the records' revision"},
    {"hs.level", TF_CFG_ENUM, NULL, 0, 0, "total|2|4|6|8|10", 0,
     "commodity rows a source file contributes (comtrade: required; others: 8)"},
    {"fx", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "exchange-rate table (period,currency,usd_per_unit) for non-USD sources"},
    {"encoding", TF_CFG_ENUM, "auto", 0, 0, "auto|utf-8|utf8|gbk|gb18030", 0,
     "gacc files: character encoding (auto: UTF-8 if valid, else GB18030)"},
    {"flow", TF_CFG_ENUM, NULL, 0, 0, "export|import", 0,
     "gacc files without a flow column: the flow the query was made for"},
    {"watch", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "inbox directory: publish each file renamed into it once, then move it to done/ or failed/"},
    {"watch.interval.ms", TF_CFG_INT, "1000", 10, 3600000, NULL, 0, "how often the inbox is scanned"},
    {"watch.state.topic", TF_CFG_STRING, NULL, 0, 0, NULL, 0,
     "topic recording the inbox's published files (default: TOPIC.inbox)"},
    {"complete.release", TF_CFG_BOOL, "false", 0, 0, NULL, 0,
     "each source file is the complete release of its (source, reporter, month) scopes"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL}};

/* The program's own early answer: -X list (librdkafka's properties). */
static int cli_other(int code, const char *arg, int pass, void *std)
{
    tf_cfg_std_t *cli = std;
    if (pass == 1 && code == 'X' && arg && strcmp(arg, "list") == 0) {
        rd_kafka_conf_properties_show(stdout);
        cli->exit_code = 0;
        return -1;
    }
    return pass == 1 ? 0 : -1;
}

/* Returns 0, -1 on a usage error, or 1 when the program should exit 0
 * (--help, --version, --print-config, ...). */
static int parse_args(int argc, char **argv, opts_t *o)
{
    static const struct option lopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"kind", required_argument, NULL, 'k'},
        {"format", required_argument, NULL, 'f'},
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"partitions", required_argument, NULL, O_PARTITIONS},
        {"replication-factor", required_argument, NULL, O_RF},
        {"rejects", required_argument, NULL, O_REJECTS},
        {"strict", no_argument, NULL, O_STRICT},
        {"no-transaction", no_argument, NULL, O_NOTXN},
        {"transactional-id", required_argument, NULL, O_TXNID},
        {"linger-ms", required_argument, NULL, O_LINGER},
        {"quiet", no_argument, NULL, 'q'},
        {"log-level", required_argument, NULL, O_LOGLEVEL},
        {"log-format", required_argument, NULL, O_LOGFMT},
        {"schema-dir", required_argument, NULL, O_SCHEMADIR},
        {"registry-url", required_argument, NULL, O_REGISTRY},
        {"registry-user", required_argument, NULL, O_REGUSER},
        {"registry-ca", required_argument, NULL, O_REGCA},
        {"print-config", no_argument, NULL, O_PRINT},
        {"help-config", no_argument, NULL, O_HELPCFG},
        {"metrics-addr", required_argument, NULL, O_METRICS},
        {"source", required_argument, NULL, O_SOURCE},
        {"release", required_argument, NULL, O_RELEASE},
        {"hs-level", required_argument, NULL, O_HSLEVEL},
        {"fx", required_argument, NULL, O_FX},
        {"encoding", required_argument, NULL, O_ENCODING},
        {"flow", required_argument, NULL, O_FLOW},
        {"rejects-topic", required_argument, NULL, O_REJTOPIC},
        {"complete-release", no_argument, NULL, O_COMPLETE},
        {"watch", required_argument, NULL, O_WATCH},
        {"watch-interval-ms", required_argument, NULL, O_WATCHINT},
        {"startup-timeout", required_argument, NULL, O_STARTUP},
        {"watch-state-topic", required_argument, NULL, O_WATCHTOPIC},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    static const tf_cfg_flag_t flags[] = {
        {'k', "kind", NULL},
        {'f', "format", NULL},
        {'b', "brokers", NULL},
        {'t', "topic", NULL},
        {O_PARTITIONS, "partitions", NULL},
        {O_RF, "replication.factor", NULL},
        {O_REJECTS, "rejects", NULL},
        {O_STRICT, "strict", "true"},
        {O_NOTXN, "transaction", "false"},
        {O_TXNID, "transactional.id", NULL},
        {O_LINGER, "linger.ms", NULL},
        {'q', "quiet", "true"},
        {O_LOGLEVEL, "log.level", NULL},
        {O_LOGFMT, "log.format", NULL},
        {O_SCHEMADIR, "schema.dir", NULL},
        {O_REGISTRY, "registry.url", NULL},
        {O_REGUSER, "registry.user", NULL},
        {O_REGCA, "registry.ca", NULL},
        {O_METRICS, "metrics.addr", NULL},
        {O_SOURCE, "source", NULL},
        {O_RELEASE, "release", NULL},
        {O_HSLEVEL, "hs.level", NULL},
        {O_FX, "fx", NULL},
        {O_ENCODING, "encoding", NULL},
        {O_FLOW, "flow", NULL},
        {O_REJTOPIC, "rejects.topic", NULL},
        {O_COMPLETE, "complete.release", "true"},
        {O_WATCH, "watch", NULL},
        {O_WATCHINT, "watch.interval.ms", NULL},
        {O_STARTUP, "startup.timeout", NULL},
        {O_WATCHTOPIC, "watch.state.topic", NULL},
        {0, NULL, NULL},
    };
    char err[1024];
    char version_extra[64];
    snprintf(version_extra, sizeof(version_extra), " (librdkafka %s)", rd_kafka_version_str());
    tf_cfg_std_t cli = {.program = PROG, .version = TF_VERSION, .version_extra = version_extra,
                        .props = produce_props, .usage = usage, .code_version = 'V',
                        .code_help_config = O_HELPCFG, .code_print_config = O_PRINT,
                        .other = cli_other, .exit_code = -1};
    if (!(o->cfg = tf_config_new(PROG, produce_props))) {
        fprintf(stderr, PROG ": out of memory\n");
        return -1;
    }
    if (tf_config_parse_args(o->cfg, argc, argv, "c:k:f:b:X:F:t:qhV", lopts, flags,
                             tf_config_std_other, &cli, err, sizeof(err)) != 0) {
        if (cli.exit_code == 0)
            return 1;
        if (err[0])
            fprintf(stderr, PROG ": %s\n", err);
        return -1;
    }
    if (cli.print_config) {
        tf_config_print(o->cfg, stdout);
        return 1;
    }
    const tf_config_t *cfg = o->cfg;
    const char *v;
    if ((v = tf_config_str(cfg, "kind"))) {
        tf_dataset_parse(v, &o->kind);
        o->kind_set = true;
    }
    if ((v = tf_config_str(cfg, "format"))) {
        tf_format_parse(v, &o->format);
        o->format_set = true;
    }
    o->brokers = tf_config_str(cfg, "brokers");
    o->topic = tf_config_str(cfg, "topic");
    o->partitions = (int)tf_config_int(cfg, "partitions");
    o->replication_factor = (int)tf_config_int(cfg, "replication.factor");
    if (o->replication_factor == 0) {
        fprintf(stderr, PROG ": --replication-factor must be -1 or 1..1000\n");
        return -1;
    }
    o->rejects_path = tf_config_str(cfg, "rejects");
    o->strict = tf_config_bool(cfg, "strict");
    o->no_transaction = !tf_config_bool(cfg, "transaction");
    o->transactional_id = tf_config_str(cfg, "transactional.id");
    o->linger_ms = (int)tf_config_int(cfg, "linger.ms");
    o->quiet = tf_config_bool(cfg, "quiet");
    o->log_level = tf_log_level_parse(tf_config_str(cfg, "log.level"));
    o->log_format = strcmp(tf_config_str(cfg, "log.format"), "json") == 0 ? TF_LOG_JSON
                                                                         : TF_LOG_TEXT;
    o->schema_dir = tf_config_str(cfg, "schema.dir");
    o->registry_url = tf_config_str(cfg, "registry.url");
    o->registry_user = tf_config_str(cfg, "registry.user");
    o->registry_ca = tf_config_str(cfg, "registry.ca");
    o->rejects_topic = tf_config_str(cfg, "rejects.topic");
    tf_source_parse(tf_config_str(cfg, "source"), &o->src.kind);
    o->src.hs_level = TF_HS_LEVEL_UNSET;
    if ((v = tf_config_str(cfg, "hs.level")))
        o->src.hs_level = strcmp(v, "total") == 0 ? TF_HS_LEVEL_TOTAL : atoi(v);
    tf_encoding_parse(tf_config_str(cfg, "encoding"), &o->src.encoding);
    if ((v = tf_config_str(cfg, "flow")))
        tf_flow_parse(TF_DATASET_CUSTOMS, v, &o->src.flow);
    o->fx_path = tf_config_str(cfg, "fx");
    o->complete_release = tf_config_bool(cfg, "complete.release");
    if (o->complete_release && o->src.kind == TF_SOURCE_PLAIN) {
        fprintf(stderr, PROG ": --complete-release needs --source (its scopes are the source "
                        "profiles' (source, reporter, month))\n");
        return -1;
    }
    if (o->complete_release && o->no_transaction) {
        fprintf(stderr, PROG ": --complete-release needs transactions (a release marker is "
                        "committed with its file)\n");
        return -1;
    }
    if ((v = tf_config_str(cfg, "release"))) {
        char why[160];
        if (strcmp(v, "mtime") == 0) {
            o->release_mtime = true;
            o->src.release = 1; /* set per file from its modification time */
        } else if (tf_release_parse(v, &o->src.release, why, sizeof why)) {
            fprintf(stderr, PROG ": --release: %s\n", why);
            return -1;
        }
    }
    if (o->src.kind != TF_SOURCE_PLAIN) {
        if (o->kind_set && o->kind != TF_DATASET_CUSTOMS) {
            fprintf(stderr, PROG ": --source %s is customs data (--kind customs)\n",
                    tf_source_name(o->src.kind));
            return -1;
        }
        o->kind = TF_DATASET_CUSTOMS;
        o->kind_set = true;
        if (o->src.release <= 0) {
            fprintf(stderr,
                    PROG ": --source %s needs --release DATE (the release's publication date, "
                         "the records' revision)\n",
                    tf_source_name(o->src.kind));
            return -1;
        }
    } else if (tf_config_str(cfg, "release") || tf_config_str(cfg, "hs.level") ||
               o->fx_path || tf_config_str(cfg, "flow")) {
        fprintf(stderr, PROG ": --release, --hs-level, --fx and --flow need --source\n");
        return -1;
    }
    if (!o->kind_set) {
        fprintf(stderr, PROG ": --kind customs|investment is required\n");
        return -1;
    }
    o->watch_dir = tf_config_str(cfg, "watch");
    o->watch_interval_ms = (int)tf_config_int(cfg, "watch.interval.ms");
    o->startup_ms = 1000 * (int)tf_config_int(cfg, "startup.timeout");
    o->watch_state_topic = tf_config_str(cfg, "watch.state.topic");
    if (o->watch_dir) {
        if (optind < argc) {
            fprintf(stderr, PROG ": --watch DIR takes no FILE arguments\n");
            return -1;
        }
        if (o->no_transaction) {
            fprintf(stderr, PROG ": --watch publishes each file in a transaction\n");
            return -1;
        }
        return 0; /* each file's format comes from its extension unless --format */
    }
    if (optind >= argc) {
        fprintf(stderr, PROG ": no input: give FILE... or - for stdin\n");
        return -1;
    }
    int dashes = 0;
    for (int i = optind; i < argc; i++) {
        tf_format_t f;
        if (strcmp(argv[i], "-") == 0) {
            dashes++;
            if (!o->format_set) {
                fprintf(stderr, PROG ": stdin needs --format csv|jsonl\n");
                return -1;
            }
        } else if (!o->format_set && tf_format_from_path(argv[i], &f) != 0 &&
                   o->src.kind == TF_SOURCE_PLAIN) {
            fprintf(stderr, PROG ": %s: cannot tell the format from the name; give --format\n",
                    argv[i]);
            return -1;
        }
    }
    if (dashes > 1) {
        fprintf(stderr, PROG ": '-' given more than once\n");
        return -1;
    }
    return 0;
}

/* FNV-1a, 64 bits: a stable hash for the derived transactional id. */
static uint64_t fnv1a64(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The transactional id of a file: stable across runs for the same topic and
 * file (so a re-run fences a crashed run's zombie producer and aborts its
 * open transaction), different for different files (so they can be
 * published concurrently). The host is part of it because paths are per
 * host. */
static void derive_txn_id(const run_t *run, const char *path, char *out, size_t outlen)
{
    char real[PATH_MAX];
    if (strcmp(path, "-") == 0) {
        /* A regular file redirected to stdin: use the file's own path. */
        ssize_t n = readlink("/proc/self/fd/0", real, sizeof(real) - 1);
        real[n > 0 ? n : 0] = '\0';
        if (n <= 0)
            snprintf(real, sizeof(real), "-");
    } else if (!realpath(path, real)) {
        snprintf(real, sizeof(real), "%s", path);
    }
    char host[65] = "localhost";
    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv1a64(h, run->topic, strlen(run->topic) + 1);
    h = fnv1a64(h, real, strlen(real));
    snprintf(out, outlen, "tradeflow-produce-%s-%s-%016llx", tf_dataset_name(run->o->kind), host,
             (unsigned long long)h);
}

static void on_delivery_failure(void *opaque, long line, const char *reason)
{
    run_t *run = opaque;
    if (run->failures_shown < MAX_FAILURES_SHOWN) {
        pthread_mutex_lock(&g_out);
        clear_progress(run);
        fprintf(stderr, "%s:%ld: -: not delivered: %s\n", run->cur_name, line, reason);
        if (++run->failures_shown == MAX_FAILURES_SHOWN)
            fprintf(stderr, PROG ": further delivery failures are only counted\n");
        pthread_mutex_unlock(&g_out);
    }
}

/* Creates the topic (once per run) with the first producer handle. */
static int ensure_topic(run_t *run, tf_pub_t *p)
{
    if (run->topic_ready)
        return 0;
    char err[512], err2[512];
    rd_kafka_t *rk = tf_pub_handle(p);
    if (tf_kafka_create_topic(rk, run->topic, run->o->partitions, run->o->replication_factor,
                              30000, err, sizeof(err)) != 0) {
        /* Creating may be forbidden (ACLs) for a topic that exists anyway. */
        int ex = tf_kafka_topic_exists(rk, run->topic, 10000, err2, sizeof(err2));
        if (ex != 1) {
            TF_LOG(TF_LOG_ERR, "produce", "%s", err);
            return -1;
        }
        TF_LOG(TF_LOG_DEBUG, "produce", "%s (the topic exists: going on)", err);
    }
    if (run->state_topic[0] &&
        tf_kafka_create_topic(rk, run->state_topic, 1, run->o->replication_factor, 30000, err,
                              sizeof(err)) != 0 &&
        tf_kafka_topic_exists(rk, run->state_topic, 10000, err2, sizeof(err2)) != 1) {
        TF_LOG(TF_LOG_ERR, "produce", "--watch-state-topic: %s", err);
        return -1;
    }
    const char *dlq = run->o->rejects_topic;
    if (dlq && tf_kafka_create_topic(rk, dlq, run->o->partitions, run->o->replication_factor,
                                     30000, err, sizeof(err)) != 0 &&
        tf_kafka_topic_exists(rk, dlq, 10000, err2, sizeof(err2)) != 1) {
        TF_LOG(TF_LOG_ERR, "produce", "--rejects-topic: %s", err);
        return -1;
    }
    run->topic_ready = true;
    return 0;
}

/* Metrics and health (--metrics-addr; NULL/zero when off). Globals because
 * librdkafka's statistics callback only gets the producer's opaque. */
static tf_metrics_t *g_metrics;
static tf_metrics_std_t g_m;
static tf_rdstats_t *g_rdstats;
static tf_http_t *g_http;

static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    (void)opaque;
    char errstr[256];
    if (g_rdstats && tf_rdstats_update(g_rdstats, json, len, errstr, sizeof(errstr)))
        TF_LOG(TF_LOG_WARNING, "stats", "%s", errstr);
    return 0;
}

/* /readyz: a broker is up according to recent statistics. */
static int producer_ready(void *arg, char *reason, size_t len)
{
    (void)arg;
    tf_rdstats_summary_t sum;
    tf_rdstats_summary(g_rdstats, &sum);
    if (sum.updated_ms == 0) {
        snprintf(reason, len, "no statistics yet");
        return 0;
    }
    if (sum.brokers_up <= 0) {
        snprintf(reason, len, "no broker up");
        return 0;
    }
    return 1;
}

static tf_pub_t *new_pub(run_t *run, const char *txn_id)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(run->base_conf);
    tf_pub_t *p = tf_pub_new(conf, run->topic, txn_id, TXN_TIMEOUT_MS, run->o->startup_ms,
                             on_delivery_failure, run, err, sizeof(err));
    if (!p) {
        TF_LOG(TF_LOG_ERR, "produce", "%s", err);
        return NULL;
    }
    if (ensure_topic(run, p) != 0) {
        tf_pub_destroy(p);
        return NULL;
    }
    tf_pub_set_counters(p, g_m.producer_delivered, g_m.producer_failed);
    return p;
}

static tf_pub_t *get_live_pub(run_t *run)
{
    if (!run->live_pub)
        run->live_pub = new_pub(run, NULL);
    return run->live_pub;
}

static tf_pub_t *get_txn_pub(run_t *run, const char *txn_id)
{
    if (run->txn_pub && strcmp(tf_pub_transactional_id(run->txn_pub), txn_id) == 0)
        return run->txn_pub;
    tf_pub_destroy(run->txn_pub);
    run->txn_pub = new_pub(run, txn_id);
    if (run->txn_pub)
        TF_LOG(TF_LOG_DEBUG, "produce", "transactional.id %s", txn_id);
    return run->txn_pub;
}

/* Called on the reader thread (tf_feed progress callback). */
static void on_progress(void *opaque, uint64_t nread, uint64_t bytes)
{
    run_t *run = opaque;
    double t = now_s();
    if (t < run->next_progress)
        return;
    run->next_progress = t + 0.5;
    double el = t - run->pass_t0;
    double rate = el > 0 ? (double)nread / el : 0;
    pthread_mutex_lock(&g_out);
    if (run->pass_size > 0 && bytes > 0) {
        double frac = (double)bytes / (double)run->pass_size;
        double eta = frac > 0 ? el / frac - el : 0;
        fprintf(stderr, "\r\033[K%s: %llu records, %.0f/s, %.0f%%, ETA %.0f s", run->cur_name,
                (unsigned long long)nread, rate, frac * 100, eta < 0 ? 0 : eta);
    } else {
        fprintf(stderr, "\r\033[K%s: %llu records, %.0f/s", run->cur_name,
                (unsigned long long)nread, rate);
    }
    run->progress_shown = true;
    pthread_mutex_unlock(&g_out);
}

/* Prints one error line (FILE:LINE: column: reason) and, with r, writes the
 * reader's last record to the rejects file. Any thread. */
static void report_line(run_t *run, tf_reader_t *r, const char *msg, const char *reason)
{
    pthread_mutex_lock(&g_out);
    clear_progress(run);
    fprintf(stderr, "%s\n", msg);
    if (r && run->rejects && tf_reader_write_reject(r, run->rejects, reason) != 0)
        TF_LOG(TF_LOG_ERR, "produce", "cannot write rejects: %s", strerror(errno));
    pthread_mutex_unlock(&g_out);
}

/* Queues the reader's last record for --rejects-topic (reader thread). */
static void dlq_queue(run_t *run, tf_reader_t *r)
{
    size_t len;
    const char *raw = tf_reader_raw(r, &len);
    pthread_mutex_lock(&g_out);
    if (run->ndlq == run->dlq_cap) {
        size_t cap = run->dlq_cap ? run->dlq_cap * 2 : 64;
        dlq_item_t *n = realloc(run->dlq, cap * sizeof *n);
        if (!n) {
            run->dlq_lost = true;
            pthread_mutex_unlock(&g_out);
            return;
        }
        run->dlq = n;
        run->dlq_cap = cap;
    }
    dlq_item_t *it = &run->dlq[run->ndlq];
    it->raw = malloc(len + 1);
    if (!it->raw) {
        run->dlq_lost = true;
        pthread_mutex_unlock(&g_out);
        return;
    }
    memcpy(it->raw, raw, len);
    it->raw[len] = '\0';
    it->rawlen = len;
    it->line = tf_reader_line(r);
    snprintf(it->column, sizeof it->column, "%s", tf_reader_column(r));
    snprintf(it->reason, sizeof it->reason, "%s", tf_reader_reason(r));
    run->ndlq++;
    pthread_mutex_unlock(&g_out);
}

/* Sends the queued rejects to --rejects-topic through pub (main thread), in
 * the file's transaction when it has one. Returns 0 or -1 (err filled). */
static int dlq_drain(run_t *run, tf_pub_t *pub, const char *name, char *err, size_t errlen)
{
    pthread_mutex_lock(&g_out);
    dlq_item_t *items = run->dlq;
    size_t n = run->ndlq;
    bool lost = run->dlq_lost;
    run->dlq = NULL;
    run->ndlq = run->dlq_cap = 0;
    run->dlq_lost = false;
    pthread_mutex_unlock(&g_out);
    int rc = 0;
    if (lost) {
        snprintf(err, errlen, "out of memory queueing a rejected record for %s",
                 run->o->rejects_topic);
        rc = -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && pub) {
            rd_kafka_headers_t *h = rd_kafka_headers_new(5);
            char line[32];
            snprintf(line, sizeof line, "%ld", items[i].line);
            rd_kafka_header_add(h, "file", -1, name, -1);
            rd_kafka_header_add(h, "line", -1, line, -1);
            rd_kafka_header_add(h, "column", -1, items[i].column, -1);
            rd_kafka_header_add(h, "reason", -1, items[i].reason, -1);
            rd_kafka_header_add(h, "source", -1, tf_source_name(run->o->src.kind), -1);
            if (tf_pub_send_side(pub, run->o->rejects_topic, name, strlen(name), items[i].raw,
                                 items[i].rawlen, h, items[i].line, (volatile int *)&g_stop, err,
                                 errlen) != 0)
                rc = -1;
        }
        free(items[i].raw);
    }
    free(items);
    return rc;
}

/* Called on the reader thread for each rejected record. */
static bool on_bad(void *opaque, tf_reader_t *r)
{
    run_t *run = opaque;
    /* After SIGINT/SIGTERM the input reads as closed (see on_signal): a
     * record cut short there is an artefact of stopping, not bad input. */
    if (g_stop)
        return false;
    __atomic_store_n(&run->bad_flag, 1, __ATOMIC_RELAXED);
    tf_metrics_counter_add(g_m.producer_rejected, 1);
    report_line(run, r, tf_reader_error(r), tf_reader_reason(r));
    if (run->o->rejects_topic)
        dlq_queue(run, r);
    return true;
}

/* --complete-release: remembers the scope of a published record (its id up
 * to the last ':', "ct:CHN:202401"). Files come sorted by scope or nearly,
 * so the last hit is tried first. */
static int note_scope(run_t *run, const char *record_id)
{
    const char *colon = strrchr(record_id, ':');
    size_t n = colon ? (size_t)(colon - record_id) : 0;
    if (n == 0)
        return 0;
    if (run->last_scope < run->nscopes &&
        strncmp(run->scopes[run->last_scope], record_id, n) == 0 &&
        run->scopes[run->last_scope][n] == '\0')
        return 0;
    for (size_t i = 0; i < run->nscopes; i++)
        if (strncmp(run->scopes[i], record_id, n) == 0 && run->scopes[i][n] == '\0') {
            run->last_scope = i;
            return 0;
        }
    if (run->nscopes == run->cap_scopes) {
        size_t cap = run->cap_scopes ? run->cap_scopes * 2 : 64;
        void *p = realloc(run->scopes, cap * sizeof *run->scopes);
        if (!p)
            return -1;
        run->scopes = p;
        run->cap_scopes = cap;
    }
    memcpy(run->scopes[run->nscopes], record_id, n);
    run->scopes[run->nscopes][n] = '\0';
    run->last_scope = run->nscopes++;
    return 0;
}

/* --complete-release: one release marker per scope of the file, to the
 * file's topic in its transaction (docs/produce.md, "Complete releases").
 * Returns the number sent, or -1 (err filled). */
static long send_markers(run_t *run, tf_pub_t *pub, char *err, size_t errlen)
{
    long sent = 0;
    for (size_t i = 0; i < run->nscopes; i++) {
        const char *sc = run->scopes[i];
        tf_record_t m = {.dataset = TF_DATASET_CUSTOMS, .kind = TF_KIND_RELEASE,
                         .revision = run->o->src.release, .flow = TF_FLOW_EXPORT};
        /* "<tag>:<reporter>:<YYYYMM>" */
        const char *a = strchr(sc, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        char per[8];
        if (!a || !b || strlen(b + 1) != 6 || (size_t)(b - a - 1) > TF_CODE_MAX) {
            snprintf(err, errlen, "bad release scope \"%s\"", sc);
            return -1;
        }
        snprintf(m.record_id, sizeof m.record_id, "%s", sc);
        memcpy(m.reporter, a + 1, (size_t)(b - a - 1));
        m.reporter[b - a - 1] = '\0';
        /* A marker has no partner of its own, but the record contract needs
         * one that differs from the reporter (and the Kafka key is
         * reporter|partner): WLD, or ISO's user-assigned XXX for the
         * (nonsensical) reporter WLD. The consumer reads only the scope. */
        snprintf(m.partner, sizeof m.partner, "%s", strcmp(m.reporter, "WLD") ? "WLD" : "XXX");
        snprintf(per, sizeof per, "%.4s-%.2s", b + 1, b + 5);
        char why[256];
        if (tf_period_parse(per, &m.period, why, sizeof why) != 0) {
            snprintf(err, errlen, "release scope %s: %s", sc, why);
            return -1;
        }
        tf_buf_reset(&run->value);
        if (tf_codec_encode_record(run->codec, run->topic, &m, &run->value, why, sizeof why)) {
            snprintf(err, errlen, "release marker %s: %s", sc, why);
            return -1;
        }
        if (tf_pub_send_side(pub, run->topic, sc, strlen(sc), run->value.data, run->value.len,
                             NULL, 0, (volatile int *)&g_stop, err, errlen) != 0)
            return -1;
        sent++;
    }
    return sent;
}

/* One pass over an input: a reader thread parses and validates (tf_feed),
 * this thread encodes and sends. With pub == NULL records are only
 * validated (the --strict pre-pass for files published without a
 * transaction). Returns the reader's last status (TF_READ_EOF or
 * TF_READ_FATAL), or PASS_SEND_FAILED; *c is updated and *bad_seen set when
 * a bad record was met. */
enum { PASS_SEND_FAILED = -2 };

static int read_pass(run_t *run, int fd, const char *name, tf_format_t fmt, off_t size,
                     tf_pub_t *pub, bool live, counts_t *c, bool *bad_seen, char *err,
                     size_t errlen)
{
    tf_reader_t *r = run->src ? tf_reader_new_source(fd, name, fmt, run->src, err, errlen)
                              : tf_reader_new(fd, name, fmt, run->o->kind, err, errlen);
    if (!r) {
        fprintf(stderr, "%s: %s\n", name, err);
        return TF_READ_FATAL;
    }
    run->bad_flag = 0;
    run->pass_t0 = now_s();
    run->next_progress = run->pass_t0 + 0.5;
    run->pass_size = size;
    tf_feed_opts_t fo = {
        /* One record per hand-off on a live stream (latency), big batches
         * for files (throughput). */
        .batch = live ? 1 : 512,
        /* A stream cannot be refused as a whole: --strict stops there. */
        .stop_at_bad = run->o->strict && live,
        .bad_cb = on_bad,
        .progress_cb = run->progress ? on_progress : NULL,
        .opaque = run,
    };
    /* SIGINT/SIGTERM go to the reader thread while it runs, so that they
     * interrupt its read() (see on_signal). */
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, &old);
    tf_feed_t *feed = tf_feed_start(r, &fo, err, errlen);
    if (!feed) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        fprintf(stderr, "%s: %s\n", name, err);
        tf_reader_destroy(r);
        return TF_READ_FATAL;
    }

    int result = TF_READ_EOF;
    uint64_t encode_rejects = 0;
    char key[2 * TF_CODE_MAX + 2];
    char why[512];
    const tf_feed_item_t *items;
    size_t n;
    for (;;) {
        /* While a live input is idle, keep serving delivery reports and
         * statistics (and the health heartbeat). */
        while (pub && !tf_feed_wait(feed, 250)) {
            tf_pub_poll(pub);
            tf_http_heartbeat(g_http);
        }
        if (result != TF_READ_EOF || (n = tf_feed_next(feed, &items)) == 0)
            break;
        tf_http_heartbeat(g_http);
        if (pub && run->o->rejects_topic && dlq_drain(run, pub, name, err, errlen) != 0) {
            result = PASS_SEND_FAILED;
            tf_feed_cancel(feed);
            break;
        }
        if (!pub || (run->o->strict && __atomic_load_n(&run->bad_flag, __ATOMIC_RELAXED)))
            continue; /* validating only, or the file is already refused */
        for (size_t i = 0; i < n; i++) {
            const tf_record_t *rec = &items[i].rec;
            tf_buf_reset(&run->value);
            if (tf_codec_encode_record(run->codec, run->topic, rec, &run->value, why,
                                       sizeof(why)) != 0) {
                /* Cannot happen for a validated record unless the schemas
                 * and the validation disagree; not in --rejects (the reader
                 * has moved on). */
                char msg[768];
                snprintf(msg, sizeof(msg), "%s:%ld: -: cannot encode: %s", name, items[i].line,
                         why);
                report_line(run, NULL, msg, why);
                encode_rejects++;
                __atomic_store_n(&run->bad_flag, 1, __ATOMIC_RELAXED);
                continue;
            }
            /* Key "reporter|partner": one partner's records stay in order in
             * one partition. Both codes are validated [A-Z0-9], <= 16 bytes. */
            size_t rl = strlen(rec->reporter), pl = strlen(rec->partner);
            memcpy(key, rec->reporter, rl);
            key[rl] = '|';
            memcpy(key + rl + 1, rec->partner, pl);
            if (tf_pub_send(pub, key, rl + 1 + pl, run->value.data, run->value.len,
                            items[i].line, (volatile int *)&g_stop, err, errlen) != 0) {
                result = PASS_SEND_FAILED;
                tf_feed_cancel(feed);
                break;
            }
            if (run->o->complete_release && note_scope(run, rec->record_id) != 0) {
                snprintf(err, errlen, "out of memory noting release scopes");
                result = PASS_SEND_FAILED;
                tf_feed_cancel(feed);
                break;
            }
            if (run->o->crash_after > 0 && tf_pub_sent(pub) == (uint64_t)run->o->crash_after) {
                /* Test hook: die in the middle of the transaction, after the
                 * records so far have reached the broker, as a crash would. */
                tf_pub_flush(pub, 10000);
                _exit(99);
            }
        }
    }
    uint64_t nread = 0, nrej = 0;
    tf_read_status_t st = tf_feed_finish(feed, &nread, &nrej);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (run->o->rejects_topic) {
        /* The rest of the rejects, before the file's commit. */
        char derr[512];
        if (dlq_drain(run, result == TF_READ_EOF ? pub : NULL, name, derr, sizeof derr) != 0 &&
            result == TF_READ_EOF) {
            snprintf(err, errlen, "%s", derr);
            result = PASS_SEND_FAILED;
        }
    }
    if (run->o->complete_release && pub) {
        if (live) {
            TF_LOG(TF_LOG_WARNING, "produce",
                   "%s: a live input is not a complete release: no release markers", name);
        } else if (result == TF_READ_EOF && st == TF_READ_EOF && !g_stop) {
            if (nrej + encode_rejects > 0) {
                TF_LOG(TF_LOG_WARNING, "produce",
                       "%s: not a complete release (%llu rejected records): no release markers "
                       "sent, so cells it lacks are not withdrawn",
                       name, (unsigned long long)(nrej + encode_rejects));
            } else {
                long nm = send_markers(run, pub, err, errlen);
                if (nm < 0)
                    result = PASS_SEND_FAILED;
                else
                    c->marks += (uint64_t)nm;
            }
        }
        run->nscopes = 0;
        run->last_scope = 0;
    }
    if (tf_reader_skipped(r) > 0) {
        /* Rows the profile does not take: counted by reason, not errors. */
        c->skipped += tf_reader_skipped(r);
        for (size_t k = 0; k < tf_reader_skip_kinds(r); k++) {
            const struct tf_reader_skip *sk = tf_reader_skip_at(r, k);
            TF_LOG(TF_LOG_NOTICE, "produce", "%s: skipped %llu row(s) (first at line %ld): %s",
                   name, (unsigned long long)sk->count, sk->first_line, sk->reason);
        }
    }
    c->read += nread;
    c->rejected += nrej + encode_rejects;
    if (nrej + encode_rejects > 0)
        *bad_seen = true;
    if (st == TF_READ_FATAL && result == TF_READ_EOF) {
        /* Shown like a rejected record: FILE:LINE: column: reason. */
        snprintf(err, errlen, "%s", tf_reader_error(r));
        report_line(run, NULL, err, NULL);
        result = TF_READ_FATAL;
    }
    pthread_mutex_lock(&g_out);
    clear_progress(run);
    pthread_mutex_unlock(&g_out);
    tf_reader_destroy(r);
    return result;
}

static void summary(run_t *run, const char *name, const counts_t *c, double secs,
                    const char *note)
{
    char skipped[96] = "";
    if (c->skipped)
        snprintf(skipped, sizeof skipped, ", skipped %llu", (unsigned long long)c->skipped);
    if (c->marks) {
        size_t k = strlen(skipped);
        snprintf(skipped + k, sizeof skipped - k, ", release markers %llu",
                 (unsigned long long)c->marks);
    }
    TF_LOG(TF_LOG_NOTICE, "produce",
           "%s: read %llu, published %llu, rejected %llu, failed %llu%s in %.2f s "
           "(%.0f records/s)%s%s",
           name, (unsigned long long)c->read, (unsigned long long)c->published,
           (unsigned long long)c->rejected, (unsigned long long)c->failed, skipped, secs,
           secs > 0 ? (double)c->read / secs : 0.0, note && *note ? "; " : "", note ? note : "");
}

/* --watch: records the file's identity in the state topic, in the file's
 * transaction (so "committed" and "recorded" are one fact). */
static int inbox_mark(run_t *run, tf_pub_t *pub, const char *name, const counts_t *c, char *err,
                      size_t errlen)
{
    char v[1024], esc[600];
    size_t k = 0;
    for (const char *p = name; *p && k + 7 < sizeof esc; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\')
            esc[k++] = '\\', esc[k++] = (char)ch;
        else if (ch < 0x20)
            k += (size_t)snprintf(esc + k, sizeof esc - k, "\\u%04x", ch);
        else
            esc[k++] = (char)ch;
    }
    esc[k] = '\0';
    int n = snprintf(v, sizeof v,
                     "{\"file\": \"%s\", \"topic\": \"%s\", \"read\": %llu, \"rejected\": %llu}",
                     esc, run->topic, (unsigned long long)c->read,
                     (unsigned long long)c->rejected);
    return tf_pub_send_side(pub, run->state_topic, run->inbox_identity,
                            strlen(run->inbox_identity), v, (size_t)n, NULL, 0,
                            (volatile int *)&g_stop, err, errlen);
}

static void process_input(run_t *run, const char *path)
{
    opts_t *o = run->o;
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    run->cur_name = name;
    run->files++;
    counts_t c = {0};
    char err[1024] = "", note[1200] = "";
    double t0 = now_s();

    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        TF_LOG(TF_LOG_ERR, "produce", "%s: %s", path, strerror(errno));
        set_status(run, EXIT_NOINPUT);
        return;
    }
    struct stat sb;
    bool regular = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    if (run->src && o->release_mtime) {
        /* --release mtime: the file's modification time is its release. */
        struct tm tm;
        time_t mt = regular ? sb.st_mtime : time(NULL);
        gmtime_r(&mt, &tm);
        int64_t rel = ((((int64_t)(tm.tm_year + 1900) * 100 + tm.tm_mon + 1) * 100 + tm.tm_mday) *
                           100 + tm.tm_hour) * 10000 + tm.tm_min * 100 + tm.tm_sec;
        tf_source_set_release(run->src, rel);
        o->src.release = rel;
        TF_LOG(TF_LOG_INFO, "produce", "%s: release %lld (the file's modification time)", name,
               (long long)rel);
    }
    off_t size = regular ? sb.st_size : 0;
    bool live = !regular;
    bool txn = regular && !o->no_transaction;
    tf_format_t fmt = o->format;
    if (!o->format_set && tf_format_from_path(path, &fmt) != 0)
        fmt = TF_FORMAT_CSV; /* a source's .dat / .txt / .tsv (checked in parse_args) */

    g_input_fd = fd;
    bool bad_seen = false;
    int rc;

    if (o->strict && regular && !txn) {
        /* Without a transaction nothing can be taken back: validate the
         * whole file first, publish only if it is clean. */
        rc = read_pass(run, fd, name, fmt, size, NULL, false, &c, &bad_seen, err, sizeof(err));
        if (rc == TF_READ_EOF && !bad_seen && !g_stop) {
            if (lseek(fd, 0, SEEK_SET) != 0) {
                snprintf(err, sizeof(err), "%s: cannot rewind: %s", name, strerror(errno));
                rc = TF_READ_FATAL;
            } else {
                c = (counts_t){0};
            }
        }
        if (rc != TF_READ_EOF || bad_seen || g_stop)
            goto finish_unsent;
    }

    tf_pub_t *pub;
    if (txn) {
        char id[256];
        if (o->transactional_id)
            snprintf(id, sizeof(id), "%s", o->transactional_id);
        else
            derive_txn_id(run, path, id, sizeof(id));
        pub = get_txn_pub(run, id);
    } else {
        pub = get_live_pub(run);
    }
    if (!pub) {
        set_status(run, EXIT_DELIVERY);
        snprintf(note, sizeof(note), "not published: no producer");
        goto done;
    }
    tf_pub_reset_counts(pub);
    if (txn && tf_pub_begin(pub, err, sizeof(err)) != 0) {
        TF_LOG(TF_LOG_ERR, "produce", "%s: %s", name, err);
        tf_pub_destroy(run->txn_pub);
        run->txn_pub = NULL;
        set_status(run, EXIT_DELIVERY);
        snprintf(note, sizeof(note), "not published: %s", err);
        goto done;
    }

    rc = read_pass(run, fd, name, fmt, size, pub, live, &c, &bad_seen, err, sizeof(err));
    uint64_t valid = c.read - c.rejected;
    TF_LOG(TF_LOG_DEBUG, "produce", "%s: input read in %.3f s, %llu sent, %llu acknowledged so far",
           name, now_s() - t0, (unsigned long long)tf_pub_sent(pub),
           (unsigned long long)tf_pub_acked(pub));

    if (txn) {
        const char *why = NULL;
        char abort_err[512];
        if (rc == TF_READ_FATAL)
            why = "input unusable";
        else if (rc == PASS_SEND_FAILED)
            why = "send failed";
        else if (g_stop)
            why = "interrupted";
        else if (o->strict && bad_seen)
            why = "refused by --strict";
        if (!why && run->inbox_identity && inbox_mark(run, pub, name, &c, err, sizeof(err)) != 0)
            why = "inbox state not sent";
        if (why) {
            if (tf_pub_abort(pub, TXN_TIMEOUT_MS, abort_err, sizeof(abort_err)) != 0) {
                TF_LOG(TF_LOG_ERR, "produce", "%s: %s", name, abort_err);
                /* The broker aborts it after transaction.timeout.ms anyway;
                 * this producer is unusable. */
                tf_pub_destroy(run->txn_pub);
                run->txn_pub = NULL;
            }
            if (o->strict && bad_seen && rc == TF_READ_EOF && !g_stop) {
                snprintf(note, sizeof(note), "refused (--strict): nothing published");
            } else {
                c.failed = valid;
                snprintf(note, sizeof(note), "transaction aborted (%s%s%s): nothing published",
                         why, *err ? ": " : "", err);
            }
        } else if (tf_pub_commit(pub, TXN_TIMEOUT_MS, err, sizeof(err)) != 0) {
            c.failed = valid;
            snprintf(note, sizeof(note), "transaction failed: %s: nothing published", err);
            char ferr[512];
            if (tf_pub_fatal(pub, ferr, sizeof(ferr))) {
                tf_pub_destroy(run->txn_pub);
                run->txn_pub = NULL;
            }
        } else {
            c.published = tf_pub_acked(pub);
            snprintf(note, sizeof(note), "committed");
            run->file_committed = true;
        }
    } else {
        int left = tf_pub_flush(pub, FLUSH_TIMEOUT_MS);
        c.published = tf_pub_acked(pub);
        c.failed = tf_pub_failed(pub) + (uint64_t)left;
        /* Records read but never handed to librdkafka (a send error). */
        uint64_t unsent = valid - tf_pub_sent(pub);
        if (rc == PASS_SEND_FAILED) {
            c.failed += unsent;
            snprintf(note, sizeof(note), "%s", err);
        } else if (o->strict && bad_seen) {
            snprintf(note, sizeof(note), "stopped at the first bad record (--strict)");
        }
        if (left > 0) {
            size_t n = strlen(note);
            snprintf(note + n, sizeof(note) - n, "%s%d not acknowledged within %d ms",
                     n ? "; " : "", left, FLUSH_TIMEOUT_MS);
        }
        if (g_stop) {
            size_t n = strlen(note);
            snprintf(note + n, sizeof(note) - n, "%sinterrupted", n ? "; " : "");
        }
    }
    goto status;

finish_unsent:
    /* The --strict pre-pass found a problem: nothing was sent. */
    if (rc == TF_READ_FATAL)
        snprintf(note, sizeof(note), "input unusable: nothing published");
    else if (bad_seen)
        snprintf(note, sizeof(note), "refused (--strict): nothing published");
    else if (g_stop)
        snprintf(note, sizeof(note), "interrupted before publishing");

status:
    /* An interrupted file is not fully published; an interrupted stream is
     * a stream that ended. */
    if (c.failed > 0 || rc == PASS_SEND_FAILED || (g_stop && regular))
        set_status(run, EXIT_DELIVERY);
    if (rc == TF_READ_FATAL)
        set_status(run, EXIT_DATAERR);
    if (o->strict && bad_seen)
        set_status(run, EXIT_STRICT);
    if (c.rejected > 0)
        set_status(run, EXIT_SOME_REJECTED);
done:
    g_input_fd = -1;
    if (!is_stdin)
        close(fd);
    summary(run, name, &c, now_s() - t0, note);
    run->file_counts = c;
    snprintf(run->file_note, sizeof(run->file_note), "%s", note);
    run->total.read += c.read;
    run->total.published += c.published;
    run->total.rejected += c.rejected;
    run->total.failed += c.failed;
    run->total.skipped += c.skipped;
    run->total.marks += c.marks;
}

/* Sleeps up to ms, in steps, returning early on SIGINT/SIGTERM. */
static void nap(int ms)
{
    for (int t = 0; t < ms && !g_stop; t += 50) {
        struct timespec ts = {0, (ms - t < 50 ? ms - t : 50) * 1000000L};
        nanosleep(&ts, NULL);
        tf_http_heartbeat(g_http);
    }
}

static void utc_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Moves a finished inbox file with its report; logs what happened. */
static void inbox_finish(run_t *run, const char *dir, const tf_inbox_file_t *f, const char *sub,
                         const char *result, const counts_t *c, const char *note,
                         tf_metric_t *m_files)
{
    char rep[3000], when[32], moved[600], err[600];
    utc_now(when, sizeof when);
    snprintf(rep, sizeof rep,
             "file: %s\nidentity: %s\nresult: %s\ntopic: %s\nstate topic: %s\n"
             "read: %llu\npublished: %llu\nrejected: %llu\nfailed: %llu\nskipped: %llu\n"
             "release markers: %llu\nnote: %s\nfinished: %s\n",
             f->name, f->identity, result, run->topic, run->state_topic,
             (unsigned long long)c->read, (unsigned long long)c->published,
             (unsigned long long)c->rejected, (unsigned long long)c->failed,
             (unsigned long long)c->skipped, (unsigned long long)c->marks, note, when);
    if (tf_inbox_finish(dir, f->name, sub, rep, moved, sizeof moved, err, sizeof err) != 0) {
        TF_LOG(TF_LOG_ERR, "watch", "%s", err);
        return;
    }
    const char *lab[] = {sub};
    tf_metrics_counter_add_labels(m_files, lab, 1);
    TF_LOG(TF_LOG_NOTICE, "watch", "%s: %s, moved to %s/%s (report beside it)", f->name, result,
           dir, moved);
}

/* --watch DIR: publishes each ready file once, one transaction per file,
 * and moves it to done/ or failed/. A file is recorded in the state topic in
 * its own transaction; at start the state topic is read, so a file that was
 * committed before a crash (but not moved) is moved, not published again.
 * Returns the exit status. */
static int watch_run(run_t *run)
{
    opts_t *o = run->o;
    const char *dir = o->watch_dir;
    char err[1024];
    if (tf_inbox_prepare(dir, err, sizeof err) != 0) {
        TF_LOG(TF_LOG_ERR, "watch", "%s", err);
        return EXIT_NOINPUT;
    }
    snprintf(run->state_topic, sizeof run->state_topic, "%s",
             o->watch_state_topic ? o->watch_state_topic : "");
    if (!run->state_topic[0])
        snprintf(run->state_topic, sizeof run->state_topic, "%.240s.inbox", run->topic);
    /* One transactional id for the inbox: a restarted watcher fences a
     * zombie and aborts its open transaction before reading the state. */
    if (!o->transactional_id) {
        derive_txn_id(run, dir, run->watch_txn_id, sizeof run->watch_txn_id);
        o->transactional_id = run->watch_txn_id;
    }
    if (!get_txn_pub(run, o->transactional_id))
        return EXIT_DELIVERY;
    tf_inbox_seen_t *seen = tf_inbox_seen_new(), *stable = tf_inbox_seen_new();
    tf_metric_t *m_files = NULL, *m_pending = NULL;
    if (g_metrics) {
        static const char *const lab[] = {"result", NULL};
        m_files = tf_metrics_counter(g_metrics, "tradeflow_producer_inbox_files_total",
                                     "inbox files finished, by where they went (done, failed)",
                                     lab, err, sizeof err);
        m_pending = tf_metrics_gauge(g_metrics, "tradeflow_producer_inbox_pending",
                                     "ready files waiting in the inbox at the last scan", NULL,
                                     err, sizeof err);
    }
    int status = EXIT_ALL_GOOD;
    bool ok = seen && stable;
    snprintf(err, sizeof err, "out of memory");
    rd_kafka_conf_t *cconf = ok ? tf_kafka_conf_new(o->brokers, err, sizeof err) : NULL;
    ok = ok && cconf;
    if (ok && tf_kafka_conf_from_config(cconf, o->cfg, err, sizeof err) != 0) {
        rd_kafka_conf_destroy(cconf);
        ok = false;
    }
    /* (tf_inbox_load_state takes cconf over) */
    if (ok && tf_inbox_load_state(cconf, run->state_topic, seen, 60000, err, sizeof err) != 0)
        ok = false;
    if (!ok) {
        TF_LOG(TF_LOG_ERR, "watch", "state topic %s: %s", run->state_topic, err);
        tf_inbox_seen_free(seen);
        tf_inbox_seen_free(stable);
        return EXIT_DELIVERY;
    }
    TF_LOG(TF_LOG_NOTICE, "watch", "watching %s (state topic %s: %zu file(s) published before)",
           dir, run->state_topic, tf_inbox_seen_count(seen));
    while (!g_stop) {
        tf_inbox_file_t *files = NULL;
        size_t n = 0;
        if (tf_inbox_scan(dir, &files, &n, err, sizeof err) != 0) {
            TF_LOG(TF_LOG_ERR, "watch", "%s", err);
            status = EXIT_NOINPUT;
            break;
        }
        tf_metrics_gauge_set(m_pending, (double)n);
        tf_inbox_seen_t *now = tf_inbox_seen_new();
        for (size_t i = 0; i < n && !g_stop && now; i++) {
            const tf_inbox_file_t *f = &files[i];
            tf_inbox_seen_add(now, f->identity);
            if (tf_inbox_seen_has(seen, f->identity)) {
                counts_t z = {0};
                inbox_finish(run, dir, f, "done", "already published (recorded in the state "
                             "topic before a restart); not published again", &z, "", m_files);
                continue;
            }
            /* Settle rule: the same size and mtime as at the last scan. */
            if (!tf_inbox_seen_has(stable, f->identity))
                continue;
            char path[4400];
            snprintf(path, sizeof path, "%s/%s", dir, f->name);
            run->inbox_identity = f->identity;
            run->file_committed = false;
            run->file_counts = (counts_t){0};
            run->file_note[0] = '\0';
            int saved = run->status;
            run->status = EXIT_ALL_GOOD;
            process_input(run, path);
            int fs = run->status;
            run->status = saved;
            run->inbox_identity = NULL;
            if (run->file_committed) {
                tf_inbox_seen_add(seen, f->identity);
                if (o->crash_after_commit) {
                    /* Test hook: die between publishing and moving. */
                    _exit(98);
                }
                inbox_finish(run, dir, f, "done", fs == EXIT_SOME_REJECTED
                             ? "published, some records rejected" : "published",
                             &run->file_counts, run->file_note, m_files);
                set_status(run, fs);
            } else if (g_stop) {
                break; /* interrupted: the file stays, it is published after a restart */
            } else if (fs == EXIT_DELIVERY || fs == EXIT_NOINPUT) {
                /* The broker or the file system, not the file: try again later. */
                TF_LOG(TF_LOG_WARNING, "watch", "%s: not published (%s); trying again",
                       f->name, run->file_note);
            } else {
                inbox_finish(run, dir, f, "failed", "not published", &run->file_counts,
                             run->file_note, m_files);
                set_status(run, fs);
            }
        }
        free(files);
        if (now) {
            tf_inbox_seen_free(stable);
            stable = now;
        }
        nap(o->watch_interval_ms);
    }
    tf_inbox_seen_free(seen);
    tf_inbox_seen_free(stable);
    return status == EXIT_ALL_GOOD ? (run->status == EXIT_DELIVERY ? EXIT_DELIVERY : 0) : status;
}

/* The librdkafka settings every producer starts from; -F and -X come after
 * them (so they can override any), --linger-ms last. */
static rd_kafka_conf_t *build_conf(const opts_t *o, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = tf_kafka_conf_new(o->brokers, err, errlen);
    if (!conf)
        return NULL;
    static const char *const defaults[][2] = {
        {"client.id", PROG},
        /* Java's partitioner, so that every client maps a key to the same
         * partition as Java producers do. */
        {"partitioner", "murmur2_random"},
        /* The topic is created explicitly with --partitions; a broker
         * must not create it on the fly with its own defaults. */
        {"allow.auto.create.topics", "false"},
        {"linger.ms", "5"},
        /* librdkafka's default queue (100,000 messages) is enough to keep
         * the broker busy (measured: no gain with 1,000,000) and bounds the
         * memory when the broker is slower than the input. */
        {"batch.num.messages", "10000"},
        /* A whole file is one transaction: allow 5 minutes (brokers
         * accept up to transaction.max.timeout.ms, 15 min by default). */
        {"transaction.timeout.ms", "300000"},
        {"message.timeout.ms", "300000"},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], err, errlen) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    if (tf_kafka_conf_from_config(conf, o->cfg, err, errlen) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (o->linger_ms >= 0) {
        char v[32];
        snprintf(v, sizeof(v), "%d", o->linger_ms);
        if (rd_kafka_conf_set(conf, "linger.ms", v, err, errlen) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

int main(int argc, char **argv)
{
    opts_t o = {
        .partitions = 6,
        .replication_factor = -1,
        .linger_ms = -1,
        .log_level = TF_LOG_INFO,
        .log_format = TF_LOG_TEXT,
    };
    int pa = parse_args(argc, argv, &o);
    if (pa != 0) {
        if (pa < 0)
            fprintf(stderr, "Try '" PROG " --help'.\n");
        tf_config_destroy(o.cfg);
        return pa < 0 ? EXIT_USAGE : 0;
    }
    /* --quiet keeps warnings and errors only; an explicit --log-level wins. */
    int level = o.log_level;
    if (o.quiet && level == TF_LOG_INFO)
        level = TF_LOG_WARNING;
    tf_log_init(PROG, level, o.log_format);
    const char *crash = getenv("TF_TEST_CRASH_AFTER");
    if (crash && *crash)
        o.crash_after = strtol(crash, NULL, 10);
    crash = getenv("TF_TEST_CRASH_AFTER_COMMIT");
    o.crash_after_commit = crash && *crash && strcmp(crash, "0") != 0;

    run_t run = {.o = &o, .status = EXIT_ALL_GOOD};
    snprintf(run.topic, sizeof(run.topic), "%s",
             o.topic ? o.topic : (o.kind == TF_DATASET_CUSTOMS ? "tradeflow.customs"
                                                               : "tradeflow.investment"));
    run.progress = !o.quiet && isatty(STDERR_FILENO);
    int rc = EXIT_USAGE;
    char err[1024];

    run.base_conf = build_conf(&o, err, sizeof(err));
    if (!run.base_conf) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    const char *maddr = tf_config_str(o.cfg, "metrics.addr");
    if (maddr && *maddr) {
        if (!(g_metrics = tf_metrics_new()) ||
            tf_metrics_std_register(g_metrics, TF_METRICS_STD_PRODUCER, PROG, TF_VERSION, &g_m,
                                    err, sizeof(err)) ||
            !(g_rdstats = tf_rdstats_new(g_metrics, err, sizeof(err)))) {
            fprintf(stderr, PROG ": metrics: %s\n", g_metrics ? err : "out of memory");
            goto out;
        }
        rd_kafka_conf_set_stats_cb(run.base_conf, stats_cb);
        char v[32];
        if (!tf_config_has(o.cfg, "kafka.statistics.interval.ms"))
            rd_kafka_conf_set(run.base_conf, "statistics.interval.ms", "5000", v, sizeof(v));
        if (!(g_http = tf_http_start(maddr, g_metrics, producer_ready, NULL, err, sizeof(err)))) {
            fprintf(stderr, PROG ": --metrics-addr: %s\n", err);
            goto out;
        }
        TF_LOG(TF_LOG_NOTICE, "http", "metrics and health on port %d", tf_http_port(g_http));
    }
    run.codec = tf_codec_new(o.schema_dir, NULL, err, sizeof(err));
    if (!run.codec) {
        fprintf(stderr, PROG ": schemas: %s\n", err);
        rc = EXIT_DATAERR;
        goto out;
    }
    if (o.registry_url &&
        tf_codec_use_registry(run.codec, o.registry_url, o.registry_user, o.registry_ca, err,
                              sizeof(err)) != 0) {
        fprintf(stderr, PROG ": registry: %s\n", err);
        goto out;
    }
    if (o.src.kind != TF_SOURCE_PLAIN) {
        run.econ = tf_econ_load(NULL, TF_ISO3166_ZH_MO, TF_ISO4217_JSON, err, sizeof(err));
        if (!run.econ) {
            fprintf(stderr, PROG ": iso-codes: %s\n", err);
            rc = EXIT_DATAERR;
            goto out;
        }
        if (o.fx_path && !(run.fx = tf_fx_load(o.fx_path, run.econ, err, sizeof(err)))) {
            fprintf(stderr, PROG ": --fx: %s\n", err);
            rc = EXIT_DATAERR;
            goto out;
        }
        o.src.econ = run.econ;
        o.src.fx = run.fx;
        if (!(run.src = tf_source_new(&o.src, err, sizeof(err)))) {
            fprintf(stderr, PROG ": %s\n", err);
            goto out;
        }
    }
    if (o.rejects_path) {
        run.rejects = strcmp(o.rejects_path, "-") == 0 ? stdout : fopen(o.rejects_path, "w");
        if (!run.rejects) {
            fprintf(stderr, PROG ": %s: %s\n", o.rejects_path, strerror(errno));
            rc = EXIT_NOINPUT;
            goto out;
        }
    }

    g_devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART, so a blocked read() returns; SA_RESETHAND, so a second
     * signal ends the program at once. */
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (o.watch_dir) {
        rc = watch_run(&run);
        goto out;
    }
    double t0 = now_s();
    int i;
    for (i = optind; i < argc && !g_stop; i++)
        process_input(&run, argv[i]);
    if (i < argc) {
        TF_LOG(TF_LOG_WARNING, "produce", "interrupted: %d input(s) not read", argc - i);
        set_status(&run, EXIT_DELIVERY);
    }
    if (run.files > 1)
        summary(&run, "total", &run.total, now_s() - t0, NULL);
    rc = run.status;

out:
    tf_http_stop(g_http);
    if (run.rejects && run.rejects != stdout)
        fclose(run.rejects);
    else if (run.rejects)
        fflush(stdout);
    tf_pub_destroy(run.txn_pub);
    tf_pub_destroy(run.live_pub);
    if (run.base_conf)
        rd_kafka_conf_destroy(run.base_conf);
    tf_codec_destroy(run.codec);
    tf_buf_free(&run.value);
    tf_source_free(run.src);
    tf_fx_free(run.fx);
    tf_econ_free(run.econ);
    for (size_t k = 0; k < run.ndlq; k++)
        free(run.dlq[k].raw);
    free(run.dlq);
    free(run.scopes);
    if (g_devnull >= 0)
        close(g_devnull);
    tf_config_destroy(o.cfg);
    tf_rdstats_free(g_rdstats);
    tf_metrics_free(g_metrics);
    return rc;
}
