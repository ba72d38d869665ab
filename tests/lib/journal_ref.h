/*
 * tests/lib/journal_ref.h - a reference copy of a journal that retention
 * may collect from: retention in HOOK mode hands each segment to
 * journal_ref_hook, which hard-links it into the reference folder before
 * the engine removes it, and journal_ref_link_journal links the segments
 * still in the journal. The reference folder then reads (with the journal
 * iterator) as the whole history from seq 1.
 */
#ifndef CQRS_TESTS_JOURNAL_REF_H
#define CQRS_TESTS_JOURNAL_REF_H

#include <stdint.h>

/* Makes REF (mkdir; it may exist) the reference of journal folder JDIR.
 * 0 or -errno. */
int journal_ref_init(const char *jdir, const char *ref);

/* cqrs_config.retention_hook: links PATH into the reference. */
int journal_ref_hook(void *arg, const char *path, uint64_t first_seq, uint64_t last_seq);

/* Links every segment now in the journal into the reference. */
void journal_ref_link_journal(void);

#endif
