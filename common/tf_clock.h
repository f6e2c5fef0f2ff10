/*
 * tf_clock.h - monotonic time for timeouts, intervals and latencies, and
 * deadlines for condition variables.
 */
#ifndef TF_CLOCK_H
#define TF_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t tf_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t tf_mono_ms(void)
{
    return tf_mono_us() / 1000;
}

/* The CLOCK_REALTIME instant ms milliseconds from now, for
 * pthread_cond_timedwait(). */
static inline struct timespec tf_deadline_ms(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

#endif
