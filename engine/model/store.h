/*
 * engine/model/store.h - what the engine (snapshots) needs of a cqrs_store
 * beyond the public API (include/cqrs.h): its layout.
 */
#ifndef CQRS_ENGINE_STORE_H
#define CQRS_ENGINE_STORE_H

#include <stdint.h>

#include "cqrs.h"

void cqrs__store_layout(const cqrs_store *s, uint32_t *keylen, uint32_t *value_size);

#endif
