/*
 * tests/fuzz/fuzz_ordered.c - fuzz target for the ordered index reader
 * over a damaged node pool (shm/ordered_format.h).
 *
 * A real view segment with an ordered index on (sym, price) and ROWS rows
 * (a B+tree of a root and several leaves, duplicate keys across leaves;
 * some rows deleted and reinserted, so nodes carry versions above 2) is
 * built once through the writer, copied to the heap and its shm name
 * removed. Input: one mode byte, then patches of 5 bytes each (u32
 * offset, u8 value) applied to a fresh copy: to the tree's nodes in use
 * (offset modulo their size), or with mode bit 0 to the whole image past
 * the checksummed header block (row seqlocks, fences, counts, kinds,
 * children, links, versions, the meta node). The copy
 * is attached as an image and read every way: range ascending and
 * descending, with and without bounds, limits, snapshots, counts, first,
 * last, seek (an input with no patch must see all ROWS rows). Any outcome is fine except a crash, an out-of-bounds read
 * (ASan under `make fuzz`), a hang, or more rows than the view has slots.
 * The seed corpus in tests/fuzz/corpus/fuzz_ordered holds a few hand-made
 * patch lists (none, a far link, a cycle, a wrong version, a height, for
 * the earlier skip-list layout) and the inputs a libFuzzer run over the
 * B+tree image kept for new coverage (-merge=1).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/test_ordered_rows.h"
#include "shm/view_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROWS 300u

static uint8_t *base_img;
static size_t base_len;

static void build_image(void)
{
	char engine[64];
	cqrs_ctl *ctl;
	cqrs_vw *w;
	orow r;
	struct stat st;
	void *m;
	int fd;

	snprintf(engine, sizeof engine, "fzord_%ld_0", (long)getpid()); /* tests/lib is not linked here */
	if (oview_setup(engine, ROWS + 20, "sym", "price", &ctl, &w))
		abort(); /* the fixture itself, not the input */
	cqrs__vw_begin(w);
	for (uint64_t i = 0; i < ROWS; i++) {
		orow_fill(&r, i, (int)(i % 3), (int64_t)(i * 37 % 50) - 25, 1.0, 1);
		cqrs__vw_upsert(w, &r);
	}
	for (uint64_t i = 0; i < ROWS; i += 5) {
		cqrs__vw_delete(w, &i, sizeof i);
		orow_fill(&r, i, (int)(i % 2), (int64_t)i, 2.0, 2);
		cqrs__vw_upsert(w, &r);
	}
	cqrs__vw_end(w, 2);
	fd = shm_open(cqrs__vw_segment_name(w), O_RDONLY, 0);
	if (fd < 0 || fstat(fd, &st))
		abort();
	base_len = (size_t)st.st_size;
	m = mmap(NULL, base_len, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED || posix_memalign((void **)&base_img, 64, base_len))
		abort();
	memcpy(base_img, m, base_len);
	munmap(m, base_len);
	tview_teardown(ctl, w);
}

static int count_rows(void *arg, const void *row, size_t size)
{
	(void)row;
	(void)size;
	++*(uint64_t *)arg;
	return 0;
}

/* intact: no patch applied, so every walk must see the ROWS rows */
static void read_all(cqrs_view *v, uint64_t cap, int intact)
{
	karg lo = { "S1", -5 }, hi = { "S2", 0 };
	orow out;
	uint64_t n, c;

	for (unsigned flags = 0; flags < 4; flags++) {
		n = 0;
		if (cqrs_view_range(v, NULL, NULL, 0, NULL, 0, flags, 0, count_rows, &n) >= 0 && n > cap)
			abort(); /* more rows than slots: a walk went round */
		if (intact && n != ROWS)
			abort(); /* the fixture's own rows, unchanged */
		n = 0;
		if (cqrs_view_range(v, "sym,price", &lo, sizeof lo, &hi, 8, flags, 3, count_rows, &n) >= 0 &&
		    n > 3)
			abort();
		if (cqrs_view_range_count(v, NULL, &lo, 8, NULL, 0, flags, &c) == 0 && c > cap)
			abort();
		cqrs_view_seek(v, NULL, &lo, sizeof lo, flags, &out, sizeof out);
	}
	cqrs_view_first(v, NULL, &out, sizeof out);
	cqrs_view_last(v, "sym", &out, sizeof out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cqrs_vparams p;
	uint8_t *img;
	cqrs_view *v;
	uint64_t from, span;

	if (!base_img)
		build_image();
	if (size < 1)
		return 0;
	if (posix_memalign((void **)&img, 64, base_len))
		return 0;
	memcpy(img, base_img, base_len);
	memcpy(&p, base_img + CQRS_VPARAMS_OFF, sizeof p);
	if (data[0] & 1) {
		from = CQRS_SEG_IMM_SIZE;
		span = base_len - CQRS_SEG_IMM_SIZE;
	} else {
		uint32_t hwm;

		memcpy(&hwm, base_img + p.ord_off + 28, 4); /* the meta node's high-water mark */
		from = p.ord_off;
		span = (uint64_t)hwm * p.ord_node_size;
	}
	for (size_t i = 1; i + 5 <= size; i += 5) {
		uint32_t off;
		memcpy(&off, data + i, 4);
		img[from + off % span] = data[i + 4];
	}
	if (cqrs__view_attach_image(img, base_len, &v) == 0) {
		read_all(v, p.capacity, size < 6);
		cqrs_view_close(v);
	}
	free(img);
	return 0;
}
