/*
 * tf_buf.h - a growable byte buffer.
 *
 * Ownership: the tf_buf_t owns `data`; free it with tf_buf_free(). A zeroed
 * tf_buf_t ({0}) is a valid empty buffer. Functions return 0, or -1 when
 * memory runs out (the buffer is then unchanged).
 */
#ifndef TF_BUF_H
#define TF_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct tf_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} tf_buf_t;

int tf_buf_reserve(tf_buf_t *b, size_t extra); /* ensures cap >= len + extra */
int tf_buf_append(tf_buf_t *b, const void *p, size_t n);
int tf_buf_appendf(tf_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void tf_buf_reset(tf_buf_t *b)
{
    b->len = 0;
}
void tf_buf_free(tf_buf_t *b);

#endif
