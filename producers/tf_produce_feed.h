/*
 * tf_produce_feed.h - runs a tf_reader on its own thread and hands its valid
 * records to the publishing thread in batches, so that parsing/validation
 * and encoding/producing use two cores (the producer's bottleneck; see
 * docs/produce.md, "Performance").
 *
 * Threads: tf_feed_start() starts the reader thread; one other thread (the
 * caller) calls tf_feed_next() / tf_feed_cancel() / tf_feed_finish(). The
 * bad-record callback runs on the reader thread, right after the reader
 * returned TF_READ_BAD, so it may call tf_reader_error(),
 * tf_reader_reason() and tf_reader_write_reject() on the reader.
 *
 * Signals: the reader thread unblocks SIGINT and SIGTERM, the caller should
 * keep them blocked while the feed runs, so that a signal interrupts a
 * read() blocked on a pipe (see tradeflow-produce.c).
 *
 * Ownership: the feed borrows the reader (not freed, used only by the reader
 * thread until tf_feed_finish() returns) and owns its batches. Caller frees
 * the feed with tf_feed_finish().
 */
#ifndef TF_PRODUCE_FEED_H
#define TF_PRODUCE_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tf_input.h"
#include "tf_record.h"

typedef struct tf_feed tf_feed_t;

typedef struct tf_feed_item {
    tf_record_t rec;
    long line; /* first line of the record in its input */
} tf_feed_item_t;

/* Called on the reader thread for each rejected record. Returns true to
 * count it as read and rejected, false to forget it (a record cut short
 * because the input was closed by an interrupt is not the input's fault). */
typedef bool tf_feed_bad_cb(void *opaque, tf_reader_t *r);
/* Called on the reader thread now and then (every few thousand records)
 * with the counts so far and the reader's byte position. */
typedef void tf_feed_progress_cb(void *opaque, uint64_t read, uint64_t bytes);

typedef struct tf_feed_opts {
    size_t batch;          /* records per hand-off: 1 for live input (latency) */
    bool stop_at_bad;      /* end the feed at the first rejected record */
    tf_feed_bad_cb *bad_cb;
    tf_feed_progress_cb *progress_cb; /* NULL: none */
    void *opaque;
} tf_feed_opts_t;

tf_feed_t *tf_feed_start(tf_reader_t *r, const tf_feed_opts_t *o, char *errstr, size_t errlen);

/* Waits for the next batch of valid records; returns its size and points
 * *items at it (owned by the feed, valid until the next call), or 0 when the
 * input is finished (EOF, FATAL, stop_at_bad or cancelled). */
size_t tf_feed_next(tf_feed_t *f, const tf_feed_item_t **items);

/* Waits up to timeout_ms for a new batch or the end of the input. Returns 1
 * when tf_feed_next() would not block, 0 on timeout: a live input may be idle
 * for long, and the caller has delivery reports to serve meanwhile. */
int tf_feed_wait(tf_feed_t *f, int timeout_ms);

/* Asks the reader thread to stop after the record it is reading. */
void tf_feed_cancel(tf_feed_t *f);

/* Records rejected so far (any thread). */
uint64_t tf_feed_rejected(const tf_feed_t *f);

/* Stops (if still running) and joins the reader thread, frees the feed and
 * returns the reader's last status (TF_READ_EOF or TF_READ_FATAL; EOF also
 * when cancelled or stopped at a bad record) with the totals read (valid and
 * rejected) and rejected. */
tf_read_status_t tf_feed_finish(tf_feed_t *f, uint64_t *read, uint64_t *rejected);

#endif
