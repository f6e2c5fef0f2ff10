/*
 * tf_config.h - one configuration format for every tradeflow program.
 *
 * A program declares its properties in ONE table (name, type, default,
 * bounds, description); that table drives parsing, validation,
 * --print-config and the generated reference (docs/configuration.md).
 *
 * Sources, later ones override earlier ones:
 *   1. the table's defaults;
 *   2. the configuration file (--config FILE, else $TRADEFLOW_CONFIG):
 *      flat `key = value` lines, `#` comments, blank lines ignored;
 *   3. environment variables: TRADEFLOW_<KEY> with the key upper-cased and
 *      '.' / '-' turned into '_' (e.g. batch.size -> TRADEFLOW_BATCH_SIZE),
 *      for the properties that have no other established variable; the
 *      established ones stay: TRADEFLOW_BROKERS, and libpq's own PG*;
 *   4. command-line flags (each flag is just a property set late).
 * Keys `kafka.NAME` are passed to librdkafka as NAME; keys `pg.NAME` are
 * libpq connection keywords (pg.host, pg.sslmode, pg.password, ...), added
 * to the `pg` conninfo/URI. A program may accept one more pass-through
 * prefix (tf_config_allow_prefix(), e.g. the relay's `deliver.`), whose keys
 * it reads with tf_config_foreach() and validates itself.
 *
 * Errors name their origin: "FILE:LINE: unknown key \"x\"", "environment
 * TRADEFLOW_BATCH_SIZE: ...", "--batch-size: ...". Secrets (keys containing
 * "password", "secret" or "token", `deliver.*.auth_header`, the path and
 * query of `deliver.*.url`, the password part of `registry.user`
 * and of a `pg` conninfo/URI, the userinfo password of any URL) are never
 * printed: --print-config masks them (tf_secret.h).
 *
 * Ownership: tf_config_t owns copies of every string set; values returned by
 * getters are valid until the key is set again or the config is destroyed.
 */
#ifndef TF_CONFIG_H
#define TF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum tf_cfg_type {
    TF_CFG_STRING = 0,
    TF_CFG_INT,    /* decimal integer within [min, max] */
    TF_CFG_BOOL,   /* true/false, yes/no, on/off, 1/0 */
    TF_CFG_ENUM,   /* one of `choices` ("text|json") */
    TF_CFG_PERIOD, /* YYYY-MM */
    TF_CFG_LIST,   /* comma-separated; each set appends (flags repeat) */
} tf_cfg_type_t;

#define TF_CFG_SECRET 0x1u /* never printed */

typedef struct tf_cfg_prop {
    const char *key;
    tf_cfg_type_t type;
    const char *def; /* default as text; NULL = unset */
    long min, max;   /* TF_CFG_INT */
    const char *choices;
    unsigned flags;
    const char *desc;
} tf_cfg_prop_t;

typedef struct tf_config tf_config_t;

/* props is a table terminated by an entry with key NULL; it must outlive
 * the config (a static table). Returns NULL on out of memory. */
tf_config_t *tf_config_new(const char *program, const tf_cfg_prop_t *props);
void tf_config_destroy(tf_config_t *c);

/* Sets key to value, validating it; origin describes the source for error
 * messages and --print-config ("FILE:LINE", "--flag", "environment X").
 * kafka.* and pg.* keys are accepted as pass-through. Returns 0 or -1. */
int tf_config_set(tf_config_t *c, const char *key, const char *value, const char *origin,
                  char *errstr, size_t errlen);
/* Accepts keys starting with prefix ("deliver.") as pass-through keys, like
 * kafka.* and pg.*; call before setting anything. Returns 0, -1 on out of
 * memory. */
int tf_config_allow_prefix(tf_config_t *c, const char *prefix);
/* Loads a configuration file. Returns 0 or -1 ("FILE:LINE: reason"). */
int tf_config_load_file(tf_config_t *c, const char *path, char *errstr, size_t errlen);
/* Applies TRADEFLOW_<KEY> variables of the table's keys. Returns 0 or -1. */
int tf_config_load_env(tf_config_t *c, char *errstr, size_t errlen);

/* True when key (a table key or a pass-through key) has a value. */
bool tf_config_has(const tf_config_t *c, const char *key);

/* Getters for table keys (NULL / 0 / false when unset). */
const char *tf_config_str(const tf_config_t *c, const char *key);
long tf_config_int(const tf_config_t *c, const char *key);
bool tf_config_bool(const tf_config_t *c, const char *key);
/* TF_CFG_LIST: the number of items and item i. */
size_t tf_config_list_len(const tf_config_t *c, const char *key);
const char *tf_config_list_item(const tf_config_t *c, const char *key, size_t i);

/* Calls fn(name, value, arg) for each pass-through key with the prefix
 * ("kafka." or "pg."), in the order set, with the prefix stripped; stops and
 * returns fn's value at the first non-zero. */
int tf_config_foreach(const tf_config_t *c, const char *prefix,
                      int (*fn)(const char *name, const char *value, void *arg), void *arg);

/* The libpq conninfo: the `pg` value (conninfo or URI) followed by the pg.*
 * keywords as key='value' pairs. Caller frees. NULL when neither is set
 * (libpq then uses only the PG* variables). */
char *tf_config_pg_conninfo(const tf_config_t *c);

/* Prints the effective configuration (every key with its value and origin;
 * secrets masked) in the file format, so it can be saved and reused. */
void tf_config_print(const tf_config_t *c, FILE *out);
/* Prints the Markdown reference of a table (for docs/configuration.md). */
void tf_config_reference(const char *program, const tf_cfg_prop_t *props, FILE *out);

/* Command-line flags as settings. */
typedef struct tf_cfg_flag {
    int code;          /* getopt_long's return value */
    const char *key;   /* the setting it sets */
    const char *value; /* fixed value for a flag without argument ("true"), NULL = optarg */
} tf_cfg_flag_t;

struct option;
/* Parses the command line in two passes around the file and the
 * environment, so that flags win:
 *   pass 1: -c/--config FILE (code 'c') is noted; every other code goes to
 *           other(code, optarg, 1, ctx) - the place to answer --help and
 *           --version before anything can fail;
 *   then the file (--config, else $TRADEFLOW_CONFIG) and TRADEFLOW_* vars;
 *   pass 2: codes in map set their key (origin "command line"); 'X' sets
 *           kafka.KEY from KEY=VALUE; 'F' loads a librdkafka properties file
 *           as kafka.* keys; other codes go to other(code, optarg, 2, ctx).
 * other returns 0 to go on, -1 to fail (it prints its own message). The
 * map ends with code 0. Unknown options are usage errors (-1, errstr set),
 * and so are kafka.* keys librdkafka does not know or refuses
 * (tf_kafka_check_config: "kafka.KEY: reason"), whatever comes next
 * (--print-config or a real run).
 * On return optind indexes the first operand. */
int tf_config_parse_args(tf_config_t *c, int argc, char **argv, const char *optstring,
                         const struct option *longopts, const tf_cfg_flag_t *map,
                         int (*other)(int code, const char *arg, int pass, void *ctx), void *ctx,
                         char *errstr, size_t errlen);

/* The options every program answers the same way, for tf_config_parse_args'
 * `other` callback: -h/--help (code 'h'), --version, --help-config and
 * --print-config (the program's getopt codes for the last three). Fill the
 * first part, pass tf_config_std_other and the struct; after parsing,
 * exit_code >= 0 means help/version/reference was printed (exit with it),
 * print_config that --print-config was given. Codes it does not know go to
 * `other` (with this struct as ctx), or else are accepted in pass 1 and
 * refused in pass 2. */
typedef struct tf_cfg_std {
    const char *program, *version;
    const char *version_extra; /* appended to the --version line, or NULL */
    const tf_cfg_prop_t *props;
    void (*usage)(FILE *out);
    int code_version, code_help_config, code_print_config;
    int (*other)(int code, const char *arg, int pass, void *std);
    int print_config; /* out */
    int exit_code;    /* out; initialise to -1 */
} tf_cfg_std_t;
int tf_config_std_other(int code, const char *arg, int pass, void *std);

/* Masks the password in a conninfo/URI or "user:password" string for
 * display. Writes into buf. */
const char *tf_config_mask(const char *key, const char *value, char *buf, size_t buflen);

#endif
