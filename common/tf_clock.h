/*
 * tf_clock.h - monotonic time for timeouts, intervals and latencies.
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

#endif
