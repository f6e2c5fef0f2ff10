/*
 * tf_input.c - CSV and JSON Lines feed readers (see tf_input.h).
 *
 * Reading is split in two layers. A small scanner cuts the byte stream into
 * raw records: for JSON Lines a record is one physical line; for CSV it is
 * everything up to a newline outside quotes, found with a quote-state machine
 * that mirrors libcsv's (a quote opens a quoted field only at the start of a
 * field, after optional spaces). The scanner is what lets us report the
 * physical first line of every record and keep memory bounded by the longest
 * record. Each raw record is then handed whole to the real parser (libcsv in
 * strict mode, or jansson), and its fields go through one validation path
 * shared by both formats.
 */
#include "tf_input.h"

#include <csv.h>
#include <errno.h>
#include <iconv.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_source.h"

/* A record (CSV record or JSON line) longer than this is rejected whole. */
#define TF_INPUT_RECORD_MAX (1024 * 1024)
/* How much of an oversize record is kept for the rejects file. */
#define TF_INPUT_OVERSIZE_KEEP 1024
#define TF_INPUT_CHUNK (64 * 1024)

/* The columns a feed may have, in the order they are validated. */
enum col {
    C_RECORD_ID,
    C_REVISION,
    C_REPORTER,
    C_PARTNER,
    C_FLOW,
    C_PERIOD,
    C_HS_CODE,
    C_VALUE_USD,
    C_QUANTITY,
    C_UNIT,
    C_SECTOR,
    C_REASON, /* written to rejects files; ignored on input so they can be re-fed */
    C_COUNT,
    C_UNKNOWN = -1,
};

static const char *const col_names[C_COUNT] = {
    "record_id", "revision", "reporter", "partner", "flow",   "period",
    "hs_code",   "value_usd", "quantity", "unit",   "sector", "reason",
};

#define BIT(c) (1u << (c))
#define COMMON_COLS                                                                                \
    (BIT(C_RECORD_ID) | BIT(C_REVISION) | BIT(C_REPORTER) | BIT(C_PARTNER) | BIT(C_FLOW) |         \
     BIT(C_PERIOD) | BIT(C_VALUE_USD) | BIT(C_REASON))
#define REQUIRED_COLS                                                                              \
    (BIT(C_RECORD_ID) | BIT(C_REPORTER) | BIT(C_PARTNER) | BIT(C_FLOW) | BIT(C_PERIOD) |           \
     BIT(C_VALUE_USD))

static unsigned allowed_cols(tf_dataset_t ds)
{
    if (ds == TF_DATASET_CUSTOMS)
        return COMMON_COLS | BIT(C_HS_CODE) | BIT(C_QUANTITY) | BIT(C_UNIT);
    return COMMON_COLS | BIT(C_SECTOR);
}

static enum col col_lookup(const char *s, size_t n, tf_dataset_t ds)
{
    for (int c = 0; c < C_COUNT; c++)
        if (strlen(col_names[c]) == n && memcmp(col_names[c], s, n) == 0)
            return (allowed_cols(ds) & BIT(c)) ? (enum col)c : C_UNKNOWN;
    return C_UNKNOWN;
}

/* A growable byte buffer, always NUL-terminated when non-empty. */
struct bytes {
    char *p;
    size_t len, cap;
};

static int bytes_reserve(struct bytes *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int bytes_append(struct bytes *b, const void *s, size_t n)
{
    if (bytes_reserve(b, n))
        return -1;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Appends s and a NUL (kept as part of the buffer: used for lists of
 * NUL-terminated strings). */
static inline int bytes_append_z(struct bytes *b, const void *s, size_t n)
{
    if (b->len + n + 2 > b->cap && bytes_reserve(b, n + 1))
        return -1;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->p[b->len + n] = '\0';
    b->len += n + 1;
    b->p[b->len] = '\0';
    return 0;
}

/* The value of one column of the current record, trimmed, NUL-terminated. */
struct view {
    bool present;
    size_t off; /* into reader->vals */
    size_t len;
};

/* CSV scanner states (see the file comment). */
enum qstate { Q_FIELD_START, Q_UNQUOTED, Q_QUOTED, Q_QUOTE_IN_QUOTED };

struct tf_reader {
    int fd;
    char *name;
    tf_format_t fmt;
    tf_dataset_t ds;

    /* Input chunk and position in it. */
    char chunk[TF_INPUT_CHUNK];
    size_t cpos, clen;
    bool eof, done;
    bool bom_done;   /* the start of input was checked for a byte order mark */
    int bom_pos;     /* bytes of the mark matched so far */
    tf_read_status_t done_status;
    uint64_t bytes;
    long next_line; /* physical line of the next byte to scan */

    /* The current raw record (without its newline) and its first line. */
    struct bytes raw;
    bool oversize;
    long line;
    enum qstate qs;

    /* CSV: parser, header and the fields of the current record. */
    struct csv_parser csv;
    bool have_header;
    size_t ncols;
    enum col *colmap;     /* ncols entries */
    struct bytes hdr;     /* header names, each NUL-terminated */
    size_t *hdr_off;      /* ncols offsets into hdr */
    struct bytes fields;  /* current record's fields, each NUL-terminated */
    size_t *field_off;    /* nfields offsets into fields */
    size_t *field_len;    /* nfields lengths */
    size_t nfields, field_cap;
    int nrows;
    bool alloc_failed;
    bool csv_malformed;   /* the last record did not parse: write it raw */
    bool reject_header_written;

    /* JSON Lines: the current object, or NULL if the line was not one. */
    json_t *obj;

    /* Trimmed column values of the current record. */
    struct bytes vals;
    struct view view[C_COUNT];

    char reason[384];
    char error[640];
    char errcol[96]; /* column of the last BAD/FATAL, "-" when none */

    /* Source profiles (tf_reader_new_source); src is borrowed. */
    tf_source_t *src;
    char delim;          /* CSV field separator: ',' or, detected in the header, '\t' */
    int *scolmap;        /* ncols entries: the profile's column or -1 (ignored) */
    bool spresent[TF_SOURCE_MAXCOL];
    struct view sview[TF_SOURCE_MAXCOL];
    struct tf_reader_skip skips[TF_READER_SKIP_KINDS];
    size_t nskips;
    uint64_t skipped;
    /* Encoding: GB18030 input converted to UTF-8 in fill(). */
    tf_encoding_t enc;
    bool enc_decided;
    iconv_t cd; /* (iconv_t)-1 when not converting */
    char *inb;  /* TF_INPUT_CHUNK bytes of unconverted input */
    size_t inlen;
    bool in_eof;
    uint64_t in_bytes;
    /* JSON documents (source profiles): see json_scan(). */
    int jmode, jdepth, jret_obj, jret_arr;
    bool jstr, jesc, jkey_data, jexpect_key, jcolon;
    char jlast[8];
    size_t jlastlen;
};

/* ---- formats --------------------------------------------------------- */

int tf_format_parse(const char *s, tf_format_t *out)
{
    if (strcmp(s, "csv") == 0)
        *out = TF_FORMAT_CSV;
    else if (strcmp(s, "jsonl") == 0 || strcmp(s, "json") == 0 || strcmp(s, "ndjson") == 0)
        *out = TF_FORMAT_JSONL;
    else
        return -1;
    return 0;
}

int tf_format_from_path(const char *path, tf_format_t *out)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base)
        return -1;
    return tf_format_parse(dot + 1, out);
}

const char *tf_format_name(tf_format_t f)
{
    return f == TF_FORMAT_JSONL ? "jsonl" : "csv";
}

/* ---- errors ---------------------------------------------------------- */

/* Copies s into dst (size dstlen > 0) keeping valid UTF-8 sequences and
 * replacing control characters and invalid bytes by '?', so that an error
 * message is one printable line and valid UTF-8 even when it quotes a bad
 * value or a snippet cut in the middle of a character. */
static void sanitize(char *dst, size_t dstlen, const char *s)
{
    size_t o = 0;
    const unsigned char *u = (const unsigned char *)s;
    while (*u && o + 1 < dstlen) {
        if (*u < 0x20 || *u == 0x7f) {
            dst[o++] = '?';
            u++;
            continue;
        }
        size_t n = *u < 0x80 ? 1 : *u < 0xE0 ? 2 : *u < 0xF0 ? 3 : 4;
        if (n > 1) {
            size_t have = strnlen((const char *)u, n);
            if (have < n || !tf_utf8_valid((const char *)u, n)) {
                dst[o++] = '?';
                u++;
                continue;
            }
        }
        if (o + n >= dstlen)
            break;
        memcpy(dst + o, u, n);
        o += n;
        u += n;
    }
    dst[o] = '\0';
}

static const char *display_name(const tf_reader_t *r)
{
    return strcmp(r->name, "-") == 0 ? "<stdin>" : r->name;
}

/* Sets the error of the current record; column may be NULL for "-". */
__attribute__((format(printf, 4, 5))) static void set_error(tf_reader_t *r, long line,
                                                            const char *column, const char *fmt,
                                                            ...)
{
    char tmp[sizeof r->reason];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sanitize(r->reason, sizeof r->reason, tmp);
    sanitize(r->errcol, sizeof r->errcol, column && *column ? column : "-");
    snprintf(r->error, sizeof r->error, "%s:%ld: %s: %s", display_name(r), line, r->errcol,
             r->reason);
}

/* ---- life cycle ------------------------------------------------------ */

/* libcsv trims spaces and tabs around unquoted fields by default; we trim
 * quoted ones ourselves afterwards, so the rule is the same for both. */
tf_reader_t *tf_reader_new(int fd, const char *name, tf_format_t fmt, tf_dataset_t ds,
                           char *errstr, size_t errlen)
{
    tf_reader_t *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    r->fd = fd;
    r->fmt = fmt;
    r->ds = ds;
    r->next_line = 1;
    r->delim = ',';
    r->cd = (iconv_t)-1;
    r->name = strdup(name ? name : "-");
    if (!r->name) {
        free(r);
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    if (csv_init(&r->csv, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        free(r->name);
        free(r);
        snprintf(errstr, errlen, "cannot initialise the CSV parser");
        return NULL;
    }
    return r;
}

tf_reader_t *tf_reader_new_source(int fd, const char *name, tf_format_t fmt,
                                  struct tf_source *src, char *errstr, size_t errlen)
{
    tf_reader_t *r = tf_reader_new(fd, name, fmt, TF_DATASET_CUSTOMS, errstr, errlen);
    if (!r)
        return NULL;
    r->src = src;
    r->enc = tf_source_encoding(src);
    r->enc_decided = r->enc == TF_ENC_UTF8;
    if (!r->enc_decided && !(r->inb = malloc(TF_INPUT_CHUNK))) {
        tf_reader_destroy(r);
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    return r;
}

const char *tf_reader_column(const tf_reader_t *r)
{
    return r->errcol[0] ? r->errcol : "-";
}

const char *tf_reader_raw(const tf_reader_t *r, size_t *len)
{
    *len = r->raw.len;
    return r->raw.p ? r->raw.p : "";
}

uint64_t tf_reader_skipped(const tf_reader_t *r)
{
    return r->skipped;
}

size_t tf_reader_skip_kinds(const tf_reader_t *r)
{
    return r->nskips;
}

const struct tf_reader_skip *tf_reader_skip_at(const tf_reader_t *r, size_t i)
{
    return i < r->nskips ? &r->skips[i] : NULL;
}

static void count_skip(tf_reader_t *r, const char *reason)
{
    r->skipped++;
    size_t i = 0;
    for (; i < r->nskips; i++)
        if (strcmp(r->skips[i].reason, reason) == 0)
            break;
    if (i == r->nskips) {
        if (r->nskips == TF_READER_SKIP_KINDS) {
            i = TF_READER_SKIP_KINDS - 1;
            snprintf(r->skips[i].reason, sizeof r->skips[i].reason, "other reasons");
        } else {
            r->nskips++;
            snprintf(r->skips[i].reason, sizeof r->skips[i].reason, "%.159s", reason);
            r->skips[i].first_line = r->line;
        }
    }
    r->skips[i].count++;
}

void tf_reader_destroy(tf_reader_t *r)
{
    if (!r)
        return;
    if (r->cd != (iconv_t)-1)
        iconv_close(r->cd);
    free(r->inb);
    free(r->scolmap);
    csv_free(&r->csv);
    if (r->obj)
        json_decref(r->obj);
    free(r->raw.p);
    free(r->hdr.p);
    free(r->hdr_off);
    free(r->colmap);
    free(r->fields.p);
    free(r->field_off);
    free(r->field_len);
    free(r->vals.p);
    free(r->name);
    free(r);
}

const char *tf_reader_error(const tf_reader_t *r)
{
    return r->error;
}

const char *tf_reader_reason(const tf_reader_t *r)
{
    return r->reason;
}

long tf_reader_line(const tf_reader_t *r)
{
    return r->line;
}

uint64_t tf_reader_bytes(const tf_reader_t *r)
{
    return r->bytes;
}

/* ---- scanner --------------------------------------------------------- */

/* Reads raw input into r->inb (after what is there). 1 data, 0 EOF, -1 error. */
static int fill_raw(tf_reader_t *r)
{
    for (;;) {
        ssize_t n = read(r->fd, r->inb + r->inlen, TF_INPUT_CHUNK - r->inlen);
        if (n > 0) {
            r->inlen += (size_t)n;
            return 1;
        }
        if (n == 0) {
            r->in_eof = true;
            return 0;
        }
        if (errno != EINTR) {
            set_error(r, r->next_line, NULL, "read error: %s", strerror(errno));
            return -1;
        }
    }
}

/* Whether s is valid UTF-8 save for a last sequence cut short by the end
 * of the buffer. */
static bool utf8_prefix_valid(const char *s, size_t n)
{
    size_t cut = n;
    /* Back up over at most 3 bytes of an incomplete last sequence. */
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = (unsigned char)s[n - k];
        if ((c & 0xC0) != 0x80) {
            size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            if (need > k)
                cut = n - k;
            break;
        }
    }
    return tf_utf8_valid(s, cut);
}

/* Refills the chunk through the encoding: UTF-8 input is passed on, GB18030
 * converted. Returns 1 with data, 0 at end of input, -1 on error. */
static int fill_convert(tf_reader_t *r)
{
    if (!r->enc_decided) {
        /* TF_ENC_AUTO or GBK: look at the first 4 KiB (or all of a shorter
         * input) once. */
        while (r->inlen < 4096 && !r->in_eof) {
            if (fill_raw(r) < 0)
                return -1;
        }
        bool gbk = r->enc == TF_ENC_GBK || !utf8_prefix_valid(r->inb, r->inlen);
        if (gbk) {
            r->cd = iconv_open("UTF-8", "GB18030");
            if (r->cd == (iconv_t)-1) {
                set_error(r, 1, NULL, "cannot convert from GB18030: %s", strerror(errno));
                return -1;
            }
        }
        r->enc_decided = true;
    }
    for (;;) {
        if (r->inlen > 0) {
            if (r->cd == (iconv_t)-1) {
                memcpy(r->chunk, r->inb, r->inlen);
                r->cpos = 0;
                r->clen = r->inlen;
                r->in_bytes += r->inlen;
                r->inlen = 0;
                return 1;
            }
            char *ip = r->inb, *op = r->chunk;
            size_t il = r->inlen, ol = sizeof r->chunk;
            size_t rc = iconv(r->cd, &ip, &il, &op, &ol);
            int e = errno;
            size_t produced = (size_t)(op - r->chunk), consumed = r->inlen - il;
            r->in_bytes += consumed;
            memmove(r->inb, ip, il);
            r->inlen = il;
            if (produced > 0) {
                r->cpos = 0;
                r->clen = produced;
                return 1;
            }
            if (rc == (size_t)-1 && e == EILSEQ) {
                set_error(r, r->next_line, NULL,
                          "not valid GB18030 at byte %llu of the input (give --encoding)",
                          (unsigned long long)r->in_bytes + 1);
                return -1;
            }
            /* EINVAL: a sequence cut by the end of the buffer: read more. */
        }
        if (r->in_eof) {
            if (r->inlen > 0) {
                set_error(r, r->next_line, NULL, "input ends inside a GB18030 character");
                return -1;
            }
            r->eof = true;
            return 0;
        }
        if (fill_raw(r) < 0)
            return -1;
    }
}

/* Refills the chunk. Returns 1 with data, 0 at end of input, -1 on error. */
static int fill(tf_reader_t *r)
{
    if (r->inb)
        return fill_convert(r);
    for (;;) {
        ssize_t n = read(r->fd, r->chunk, sizeof r->chunk);
        if (n > 0) {
            r->cpos = 0;
            r->clen = (size_t)n;
            return 1;
        }
        if (n == 0) {
            r->eof = true;
            return 0;
        }
        if (errno != EINTR) {
            set_error(r, r->next_line, NULL, "read error: %s", strerror(errno));
            return -1;
        }
    }
}

static int raw_append(tf_reader_t *r, const char *s, size_t n)
{
    if (r->oversize)
        return 0;
    if (r->raw.len + n > TF_INPUT_RECORD_MAX) {
        /* Keep a prefix for the rejects file and drop the rest. */
        r->oversize = true;
        if (r->raw.len < TF_INPUT_OVERSIZE_KEEP) {
            size_t k = TF_INPUT_OVERSIZE_KEEP - r->raw.len;
            return bytes_append(&r->raw, s, k < n ? k : n);
        }
        if (r->raw.len > TF_INPUT_OVERSIZE_KEEP) {
            r->raw.len = TF_INPUT_OVERSIZE_KEEP;
            r->raw.p[r->raw.len] = '\0';
        }
        return 0;
    }
    return bytes_append(&r->raw, s, n);
}

/* Scans bytes from chunk[cpos..clen) up to the end of the current record.
 * Returns the number of bytes consumed and sets *end if the record's newline
 * was reached. */
static size_t scan(tf_reader_t *r, bool *end)
{
    const char *p = r->chunk + r->cpos;
    size_t n = r->clen - r->cpos, i = 0;
    *end = false;
    if (r->fmt == TF_FORMAT_JSONL) {
        const char *nl = memchr(p, '\n', n);
        if (nl) {
            *end = true;
            return (size_t)(nl - p) + 1;
        }
        return n;
    }
    enum qstate qs = r->qs;
    for (; i < n; i++) {
        char c = p[i];
        if (c == '\n') {
            r->next_line++;
            if (qs != Q_QUOTED) {
                r->qs = Q_FIELD_START;
                *end = true;
                /* The newline itself was counted for the next line; the record
                 * started on r->line regardless. */
                return i + 1;
            }
            continue;
        }
        switch (qs) {
        case Q_FIELD_START:
            if (c == '"')
                qs = Q_QUOTED;
            else if (c != r->delim && c != ' ' && c != '\t')
                qs = Q_UNQUOTED;
            break;
        case Q_UNQUOTED:
            if (c == r->delim)
                qs = Q_FIELD_START;
            break;
        case Q_QUOTED:
            if (c == '"')
                qs = Q_QUOTE_IN_QUOTED;
            break;
        case Q_QUOTE_IN_QUOTED:
            if (c == '"')
                qs = Q_QUOTED;
            else if (c == r->delim)
                qs = Q_FIELD_START;
            else if (c != ' ' && c != '\t' && c != '\r')
                qs = Q_UNQUOTED; /* malformed; libcsv will say so */
            break;
        }
    }
    r->qs = qs;
    return n;
}

/* JSON documents of the source profiles. Records are the objects of a JSON
 * Lines file, of a top-level array, or of the "data" array of an envelope
 * object ({"count": 2, "data": [{...}, {...}]}, the Comtrade API's answer),
 * found by a byte-level state machine (strings, escapes, nesting) so that a
 * document of any size is read record by record, each reported at the line
 * where it starts. The scanner appends only the record's own bytes. */
enum { J_TOP, J_ARR, J_OBJ, J_REST, J_GARB };

static int raw_append(tf_reader_t *r, const char *s, size_t n);

static void jput(tf_reader_t *r, char c)
{
    if (raw_append(r, &c, 1))
        r->alloc_failed = true;
}

static size_t json_scan(tf_reader_t *r, bool *end)
{
    const char *p = r->chunk + r->cpos;
    size_t n = r->clen - r->cpos;
    *end = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\n')
            r->next_line++;
        switch (r->jmode) {
        case J_TOP:
        case J_ARR:
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',')
                break;
            if (c == '{') {
                r->line = r->next_line;
                r->jret_obj = r->jmode;
                r->jmode = J_OBJ;
                r->jdepth = 1;
                r->jstr = r->jesc = r->jcolon = r->jkey_data = false;
                r->jexpect_key = true;
                jput(r, c);
            } else if (c == '[' && r->jmode == J_TOP) {
                r->jmode = J_ARR;
                r->jret_arr = J_TOP;
            } else if (c == ']' && r->jmode == J_ARR) {
                r->jmode = r->jret_arr;
                if (r->jmode == J_REST)
                    r->jdepth = 1;
            } else {
                r->line = r->next_line;
                r->jret_obj = r->jmode;
                r->jmode = J_GARB;
                jput(r, c);
            }
            break;
        case J_GARB:
            if (c == '\n' || (r->jret_obj == J_ARR && (c == ',' || c == ']'))) {
                r->jmode = r->jret_obj;
                *end = true;
                return c == ']' ? i : i + 1;
            }
            jput(r, c);
            break;
        case J_OBJ:
        case J_REST: {
            bool cap = r->jmode == J_OBJ;
            bool top = cap && r->jret_obj == J_TOP && r->jdepth == 1;
            if (cap)
                jput(r, c);
            if (r->jstr) {
                if (r->jesc)
                    r->jesc = false;
                else if (c == '\\')
                    r->jesc = true;
                else if (c == '"') {
                    r->jstr = false;
                    if (top && r->jexpect_key) {
                        r->jkey_data = r->jlastlen == 4 && memcmp(r->jlast, "data", 4) == 0;
                        r->jexpect_key = false;
                    }
                } else if (r->jlastlen < sizeof r->jlast) {
                    r->jlast[r->jlastlen++] = c;
                }
                break;
            }
            if (top && r->jcolon && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
                r->jcolon = false;
                if (c == '[') {
                    /* The envelope's record array: forget the envelope. */
                    r->raw.len = 0;
                    r->raw.p[0] = '\0';
                    r->jmode = J_ARR;
                    r->jret_arr = J_REST;
                    break;
                }
            }
            if (c == '"') {
                r->jstr = true;
                r->jlastlen = 0;
            } else if (c == '{' || c == '[') {
                r->jdepth++;
            } else if (c == '}' || c == ']') {
                if (--r->jdepth == 0) {
                    if (cap) {
                        r->jmode = r->jret_obj;
                        *end = true;
                        return i + 1;
                    }
                    r->jmode = J_TOP;
                }
            } else if (top && c == ':') {
                r->jcolon = r->jkey_data;
            } else if (top && c == ',') {
                r->jexpect_key = true;
            }
            break;
        }
        }
    }
    return n;
}

/* The input began with part of a byte order mark and then differed: those
 * bytes were data after all (invalid UTF-8, so the record will be rejected). */
static int unbom(tf_reader_t *r)
{
    if (raw_append(r, "\xEF\xBB\xBF", r->bom_pos)) {
        set_error(r, r->line, NULL, "out of memory");
        return -1;
    }
    if (r->qs == Q_FIELD_START)
        r->qs = Q_UNQUOTED;
    return 0;
}

/* Reads the next raw record into r->raw. Returns 1 with a record, 0 at end of
 * input, -1 on I/O error. Blank lines are skipped. */
static int next_raw(tf_reader_t *r)
{
    for (;;) {
        r->raw.len = 0;
        if (r->raw.p)
            r->raw.p[0] = '\0';
        r->oversize = false;
        r->qs = Q_FIELD_START;
        r->line = r->next_line;
        bool end = false, any = false;
        while (!end) {
            if (r->cpos == r->clen) {
                if (r->eof)
                    break;
                int f = fill(r);
                if (f < 0)
                    return -1;
                if (f == 0)
                    break;
            }
            if (!r->bom_done) {
                /* A UTF-8 byte order mark at the very start is skipped. It may
                 * arrive split over several reads from a pipe. */
                static const char bom[3] = {'\xEF', '\xBB', '\xBF'};
                while (r->cpos < r->clen && r->bom_pos < 3 && r->chunk[r->cpos] == bom[r->bom_pos]) {
                    r->bom_pos++;
                    r->cpos++;
                    r->bytes++;
                }
                if (r->bom_pos < 3 && r->cpos == r->clen)
                    continue; /* undecided: read more */
                r->bom_done = true;
                if (r->bom_pos < 3 && r->bom_pos > 0 && unbom(r))
                    return -1;
                if (r->cpos == r->clen)
                    continue;
            }
            bool jdoc = r->src && r->fmt == TF_FORMAT_JSONL;
            size_t used = jdoc ? json_scan(r, &end) : scan(r, &end);
            any = true;
            size_t keep = jdoc ? 0 : end ? used - 1 : used;
            if (raw_append(r, r->chunk + r->cpos, keep) || (jdoc && r->alloc_failed)) {
                set_error(r, r->line, NULL, "out of memory");
                return -1;
            }
            r->cpos += used;
            r->bytes += used;
            /* A CSV header past the limit is fatal anyway: stop reading at
             * once (a stream such as /dev/zero never ends the line). */
            if (r->oversize && r->fmt != TF_FORMAT_JSONL && !r->have_header)
                break;
        }
        if (!r->bom_done && r->eof) {
            /* Input ended inside what looked like a byte order mark. */
            r->bom_done = true;
            if (r->bom_pos > 0 && unbom(r))
                return -1;
            any = any || r->bom_pos > 0;
        }
        if (r->fmt == TF_FORMAT_JSONL && end && !r->src)
            r->next_line++;
        if (!any && !end)
            return 0;
        /* Strip the CR of a CRLF line end. */
        if (!r->oversize && r->raw.len && r->raw.p[r->raw.len - 1] == '\r')
            r->raw.p[--r->raw.len] = '\0';
        bool blank = !r->oversize;
        for (size_t i = 0; blank && i < r->raw.len; i++)
            blank = r->raw.p[i] == ' ' || r->raw.p[i] == '\t';
        if (blank) {
            if (!end)
                return 0;
            continue;
        }
        return 1;
    }
}

/* ---- CSV ------------------------------------------------------------- */

static void csv_field_cb(void *s, size_t len, void *data)
{
    tf_reader_t *r = data;
    if (r->nfields == r->field_cap) {
        size_t cap = r->field_cap ? r->field_cap * 2 : 16;
        size_t *o = realloc(r->field_off, cap * sizeof *o);
        if (o)
            r->field_off = o;
        size_t *l = realloc(r->field_len, cap * sizeof *l);
        if (l)
            r->field_len = l;
        if (!o || !l) {
            r->alloc_failed = true;
            return;
        }
        r->field_cap = cap;
    }
    r->field_off[r->nfields] = r->fields.len;
    r->field_len[r->nfields] = len;
    if (bytes_append_z(&r->fields, s ? s : "", s ? len : 0)) {
        r->alloc_failed = true;
        return;
    }
    r->nfields++;
}

static void csv_row_cb(int c, void *data)
{
    tf_reader_t *r = data;
    r->nrows++;
}

/* With a tab separator a tab is not blank space around a field. */
static int space_only(unsigned char c)
{
    return c == ' ';
}

static void csv_setup(tf_reader_t *r)
{
    if (r->delim != ',') {
        csv_set_delim(&r->csv, (unsigned char)r->delim);
        csv_set_space_func(&r->csv, space_only);
    }
}

/* Splits r->raw into r->fields. Returns 0, or -1 with the error set. */
static int csv_split(tf_reader_t *r)
{
    r->nfields = 0;
    r->fields.len = 0;
    r->nrows = 0;
    r->alloc_failed = false;
    r->csv_malformed = false;
    size_t n = csv_parse(&r->csv, r->raw.p, r->raw.len, csv_field_cb, csv_row_cb, r);
    bool parse_err = n != r->raw.len;
    int fini = csv_fini(&r->csv, csv_field_cb, csv_row_cb, r);
    if (parse_err || fini != 0) {
        int e = csv_error(&r->csv);
        /* Start afresh: libcsv keeps its error status after a failure. */
        csv_free(&r->csv);
        csv_init(&r->csv, CSV_STRICT | CSV_STRICT_FINI);
        csv_setup(r);
        r->csv_malformed = true;
        if (e == CSV_ENOMEM || e == CSV_ETOOBIG) {
            set_error(r, r->line, NULL, "out of memory");
        } else if (parse_err) {
            set_error(r, r->line, NULL,
                      "malformed CSV: stray quote at byte %zu of the record (a quote may only "
                      "enclose a whole field, and is doubled inside one)",
                      n + 1);
        } else {
            set_error(r, r->line, NULL, "malformed CSV: quoted field not closed before end of input");
        }
        return -1;
    }
    if (r->alloc_failed) {
        r->csv_malformed = true;
        set_error(r, r->line, NULL, "out of memory");
        return -1;
    }
    if (r->nrows > 1) {
        r->csv_malformed = true;
        set_error(r, r->line, NULL,
                  "bare carriage return outside quotes (lines must end with LF or CRLF)");
        return -1;
    }
    return 0;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

static int source_header(tf_reader_t *r);

static int csv_header(tf_reader_t *r)
{
    if (r->src)
        return source_header(r);
    if (r->oversize) {
        set_error(r, r->line, NULL, "header longer than %d bytes", TF_INPUT_RECORD_MAX);
        return -1;
    }
    if (csv_split(r))
        return -1;
    r->ncols = r->nfields;
    r->colmap = calloc(r->ncols, sizeof *r->colmap);
    r->hdr_off = calloc(r->ncols, sizeof *r->hdr_off);
    if (!r->colmap || !r->hdr_off) {
        set_error(r, r->line, NULL, "out of memory");
        return -1;
    }
    unsigned seen = 0;
    for (size_t i = 0; i < r->ncols; i++) {
        const char *s = r->fields.p + r->field_off[i];
        size_t n = r->field_len[i];
        r->hdr_off[i] = r->hdr.len;
        if (bytes_append_z(&r->hdr, s, n)) {
            set_error(r, r->line, NULL, "out of memory");
            return -1;
        }
        if (!tf_utf8_valid(s, n)) {
            set_error(r, r->line, NULL, "invalid UTF-8 in header column %zu", i + 1);
            return -1;
        }
        trim(&s, &n);
        if (n == 0) {
            set_error(r, r->line, NULL, "empty column name in header (column %zu)", i + 1);
            return -1;
        }
        enum col c = col_lookup(s, n, r->ds);
        if (c == C_UNKNOWN) {
            char name[80];
            snprintf(name, sizeof name, "%.*s", n > 64 ? 64 : (int)n, s);
            set_error(r, r->line, name, "unknown column for %s", tf_dataset_name(r->ds));
            return -1;
        }
        if (seen & BIT(c)) {
            set_error(r, r->line, col_names[c], "duplicate column");
            return -1;
        }
        seen |= BIT(c);
        r->colmap[i] = c;
    }
    for (int c = 0; c < C_COUNT; c++) {
        if ((REQUIRED_COLS & BIT(c)) && !(seen & BIT(c))) {
            set_error(r, r->line, col_names[c], "missing required column");
            return -1;
        }
    }
    r->have_header = true;
    return 0;
}

/* The header of a source profile: names matched exactly, unknown ones
 * ignored, a tab separator detected. */
static int source_header(tf_reader_t *r)
{
    if (r->oversize) {
        set_error(r, r->line, NULL, "header longer than %d bytes", TF_INPUT_RECORD_MAX);
        return -1;
    }
    if (!memchr(r->raw.p, ',', r->raw.len) && memchr(r->raw.p, '\t', r->raw.len)) {
        r->delim = '\t';
        csv_setup(r);
    }
    if (csv_split(r))
        return -1;
    r->ncols = r->nfields;
    r->scolmap = calloc(r->ncols ? r->ncols : 1, sizeof *r->scolmap);
    r->hdr_off = calloc(r->ncols ? r->ncols : 1, sizeof *r->hdr_off);
    if (!r->scolmap || !r->hdr_off) {
        set_error(r, r->line, NULL, "out of memory");
        return -1;
    }
    memset(r->spresent, 0, sizeof r->spresent);
    for (size_t i = 0; i < r->ncols; i++) {
        const char *s = r->fields.p + r->field_off[i];
        size_t n = r->field_len[i];
        r->hdr_off[i] = r->hdr.len;
        if (bytes_append_z(&r->hdr, s, n)) {
            set_error(r, r->line, NULL, "out of memory");
            return -1;
        }
        if (!tf_utf8_valid(s, n)) {
            set_error(r, r->line, NULL, "invalid UTF-8 in header column %zu", i + 1);
            return -1;
        }
        trim(&s, &n);
        int c = tf_source_col(r->src, s, n);
        r->scolmap[i] = c;
        if (c < 0)
            continue;
        if (r->spresent[c]) {
            set_error(r, r->line, tf_source_col_name(r->src, c), "duplicate column");
            return -1;
        }
        r->spresent[c] = true;
    }
    const char *col = NULL;
    char why[256];
    if (tf_source_check_header(r->src, r->spresent, &col, why, sizeof why)) {
        set_error(r, r->line, col, "%s", why);
        return -1;
    }
    r->have_header = true;
    return 0;
}

/* ---- values and validation ------------------------------------------- */

static void views_reset(tf_reader_t *r)
{
    memset(r->view, 0, sizeof r->view);
    r->vals.len = 0;
}

static int view_set(tf_reader_t *r, enum col c, const char *s, size_t n)
{
    trim(&s, &n);
    r->view[c].present = true;
    r->view[c].off = r->vals.len;
    r->view[c].len = n;
    if (bytes_append_z(&r->vals, s, n)) {
        set_error(r, r->line, NULL, "out of memory");
        return -1;
    }
    return 0;
}

static const char *val(const tf_reader_t *r, enum col c)
{
    return r->view[c].present ? r->vals.p + r->view[c].off : "";
}

static bool has(const tf_reader_t *r, enum col c)
{
    return r->view[c].present && r->view[c].len > 0;
}

static const size_t text_max[C_COUNT] = {
    [C_RECORD_ID] = TF_RECORD_ID_MAX, [C_REPORTER] = TF_CODE_MAX, [C_PARTNER] = TF_CODE_MAX,
    [C_HS_CODE] = TF_HS_MAX,          [C_UNIT] = TF_UNIT_MAX,     [C_SECTOR] = TF_SECTOR_MAX,
};

/* Parses a non-negative whole number (the revision). */
static int parse_revision(tf_reader_t *r, const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '-') {
        set_error(r, r->line, "revision", "negative revision \"%.40s\"", s);
        return -1;
    }
    int64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') {
            set_error(r, r->line, "revision", "not a whole number: \"%.40s\"", s);
            return -1;
        }
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10) {
            set_error(r, r->line, "revision", "revision \"%.40s\" is too large", s);
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Turns the views into *out, checking every field. Returns 0 or -1 with the
 * error set. */
static int build_record(tf_reader_t *r, tf_record_t *out)
{
    char why[256];
    memset(out, 0, sizeof *out);
    out->dataset = r->ds;

    for (int c = 0; c < C_COUNT; c++) {
        if (!r->view[c].present || c == C_REASON)
            continue;
        const char *s = val(r, (enum col)c);
        if (memchr(s, '\0', r->view[c].len)) {
            set_error(r, r->line, col_names[c], "contains a NUL byte");
            return -1;
        }
        if (!tf_utf8_valid(s, r->view[c].len)) {
            set_error(r, r->line, col_names[c], "invalid UTF-8");
            return -1;
        }
    }
    for (int c = 0; c < C_COUNT; c++) {
        if ((REQUIRED_COLS & BIT(c)) && !has(r, (enum col)c)) {
            set_error(r, r->line, col_names[c],
                      r->view[c].present ? "empty required field" : "missing required column");
            return -1;
        }
        if (text_max[c] && r->view[c].len > text_max[c]) {
            set_error(r, r->line, col_names[c], "longer than %zu bytes (%zu)", text_max[c],
                      r->view[c].len);
            return -1;
        }
    }

    memcpy(out->record_id, val(r, C_RECORD_ID), r->view[C_RECORD_ID].len + 1);

    if (has(r, C_REVISION) && parse_revision(r, val(r, C_REVISION), &out->revision))
        return -1;

    for (enum col c = C_REPORTER; c <= C_PARTNER; c++) {
        const char *s = val(r, c);
        if (!tf_code_valid(s)) {
            set_error(r, r->line, col_names[c],
                      "bad economy code \"%s\" (2-16 of A-Z0-9, starting with A-Z)", s);
            return -1;
        }
        memcpy(c == C_REPORTER ? out->reporter : out->partner, s, r->view[c].len + 1);
    }

    if (tf_flow_parse(r->ds, val(r, C_FLOW), &out->flow)) {
        set_error(r, r->line, "flow", "bad flow \"%.40s\" (expected %s)", val(r, C_FLOW),
                  r->ds == TF_DATASET_CUSTOMS ? "export or import" : "outward or inward");
        return -1;
    }

    if (tf_period_parse(val(r, C_PERIOD), &out->period, why, sizeof why)) {
        set_error(r, r->line, "period", "%s", why);
        return -1;
    }

    if (has(r, C_HS_CODE)) {
        const char *s = val(r, C_HS_CODE);
        bool ok = r->view[C_HS_CODE].len >= 2;
        for (const char *p = s; ok && *p; p++)
            ok = *p >= '0' && *p <= '9';
        if (!ok) {
            set_error(r, r->line, "hs_code", "bad HS code \"%s\" (2-10 digits)", s);
            return -1;
        }
        memcpy(out->hs_code, s, r->view[C_HS_CODE].len + 1);
    }

    if (tf_decimal_parse(val(r, C_VALUE_USD), 2, &out->value_cents, why, sizeof why)) {
        set_error(r, r->line, "value_usd", "%s", why);
        return -1;
    }

    if (has(r, C_QUANTITY)) {
        if (tf_decimal_parse(val(r, C_QUANTITY), 3, &out->quantity_milli, why, sizeof why)) {
            set_error(r, r->line, "quantity", "%s", why);
            return -1;
        }
        out->has_quantity = true;
    }
    if (has(r, C_UNIT))
        memcpy(out->unit, val(r, C_UNIT), r->view[C_UNIT].len + 1);
    if (has(r, C_SECTOR))
        memcpy(out->sector, val(r, C_SECTOR), r->view[C_SECTOR].len + 1);

    /* The domain rules that span fields (partner differs from reporter...). */
    const char *column = NULL;
    if (tf_record_validate(out, &column, why, sizeof why)) {
        set_error(r, r->line, column, "%s", why);
        return -1;
    }
    return 0;
}

/* Source rows: one view per profile column in r->sview. */
static int sview_set(tf_reader_t *r, int c, const char *s, size_t n)
{
    trim(&s, &n);
    r->sview[c].present = true;
    r->sview[c].off = r->vals.len;
    r->sview[c].len = n;
    if (bytes_append_z(&r->vals, s, n)) {
        set_error(r, r->line, NULL, "out of memory");
        return -1;
    }
    return 0;
}

/* Validates the row's text and hands it to the profile. OK, BAD, or
 * TF_READ_SKIP_ (counted, not returned). */
#define TF_READ_SKIP_ 3
static int source_build(tf_reader_t *r, tf_record_t *out)
{
    const char *vals[TF_SOURCE_MAXCOL] = {0};
    int nc = tf_source_ncols(r->src);
    for (int c = 0; c < nc; c++) {
        if (!r->sview[c].present)
            continue;
        const char *v = r->vals.p + r->sview[c].off;
        if (memchr(v, '\0', r->sview[c].len)) {
            set_error(r, r->line, tf_source_col_name(r->src, c), "contains a NUL byte");
            return TF_READ_BAD;
        }
        if (!tf_utf8_valid(v, r->sview[c].len)) {
            set_error(r, r->line, tf_source_col_name(r->src, c), "invalid UTF-8");
            return TF_READ_BAD;
        }
        vals[c] = v;
    }
    const char *col = "-";
    char why[256];
    tf_source_status_t st = tf_source_build(r->src, vals, out, &col, why, sizeof why);
    if (st == TF_SRC_SKIP) {
        count_skip(r, why);
        return TF_READ_SKIP_;
    }
    if (st == TF_SRC_BAD) {
        set_error(r, r->line, col, "%s", why);
        return TF_READ_BAD;
    }
    return TF_READ_OK;
}

static int source_csv_record(tf_reader_t *r, tf_record_t *out)
{
    memset(r->sview, 0, sizeof r->sview);
    r->vals.len = 0;
    for (size_t i = 0; i < r->nfields; i++)
        if (r->scolmap[i] >= 0 &&
            sview_set(r, r->scolmap[i], r->fields.p + r->field_off[i], r->field_len[i]))
            return TF_READ_BAD;
    return source_build(r, out);
}

/* JSON numbers as the strings they are written as (jansson would keep only
 * a binary double): every number outside a string is put in quotes. */
static int quote_numbers(const char *s, size_t n, struct bytes *out)
{
    out->len = 0;
    bool str = false, esc = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                str = false;
        } else if (c == '"') {
            str = true;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            while (j < n && (s[j] == '-' || s[j] == '+' || s[j] == '.' || s[j] == 'e' ||
                             s[j] == 'E' || (s[j] >= '0' && s[j] <= '9')))
                j++;
            if (bytes_append(out, "\"", 1) || bytes_append(out, s + i, j - i) ||
                bytes_append(out, "\"", 1))
                return -1;
            i = j - 1;
            continue;
        }
        if (bytes_append(out, &c, 1))
            return -1;
    }
    return 0;
}

static int source_json_record(tf_reader_t *r, tf_record_t *out)
{
    if (r->oversize) {
        set_error(r, r->line, NULL, "record longer than %d bytes", TF_INPUT_RECORD_MAX);
        return TF_READ_BAD;
    }
    if (!tf_utf8_valid(r->raw.p, r->raw.len)) {
        set_error(r, r->line, NULL, "invalid UTF-8 (or NUL)");
        return TF_READ_BAD;
    }
    struct bytes q = {0};
    if (quote_numbers(r->raw.p, r->raw.len, &q)) {
        free(q.p);
        set_error(r, r->line, NULL, "out of memory");
        return TF_READ_BAD;
    }
    json_error_t jerr;
    json_t *obj = json_loadb(q.p ? q.p : "", q.len, JSON_REJECT_DUPLICATES, &jerr);
    free(q.p);
    if (!obj) {
        set_error(r, r->line, NULL, "invalid JSON: %s (at character %d)", jerr.text, jerr.column);
        return TF_READ_BAD;
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        set_error(r, r->line, NULL, "expected a JSON object");
        return TF_READ_BAD;
    }
    r->obj = obj;
    memset(r->sview, 0, sizeof r->sview);
    r->vals.len = 0;
    bool present[TF_SOURCE_MAXCOL] = {0};
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int c = tf_source_col(r->src, key, strlen(key));
        if (c < 0 || json_is_null(v))
            continue;
        if (!json_is_string(v)) {
            set_error(r, r->line, tf_source_col_name(r->src, c), "expected a string or a number");
            return TF_READ_BAD;
        }
        present[c] = true;
        if (sview_set(r, c, json_string_value(v), json_string_length(v)))
            return TF_READ_BAD;
    }
    /* A JSON record names its own columns: the header rule, per record
     * (a null or absent optional column is fine). */
    const char *col = NULL;
    char why[256];
    if (tf_source_check_header(r->src, present, &col, why, sizeof why)) {
        set_error(r, r->line, col, "%s", why);
        return TF_READ_BAD;
    }
    return source_build(r, out);
}

static tf_read_status_t csv_record(tf_reader_t *r, tf_record_t *out)
{
    if (r->oversize) {
        r->csv_malformed = true;
        set_error(r, r->line, NULL, "record longer than %d bytes", TF_INPUT_RECORD_MAX);
        return TF_READ_BAD;
    }
    if (csv_split(r))
        return TF_READ_BAD;
    if (r->nfields != r->ncols) {
        set_error(r, r->line, NULL, "expected %zu fields as in the header, got %zu", r->ncols,
                  r->nfields);
        return TF_READ_BAD;
    }
    if (r->src)
        return (tf_read_status_t)source_csv_record(r, out);
    views_reset(r);
    for (size_t i = 0; i < r->nfields; i++)
        if (view_set(r, r->colmap[i], r->fields.p + r->field_off[i], r->field_len[i]))
            return TF_READ_BAD;
    return build_record(r, out) ? TF_READ_BAD : TF_READ_OK;
}

/* ---- JSON Lines ------------------------------------------------------ */

/* Columns that may be given as JSON integers. */
#define INT_COLS (BIT(C_RECORD_ID) | BIT(C_REVISION) | BIT(C_VALUE_USD) | BIT(C_QUANTITY))

static tf_read_status_t jsonl_record(tf_reader_t *r, tf_record_t *out)
{
    if (r->obj) {
        json_decref(r->obj);
        r->obj = NULL;
    }
    if (r->src)
        return (tf_read_status_t)source_json_record(r, out);
    if (r->oversize) {
        set_error(r, r->line, NULL, "line longer than %d bytes", TF_INPUT_RECORD_MAX);
        return TF_READ_BAD;
    }
    if (!tf_utf8_valid(r->raw.p, r->raw.len)) {
        size_t i = 0;
        /* Find the first bad byte, for the message. */
        while (i < r->raw.len && tf_utf8_valid(r->raw.p, i + 1))
            i++;
        set_error(r, r->line, NULL, "invalid UTF-8 (or NUL) near byte %zu", i + 1);
        return TF_READ_BAD;
    }
    json_error_t jerr;
    json_t *obj = json_loadb(r->raw.p, r->raw.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj) {
        set_error(r, r->line, NULL, "invalid JSON: %s (at character %d)", jerr.text,
                  jerr.column);
        return TF_READ_BAD;
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        set_error(r, r->line, NULL, "expected one JSON object per line");
        return TF_READ_BAD;
    }
    r->obj = obj;
    views_reset(r);
    const char *key;
    json_t *v;
    /* Unknown keys first, so the reason does not depend on key order. */
    json_object_foreach(obj, key, v)
    {
        if (col_lookup(key, strlen(key), r->ds) == C_UNKNOWN) {
            set_error(r, r->line, key, "unknown column for %s", tf_dataset_name(r->ds));
            return TF_READ_BAD;
        }
    }
    for (int c = 0; c < C_COUNT; c++) {
        v = json_object_get(obj, col_names[c]);
        if (!v || json_is_null(v) || c == C_REASON)
            continue;
        if (json_is_string(v)) {
            if (view_set(r, (enum col)c, json_string_value(v), json_string_length(v)))
                return TF_READ_BAD;
        } else if (json_is_integer(v) && (INT_COLS & BIT(c))) {
            char num[32];
            int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            if (view_set(r, (enum col)c, num, (size_t)n))
                return TF_READ_BAD;
        } else if (json_is_real(v) && (c == C_REVISION || c == C_RECORD_ID)) {
            set_error(r, r->line, col_names[c], "expected a string or an integer, not the real %.17g",
                      json_real_value(v));
            return TF_READ_BAD;
        } else if (json_is_real(v) && (INT_COLS & BIT(c))) {
            /* jansson keeps only the binary double, not the text: 0.1 would
             * not be exact. Money is written as a string instead. */
            set_error(r, r->line, col_names[c],
                      "JSON real number %.17g is not exact: write it as a string, e.g. "
                      "\"123.45\"",
                      json_real_value(v));
            return TF_READ_BAD;
        } else {
            set_error(r, r->line, col_names[c], "expected a string%s",
                      (INT_COLS & BIT(c)) ? " or an integer" : "");
            return TF_READ_BAD;
        }
    }
    return build_record(r, out) ? TF_READ_BAD : TF_READ_OK;
}

/* ---- the reader ------------------------------------------------------ */

tf_read_status_t tf_reader_next(tf_reader_t *r, tf_record_t *out)
{
    if (r->done)
        return r->done_status;
    r->error[0] = '\0';
    r->reason[0] = '\0';
    r->errcol[0] = '\0';
    for (;;) {
        int got = next_raw(r);
        if (got < 0) {
            r->done = true;
            r->done_status = TF_READ_FATAL;
            return TF_READ_FATAL;
        }
        if (got == 0) {
            r->done = true;
            r->done_status = TF_READ_EOF;
            return TF_READ_EOF;
        }
        tf_read_status_t st;
        if (r->fmt == TF_FORMAT_JSONL) {
            st = jsonl_record(r, out);
        } else if (!r->have_header) {
            if (csv_header(r)) {
                r->done = true;
                r->done_status = TF_READ_FATAL;
                return TF_READ_FATAL;
            }
            continue;
        } else {
            st = csv_record(r, out);
        }
        if ((int)st == TF_READ_SKIP_)
            continue; /* counted by the profile's reason */
        return st;
    }
}

/* ---- rejects --------------------------------------------------------- */

static int csv_write_row_end(FILE *out, const char *reason)
{
    char clean[512];
    sanitize(clean, sizeof clean, reason ? reason : "");
    if (fputc(',', out) == EOF || csv_fwrite(out, clean, strlen(clean)) != 0 ||
        fputc('\n', out) == EOF)
        return -1;
    return 0;
}

static int csv_write_reject(tf_reader_t *r, FILE *out, const char *reason)
{
    if (!r->reject_header_written) {
        for (size_t i = 0; i < r->ncols; i++) {
            const char *h = r->hdr.p + r->hdr_off[i];
            if ((i && fputc(',', out) == EOF) || csv_fwrite(out, h, strlen(h)) != 0)
                return -1;
        }
        if (fputc(',', out) == EOF || csv_fwrite(out, "reason", 6) != 0 || fputc('\n', out) == EOF)
            return -1;
        r->reject_header_written = true;
    }
    if (r->csv_malformed) {
        /* The record could not be split into fields: keep its text whole. */
        if (csv_fwrite(out, r->raw.p ? r->raw.p : "", r->raw.len) != 0)
            return -1;
    } else {
        for (size_t i = 0; i < r->nfields; i++)
            if ((i && fputc(',', out) == EOF) ||
                csv_fwrite(out, r->fields.p + r->field_off[i], r->field_len[i]) != 0)
                return -1;
    }
    return csv_write_row_end(out, reason);
}

static int jsonl_write_reject(tf_reader_t *r, FILE *out, const char *reason)
{
    char clean[512];
    sanitize(clean, sizeof clean, reason ? reason : "");
    json_t *o;
    if (r->obj) {
        o = json_incref(r->obj);
    } else {
        /* Not a JSON object: keep the line as text, made valid UTF-8. */
        o = json_object();
        size_t cap = r->raw.len * 3 + 1;
        char *txt = malloc(cap);
        if (!o || !txt) {
            free(txt);
            json_decref(o);
            return -1;
        }
        size_t k = 0;
        for (size_t i = 0; i < r->raw.len;) {
            unsigned char c = (unsigned char)r->raw.p[i];
            size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            if (c != 0 && i + n <= r->raw.len && tf_utf8_valid(r->raw.p + i, n)) {
                memcpy(txt + k, r->raw.p + i, n);
                k += n;
                i += n;
            } else {
                memcpy(txt + k, "\xEF\xBF\xBD", 3); /* U+FFFD */
                k += 3;
                i++;
            }
        }
        int rc = json_object_set_new(o, "raw", json_stringn(txt, k));
        free(txt);
        if (rc) {
            json_decref(o);
            return -1;
        }
    }
    int rc = json_object_set_new(o, "reason", json_string(clean));
    if (rc == 0)
        rc = json_dumpf(o, out, JSON_COMPACT);
    if (r->obj)
        json_object_del(r->obj, "reason");
    json_decref(o);
    if (rc || fputc('\n', out) == EOF)
        return -1;
    return 0;
}

int tf_reader_write_reject(tf_reader_t *r, FILE *out, const char *reason)
{
    int rc = r->fmt == TF_FORMAT_CSV ? csv_write_reject(r, out, reason)
                                     : jsonl_write_reject(r, out, reason);
    if (rc == 0 && ferror(out))
        rc = -1;
    return rc;
}
