/*
 * engine/command.h - deciding one command and acknowledging it once the
 * journal made its answer durable (engine/command.c). Command thread only.
 */
#ifndef CQRS_ENGINE_COMMAND_H
#define CQRS_ENGINE_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine_internal.h"

struct ticket_impl;

/* A command as the command thread takes it: this header then the
 * command's bytes (in-process submissions frame it in the submission ring,
 * the gateway builds one per request). */
typedef struct sub_hdr {
	struct ticket_impl *ticket;
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

/* Decides h's command (data: its bytes), journals its events and queues
 * its ticket behind the seq its answer depends on. The caller checks
 * cqrs__acks_full first: the ack queue has room for one more. */
void cqrs__process_command(cqrs_engine *e, const sub_hdr *h, const void *data);

/* Before each step: the clock decide sees (cqrs_ctx_now). */
void cqrs__command_reset_ctx(cqrs_engine *e);

/* 1 when no ack slot is left: stop taking commands until acks complete. */
int cqrs__acks_full(const cqrs_engine *e);

/* Completes every queued ack whose target is <= frontier. */
void cqrs__acks_release(cqrs_engine *e, uint64_t frontier);

/* Completes with code (reason why, and what the answer was) the queued
 * acks, oldest first, whose target is durable and that were submitted
 * before submitted_before (monotonic ns). Returns how many. */
uint32_t cqrs__acks_expire(cqrs_engine *e, uint64_t submitted_before, int code, const char *why);

/* The journal failed with code: every waiting ticket gets it, every later
 * command is refused with it. */
void cqrs__poison(cqrs_engine *e, int code);

/* The journal's on_durable callback (cqrs_journal_config.on_durable). */
void cqrs__on_durable(void *arg, uint64_t first, uint64_t last, const void *records, size_t bytes);

#endif
