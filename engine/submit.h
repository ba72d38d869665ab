/*
 * engine/submit.h - the in-process submission queue: any thread of the
 * engine process -> the command thread. A multi-producer, single-consumer
 * byte ring (ringbuf/mpsc) of framed submissions: a sub_hdr
 * (engine/command.h) then the command's bytes.
 */
#ifndef CQRS_ENGINE_SUBMIT_H
#define CQRS_ENGINE_SUBMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine_internal.h"

int cqrs__submit_init(cqrs_engine *e);
void cqrs__submit_free(cqrs_engine *e);

/* Command thread: hands up to max queued submissions to
 * cqrs__process_command, stopping early when no ack slot is left; returns
 * how many. */
uint32_t cqrs__submit_drain(cqrs_engine *e, uint32_t max);

/* Command thread, in its re-check before sleeping: whether a submission
 * is queued (seq_cst loads, engine/doorbell.h's protocol). */
bool cqrs__submit_ready(cqrs_engine *e);

#endif
