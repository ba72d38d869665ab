/*
 * tests/lib/testutil.h - helpers that keep tests good neighbours: unique
 * names per run (pid + counter) for engines and shm segments, temporary
 * folders removed afterwards, and a recursive remover.
 */
#ifndef CQRS_TESTS_TESTUTIL_H
#define CQRS_TESTS_TESTUTIL_H

#include <stddef.h>

/* Writes "<prefix>_<pid>_<n>" into buf (a valid cqrs name: [A-Za-z0-9_]). */
void tu_unique_name(char *buf, size_t cap, const char *prefix);

/* Creates a fresh folder under $TMPDIR (or /tmp) and returns its path in
 * buf; 0 or -errno. */
int tu_mkdtemp(char *buf, size_t cap, const char *prefix);

/* rm -rf path; 0 or -errno. */
int tu_rmrf(const char *path);

/* Removes every /dev/shm entry whose name starts with prefix. Returns the
 * number removed. */
int tu_shm_unlink_prefix(const char *prefix);

/* Counts the /dev/shm entries whose name starts with prefix and adds up
 * their sizes (*bytes may be NULL). Returns the count. */
int tu_shm_usage(const char *prefix, unsigned long long *bytes);

#endif
