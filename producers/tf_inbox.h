/*
 * tf_inbox.h - the watched inbox of tradeflow-produce --watch DIR: which
 * files are ready, their identity, the set of identities already published
 * (read back from the inbox's state topic, where each file's identity is
 * written in the file's own Kafka transaction), and moving a finished file
 * to DIR/done/ or DIR/failed/ with a report beside it.
 *
 * Rename-into-place rule: a file is ready when its name does not start with
 * '.' and does not end in ".part", ".tmp", ".partial" or ".filepart" (what
 * SFTP clients and `rsync` write before they rename), it is a regular file
 * directly in DIR, and its size and mtime did not change between two scans
 * (a writer that writes in place is waited for). Nothing here prints or
 * exits; errors are -1 / NULL with the reason in errstr.
 *
 * Ownership: tf_inbox_scan() returns a malloc'd array the caller frees with
 * free(); a tf_inbox_seen_t is freed with tf_inbox_seen_free().
 */
#ifndef TF_INBOX_H
#define TF_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#define TF_INBOX_NAME_MAX 255
#define TF_INBOX_ID_MAX 400

typedef struct tf_inbox_file {
    char name[TF_INBOX_NAME_MAX + 1];
    /* "name|dev:inode|size|mtime_ns": the same file after a restart, a new
     * identity for a file dropped again (a new inode) or rewritten. */
    char identity[TF_INBOX_ID_MAX];
    int64_t size;
    int64_t mtime_ns;
} tf_inbox_file_t;

/* Whether a directory entry's name follows the rename-into-place rule. */
bool tf_inbox_name_ready(const char *name);

/* Creates DIR/done and DIR/failed if needed. 0 or -1. */
int tf_inbox_prepare(const char *dir, char *errstr, size_t errlen);

/* The ready regular files of dir (by name rule), oldest mtime first, then
 * by name. *out is malloc'd (NULL when none); caller frees. 0 or -1. */
int tf_inbox_scan(const char *dir, tf_inbox_file_t **out, size_t *n, char *errstr,
                  size_t errlen);

/* Writes report as DIR/SUB/<moved>.report (through a temporary name and
 * rename), then renames DIR/name to DIR/SUB/<moved>, where moved is name or,
 * if taken, name.1, name.2, ... Copies the moved name into moved (may be
 * NULL). 0 or -1. */
int tf_inbox_finish(const char *dir, const char *name, const char *sub, const char *report,
                    char *moved, size_t movedlen, char *errstr, size_t errlen);

/* A set of identities. */
typedef struct tf_inbox_seen tf_inbox_seen_t;
tf_inbox_seen_t *tf_inbox_seen_new(void);
void tf_inbox_seen_free(tf_inbox_seen_t *s);
int tf_inbox_seen_add(tf_inbox_seen_t *s, const char *identity); /* 0, or -1 out of memory */
bool tf_inbox_seen_has(const tf_inbox_seen_t *s, const char *identity);
size_t tf_inbox_seen_count(const tf_inbox_seen_t *s);

/* Reads topic from the beginning to its end as a read_committed consumer
 * (no consumer group offsets) and adds every message key to seen. conf is
 * taken over (freed on failure too). A topic that does not exist yet is
 * empty. 0 or -1. */
int tf_inbox_load_state(rd_kafka_conf_t *conf, const char *topic, tf_inbox_seen_t *seen,
                        int timeout_ms, char *errstr, size_t errlen);

#endif
