/*
 * tests/fuzz/fuzz_segment.c - fuzz target for segment validation and for
 * every reader path over whatever validation accepts (ordered ranges too).
 *
 * Input: one mode byte, then a segment image.
 *   mode bit 0: recompute the header checksum first, so mutations reach
 *               the parameter and layout checks behind it;
 *   mode bit 1: treat the image as a control segment (else a view).
 * A view image that validates is attached to a reader handle and read in
 * every way (get, find and snapshot find on each secondary index, scans);
 * a control image that validates has its directory and command schemas
 * read. Any outcome is fine except a crash, an out-of-bounds read (ASan
 * under `make fuzz`; the image is an exact-size heap copy) or a hang. The
 * seed corpus in tests/fuzz/corpus/fuzz_segment holds real small segments.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "shm/control.h"
#include "shm/view_format.h"
#include "shm/view_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_rows(void *arg, const void *row, size_t size)
{
	(void)row;
	(void)size;
	return ++*(int *)arg > 1000;
}

static void read_view(const uint8_t *img, size_t len)
{
	uint8_t row[CQRS_RECORD_MAX], key[CQRS_VIEW_KEY_MAX];
	cqrs_view *v;
	cqrs_view_info info;
	int n = 0;

	if (cqrs__view_attach_image(img, len, &v))
		return;
	cqrs_view_stat(v, &info);
	for (uint64_t k = 0; k < 12; k++) {
		const cqrs_field *f = cqrs_schema_field(cqrs_view_schema(v), info.key_field);
		if (!f)
			abort(); /* validation promised the key field exists */
		memset(key, 0, sizeof key);
		memcpy(key, &k, sizeof k);
		cqrs_view_get(v, key, f->size, row, sizeof row);
	}
	for (uint32_t i = 0; i < info.nsecondary; i++)
		for (uint64_t k = 0; k < 6; k++) {
			const cqrs_field *f = cqrs_schema_field(cqrs_view_schema(v), info.secondary[i]);
			memset(key, 0, sizeof key);
			memcpy(key, &k, sizeof k);
			if (!f)
				abort(); /* validation promised the field exists */
			cqrs_view_find(v, info.secondary[i], key, f->size, count_rows, &n, 0);
			cqrs_view_find(v, info.secondary[i], key, f->size, count_rows, &n,
				       CQRS_FIND_SNAPSHOT);
		}
	{
		uint64_t c;
		cqrs_view_range(v, NULL, NULL, 0, NULL, 0, 0, 0, count_rows, &n);
		cqrs_view_range(v, NULL, NULL, 0, NULL, 0, CQRS_RANGE_DESC | CQRS_RANGE_SNAPSHOT, 0,
				count_rows, &n);
		cqrs_view_range_count(v, NULL, NULL, 0, NULL, 0, 0, &c);
	}
	cqrs_view_scan(v, count_rows, &n, 0);
	cqrs_view_scan(v, count_rows, &n, CQRS_FIND_SNAPSHOT);
	cqrs_view_applied_seq(v);
	cqrs_view_close(v);
}

static void read_control(const uint8_t *img, size_t len)
{
	cqrs_ctl c;
	cqrs_ctl_view e;
	cqrs_schema s;
	uint32_t slot;

	memset(&c, 0, sizeof c);
	if (cqrs__ctl_check(img, len, &c.p))
		return;
	c.seg.base = (uint8_t *)img;
	c.seg.size = len;
	for (uint32_t i = 0; i < cqrs__ctl_view_count(&c) && i < 4; i++)
		cqrs__ctl_view_at(&c, i, &e);
	cqrs__ctl_find_view(&c, "orders", &e, &slot);
	for (uint32_t i = 0; i < cqrs__ctl_command_count(&c) && i < 8; i++)
		cqrs__ctl_command_schema(&c, i, &s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *img;
	size_t len;
	int mode;

	if (size < 1)
		return 0;
	mode = data[0];
	len = size - 1;
	if (posix_memalign((void **)&img, 64, len ? len : 1))
		return 0;
	memcpy(img, data + 1, len);
	if ((mode & 1) && len >= CQRS_SEG_IMM_SIZE) {
		uint64_t sum = XXH3_64bits(img, CQRS_SEG_IMM_SIZE - 8);
		memcpy(img + CQRS_SEG_IMM_SIZE - 8, &sum, 8);
	}
	if (mode & 2)
		read_control(img, len);
	else
		read_view(img, len);
	free(img);
	return 0;
}
