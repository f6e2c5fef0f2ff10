/* Unit tests of producers/tf_produce_feed: the reader thread hands every
 * valid record over once, in input order, in batches; bad records go to the
 * callback; cancel and stop-at-bad end the feed without hanging. No server.
 * (Also run by hand under -fsanitize=thread; see docs/produce.md.) */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_input.h"
#include "tf_produce_feed.h"
#include "tf_test.h"

#define NGOOD 5000

static char path[] = "/tmp/tf_feed_test_XXXXXX";
static int bad_lines[8];

/* A CSV of NGOOD good records, with bad ones after records 100, 2500 and
 * NGOOD (the last line). */
static int make_input(void)
{
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    FILE *fp = fdopen(fd, "w");
    fputs("record_id,revision,reporter,partner,flow,period,hs_code,value_usd,quantity,unit\n", fp);
    long line = 1;
    int nb = 0;
    for (int i = 1; i <= NGOOD; i++) {
        fprintf(fp, "R-%d,0,CHN,VNM,export,2020-01,85,%d.00,,\n", i, i);
        line++;
        if (i == 100 || i == 2500 || i == NGOOD) {
            fprintf(fp, "BAD-%d,0,CHN,VNM,export,2020-13,85,1.00,,\n", i);
            bad_lines[nb++] = (int)++line;
        }
    }
    fclose(fp);
    return 0;
}

typedef struct seen {
    int nbad;
    long lines[8];
    pthread_t thread;
} seen_t;

static bool on_bad(void *opaque, tf_reader_t *r)
{
    seen_t *s = opaque;
    s->thread = pthread_self();
    if (s->nbad < 8)
        s->lines[s->nbad] = tf_reader_line(r);
    s->nbad++;
    return true;
}

static tf_reader_t *open_reader(int *fd)
{
    char err[256];
    *fd = open(path, O_RDONLY);
    return tf_reader_new(*fd, path, TF_FORMAT_CSV, TF_DATASET_CUSTOMS, err, sizeof(err));
}

static void run_all(size_t batch)
{
    int fd;
    tf_reader_t *r = open_reader(&fd);
    CHECK(r != NULL);
    seen_t s = {0};
    tf_feed_opts_t o = {.batch = batch, .bad_cb = on_bad, .opaque = &s};
    char err[256];
    tf_feed_t *f = tf_feed_start(r, &o, err, sizeof(err));
    CHECK(f != NULL);
    const tf_feed_item_t *items;
    size_t n;
    int next = 1, in_order = 1, max_batch = 0;
    while ((n = tf_feed_next(f, &items)) > 0) {
        if ((int)n > max_batch)
            max_batch = (int)n;
        for (size_t i = 0; i < n; i++) {
            char want[32];
            snprintf(want, sizeof(want), "R-%d", next++);
            if (strcmp(items[i].rec.record_id, want) != 0)
                in_order = 0;
        }
    }
    uint64_t nread = 0, nrej = 0;
    CHECK_INT(tf_feed_finish(f, &nread, &nrej), TF_READ_EOF);
    CHECK_INT(next - 1, NGOOD);
    CHECK(in_order);
    CHECK(max_batch <= (int)batch);
    CHECK_INT(nread, NGOOD + 3);
    CHECK_INT(nrej, 3);
    CHECK_INT(s.nbad, 3);
    for (int i = 0; i < 3; i++)
        CHECK_INT(s.lines[i], bad_lines[i]);
    CHECK(!pthread_equal(s.thread, pthread_self()));
    tf_reader_destroy(r);
    close(fd);
}

static void test_batches(void)
{
    run_all(512);
    run_all(1);
    run_all(7);
}

static void test_cancel(void)
{
    int fd;
    tf_reader_t *r = open_reader(&fd);
    seen_t s = {0};
    tf_feed_opts_t o = {.batch = 16, .bad_cb = on_bad, .opaque = &s};
    char err[256];
    tf_feed_t *f = tf_feed_start(r, &o, err, sizeof(err));
    const tf_feed_item_t *items;
    CHECK(tf_feed_next(f, &items) > 0);
    tf_feed_cancel(f);
    uint64_t nread = 0;
    tf_feed_finish(f, &nread, NULL);
    CHECK(nread < NGOOD); /* it stopped early, and did not hang */
    tf_reader_destroy(r);
    close(fd);
}

static void test_stop_at_bad(void)
{
    int fd;
    tf_reader_t *r = open_reader(&fd);
    seen_t s = {0};
    tf_feed_opts_t o = {.batch = 1, .stop_at_bad = true, .bad_cb = on_bad, .opaque = &s};
    char err[256];
    tf_feed_t *f = tf_feed_start(r, &o, err, sizeof(err));
    const tf_feed_item_t *items;
    size_t n, total = 0;
    while ((n = tf_feed_next(f, &items)) > 0)
        total += n;
    uint64_t nread = 0, nrej = 0;
    tf_feed_finish(f, &nread, &nrej);
    CHECK_INT(total, 100);
    CHECK_INT(nrej, 1);
    CHECK_INT(nread, 101);
    tf_reader_destroy(r);
    close(fd);
}

int main(void)
{
    if (make_input() != 0) {
        perror("mkstemp");
        return 1;
    }
    TF_TEST_RUN(test_batches);
    TF_TEST_RUN(test_cancel);
    TF_TEST_RUN(test_stop_at_bad);
    unlink(path);
    return TF_TEST_REPORT();
}
