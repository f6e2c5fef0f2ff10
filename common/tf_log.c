#include "tf_log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tf_buf.h"

int tf_log_level = TF_LOG_INFO;
static tf_log_format_t log_format = TF_LOG_TEXT;
static char log_program[64] = "tradeflow";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *level_names[] = {"emerg", "alert",  "crit", "error",
                                    "warn",  "notice", "info", "debug"};

void tf_log_init(const char *program, int level, tf_log_format_t format)
{
    if (program)
        snprintf(log_program, sizeof(log_program), "%s", program);
    tf_log_level = level;
    log_format = format;
}

int tf_log_level_parse(const char *s)
{
    for (int i = 0; i < 8; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return TF_LOG_WARNING;
    if (strcasecmp(s, "err") == 0)
        return TF_LOG_ERR;
    if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
        return s[0] - '0';
    return -1;
}

/* Appends s as the contents of a JSON string (without quotes). */
static void json_escape(tf_buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            tf_buf_append(b, e, 2);
        } else if (c < 0x20) {
            tf_buf_appendf(b, "\\u%04x", c);
        } else {
            tf_buf_append(b, s, 1);
        }
    }
}

void tf_log_vwrite(int level, const char *facility, const char *fmt, va_list ap)
{
    if (level > tf_log_level)
        return;
    if (level < 0)
        level = 0;
    if (level > 7)
        level = 7;
    char msg[4096];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t ml = strlen(msg);
    while (ml && (msg[ml - 1] == '\n' || msg[ml - 1] == '\r'))
        msg[--ml] = '\0';

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[96];
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(tv.tv_usec / 1000));

    tf_buf_t b = {0};
    if (log_format == TF_LOG_JSON) {
        tf_buf_appendf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"program\":\"", ts,
                       level_names[level]);
        json_escape(&b, log_program);
        tf_buf_appendf(&b, "\",\"facility\":\"");
        json_escape(&b, facility ? facility : "");
        tf_buf_appendf(&b, "\",\"msg\":\"");
        json_escape(&b, msg);
        tf_buf_appendf(&b, "\"}\n");
    } else {
        tf_buf_appendf(&b, "%s %s %s [%s] %s\n", ts, log_program, level_names[level],
                       facility ? facility : "-", msg);
    }
    if (b.data) {
        pthread_mutex_lock(&log_lock);
        fwrite(b.data, 1, b.len, stderr);
        fflush(stderr);
        pthread_mutex_unlock(&log_lock);
    }
    tf_buf_free(&b);
}

void tf_log_write(int level, const char *facility, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tf_log_vwrite(level, facility, fmt, ap);
    va_end(ap);
}
