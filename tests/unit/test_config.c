/* Unit tests of common/tf_config: precedence, validation with origins,
 * pass-through keys, lists, conninfo assembly and secret masking. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_config.h"
#include "tf_test.h"

static const tf_cfg_prop_t props[] = {
    {"group", TF_CFG_STRING, "g0", 0, 0, NULL, 0, "group"},
    {"batch.size", TF_CFG_INT, "10", 1, 100, NULL, 0, "size"},
    {"flag", TF_CFG_BOOL, "false", 0, 0, NULL, 0, "a flag"},
    {"fmt", TF_CFG_ENUM, "text", 0, 0, "text|json", 0, "format"},
    {"from", TF_CFG_PERIOD, NULL, 0, 0, NULL, 0, "period"},
    {"topics", TF_CFG_LIST, "a,b", 0, 0, NULL, 0, "topics"},
    {"pg", TF_CFG_STRING, NULL, 0, 0, NULL, 0, "conninfo"},
    {"token", TF_CFG_STRING, NULL, 0, 0, NULL, TF_CFG_SECRET, "a secret"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL}};

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/tf_test_config_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        return NULL;
    close(fd);
    return path;
}

static void test_defaults_and_precedence(void)
{
    char err[512];
    tf_config_t *c = tf_config_new("prog", props);
    CHECK(c != NULL);
    CHECK_STR(tf_config_str(c, "group"), "g0");
    CHECK_INT(tf_config_int(c, "batch.size"), 10);
    CHECK(!tf_config_bool(c, "flag"));
    CHECK(tf_config_str(c, "from") == NULL);
    char *p = write_tmp("# comment\n\n group = g1 \nbatch.size=20\nflag = yes\n"
                        "kafka.client.id = x\npg.sslmode = require\n");
    CHECK(tf_config_load_file(c, p, err, sizeof(err)) == 0);
    unlink(p);
    CHECK_STR(tf_config_str(c, "group"), "g1");
    CHECK_INT(tf_config_int(c, "batch.size"), 20);
    CHECK(tf_config_bool(c, "flag"));
    setenv("TRADEFLOW_BATCH_SIZE", "30", 1);
    CHECK(tf_config_load_env(c, err, sizeof(err)) == 0);
    unsetenv("TRADEFLOW_BATCH_SIZE");
    CHECK_INT(tf_config_int(c, "batch.size"), 30);
    CHECK(tf_config_set(c, "batch.size", "40", "command line", err, sizeof(err)) == 0);
    CHECK_INT(tf_config_int(c, "batch.size"), 40);
    tf_config_destroy(c);
}

static void test_errors_name_their_origin(void)
{
    char err[512];
    tf_config_t *c = tf_config_new("prog", props);
    char *p = write_tmp("group = ok\nbogus = 1\n");
    CHECK(tf_config_load_file(c, p, err, sizeof(err)) == -1);
    char want[256];
    snprintf(want, sizeof(want), "%s:2: unknown key \"bogus\"", p);
    CHECK_MSG(strncmp(err, want, strlen(want)) == 0, "%s", err);
    unlink(p);
    p = write_tmp("batch.size = 1000\n");
    CHECK(tf_config_load_file(c, p, err, sizeof(err)) == -1);
    CHECK_MSG(strstr(err, ":1: batch.size: expected an integer 1..100") != NULL, "%s", err);
    unlink(p);
    p = write_tmp("no equals sign\n");
    CHECK(tf_config_load_file(c, p, err, sizeof(err)) == -1);
    CHECK_MSG(strstr(err, ":1: expected key = value") != NULL, "%s", err);
    unlink(p);
    CHECK(tf_config_set(c, "fmt", "xml", "x", err, sizeof(err)) == -1);
    CHECK(tf_config_set(c, "flag", "maybe", "x", err, sizeof(err)) == -1);
    CHECK(tf_config_set(c, "from", "2020-13", "x", err, sizeof(err)) == -1);
    CHECK(tf_config_set(c, "from", "2020-02", "x", err, sizeof(err)) == 0);
    CHECK(tf_config_set(c, "kafka.", "x", "x", err, sizeof(err)) == -1);
    setenv("TRADEFLOW_FMT", "yaml", 1);
    CHECK(tf_config_load_env(c, err, sizeof(err)) == -1);
    CHECK_MSG(strstr(err, "environment TRADEFLOW_FMT") != NULL, "%s", err);
    unsetenv("TRADEFLOW_FMT");
    tf_config_destroy(c);
}

static void test_lists(void)
{
    char err[256];
    tf_config_t *c = tf_config_new("prog", props);
    CHECK_INT(tf_config_list_len(c, "topics"), 2);
    /* Flags replace the default list, then append to each other. */
    CHECK(tf_config_set(c, "topics", "x", "--topic", err, sizeof(err)) == 0);
    CHECK(tf_config_set(c, "topics", "y, z", "--topic", err, sizeof(err)) == 0);
    CHECK_INT(tf_config_list_len(c, "topics"), 3);
    CHECK_STR(tf_config_list_item(c, "topics", 0), "x");
    CHECK_STR(tf_config_list_item(c, "topics", 2), "z");
    tf_config_destroy(c);
}

static int collect(const char *name, const char *value, void *arg)
{
    char *buf = arg;
    strcat(buf, name);
    strcat(buf, "=");
    strcat(buf, value);
    strcat(buf, ";");
    return 0;
}

static void test_passthrough_and_conninfo(void)
{
    char err[256], buf[512] = "";
    tf_config_t *c = tf_config_new("prog", props);
    CHECK(tf_config_pg_conninfo(c) == NULL);
    CHECK(tf_config_set(c, "kafka.a", "1", "x", err, sizeof(err)) == 0);
    CHECK(tf_config_set(c, "kafka.b", "2", "x", err, sizeof(err)) == 0);
    CHECK(tf_config_set(c, "kafka.a", "3", "x", err, sizeof(err)) == 0);
    tf_config_foreach(c, "kafka.", collect, buf);
    CHECK_STR(buf, "a=3;b=2;");
    CHECK(tf_config_set(c, "pg", "host=h dbname=d", "x", err, sizeof(err)) == 0);
    CHECK(tf_config_set(c, "pg.password", "it's", "x", err, sizeof(err)) == 0);
    char *ci = tf_config_pg_conninfo(c);
    CHECK_STR(ci, "host=h dbname=d password='it\\'s'");
    free(ci);
    CHECK(tf_config_set(c, "pg", "postgresql://u@h/d", "x", err, sizeof(err)) == 0);
    ci = tf_config_pg_conninfo(c);
    CHECK_STR(ci, "postgresql://u@h/d?password=it%27s");
    free(ci);
    tf_config_destroy(c);
}

static void test_masking(void)
{
    char buf[512];
    CHECK_STR(tf_config_mask("kafka.sasl.password", "hunter2", buf, sizeof(buf)), "********");
    CHECK_STR(tf_config_mask("registry.user", "bob:pw", buf, sizeof(buf)), "bob:********");
    CHECK_STR(tf_config_mask("pg", "postgresql://u:pw@h:5/d", buf, sizeof(buf)),
              "postgresql://u:********@h:5/d");
    CHECK_STR(tf_config_mask("pg", "host=h password='a b' user=u", buf, sizeof(buf)),
              "host=h password=******** user=u");
    CHECK_STR(tf_config_mask("pg", "postgresql://h/d?password=x&sslmode=require", buf,
                             sizeof(buf)),
              "postgresql://h/d?password=********&sslmode=require");
    CHECK_STR(tf_config_mask("group", "g", buf, sizeof(buf)), "g");

    /* --print-config never shows a secret. */
    char err[256];
    tf_config_t *c = tf_config_new("prog", props);
    tf_config_set(c, "token", "tok-123", "x", err, sizeof(err));
    tf_config_set(c, "kafka.ssl.key.password", "kp-456", "x", err, sizeof(err));
    tf_config_set(c, "pg", "password=pg-789", "x", err, sizeof(err));
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    tf_config_print(c, f);
    fclose(f);
    CHECK(strstr(out, "tok-123") == NULL);
    CHECK(strstr(out, "kp-456") == NULL);
    CHECK(strstr(out, "pg-789") == NULL);
    CHECK(strstr(out, "group = g0") != NULL);
    free(out);
    tf_config_destroy(c);
}

static int usage_calls;
static void fake_usage(FILE *f)
{
    (void)f;
    usage_calls++;
}

static int own_code(int code, const char *arg, int pass, void *std)
{
    (void)arg;
    if (code == 'Q' && pass == 2) {
        ((tf_cfg_std_t *)std)->exit_code = 7;
        return 0;
    }
    return pass == 1 ? 0 : -1;
}

/* The options every program shares: --help, --version, --help-config in
 * pass 1 (answered, exit 0, parsing stops), --print-config in pass 2; other
 * codes accepted in pass 1, refused in pass 2 unless the program's own
 * callback takes them. */
static void test_std_options(void)
{
    tf_cfg_std_t s = {.program = "prog", .version = "1.2", .usage = fake_usage,
                      .code_version = 300, .code_help_config = 301, .code_print_config = 302,
                      .exit_code = -1};
    CHECK_INT(tf_config_std_other(302, NULL, 1, &s), 0);
    CHECK_INT(s.print_config, 0);
    CHECK_INT(tf_config_std_other(302, NULL, 2, &s), 0);
    CHECK_INT(s.print_config, 1);
    CHECK_INT(tf_config_std_other('z', NULL, 1, &s), 0);
    CHECK_INT(tf_config_std_other('z', NULL, 2, &s), -1);
    CHECK_INT(s.exit_code, -1);
    CHECK_INT(tf_config_std_other('h', NULL, 2, &s), 0);
    CHECK_INT(usage_calls, 0);
    CHECK_INT(tf_config_std_other('h', NULL, 1, &s), -1);
    CHECK_INT(usage_calls, 1);
    CHECK_INT(s.exit_code, 0);
    tf_cfg_std_t o = {.program = "prog", .version = "1.2", .usage = fake_usage,
                      .code_version = 300, .code_help_config = 301, .code_print_config = 302,
                      .other = own_code, .exit_code = -1};
    CHECK_INT(tf_config_std_other('Q', NULL, 1, &o), 0);
    CHECK_INT(tf_config_std_other('Q', NULL, 2, &o), 0);
    CHECK_INT(o.exit_code, 7);
    CHECK_INT(tf_config_std_other('z', NULL, 2, &o), -1);
}

int main(void)
{
    TF_TEST_RUN(test_defaults_and_precedence);
    TF_TEST_RUN(test_errors_name_their_origin);
    TF_TEST_RUN(test_lists);
    TF_TEST_RUN(test_passthrough_and_conninfo);
    TF_TEST_RUN(test_masking);
    TF_TEST_RUN(test_std_options);
    return TF_TEST_REPORT();
}
