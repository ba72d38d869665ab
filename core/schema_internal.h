/*
 * core/schema_internal.h - helpers shared by the schema sources and by
 * other layers that validate names (shm segment names, engine names).
 */
#ifndef CQRS_CORE_SCHEMA_INTERNAL_H
#define CQRS_CORE_SCHEMA_INTERNAL_H

#include <stddef.h>

/* 1 if name is 1..cap-1 bytes of [A-Za-z0-9_] followed by a NUL within cap. */
int cqrs__name_valid(const char *name, size_t cap);

#endif
