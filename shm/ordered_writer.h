/*
 * shm/ordered_writer.h - the writer side of a view's ordered index (the
 * skip list of shm/ordered_format.h), driven by the view writer
 * (shm/view_writer.c) for every row it inserts, deletes or changes.
 * Single writer, no allocation, no locks.
 */
#ifndef CQRS_SHM_ORDERED_WRITER_H
#define CQRS_SHM_ORDERED_WRITER_H

#include <stdint.h>

#include "shm/ordered_format.h"
#include "shm/view_format.h"

typedef struct cqrs_ow {
	uint8_t *nodes;           /* NULL: the view has no ordered index */
	cqrs_ord_geom g;
	uint64_t capacity;        /* node `capacity` is the head */
	uint32_t nord;
	cqrs_vfield ord[CQRS_ORD_MAX_FIELDS];
	uint64_t rng;             /* heights (xorshift64) */
} cqrs_ow;

/* Points o at the ordered region of a mapped view segment (p validated). */
void cqrs__ow_wire(cqrs_ow *o, uint8_t *base, const cqrs_vparams *p);

/* The encoded key of a row (o->g.klen bytes into key). */
void cqrs__ow_key(const cqrs_ow *o, const uint8_t *row, uint8_t *key);

/* Links node r (row r, now holding row) in. O(log n) expected.
 * 0, or CQRS_ECORRUPT when the list is not what the writer left. */
int cqrs__ow_insert(cqrs_ow *o, uint64_t r, const uint8_t *row);

/* Unlinks node r (its key is the one it was inserted with). O(log n). */
int cqrs__ow_remove(cqrs_ow *o, uint64_t r);

/* Whether row's key differs from node r's. */
int cqrs__ow_moved(const cqrs_ow *o, uint64_t r, const uint8_t *row);

/* Checks the whole list (level 0 in order, every level a sub-list, links
 * in range): 0 or CQRS_ECORRUPT; *n gets the node count. For tests and an
 * adopted segment. O(n * levels). */
int cqrs__ow_check(const cqrs_ow *o, uint64_t *n);

#endif
