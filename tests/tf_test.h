/*
 * tf_test.h - a minimal unit-test harness: CHECK() records failures and goes
 * on, TF_TEST_REPORT() prints "N passed, N failed" and gives the exit status.
 */
#ifndef TF_TEST_H
#define TF_TEST_H

#include <stdio.h>
#include <string.h>

static int tf_test_passed, tf_test_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            tf_test_passed++;                                                                      \
        } else {                                                                                   \
            tf_test_failed++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);              \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (cond) {                                                                                \
            tf_test_passed++;                                                                      \
        } else {                                                                                   \
            tf_test_failed++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    CHECK_MSG(strcmp((a), (b)) == 0, "\"%s\" != \"%s\"", (a), (b))

#define CHECK_INT(a, b)                                                                            \
    CHECK_MSG((long long)(a) == (long long)(b), "%lld != %lld", (long long)(a), (long long)(b))

#define TF_TEST_RUN(fn)                                                                            \
    do {                                                                                           \
        fprintf(stderr, "-- %s\n", #fn);                                                           \
        fn();                                                                                      \
    } while (0)

/* The exit status: 1 when a check failed, and also when none ran at all (a
 * test that checked nothing has not passed). */
#define TF_TEST_REPORT()                                                                           \
    (printf("%d passed, %d failed\n", tf_test_passed, tf_test_failed),                             \
     (tf_test_failed || !tf_test_passed) ? 1 : 0)

#endif
