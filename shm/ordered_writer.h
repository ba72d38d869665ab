/*
 * shm/ordered_writer.h - the writer side of a view's ordered index (the
 * B+tree of shm/ordered_format.h), driven by the view writer
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
	_Atomic uint32_t *owner;  /* row -> leaf holding its entry */
	cqrs_ord_geom g;
	uint64_t capacity;
	uint32_t nnodes;
	uint32_t row_size;
	uint32_t nord;
	cqrs_vfield ord[CQRS_ORD_MAX_FIELDS];
	/* node images being edited: room for one entry past a full node */
	_Alignas(64) uint8_t img[2][CQRS_ORD_NODE_SIZE + 512];
	uint8_t tmp[2 * CQRS_ORD_NODE_SIZE + 512];
} cqrs_ow;

/* Points o at the ordered region of a mapped view segment (p validated);
 * a zeroed region gets its meta node and an empty root leaf. */
void cqrs__ow_wire(cqrs_ow *o, uint8_t *base, const cqrs_vparams *p);

/* The encoded key of a row (o->g.klen bytes into key). */
void cqrs__ow_key(const cqrs_ow *o, const uint8_t *row, uint8_t *key);

/* Puts row r (now holding row) in. O(log n).
 * 0, or CQRS_ECORRUPT when the tree is not what the writer left. */
int cqrs__ow_insert(cqrs_ow *o, uint64_t r, const uint8_t *row);

/* Takes row r's entry out (its key is the one it was inserted with). */
int cqrs__ow_remove(cqrs_ow *o, uint64_t r);

/* Row r changed without moving its key: its bytes in a covering leaf
 * entry follow (nothing to do otherwise). O(entries in a leaf). */
int cqrs__ow_update(cqrs_ow *o, uint64_t r, const uint8_t *row);

/* Whether row's key differs from row r's entry (1), not (0), or
 * CQRS_ECORRUPT. */
int cqrs__ow_moved(const cqrs_ow *o, uint64_t r, const uint8_t *row);

/* Checks the whole tree (kinds, levels, fences, order, fill, the leaf
 * chain both ways, the owner array): 0 or CQRS_ECORRUPT; *n gets the
 * entry count. For tests and an adopted segment. O(n). */
int cqrs__ow_check(const cqrs_ow *o, uint64_t *n);

#endif
