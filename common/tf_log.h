/*
 * tf_log.h - one logging function for every tradeflow program.
 *
 * Levels are syslog numbers; facilities are short strings ("kafka", "pg",
 * "produce", ...). Output goes to stderr as readable text or JSON lines.
 * The level is checked before the arguments are formatted (TF_LOG macro).
 * Thread-safe: each line is written with one fwrite under a mutex.
 * Library code logs nothing fatal and never exits: it returns errors.
 */
#ifndef TF_LOG_H
#define TF_LOG_H

#include <stdarg.h>

enum {
    TF_LOG_EMERG = 0,
    TF_LOG_ALERT = 1,
    TF_LOG_CRIT = 2,
    TF_LOG_ERR = 3,
    TF_LOG_WARNING = 4,
    TF_LOG_NOTICE = 5,
    TF_LOG_INFO = 6,
    TF_LOG_DEBUG = 7,
};

typedef enum tf_log_format { TF_LOG_TEXT = 0, TF_LOG_JSON = 1 } tf_log_format_t;

extern int tf_log_level; /* messages above this level are dropped; default INFO */

void tf_log_init(const char *program, int level, tf_log_format_t format);
/* Parses "debug", "info", ... or a number 0..7; returns -1 if invalid. */
int tf_log_level_parse(const char *s);
void tf_log_write(int level, const char *facility, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tf_log_vwrite(int level, const char *facility, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define TF_LOG(level, fac, ...)                                                                    \
    do {                                                                                           \
        if ((level) <= tf_log_level)                                                               \
            tf_log_write((level), (fac), __VA_ARGS__);                                             \
    } while (0)

#endif
