/*
 * engine/model/versions.h - the aggregate version map: aggregate id -> version
 * (the number of events the aggregate has). A ck_ht table in DIRECT mode
 * holding the version in the entry itself: no allocation per aggregate,
 * one probe per get or set. Command thread only.
 */
#ifndef CQRS_ENGINE_VERSIONS_H
#define CQRS_ENGINE_VERSIONS_H

#include <stdint.h>

typedef struct cqrs_versions cqrs_versions;

int cqrs__versions_create(uint64_t capacity, cqrs_versions **out);
void cqrs__versions_destroy(cqrs_versions *v);
/* 0 for an aggregate never seen. Aggregate ids are 0..UINT64_MAX-1. */
uint64_t cqrs__versions_get(cqrs_versions *v, uint64_t aggregate_id);
/* 0 or -ENOMEM / -EINVAL (aggregate id UINT64_MAX). */
int cqrs__versions_set(cqrs_versions *v, uint64_t aggregate_id, uint64_t version);
/* Aggregates in the map. */
uint64_t cqrs__versions_count(cqrs_versions *v);
/* Calls fn for every (aggregate, version) until it returns non-zero
 * (returned). O(table slots); snapshots only. */
int cqrs__versions_foreach(cqrs_versions *v, int (*fn)(void *arg, uint64_t id, uint64_t version),
			   void *arg);

#endif
