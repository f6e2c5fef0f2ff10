/*
 * fuzz_jsonl.c - libFuzzer target for the JSON Lines reader (producers/tf_input.c).
 *
 * The input is a JSON Lines feed; its first byte picks the dataset. Besides
 * crashes and sanitizer reports, it checks three properties and aborts when
 * one fails: every record returned OK passes tf_record_validate; the reader
 * consumed exactly the input at EOF; and the rejects file written for every
 * record (OK or BAD) reads back to the same sequence of OK/BAD statuses and
 * the same OK records, which is what lets a user fix and re-feed it.
 */
#define _GNU_SOURCE
#include "tf_input.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FUZZ_MAXREC 256

static int memfd = -1;

static int fd_with(const uint8_t *data, size_t size)
{
    if (memfd < 0)
        memfd = memfd_create("fuzz_jsonl", 0);
    if (memfd < 0 || ftruncate(memfd, 0) != 0)
        abort();
    if (size && pwrite(memfd, data, size, 0) != (ssize_t)size)
        abort();
    lseek(memfd, 0, SEEK_SET);
    return memfd;
}

static int same(const tf_record_t *a, const tf_record_t *b)
{
    return strcmp(a->record_id, b->record_id) == 0 && a->revision == b->revision &&
           strcmp(a->reporter, b->reporter) == 0 && strcmp(a->partner, b->partner) == 0 &&
           a->flow == b->flow && a->period == b->period && a->value_cents == b->value_cents &&
           strcmp(a->hs_code, b->hs_code) == 0 && a->has_quantity == b->has_quantity &&
           a->quantity_milli == b->quantity_milli && strcmp(a->unit, b->unit) == 0 &&
           strcmp(a->sector, b->sector) == 0;
}

/* Reads fd to the end; fills statuses and OK records, writes every record to
 * rejects (if not NULL). Returns the final status. */
static tf_read_status_t run(int fd, tf_dataset_t ds, char *seq, tf_record_t *recs, int *n,
                            FILE *rejects, uint64_t *bytes)
{
    char err[128];
    tf_reader_t *r = tf_reader_new(fd, "fuzz.jsonl", TF_FORMAT_JSONL, ds, err, sizeof err);
    if (!r)
        abort();
    tf_read_status_t st;
    tf_record_t rec;
    *n = 0;
    while ((st = tf_reader_next(r, &rec)) == TF_READ_OK || st == TF_READ_BAD) {
        if (strncmp(tf_reader_error(r), "fuzz.jsonl:", 11) != 0 && st == TF_READ_BAD)
            abort();
        if (st == TF_READ_OK) {
            const char *col;
            char why[256];
            if (tf_record_validate(&rec, &col, why, sizeof why) != 0)
                abort();
        }
        if (*n < FUZZ_MAXREC) {
            seq[*n] = st == TF_READ_OK ? 'O' : 'B';
            recs[*n] = rec;
            (*n)++;
        }
        if (rejects && tf_reader_write_reject(r, rejects, tf_reader_reason(r)) != 0)
            abort();
    }
    *bytes = tf_reader_bytes(r);
    tf_reader_destroy(r);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    tf_dataset_t ds = (data[0] & 1) ? TF_DATASET_INVESTMENT : TF_DATASET_CUSTOMS;
    data++;
    size--;

    static char seq1[FUZZ_MAXREC], seq2[FUZZ_MAXREC];
    static tf_record_t rec1[FUZZ_MAXREC], rec2[FUZZ_MAXREC];
    int n1, n2;
    uint64_t bytes;
    char *text = NULL;
    size_t len = 0;
    FILE *rejects = open_memstream(&text, &len);
    tf_read_status_t st = run(fd_with(data, size), ds, seq1, rec1, &n1, rejects, &bytes);
    fclose(rejects);
    if (st == TF_READ_EOF && bytes != size)
        abort();
    /* A "reason" member is replaced in the rejects file, which is fine. */
    int has_reason = 0;
    if (st == TF_READ_EOF && n1 > 0 && n1 < FUZZ_MAXREC && !has_reason) {
        st = run(fd_with((const uint8_t *)text, len), ds, seq2, rec2, &n2, NULL, &bytes);
        if (st != TF_READ_EOF || n2 != n1 || memcmp(seq1, seq2, (size_t)n1) != 0)
            abort();
        for (int i = 0; i < n1; i++)
            if (seq1[i] == 'O' && !same(&rec1[i], &rec2[i]))
                abort();
    }
    free(text);
    return 0;
}
