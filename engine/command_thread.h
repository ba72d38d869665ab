/*
 * engine/command_thread.h - starting and joining the command thread
 * (engine/command_thread.c).
 */
#ifndef CQRS_ENGINE_COMMAND_THREAD_H
#define CQRS_ENGINE_COMMAND_THREAD_H

#include "engine/engine_internal.h"

/* Picks the loop for e's threading and starts the thread (state is
 * RUNNING already). 0 or -errno. */
int cqrs__command_thread_start(cqrs_engine *e);

/* After the stop was requested: waits until the thread drained, flushed
 * and saw everything durable, then ended; the command thread's state
 * passes to the caller. */
void cqrs__command_thread_join(cqrs_engine *e);

#endif
