/*
 * tf_input.h - streaming readers for customs and investment feeds in CSV
 * (RFC 4180, through libcsv) and JSON Lines (through jansson), with
 * validation that gives one clear reason per bad record.
 *
 * A reader pulls bytes from a file descriptor as it needs them and returns a
 * record as soon as its line (or CSV record) is complete, so a pipe fed by
 * `tail -F` yields records with low latency. Memory is bounded by the longest
 * record, not by the input.
 *
 * Errors are formatted "FILE:LINE: column: reason"; the column is "-" when
 * the problem is not tied to one column (a malformed line, a wrong field
 * count). Lines are counted physically: a quoted CSV field holding newlines
 * spans several lines and the record is reported at its first line.
 *
 * The accepted formats and every rejection reason are documented in
 * docs/input-formats.md.
 */
#ifndef TF_INPUT_H
#define TF_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tf_record.h"

typedef enum tf_format { TF_FORMAT_CSV = 0, TF_FORMAT_JSONL = 1 } tf_format_t;

/* "csv" / "jsonl" (also "json", "ndjson"); 0 ok, -1 unknown. */
int tf_format_parse(const char *s, tf_format_t *out);
/* From a file name's extension (.csv, .jsonl/.ndjson/.json, optional .gz not
 * supported); -1 if unknown. */
int tf_format_from_path(const char *path, tf_format_t *out);
/* "csv" / "jsonl". */
const char *tf_format_name(tf_format_t f);

typedef struct tf_reader tf_reader_t;

/* Reads records of dataset ds from fd (not owned, not closed; a blocking
 * descriptor: EAGAIN is a read error). name is used in messages ("-" is shown
 * as "<stdin>"); it is copied. Reading is incremental and streaming: a
 * record is returned as soon as its line (or CSV record) is complete, so
 * pipes work with low latency. The reader owns all its memory;
 * the caller frees it with tf_reader_destroy(). Returns NULL and fills errstr
 * on failure (out of memory, libcsv initialisation). */
tf_reader_t *tf_reader_new(int fd, const char *name, tf_format_t fmt, tf_dataset_t ds,
                           char *errstr, size_t errlen);
/* Frees the reader; fd stays open. NULL is accepted. */
void tf_reader_destroy(tf_reader_t *r);

typedef enum tf_read_status {
    TF_READ_OK = 0,    /* *out holds a valid record (tf_record_validate passed) */
    TF_READ_BAD = 1,   /* this record is rejected; see tf_reader_error(); go on reading */
    TF_READ_EOF = 2,   /* end of input */
    TF_READ_FATAL = -1 /* I/O error or unusable header; see tf_reader_error(); stop */
} tf_read_status_t;

/* Reads the next record into *out (overwritten entirely on OK; unspecified
 * otherwise). Blocks on fd until a record is complete or input ends. After
 * EOF or FATAL, further calls return the same status. */
tf_read_status_t tf_reader_next(tf_reader_t *r, tf_record_t *out);

/* The last BAD/FATAL: formatted "FILE:LINE: column: reason" (column may be
 * "-"). Owned by r, valid until the next call. Empty after OK/EOF. */
const char *tf_reader_error(const tf_reader_t *r);
/* The bare reason of the last BAD/FATAL (the part after "column: "), for
 * tf_reader_write_reject(). Owned by r, valid until the next call. */
const char *tf_reader_reason(const tf_reader_t *r);
/* First (physical, 1-based) line of the last record read. */
long tf_reader_line(const tf_reader_t *r);

/* Writes the last record read (OK or BAD) to out in the input's own format
 * plus a trailing `reason` column (CSV: header with `reason` added on the
 * first call; JSONL: the original object with a "reason" member added; if the
 * line was not valid JSON, {"raw": "...", "reason": ...}).
 * Returns 0 or -1 on write error. */
int tf_reader_write_reject(tf_reader_t *r, FILE *out, const char *reason);

/* Bytes consumed so far (for progress/ETA). */
uint64_t tf_reader_bytes(const tf_reader_t *r);

/* ---- source profiles (tf_source.h) ------------------------------------ */

struct tf_source;

/* A reader of a statistics office's own layout: CSV (comma, or tab when the
 * header line has tabs and no comma), JSON Lines, or for Comtrade also the
 * API's JSON document ({"data": [...]}, or a top-level array of objects)
 * read element by element. Header names are matched exactly; columns the
 * profile does not use are ignored. Rows the profile skips (another HS
 * level, a breakdown, an unmapped flow) are not returned: they are counted
 * per reason (tf_reader_skips). GB18030/GBK input is converted to UTF-8 as
 * it is read (the profile's encoding; auto: decided on the first 4 KiB).
 * src is borrowed and must outlive the reader; otherwise as tf_reader_new. */
tf_reader_t *tf_reader_new_source(int fd, const char *name, tf_format_t fmt,
                                  struct tf_source *src, char *errstr, size_t errlen);

/* The column of the last BAD/FATAL ("-" when not tied to one). Owned by r. */
const char *tf_reader_column(const tf_reader_t *r);
/* The raw text of the last record read (CSV: its line(s), converted to
 * UTF-8; JSON: the object), without the line end; owned by r, valid until
 * the next call. */
const char *tf_reader_raw(const tf_reader_t *r, size_t *len);

/* Skipped rows, counted by reason (the first TF_READER_SKIP_KINDS distinct
 * reasons; later ones are counted under the last entry, "other reasons"). */
#define TF_READER_SKIP_KINDS 16
struct tf_reader_skip {
    char reason[160];
    uint64_t count;
    long first_line;
};
uint64_t tf_reader_skipped(const tf_reader_t *r);
size_t tf_reader_skip_kinds(const tf_reader_t *r);
const struct tf_reader_skip *tf_reader_skip_at(const tf_reader_t *r, size_t i);

#endif
