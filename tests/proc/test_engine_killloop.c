/*
 * tests/proc/test_engine_killloop.c - the engine under load is SIGKILLed
 * at random moments, many times. Each cycle a child process runs the bank
 * engine (batch durability) and submits deposits tagged with a client id
 * and client seq, reporting every acknowledged (client seq, seq) through a
 * pipe; the parent kills it after a random delay, restarts the engine
 * itself and checks:
 *   - no acknowledged command is lost: the journal holds each acknowledged
 *     client seq at the acknowledged seq;
 *   - none is applied twice: every client seq appears at most once in the
 *     journal (the child also resends a few acknowledged ones);
 *   - the view equals a fresh rebuild: balances and op counts recomputed
 *     from the journal match the rows the restarted engine serves.
 * Cycles alternate the threading mode (the child of an odd cycle applies
 * on its command thread, CQRS_THREADING_SHARED; the restart uses the
 * other mode), so views written either way survive a kill and are
 * adopted by the other.
 * Around the engine, as an unlucky operator's machine would have it:
 *   - a gateway client process submits beside the in-process load and is
 *     itself SIGKILLed at a random moment of the cycle (before or after
 *     the engine): every command it saw accepted is in the journal at the
 *     seq it was told, once;
 *   - one reader process keeps the same view handle open across every
 *     kill and restart: after each restart, wait(durable seq) succeeds and
 *     the row it then reads is the rebuilt one (read-your-writes across
 *     restarts, no stale generation);
 *   - the engine's segments in /dev/shm (count and bytes) after every
 *     restart are no more than after the first;
 *   - the restart's restore (from the view checkpoints the clean stops
 *     take) or rebuild of dirty views is counted (`cqrs stat`);
 *   - write-model snapshots are on (the accounts store registered, one
 *     every 500 events and at each clean stop), so kills land while a
 *     forked writer works too: the restart's write model (a snapshot and
 *     the journal after it) holds every balance the journal gives.
 * Usage: test_engine_killloop [cycles]   (default 12; 4 under sanitizers;
 * `make soak` runs 200)
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cqrs_client.h"
#include "cqrs_counters.h"
#include "cqrs_view.h"
#include "engine/journal/journal.h"
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

#define ACCOUNTS 64
#define CLIENT 4242
#define MAX_CSEQ (1u << 24)
#define MAX_GW_ACKS (1u << 24)

static char name[64], dir[256], jdir[300];

static int fail(const char *what)
{
	fprintf(stderr, "FAIL: %s\n", what);
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	return 1;
}

/* The child: submit forever, report acks. Killed by the parent. */
static void child(int fd, uint64_t first_cseq)
{
	bank_model m;
	cqrs_engine *e;
	enum { B = 64 };
	bank_deposit d[B];
	cqrs_command c[B];
	cqrs_ticket t[B];
	uint64_t cseq = first_cseq;

	if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 256, CQRS_ON_ERROR_SKIP, &m, &e))
		_exit(3);
	for (;;) {
		int n;
		for (int i = 0; i < B; i++) {
			/* every 16th command resends an older client seq */
			uint64_t cs = (i % 16 == 15 && cseq > first_cseq + 20) ? cseq - 20 : cseq++;
			d[i] = (bank_deposit){ 1 + cs % ACCOUNTS, (int64_t)(1 + cs % 7) };
			c[i] = (cqrs_command){ .type = BANK_DEPOSIT, .size = sizeof d[i], .data = &d[i],
					       .client_id = CLIENT, .client_seq = cs };
		}
		n = cqrs_submit_batch(e, c, t, B);
		if (n < 0) {
			sched_yield();
			continue;
		}
		for (int i = 0; i < n; i++) {
			int rc = cqrs_ticket_wait(&t[i], UINT64_MAX);
			uint64_t msg[2] = { c[i].client_seq, cqrs_ticket_seq(&t[i]) };
			if (rc != 0 && rc != CQRS_EDUPLICATE)
				continue;
			if (write(fd, msg, sizeof msg) != sizeof msg)
				_exit(4);
		}
	}
}


/* A gateway client process: connects (retrying while the engine starts),
 * submits deposits with explicit client seqs 1, 2, ... on its connection
 * and reports each accepted (client id, client seq, seq). Killed by the
 * parent at a random moment. */
static void gw_child(int fd, unsigned seed)
{
	cqrs_client *c = NULL;
	uint64_t cseq = 0;

	for (int i = 0; i < 4000 && cqrs_client_connect(name, &c); i++)
		usleep(500);
	if (!c)
		_exit(0); /* the engine died before the gateway opened */
	for (;;) {
		bank_deposit d = { 1 + rand_r(&seed) % ACCOUNTS, 1 + (int64_t)(rand_r(&seed) % 5) };
		cqrs_submit_opts o = { .aggregate_id = d.account, .client_seq = ++cseq };
		cqrs_result res;
		int rc = cqrs_client_submit(c, BANK_DEPOSIT, &d, sizeof d, &o, &res, 2000000000ull);
		if (rc == 0) {
			uint64_t msg[3] = { cqrs_client_id(c), cseq, res.seq };
			if (write(fd, msg, sizeof msg) != sizeof msg)
				_exit(4);
		} else if (rc == CQRS_ESTOPPED) {
			_exit(0);
		}
	}
}

/* The long-lived reader: for each request (seq, account, balance, ops)
 * waits on its one handle until the view has applied seq, then reads the
 * account; answers 0 or the failing code. The handle is opened at the
 * first request and kept across every restart. */
typedef struct reader_req {
	uint64_t seq, account, ops;
	int64_t balance;
} reader_req;

static void reader_child(int in, int out)
{
	cqrs_view *v = NULL;
	reader_req q;

	while (read(in, &q, sizeof q) == sizeof q) {
		bank_row row;
		int rc = v ? 0 : cqrs_view_open(name, "balances", &v);
		if (rc == 0)
			rc = cqrs_view_wait(v, q.seq, 30000000000ull);
		if (rc == 0)
			rc = cqrs_view_get(v, &q.account, 8, &row, sizeof row);
		if (rc == 0 && (row.balance != q.balance || row.ops != q.ops))
			rc = -EILSEQ; /* the wait said the seq is applied; the row disagrees */
		if (write(out, &rc, sizeof rc) != sizeof rc)
			break;
	}
	cqrs_view_close(v);
	_exit(0);
}

typedef struct gw_ack {
	uint64_t client_id, client_seq, seq;
} gw_ack;

static gw_ack *gw_acks; /* every accepted gateway command, over all cycles */
static uint64_t n_gw_acks;

/* Journal seq -> (client id, client seq) of the gateway records. */
static uint64_t *gw_cid_at, *gw_cseq_at;

static uint64_t *acked; /* client seq -> acknowledged seq (0: none) */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void snapshot_often(cqrs_config *cfg)
{
	cfg->snapshot_every_events = 500;
}

int main(int argc, char **argv)
{
	int cycles = argc > 1 ? atoi(argv[1]) : (getenv("CQRS_SAN") ? 4 : 12);
	uint64_t next_cseq = 1, total_acked = 0, total_events = 0;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	int to_reader[2], from_reader[2], base_count = -1;
	uint64_t last_gen = 0; /* the view's generation after the last restart */
	unsigned long long base_bytes = 0;
	char shm_prefix[96];
	pid_t reader;

	tu_unique_name(name, sizeof name, "kill");
	snprintf(shm_prefix, sizeof shm_prefix, "cqrs.%s.", name);
	if (tu_mkdtemp(dir, sizeof dir, "cqrs-kill"))
		return 1;
	snprintf(jdir, sizeof jdir, "%s/journal", dir);
	acked = calloc(MAX_CSEQ, sizeof *acked);
	gw_acks = calloc(MAX_GW_ACKS, sizeof *gw_acks);
	if (!acked || !gw_acks)
		return 1;
	/* The reader is forked before any engine thread exists. */
	if (pipe(to_reader) || pipe(from_reader))
		return fail("pipe");
	reader = fork();
	if (reader == 0) {
		close(to_reader[1]);
		close(from_reader[0]);
		reader_child(to_reader[0], from_reader[1]);
	}
	close(to_reader[0]);
	close(from_reader[1]);
	bank_snapshots = 1;
	bank_config_hook = snapshot_often;
	printf("kill loop: %d cycles, seed %u\n", cycles, seed);
	for (int cycle = 1; cycle <= cycles; cycle++) {
		int p[2], g[2], status;
		pid_t pid, gw;
		uint64_t msg[2], gmsg[3];
		long engine_ms, gw_ms;

		if (pipe(p) || pipe(g))
			return fail("pipe");
		bank_threading = cycle % 2 ? CQRS_THREADING_SHARED : CQRS_THREADING_DEDICATED;
		pid = fork();
		if (pid == 0) {
			close(p[0]);
			close(g[0]);
			close(g[1]);
			child(p[1], next_cseq);
		}
		close(p[1]);
		gw = fork();
		if (gw == 0) {
			close(p[0]);
			close(g[0]);
			gw_child(g[1], seed + (unsigned)cycle);
		}
		close(g[1]);
		/* Engine and gateway client die at independent random moments. */
		engine_ms = 50 + rand_r(&seed) % 250;
		gw_ms = rand_r(&seed) % 350;
		sleep_ms(gw_ms < engine_ms ? gw_ms : engine_ms);
		kill(gw_ms < engine_ms ? gw : pid, SIGKILL);
		sleep_ms(gw_ms < engine_ms ? engine_ms - gw_ms : gw_ms - engine_ms);
		kill(gw_ms < engine_ms ? pid : gw, SIGKILL);
		while (read(p[0], msg, sizeof msg) == sizeof msg) {
			if (msg[0] >= MAX_CSEQ)
				return fail("client seq out of range");
			if (acked[msg[0]] && acked[msg[0]] != msg[1])
				return fail("a client seq was acknowledged at two different seqs");
			if (!acked[msg[0]])
				total_acked++;
			acked[msg[0]] = msg[1];
		}
		close(p[0]);
		while (read(g[0], gmsg, sizeof gmsg) == sizeof gmsg) {
			if (n_gw_acks == MAX_GW_ACKS)
				return fail("too many gateway acks for the test's table");
			gw_acks[n_gw_acks++] = (gw_ack){ gmsg[0], gmsg[1], gmsg[2] };
		}
		close(g[0]);
		waitpid(pid, &status, 0);
		if (!WIFSIGNALED(status))
			return fail("child did not die by the signal");
		waitpid(gw, &status, 0);

		/* Restart (recovers the journal, rebuilds dirty views). */
		bank_model m;
		cqrs_engine *e;
		bank_threading = cycle % 2 ? CQRS_THREADING_DEDICATED : CQRS_THREADING_SHARED;
		if (bank_start(name, dir, CQRS_DURABILITY_BATCH, 256, CQRS_ON_ERROR_SKIP, &m, &e)) {
			fprintf(stderr, "restart: %s\n", cqrs_last_error());
			return fail("restart after SIGKILL");
		}
		uint64_t durable = cqrs_engine_durable_seq(e);
		/* A killed run that got as far as opening the views left them
		 * dirty: the restart restores them from their checkpoint (the
		 * last clean stop took one) or rebuilds them, into a new
		 * generation, and `cqrs stat` counts which (ckpt_restored 1 or
		 * rebuilds 1); views it never touched are adopted (both 0, same
		 * generation). */
		{
			cqrs_view *gv;
			const cqrs_counters *cc = cqrs_engine_counters(e);
			uint64_t rebuilds = __atomic_load_n(&cc->proj[0].rebuilds, __ATOMIC_RELAXED) +
					    __atomic_load_n(&cc->ckpt_restored, __ATOMIC_RELAXED);
			if (cqrs_view_open(name, "balances", &gv))
				return fail("view after restart");
			if (last_gen && rebuilds != (cqrs_view_generation(gv) != last_gen))
				return fail("a rebuild or restore at start is not counted as one");
			last_gen = cqrs_view_generation(gv);
			cqrs_view_close(gv);
		}

		/* Walk the journal: ordered gapless, each client seq once. */
		static uint64_t seen_at[MAX_CSEQ];
		int64_t balance[ACCOUNTS + 1] = { 0 };
		uint64_t ops[ACCOUNTS + 1] = { 0 }, expect = 1, max_cseq = 0;
		uint64_t last_gw_cid = 0, last_gw_cseq = 0;
		cqrs_journal_iter *it;
		const cqrs_jrec *r;
		memset(seen_at, 0, sizeof seen_at);
		free(gw_cid_at);
		free(gw_cseq_at);
		gw_cid_at = calloc(durable + 1, sizeof *gw_cid_at);
		gw_cseq_at = calloc(durable + 1, sizeof *gw_cseq_at);
		if (!gw_cid_at || !gw_cseq_at)
			return fail("memory");
		if (cqrs__journal_iter_open(&it, jdir, 1))
			return fail("journal iterator");
		while (cqrs__journal_iter_next(it, &r) == 1) {
			const bank_deposited *ev = cqrs__jrec_payload(r);
			if (r->seq != expect++ || r->seq > durable)
				return fail("journal has a gap");
			if (r->client_id == CLIENT) {
				if (r->client_seq >= MAX_CSEQ || seen_at[r->client_seq])
					return fail("a command was applied twice");
				seen_at[r->client_seq] = r->seq;
				if (r->client_seq > max_cseq)
					max_cseq = r->client_seq;
			} else {
				/* One gateway connection at a time, numbering 1, 2, ...
				 * and never resending: within a client id the client
				 * seqs strictly increase. */
				if (r->client_id == last_gw_cid && r->client_seq <= last_gw_cseq)
					return fail("a gateway command was applied twice");
				last_gw_cid = r->client_id;
				last_gw_cseq = r->client_seq;
				gw_cid_at[r->seq] = r->client_id;
				gw_cseq_at[r->seq] = r->client_seq;
			}
			if (ev->account == 0 || ev->account > ACCOUNTS)
				return fail("bad event");
			balance[ev->account] += ev->amount;
			ops[ev->account]++;
		}
		cqrs__journal_iter_close(it);
		if (expect - 1 != durable)
			return fail("journal end differs from the engine's durable seq");
		for (uint64_t cs = 1; cs < MAX_CSEQ && cs <= max_cseq + 64; cs++)
			if (acked[cs] && seen_at[cs] != acked[cs]) {
				fprintf(stderr, "client seq %llu acknowledged at %llu, journal has %llu\n",
					(unsigned long long)cs, (unsigned long long)acked[cs],
					(unsigned long long)seen_at[cs]);
				return fail("an acknowledged command was lost");
			}
		for (uint64_t k = 0; k < n_gw_acks; k++) {
			const gw_ack *a = &gw_acks[k];
			if (a->seq == 0 || a->seq > durable || gw_cid_at[a->seq] != a->client_id ||
			    gw_cseq_at[a->seq] != a->client_seq) {
				fprintf(stderr, "gateway client %llu seq %llu acknowledged at %llu, not in the journal there\n",
					(unsigned long long)a->client_id, (unsigned long long)a->client_seq,
					(unsigned long long)a->seq);
				return fail("an acknowledged gateway command was lost");
			}
		}

		/* The write model (a snapshot, then the journal after it) too. */
		for (uint64_t a = 1; a <= ACCOUNTS; a++) {
			const int64_t *b = cqrs_store_get(m.accounts, &a);
			if ((b ? *b : 0) != balance[a]) {
				fprintf(stderr, "account %llu: write model %lld, journal %lld (snapshot at "
					"seq %llu loaded)\n", (unsigned long long)a, (long long)(b ? *b : 0),
					(long long)balance[a],
					(unsigned long long)cqrs_engine_counters(e)->snap_loaded_seq);
				return fail("the restored write model differs from the journal");
			}
		}

		/* The view equals a fresh rebuild from the journal. */
		cqrs_view *v;
		if (cqrs_view_open(name, "balances", &v) || cqrs_view_wait(v, durable, 30000000000ull))
			return fail("view after restart");
		for (uint64_t a = 1; a <= ACCOUNTS; a++) {
			bank_row row;
			int rc = cqrs_view_get(v, &a, 8, &row, sizeof row);
			if (ops[a] == 0 ? rc != CQRS_ENOTFOUND
					: (rc || row.balance != balance[a] || row.ops != ops[a])) {
				fprintf(stderr, "account %llu: view %lld/%llu, journal %lld/%llu (rc %d)\n",
					(unsigned long long)a, (long long)row.balance,
					(unsigned long long)row.ops, (long long)balance[a],
					(unsigned long long)ops[a], rc);
				return fail("view differs from a rebuild");
			}
		}
		cqrs_view_close(v);

		/* The reader that stayed open across the kill sees the same. */
		for (uint64_t a = 1 + rand_r(&seed) % ACCOUNTS, n = 0; n < ACCOUNTS; n++, a = a % ACCOUNTS + 1) {
			reader_req q = { durable, a, ops[a], balance[a] };
			int rrc;
			if (!ops[a])
				continue;
			if (write(to_reader[1], &q, sizeof q) != sizeof q ||
			    read(from_reader[0], &rrc, sizeof rrc) != sizeof rrc)
				return fail("reader process gone");
			if (rrc) {
				fprintf(stderr, "reader kept open across restarts: account %llu at seq %llu: %s\n",
					(unsigned long long)a, (unsigned long long)durable, cqrs_strerror(rrc));
				return fail("a reader open across the restart saw stale data");
			}
			break;
		}

		/* /dev/shm holds no more of this engine than after the first restart. */
		unsigned long long bytes;
		int count = tu_shm_usage(shm_prefix, &bytes);
		if (base_count < 0) {
			base_count = count;
			base_bytes = bytes;
		} else if (count > base_count || bytes > base_bytes) {
			fprintf(stderr, "/dev/shm: %d segments, %llu bytes; after the first restart %d, %llu\n",
				count, bytes, base_count, base_bytes);
			return fail("/dev/shm usage grows with restarts");
		}
		bank_stop(e, &m);
		total_events = durable;
		next_cseq = max_cseq + 1;
		printf("cycle %2d: engine killed after %3ld ms, gateway client after %3ld ms; %llu events, "
		       "%llu + %llu acks so far, all present; /dev/shm %d segments %llu bytes\n",
		       cycle, engine_ms, gw_ms, (unsigned long long)durable,
		       (unsigned long long)total_acked, (unsigned long long)n_gw_acks, count, bytes);
	}
	close(to_reader[1]);
	close(from_reader[0]);
	waitpid(reader, NULL, 0);
	printf("kill loop passed: %d cycles, %llu acknowledged commands in-process and %llu through "
	       "the gateway, %llu events, none lost or doubled\n",
	       cycles, (unsigned long long)total_acked, (unsigned long long)n_gw_acks,
	       (unsigned long long)total_events);
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
	free(acked);
	free(gw_acks);
	free(gw_cid_at);
	free(gw_cseq_at);
	return 0;
}
