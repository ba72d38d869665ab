/*
 * tests/proc/attack_restart_race.c - clients racing an engine's stop and
 * restart under a reused name: connect, submit and close in a loop while
 * the engine is stopped (SIGTERM, or kill -9) and started again. Every call
 * must return (cqrs_client.h: pending and later calls return CQRS_ESTOPPED
 * once the engine is gone) within its timeout plus a margin, no client may
 * crash, connect must answer as documented for an engine that is not
 * running (CQRS_ESTOPPED, CQRS_ENOTFOUND, -ENOENT: never CQRS_EFORMAT,
 * which says "another gateway version", so a caller stops retrying), and
 * every accepted answer's seq must be one the journal holds, once. Exits 1
 * on a hung call, a crash, another code or an unknown or doubled seq.
 */
#include "tests/proc/gateway_proc.h"

#define KIDS 3

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void racer(int wfd, int k)
{
	uint64_t worst_ms = 0, ok = 0, stopped = 0, other = 0, i = 0;
	int last_other = 0;

	gp_child_guard();
	for (;;) {
		struct timespec a, b;
		cqrs_client *c = NULL;
		cqrs_result r;
		uint64_t ms;
		int rc;

		clock_gettime(CLOCK_MONOTONIC, &a);
		rc = cqrs_client_connect(gp_name, &c);
		if (rc == 0) {
			register_customer cmd = { .customer_id = 700000000 + (uint64_t)k * 10000000 + i++ };
			snprintf(cmd.name, sizeof cmd.name, "r");
			rc = cqrs_client_submit(c, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, NULL, &r,
						2 * SEC);
			cqrs_client_close(c);
			if (rc == 0 && write(wfd, &r.seq, sizeof r.seq) != sizeof r.seq)
				_exit(5);
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		ms = (uint64_t)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000);
		if (ms > worst_ms)
			worst_ms = ms;
		if (rc == 0)
			ok++;
		else if (rc == CQRS_ESTOPPED || rc == CQRS_ENOTFOUND || rc == -ENOENT)
			stopped++;
		else {
			other++;
			last_other = rc;
			fprintf(stderr, "racer %d: connect/submit: %s (%s)\n", k, cqrs_strerror(rc),
				cqrs_last_error());
			_exit(7); /* not an answer the docs give for an engine going away */
		}
		if (ms > 6000) {
			fprintf(stderr, "racer %d: a call took %llu ms (rc %d)\n", k,
				(unsigned long long)ms, rc);
			_exit(6);
		}
		if ((ok + stopped + other) % 200 == 0)
			fprintf(stderr, "racer %d: ok %llu stopped %llu other %llu (last %d %s) worst %llu ms\n",
				k, (unsigned long long)ok, (unsigned long long)stopped,
				(unsigned long long)other, last_other, cqrs_strerror(last_other),
				(unsigned long long)worst_ms);
		if (rc != 0)
			usleep(2000);
	}
}

int main(void)
{
	int p[2], st;
	pid_t kids[KIDS];
	static uint64_t seqs[1 << 20];
	uint64_t seq, nseq = 0, maxseq = 0, last = 0;
	char out[65536], *q;

	gp_init("atkrace");
	gp_engine_start(0);
	CHECK(pipe(p) == 0, "pipe");
	for (int k = 0; k < KIDS; k++) {
		kids[k] = fork();
		CHECK(kids[k] >= 0, "fork");
		if (kids[k] == 0) {
			close(p[0]);
			racer(p[1], k);
		}
		gp_track(kids[k]);
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	for (int cycle = 0; cycle < 10; cycle++) {
		for (int t = 0; t < 30; t++) {
			usleep(10000);
			while (read(p[0], &seq, sizeof seq) == sizeof seq)
				if (nseq < sizeof seqs / sizeof seqs[0])
					seqs[nseq++] = seq;
		}
		gp_engine_stop(cycle % 2 ? SIGKILL : SIGTERM);
		usleep(100000);
		gp_engine_start(0);
		for (int k = 0; k < KIDS; k++)
			CHECK(waitpid(kids[k], &st, WNOHANG) == 0, "racer %d ended: status 0x%x", k, st);
	}
	usleep(300000);
	for (int k = 0; k < KIDS; k++) {
		CHECK(waitpid(kids[k], &st, WNOHANG) == 0, "racer %d ended: status 0x%x", k, st);
		kill(kids[k], SIGKILL);
		waitpid(kids[k], &st, 0);
		gp_untrack(kids[k]);
	}
	while (read(p[0], &seq, sizeof seq) == sizeof seq)
		if (nseq < sizeof seqs / sizeof seqs[0])
			seqs[nseq++] = seq;
	for (uint64_t i = 0; i < nseq; i++)
		if (seqs[i] > maxseq)
			maxseq = seqs[i];
	gp_engine_stop(SIGTERM);
	/* every acknowledged seq is in the journal */
	CHECK(gp_cli(out, sizeof out, "journal stat '%s'", gp_dir) == 0, "journal stat: %s", out);
	q = strstr(out, "seqs: 1..");
	CHECK(q && sscanf(q, "seqs: 1..%llu", (unsigned long long *)&last) == 1, "journal stat: %s", out);
	printf("%llu accepted answers, highest seq %llu, journal ends at %llu\n",
	       (unsigned long long)nseq, (unsigned long long)maxseq, (unsigned long long)last);
	CHECK(maxseq <= last, "an answer named seq %llu, the journal ends at %llu",
	      (unsigned long long)maxseq, (unsigned long long)last);
	qsort(seqs, nseq, sizeof seqs[0], cmp_u64);
	for (uint64_t i = 1; i < nseq; i++)
		CHECK(seqs[i] != seqs[i - 1], "seq %llu acknowledged twice", (unsigned long long)seqs[i]);
	printf("attack_restart_race: ok\n");
	return 0;
}
