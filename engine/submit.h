/*
 * engine/submit.h - the in-process submission queue: any thread of the
 * engine process -> the command thread. A multi-producer, single-consumer
 * byte ring (ringbuf/mpsc) of framed submissions: a sub_hdr then the
 * command's bytes.
 */
#ifndef CQRS_ENGINE_SUBMIT_H
#define CQRS_ENGINE_SUBMIT_H

#include <stdint.h>

#include "engine/ticket.h"

typedef struct sub_hdr {
	ticket_impl *ticket;
	uint32_t type;
	uint32_t size;
	uint64_t aggregate_id;
	uint64_t expected_version;
	uint64_t client_id;
	uint64_t client_seq;
	uint32_t flags;
	uint32_t reserved;
	uint64_t submit_ns; /* monotonic, for the command-to-ack histogram */
} sub_hdr;

struct cqrs_engine;

int cqrs__submit_init(struct cqrs_engine *e);
void cqrs__submit_free(struct cqrs_engine *e);

/* Command thread: hands up to max queued submissions to
 * cqrs__process_command; returns how many. */
uint32_t cqrs__submit_drain(struct cqrs_engine *e, uint32_t max);

/* Command thread: sleeps until a submission arrives or timeout_ns. */
void cqrs__submit_wait(struct cqrs_engine *e, uint64_t timeout_ns);

/* Wakes the command thread if it sleeps (a request for it is pending). */
void cqrs__submit_kick(struct cqrs_engine *e);

/* ---- command.c ---- */
void cqrs__process_command(struct cqrs_engine *e, const sub_hdr *h, const void *data);
void cqrs__command_reset_ctx(struct cqrs_engine *e);
int cqrs__acks_full(const struct cqrs_engine *e);
void cqrs__poison(struct cqrs_engine *e, int code);
void cqrs__on_durable(void *arg, uint64_t first, uint64_t last, const void *records, size_t bytes);

/* ---- projector.c ---- */
/* Copies a durable batch's records into the broadcast ring (blocks while
 * the slowest projector is a ring behind); in SHARED threading applies
 * them to every projection instead. */
void cqrs__publish(struct cqrs_engine *e, const void *records, size_t bytes, uint64_t last_seq);

/* ---- counters.c ---- */
void cqrs__count_command(struct cqrs_engine *e, int status);
void cqrs__count_events(struct cqrs_engine *e, uint32_t n);

#endif
