/*
 * test_inbox.c - the watched inbox helpers (producers/tf_inbox.c): the
 * rename-into-place name rule, scanning (regular files only, oldest first,
 * identities), moving with a report and free names, the identity set.
 */
#include "tf_inbox.h"
#include "tf_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char dir[] = "/tmp/tf_test_inbox_XXXXXX";

static void put(const char *name, const char *text, long mtime)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
    struct timeval tv[2] = {{mtime, 0}, {mtime, 0}};
    utimes(p, tv);
}

static void test_names(void)
{
    CHECK(tf_inbox_name_ready("feed.csv"));
    CHECK(tf_inbox_name_ready("2024年1月.csv"));
    CHECK(!tf_inbox_name_ready(".feed.csv"));
    CHECK(!tf_inbox_name_ready("feed.csv.part"));
    CHECK(!tf_inbox_name_ready("feed.csv.tmp"));
    CHECK(!tf_inbox_name_ready("feed.partial"));
    CHECK(!tf_inbox_name_ready("feed.csv.filepart"));
    CHECK(!tf_inbox_name_ready("feed.csv.report"));
    CHECK(!tf_inbox_name_ready(""));
}

static void test_scan_finish(void)
{
    char err[512];
    CHECK(mkdtemp(dir) != NULL);
    CHECK_MSG(tf_inbox_prepare(dir, err, sizeof err) == 0, "%s", err);
    CHECK(tf_inbox_prepare("/nonexistent/inbox", err, sizeof err) == -1);
    put("b.csv", "b\n", 2000);
    put("a.csv", "a\n", 2000);
    put("old.csv", "old\n", 1000);
    put(".hidden.csv", "x\n", 10);
    put("c.csv.part", "x\n", 10);
    tf_inbox_file_t *f = NULL;
    size_t n = 0;
    CHECK(tf_inbox_scan(dir, &f, &n, err, sizeof err) == 0);
    CHECK_INT(n, 3); /* not done/, failed/, the dot file, the .part */
    if (n == 3) {
        CHECK_STR(f[0].name, "old.csv"); /* oldest first, then by name */
        CHECK_STR(f[1].name, "a.csv");
        CHECK_STR(f[2].name, "b.csv");
        CHECK(strncmp(f[0].identity, "old.csv|", 8) == 0);
        CHECK_INT(f[0].size, 4);
        CHECK(strcmp(f[1].identity, f[2].identity) != 0);
    }
    /* The identity changes when the file does. */
    char id[TF_INBOX_ID_MAX];
    snprintf(id, sizeof id, "%s", n == 3 ? f[1].identity : "");
    free(f);
    put("a.csv", "a, rewritten\n", 2000);
    CHECK(tf_inbox_scan(dir, &f, &n, err, sizeof err) == 0);
    bool same = false;
    for (size_t i = 0; i < n; i++)
        same |= strcmp(f[i].identity, id) == 0;
    CHECK(!same);
    free(f);

    char moved[600];
    CHECK(tf_inbox_finish(dir, "a.csv", "done", "result: published\n", moved, sizeof moved, err,
                          sizeof err) == 0);
    CHECK_STR(moved, "done/a.csv");
    put("a.csv", "again\n", 3000);
    CHECK(tf_inbox_finish(dir, "a.csv", "done", "result: again\n", moved, sizeof moved, err,
                          sizeof err) == 0);
    CHECK_STR(moved, "done/a.csv.1");
    char p[600], line[128];
    snprintf(p, sizeof p, "%s/done/a.csv.1.report", dir);
    FILE *r = fopen(p, "r");
    CHECK(r && fgets(line, sizeof line, r) && strcmp(line, "result: again\n") == 0);
    if (r)
        fclose(r);
    CHECK(tf_inbox_finish(dir, "gone.csv", "done", "x\n", NULL, 0, err, sizeof err) == -1);
    CHECK(strstr(err, "gone.csv") != NULL);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static void test_seen(void)
{
    tf_inbox_seen_t *s = tf_inbox_seen_new();
    CHECK(s != NULL);
    char id[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "f%d.csv|1:%d|10|5", i, i);
        CHECK(tf_inbox_seen_add(s, id) == 0);
    }
    CHECK(tf_inbox_seen_add(s, "f7.csv|1:7|10|5") == 0); /* again */
    CHECK_INT(tf_inbox_seen_count(s), 1000);
    CHECK(tf_inbox_seen_has(s, "f999.csv|1:999|10|5"));
    CHECK(!tf_inbox_seen_has(s, "f1000.csv|1:1000|10|5"));
    tf_inbox_seen_free(s);
    tf_inbox_seen_free(NULL);
}

int main(void)
{
    TF_TEST_RUN(test_names);
    TF_TEST_RUN(test_scan_finish);
    TF_TEST_RUN(test_seen);
    return TF_TEST_REPORT();
}
