/*
 * tests/fuzz/fuzz_schema_blob.c - fuzz target for the schema blob decoder:
 * any input must either decode into a descriptor that validates and
 * re-encodes to the same bytes, or be rejected with CQRS_EFORMAT, never
 * read out of bounds (ASan under `make fuzz`).
 */
#include <stdlib.h>
#include <string.h>

#include "cqrs_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cqrs_schema s;
	uint8_t *copy = malloc(size ? size : 1), out[8192];
	int n;

	if (!copy)
		return 0;
	memcpy(copy, data, size); /* exact-size heap copy: ASan sees overreads */
	n = cqrs_schema_decode(copy, size, &s);
	if (n >= 0) {
		if (cqrs_schema_validate(&s) != 0)
			abort();
		if (cqrs_schema_encode(&s, out, sizeof out) != n || memcmp(out, copy, (size_t)n) != 0)
			abort();
	} else if (n != CQRS_EFORMAT) {
		abort();
	}
	free(copy);
	return 0;
}
