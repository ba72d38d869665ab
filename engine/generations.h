/*
 * engine/generations.h - the engine's view generations at start: every
 * generation the directory does not name is retired and removed
 * (generations.c).
 */
#ifndef CQRS_ENGINE_GENERATIONS_H
#define CQRS_ENGINE_GENERATIONS_H

struct cqrs_engine;

/* After every projection has opened and published its views, before any
 * command is decided: marks every other generation of this engine's
 * views RETIRED | ORPHANED (readers still mapping one move to the current
 * generation at their next call, and never read it again) and unlinks it
 * (its memory goes when the last reader unmaps). A view no projection
 * registers keeps a clean generation (a later run may adopt it); a dirty
 * one goes. Segments of a live owner or another user stay. Returns how
 * many were removed; failures are logged, never fatal. Cold: one readdir
 * of /dev/shm. */
int cqrs__generations_retire_old(struct cqrs_engine *e);

#endif
