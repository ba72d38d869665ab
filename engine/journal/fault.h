/*
 * engine/journal/fault.h - numbered fault sites in the journal's I/O paths
 * (SQLite-style fault injection). Every open, data write, fdatasync,
 * fallocate, directory fsync and rename the journal does passes through one
 * site. A test arms "fail the Nth hit of site S (or of any site) with error
 * E", runs a workload, checks invariants, and repeats for N = 1, 2, ...
 * until a run injects nothing (cqrs__jfault_fired() stays false).
 *
 * Disarmed (the default) a site costs one relaxed atomic load. The state is
 * process-global: tests arm it while no other journal is in use.
 */
#ifndef CQRS_ENGINE_JOURNAL_FAULT_H
#define CQRS_ENGINE_JOURNAL_FAULT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum jfault_site {
	JF_OPEN = 0,      /* creating or opening a journal file */
	JF_WRITE = 1,     /* a batch write or a segment header write */
	JF_FSYNC = 2,     /* fdatasync of a segment (batch, roll, interval, close) */
	JF_FALLOCATE = 3, /* preallocating a segment */
	JF_DIRSYNC = 4,   /* fsync of the journal directory */
	JF_RENAME = 5,    /* renaming the spare into a segment, or a .torn file */
	JF_NSITES = 6,
	JF_ANY = 6        /* arm: count hits of every site together */
};

/* Injected instead of an error at a JF_WRITE site: write half of what was
 * asked (a real short write, which the writer must resubmit). */
#define JF_SHORT 1

/* Fail the nth (1-based) hit of site (or JF_ANY) with err (a negative
 * errno, or JF_SHORT for writes); sticky: also every later hit. Resets the
 * hit counters. */
void cqrs__jfault_arm(int site, uint64_t nth, int err, bool sticky);
void cqrs__jfault_disarm(void);

/* At a site: 0 to go on, a negative errno to fail with, or JF_SHORT. */
int cqrs__jfault_hit(int site);

/* Tests of the logic only: fdatasync/fsync sites still count and fail as
 * armed, but skip the syscall (io_uring gets a NOP in place of its fsync,
 * linked the same way), so a slow disk does not slow the fault loops. */
void cqrs__jfault_fake_sync(bool on);
bool cqrs__jfault_sync_is_fake(void);

/* Whether anything was injected since the last arm; hits counted. */
bool cqrs__jfault_fired(void);
uint64_t cqrs__jfault_hits(void);

/* Syscall wrappers with their site: return >= 0 or -errno, never set errno
 * for the caller to read. */
int cqrs__jf_openat(int dirfd, const char *name, int flags, mode_t mode);
int cqrs__jf_fallocate(int fd, off_t len);
int cqrs__jf_fdatasync(int fd);
int cqrs__jf_dirsync(int dirfd);
int cqrs__jf_renameat(int dirfd, const char *from, const char *to);
/* pwrite of all len bytes (loops over short writes, EINTR and EAGAIN);
 * JF_SHORT makes one of its writes short. Returns 0 or -errno. */
int cqrs__jf_pwrite_all(int fd, const void *buf, size_t len, off_t off, uint64_t *short_writes);

#endif
