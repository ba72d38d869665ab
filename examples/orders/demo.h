/*
 * examples/orders/demo.h - what the files of cqrs-orders share: the options
 * (main.c parses them), the engine setup (setup.c), the load and probe
 * threads (load.c), the reader process (reader.c), the summary (summary.c),
 * and the two modes, demo (demo.c) and serve (serve.c).
 */
#ifndef CQRS_EXAMPLES_ORDERS_DEMO_H
#define CQRS_EXAMPLES_ORDERS_DEMO_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/hist.h"
#include "cqrs_counters.h"
#include "examples/orders/orders.h"

/* What the engine and its views are sized for up front (see demo_open_engine). */
#define DEMO_ORDERS (UINT64_C(1) << 22)
#define DEMO_CUSTOMERS (UINT64_C(1) << 16)

typedef struct options {
	const char *dir;
	const char *name;
	int fresh;
	double duration;
	int durability;
	uint64_t customers;
	int quiet;
	int json;      /* --json: the summary as one JSON document on stdout */
	uint64_t rate; /* --rate: the paced phase's commands/s (0: a tenth of full load's) */
	int threading; /* enum cqrs_threading_mode */
	int log_json;  /* --log-format json: the engine's log as JSON lines */
	int open_only; /* demo_open_engine registers, does not start (snapshot verify) */
} options;

/* The signal that asked the demo to stop early (0: none); set by main.c. */
extern volatile sig_atomic_t demo_got_signal;

/* Counters are written by engine threads: read them relaxed. */
#define CTR(expr) __atomic_load_n(&(expr), __ATOMIC_RELAXED)

static inline uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: cheap, good enough for picking work */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* ---- setup.c ---- */
/* "none", "batch", "interval" to the durability mode, -1 for anything else. */
int demo_parse_durability(const char *s);
const char *demo_durability_name(int d);
/* Opens and starts the orders engine o names in o->dir (--fresh: its
 * segments and files removed first). 0 or the error, printed to stderr. */
int demo_open_engine(const options *o, orders_model *m, cqrs_engine **out);

/* ---- load.c ---- */
/* Where the demo continues after a restart: ids above every existing one. */
typedef struct id_space {
	uint64_t next_order;
	uint64_t customers;
	uint64_t first_customer;
} id_space;

/* The run's two phases, each half of --duration: the load thread flat out
 * (throughput; the probes then measure queueing behind it), then paced at
 * a fixed rate well under what the first phase sustained (the probes
 * measure the engine's own latency). */
enum { PHASE_FULL = 0, PHASE_PACED = 1, PHASES = 2 };

typedef struct load {
	cqrs_engine *e;
	const options *o;
	id_space ids;
	_Atomic int stop;
	_Atomic int phase;        /* PHASE_*, set by the demo's main thread */
	_Atomic uint64_t rate;    /* commands/s in PHASE_PACED (set before phase) */
	_Atomic uint64_t submitted, accepted, rejected;
	/* probe: command-to-visible per phase */
	cqrs_hist visible[PHASES];
	int probe_fd; /* pipe to the reader process */
	_Atomic uint64_t probes[PHASES];
} load;

/* What the summary reports of one phase. */
typedef struct phase_result {
	double secs;
	uint64_t commands; /* submitted by the load thread */
	uint64_t rate;     /* the target (PHASE_PACED), 0 for full load */
} phase_result;

/* The views' shared memory once the demo stopped. */
typedef struct shm_usage {
	char glob[128];    /* /dev/shm/cqrs.<engine>.* */
	uint32_t segments;
	uint64_t bytes;    /* their sizes */
	uint64_t resident; /* memory they hold (pages allocated) */
} shm_usage;

/* RegisterCustomer for the customers ids names. 0 or the submit error. */
int demo_register_customers(cqrs_engine *e, id_space *ids);
/* The load thread: batches of create/ship/complete/cancel until l->stop. */
void *demo_load_main(void *arg);
/* The probe thread: one CreateOrder at a time, timed until the view shows
 * it; tells the reader process (l->probe_fd) each probe's seq and order. */
void *demo_probe_main(void *arg);

/* ---- reader.c ---- */
typedef struct reader_result {
	uint64_t queries;
	uint64_t rows;
	uint64_t active;
	uint64_t ryw_ok;
	uint64_t ryw_fail;
	uint64_t errors;
} reader_result;

/* `cqrs-orders reader ENGINE IN OUT FIRST COUNT`: the reader process's
 * body; its exit status. */
int demo_reader_main(const char *engine, int in_fd, int out_fd, uint64_t first, uint64_t customers);
/* Starts the reader process; *to_reader: the probe pipe, *from_reader: its
 * reader_result. The pid, or -1. */
pid_t demo_spawn_reader(const options *o, const id_space *ids, int *to_reader, int *from_reader);

/* ---- summary.c ---- */
/* The lowest applied seq over the engine's projections. */
uint64_t demo_min_applied(const cqrs_counters *c);
/* One progress line on stderr: the second that just ended, its rates. */
void demo_print_progress(const load *l, double secs, double dt, uint64_t commands,
			 uint64_t events, uint64_t lag);
/* The segments of engine `name` in /dev/shm and the memory they hold. */
void demo_shm_usage(const char *name, shm_usage *u);
/* The newest valid checkpoint of each view under the data directory (the
 * clean stop takes one of every view that moved). */
#define DEMO_MAX_CKPT 8
typedef struct ckpt_seen {
	char view[32];
	uint64_t seq;
} ckpt_seen;
void demo_checkpoints(const char *dir, ckpt_seen *out, unsigned *n);

/* Everything the summary reports (counters taken once the engine stopped). */
typedef struct summary {
	ckpt_seen ckpt[DEMO_MAX_CKPT];
	unsigned nckpt;
	const load *l;
	const reader_result *rr;
	phase_result ph[PHASES];
	double secs;
	uint64_t journal_bytes, fdatasyncs, max_lag;
	shm_usage shm;
	/* the start: the snapshot it loaded (0: none), then the journal's tail */
	uint64_t restart_snap_seq, restart_replayed;
	double restart_ms;
	/* snapshots taken during the run and at its stop */
	uint64_t snaps_taken, snap_seq, snap_bytes, fork_us, fork_max_us;
} summary;
/* The summary table (or with o->json one JSON document) on stdout. */
void demo_print_summary(const options *o, const summary *s);

/* ---- demo.c, serve.c ---- */
int demo_run(const options *o);
int demo_serve(const options *o);
/* verify.c: `cqrs-orders snapshot verify DIR`; the exit status. */
int demo_snapshot_verify(const options *o);

#endif
