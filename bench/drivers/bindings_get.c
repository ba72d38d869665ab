/*
 * bench/drivers/bindings_get.c - the C baseline of bench/drivers/bindings.sh:
 * cqrs_view_get over a hot key set, from a separate process, as the Python
 * and Lua loops do it.
 *
 *   bindings_get ENGINE VIEW FIRST_KEY NKEYS SECONDS TRIALS
 *
 * Reads keys FIRST_KEY .. FIRST_KEY+NKEYS-1 (u64) round robin for SECONDS,
 * TRIALS times, and prints "gets_per_sec <best trial> hits <n> misses <n>".
 * Each get copies the row into a stack buffer (what a C reader does; the
 * bindings additionally build their Row object / table). Time is this
 * process's CPU time, as in the Python and Lua loops (Lua has no portable
 * sub-second wall clock); on an otherwise idle machine the two agree.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cqrs_view.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* as Lua's os.clock */
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	cqrs_view *v;
	unsigned char row[CQRS_RECORD_MAX];
	uint64_t first, nkeys, hits = 0, misses = 0;
	double secs, best = 0;
	int trials, rc;

	if (argc != 7) {
		fprintf(stderr, "usage: bindings_get ENGINE VIEW FIRST_KEY NKEYS SECONDS TRIALS\n");
		return 2;
	}
	first = strtoull(argv[3], NULL, 10);
	nkeys = strtoull(argv[4], NULL, 10);
	secs = atof(argv[5]);
	trials = atoi(argv[6]);
	if (nkeys == 0 || secs <= 0 || trials < 1)
		return 2;
	rc = cqrs_view_open(argv[1], argv[2], &v);
	if (rc) {
		fprintf(stderr, "bindings_get: %s (%s)\n", cqrs_strerror(rc), cqrs_last_error());
		return 1;
	}
	for (int t = 0; t < trials; t++) {
		uint64_t n = 0, i = 0;
		double t0 = now_s(), dt;

		do {
			for (int k = 0; k < 4096; k++) {
				uint64_t key = first + i;
				if (cqrs_view_get(v, &key, sizeof key, row, sizeof row) == 0)
					hits++;
				else
					misses++;
				if (++i == nkeys)
					i = 0;
			}
			n += 4096;
			dt = now_s() - t0;
		} while (dt < secs);
		if (n / dt > best)
			best = n / dt;
	}
	printf("gets_per_sec %.0f hits %" PRIu64 " misses %" PRIu64 "\n", best, hits, misses);
	cqrs_view_close(v);
	return 0;
}
