/*
 * bench/drivers/callgrind_engine.c - a fixed, repeatable load for
 * instruction counts: N bank deposits submitted from one thread in
 * batches of 256 (durability none), in DEDICATED or SHARED threading.
 * Under `valgrind --tool=callgrind --separate-threads=yes` each engine
 * thread's total divided by N is its instructions per command, a figure
 * that does not move with the host's noise (bench/drivers/callgrind.sh).
 * Usage: callgrind_engine THREADING(0|1) N
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cqrs.h"
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

int main(int argc, char **argv)
{
	enum { B = 256 };
	static bank_deposit d[B];
	static cqrs_command c[B];
	static cqrs_ticket t[B];
	bank_model m;
	cqrs_engine *e;
	char dir[256], name[64];
	int n = argc > 2 ? atoi(argv[2]) : 100000;

	bank_threading = argc > 1 ? atoi(argv[1]) : 0;
	tu_unique_name(name, sizeof name, "cg");
	if (tu_mkdtemp(dir, sizeof dir, "cqrs-cg"))
		return 1;
	if (bank_start(name, dir, CQRS_DURABILITY_NONE, 1 << 16, CQRS_ON_ERROR_SKIP, &m, &e)) {
		fprintf(stderr, "start failed: %s\n", cqrs_last_error());
		return 1;
	}
	for (int done = 0; done < n; done += B) {
		for (int i = 0; i < B; i++) {
			d[i] = (bank_deposit){ .account = (uint64_t)(done + i) % 1000 + 1, .amount = 5 };
			c[i] = (cqrs_command){ .type = BANK_DEPOSIT, .size = sizeof d[i], .data = &d[i],
					       .aggregate_id = d[i].account };
		}
		for (int k = 0; k < B;) {
			int r = cqrs_submit_batch(e, c + k, t + k, (uint32_t)(B - k));
			if (r < 0) {
				usleep(10);
				continue;
			}
			k += r;
		}
		for (int i = 0; i < B; i++)
			cqrs_ticket_wait(&t[i], UINT64_MAX);
	}
	bank_stop(e, &m);
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	return 0;
}
