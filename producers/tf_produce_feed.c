#include "tf_produce_feed.h"

#include <pthread.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_clock.h"

/* Batches in the ring: one being filled, one being consumed, the rest
 * buffer bursts. */
#define NBATCH 4

struct tf_feed {
    tf_reader_t *r;
    tf_feed_opts_t o;
    tf_feed_item_t *items; /* NBATCH * o.batch */
    size_t count[NBATCH];  /* records in each published batch */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* any change of filled / done / cancelled */
    /* Under lock: */
    int head;            /* oldest published batch (the consumer's) */
    int filled;          /* published batches not yet released */
    bool done;           /* the reader thread will publish nothing more */
    bool holding;        /* the consumer holds batch `head` */
    /* Written by the reader thread, read by others with atomics: */
    int cancelled;
    uint64_t read, rejected;
    tf_read_status_t status;
};

/* Publishes the batch being filled (n records); waits for a free slot.
 * Returns false when cancelled. */
static bool publish(tf_feed_t *f, size_t n)
{
    pthread_mutex_lock(&f->lock);
    int tail = (f->head + f->filled) % NBATCH;
    f->count[tail] = n;
    f->filled++;
    pthread_cond_broadcast(&f->cond);
    /* The next batch to fill must not be one the consumer still has. */
    while (f->filled == NBATCH && !__atomic_load_n(&f->cancelled, __ATOMIC_RELAXED))
        pthread_cond_wait(&f->cond, &f->lock);
    bool ok = !__atomic_load_n(&f->cancelled, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&f->lock);
    return ok;
}

static void *reader_main(void *arg)
{
    tf_feed_t *f = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    tf_read_status_t status = TF_READ_EOF;
    size_t n = 0;
    pthread_mutex_lock(&f->lock);
    int tail = (f->head + f->filled) % NBATCH;
    pthread_mutex_unlock(&f->lock);
    tf_feed_item_t *batch = f->items + (size_t)tail * f->o.batch;
    for (;;) {
        if (__atomic_load_n(&f->cancelled, __ATOMIC_RELAXED))
            break;
        tf_read_status_t st = tf_reader_next(f->r, &batch[n].rec);
        if (st == TF_READ_EOF || st == TF_READ_FATAL) {
            status = st;
            break;
        }
        if (st == TF_READ_BAD) {
            if (f->o.bad_cb && !f->o.bad_cb(f->o.opaque, f->r))
                continue;
            __atomic_add_fetch(&f->read, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&f->rejected, 1, __ATOMIC_RELAXED);
            if (f->o.stop_at_bad)
                break;
            continue;
        }
        uint64_t nread = __atomic_add_fetch(&f->read, 1, __ATOMIC_RELAXED);
        if (f->o.progress_cb && (nread & 4095) == 0)
            f->o.progress_cb(f->o.opaque, nread, tf_reader_bytes(f->r));
        batch[n].line = tf_reader_line(f->r);
        if (++n == f->o.batch) {
            if (!publish(f, n))
                break;
            n = 0;
            pthread_mutex_lock(&f->lock);
            tail = (f->head + f->filled) % NBATCH;
            pthread_mutex_unlock(&f->lock);
            batch = f->items + (size_t)tail * f->o.batch;
        }
    }
    pthread_mutex_lock(&f->lock);
    if (n > 0 && !__atomic_load_n(&f->cancelled, __ATOMIC_RELAXED) && f->filled < NBATCH) {
        int t = (f->head + f->filled) % NBATCH;
        f->count[t] = n;
        f->filled++;
    }
    f->status = status;
    f->done = true;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

tf_feed_t *tf_feed_start(tf_reader_t *r, const tf_feed_opts_t *o, char *errstr, size_t errlen)
{
    tf_feed_t *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    f->r = r;
    f->o = *o;
    if (f->o.batch == 0)
        f->o.batch = 1;
    f->items = malloc(sizeof(*f->items) * NBATCH * f->o.batch);
    if (!f->items) {
        snprintf(errstr, errlen, "out of memory");
        free(f);
        return NULL;
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    f->status = TF_READ_EOF;
    int e = pthread_create(&f->thread, NULL, reader_main, f);
    if (e) {
        snprintf(errstr, errlen, "cannot start the reader thread: %s", strerror(e));
        pthread_cond_destroy(&f->cond);
        pthread_mutex_destroy(&f->lock);
        free(f->items);
        free(f);
        return NULL;
    }
    return f;
}

size_t tf_feed_next(tf_feed_t *f, const tf_feed_item_t **items)
{
    pthread_mutex_lock(&f->lock);
    if (f->holding) {
        /* Release the batch handed out by the previous call. */
        f->holding = false;
        f->head = (f->head + 1) % NBATCH;
        f->filled--;
        pthread_cond_broadcast(&f->cond);
    }
    while (f->filled == 0 && !f->done)
        pthread_cond_wait(&f->cond, &f->lock);
    size_t n = 0;
    if (f->filled > 0) {
        f->holding = true;
        n = f->count[f->head];
        *items = f->items + (size_t)f->head * f->o.batch;
    }
    pthread_mutex_unlock(&f->lock);
    return n;
}

void tf_feed_cancel(tf_feed_t *f)
{
    pthread_mutex_lock(&f->lock);
    __atomic_store_n(&f->cancelled, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

uint64_t tf_feed_rejected(const tf_feed_t *f)
{
    return __atomic_load_n(&f->rejected, __ATOMIC_RELAXED);
}

tf_read_status_t tf_feed_finish(tf_feed_t *f, uint64_t *read, uint64_t *rejected)
{
    tf_feed_cancel(f);
    pthread_join(f->thread, NULL);
    tf_read_status_t st = f->status;
    if (read)
        *read = f->read;
    if (rejected)
        *rejected = f->rejected;
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    free(f->items);
    free(f);
    return st;
}

int tf_feed_wait(tf_feed_t *f, int timeout_ms)
{
    struct timespec deadline = tf_deadline_ms(timeout_ms);
    pthread_mutex_lock(&f->lock);
    /* The batch still held by the consumer is not a new one. */
    int ready;
    while (!(ready = f->filled - (f->holding ? 1 : 0) > 0 || f->done)) {
        if (pthread_cond_timedwait(&f->cond, &f->lock, &deadline) != 0)
            break;
    }
    ready = f->filled - (f->holding ? 1 : 0) > 0 || f->done;
    pthread_mutex_unlock(&f->lock);
    return ready;
}
