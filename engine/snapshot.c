/*
 * engine/snapshot.c - write-model snapshots in the engine: registration,
 * the start's choice of a snapshot, the triggers, the forked writer and
 * its reaping, cqrs_engine_snapshot, the stop's snapshot. The file
 * format and its rules: engine/snapshot_format.h.
 *
 * Why fork. The command thread must not stop for longer than a batch,
 * and the write model is the command thread's, unsynchronized: a copy
 * taken by another thread would need locks or a copy of everything on the
 * command thread. fork() at a batch boundary gives a child process a
 * copy-on-write image of the whole model as after the batch's last seq S
 * (Redis's BGSAVE). The command thread pays the fork (page tables of the
 * process's private memory, measured: cqrs_counters.snap_fork_us) and then
 * the copy of each page it writes while the child runs; shared mappings
 * (views, rings, the control segment) are not copied.
 *   - Threads: the child has only the forking (command) thread. It reads
 *     the model, the version map and the dedup window (its own copies),
 *     calls the save callbacks, writes one file, and _exit()s: no engine
 *     lock, ring, io_uring queue or descriptor of the parent is used. The
 *     one thing it reads that the parent changes is the durable seq in the
 *     control segment (shared), to rename only once the journal holds S.
 *   - jemalloc and glibc malloc register fork handlers (their locks are
 *     taken across fork), so a save callback may allocate in the child;
 *     the writer itself allocates nothing (the chunk buffer is made at
 *     start).
 *   - The child blocks every signal (a Ctrl-C to the process group must
 *     not cut it) and dies with the command thread (PR_SET_PDEATHSIG): a
 *     kill -9 of the engine leaves at most a .tmp-* file, removed at the
 *     next start.
 *   - The parent learns the result from a shared page (done flag, release
 *     / acquire): a load per step while a child runs, a waitpid when done
 *     (and every 50 ms, for a child that died without reporting); the
 *     child rings the command thread's doorbell where it is shared.
 * Hot-path cost: none per event; per step, a few loads (the triggers).
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/clock.h"
#include "core/errors.h"
#include "engine/counters.h"
#include "engine/engine_internal.h"
#include "engine/housekeeping.h"
#include "engine/journal/journal.h"
#include "engine/model/store.h"
#include "engine/snapshot.h"

#define REAP_CHECK_NS UINT64_C(50000000)  /* waitpid for a silent child */
#define RETRY_NS UINT64_C(1000000000)     /* triggers after a failure */

cqrs__snap *cqrs__snapshot_state(cqrs_engine *e)
{
	if (!e->snap)
		e->snap = calloc(1, sizeof *e->snap);
	return e->snap;
}

int cqrs__snapshot_enabled(const cqrs_engine *e)
{
	return e->snap && (e->snap->nstores || e->snap->nusers);
}

void cqrs__snapshot_free(cqrs_engine *e)
{
	cqrs__snap *sn = e->snap;

	if (!sn)
		return;
	if (sn->result)
		munmap(sn->result, sizeof *sn->result);
	free(sn->buf);
	free(sn);
	e->snap = NULL;
}

/* ---- registration ------------------------------------------------------------------ */

static int check_name(cqrs_engine *e, const char *name, const char *what)
{
	if (atomic_load_explicit(&e->state, memory_order_relaxed) != ENGINE_OPEN)
		return cqrs__fail(-EINVAL, "%s: before cqrs_engine_start only", what);
	if (!name || !name[0] || strlen(name) >= CQRS_SNAP_NAME)
		return cqrs__fail(-EINVAL, "%s: a name of 1..%u bytes", what, CQRS_SNAP_NAME - 1);
	return 0;
}

int cqrs_engine_register_store(cqrs_engine *e, const char *name, cqrs_store *s)
{
	cqrs__snap *sn;
	uint32_t keylen, value_size;
	int rc = check_name(e, name, "cqrs_engine_register_store");

	if (rc)
		return rc;
	if (!s)
		return cqrs__fail(-EINVAL, "cqrs_engine_register_store: store is NULL");
	if (!(sn = cqrs__snapshot_state(e)))
		return cqrs__fail(-ENOMEM, "out of memory");
	if (sn->nstores == CQRS_SNAP_MAX_STORES)
		return cqrs__fail(-EINVAL, "more than %u stores", CQRS_SNAP_MAX_STORES);
	for (uint32_t i = 0; i < sn->nstores; i++)
		if (strcmp(sn->stores[i].name, name) == 0 || sn->stores[i].store == s)
			return cqrs__fail(-EEXIST, "store %s registered twice", name);
	cqrs__store_layout(s, &keylen, &value_size);
	if ((uint64_t)keylen + value_size > CQRS_SNAP_CHUNK_MAX)
		return cqrs__fail(-EINVAL, "store %s: aggregates above %u bytes", name,
				  CQRS_SNAP_CHUNK_MAX);
	snprintf(sn->stores[sn->nstores].name, CQRS_SNAP_NAME, "%s", name);
	sn->stores[sn->nstores++].store = s;
	return 0;
}

int cqrs_engine_register_snapshot(cqrs_engine *e, const char *name, uint32_t version,
				  cqrs_snapshot_save_fn save, cqrs_snapshot_load_fn load, void *arg)
{
	cqrs__snap *sn;
	cqrs__snap_user *u;
	int rc = check_name(e, name, "cqrs_engine_register_snapshot");

	if (rc)
		return rc;
	if (!save || !load)
		return cqrs__fail(-EINVAL, "cqrs_engine_register_snapshot: save and load are required");
	if (!(sn = cqrs__snapshot_state(e)))
		return cqrs__fail(-ENOMEM, "out of memory");
	if (sn->nusers == CQRS_SNAP_MAX_USERS)
		return cqrs__fail(-EINVAL, "more than %u snapshot callbacks", CQRS_SNAP_MAX_USERS);
	for (uint32_t i = 0; i < sn->nusers; i++)
		if (strcmp(sn->users[i].name, name) == 0)
			return cqrs__fail(-EEXIST, "snapshot callbacks %s registered twice", name);
	u = &sn->users[sn->nusers++];
	snprintf(u->name, CQRS_SNAP_NAME, "%s", name);
	u->version = version;
	u->save = save;
	u->load = load;
	u->arg = arg;
	return 0;
}

/* ---- start --------------------------------------------------------------------------- */

static uint64_t journal_first_seq(cqrs_engine *e)
{
	cqrs_journal_extent x;

	return cqrs__journal_extent(e->journal_dir, &x) == 0 && x.manifest && x.first_seq ?
		       x.first_seq : 1;
}

/* Tries the snapshot at seq: 1 loaded, 0 not usable (logged), < 0 the load
 * failed part way (the model is changed: the start fails). */
static int try_one(cqrs_engine *e, uint64_t seq, uint64_t first_seq, uint64_t next_seq,
		   cqrs__snap_image *img)
{
	cqrs__snap *sn = e->snap;
	char path[3400], why[240] = "";
	int rc;

	cqrs__snapshot_name(path, sizeof path, sn->dir, seq);
	if (seq >= next_seq) {
		/* It holds events the journal does not (lost in a power cut under
		 * durability none or interval, cut by a repair, or a journal put
		 * back from a backup): a later start must not take it for the
		 * history the journal goes on to write. Put aside, not deleted. */
		char aside[3500];
		snprintf(aside, sizeof aside, "%s.beyond-journal", path);
		if (rename(path, aside) != 0)
			return cqrs__fail(-errno, "snapshot %s is past the journal's end (seq %llu) and "
					  "cannot be put aside: %s", path,
					  (unsigned long long)(next_seq - 1), strerror(errno));
		cqrs__log(e, CQRS_LOG_WARN, "snapshot %s is past the journal's end (seq %llu): put "
			  "aside as %s; trying an older one", path, (unsigned long long)(next_seq - 1),
			  aside);
		return 0;
	} else if (seq + 1 < first_seq)
		snprintf(why, sizeof why, "the journal starts at seq %llu, after it",
			 (unsigned long long)first_seq);
	else if (cqrs__snapshot_open(path, img, why, sizeof why) == 0) {
		if (img->hdr.seq != seq)
			snprintf(why, sizeof why, "it holds seq %llu", (unsigned long long)img->hdr.seq);
		else if (cqrs__snapshot_fits(e, img, why, sizeof why) == 0) {
			rc = cqrs__snapshot_load(e, img);
			cqrs__snapshot_close(img);
			return rc ? rc : 1;
		}
		cqrs__snapshot_close(img);
	}
	cqrs__log(e, CQRS_LOG_WARN, "snapshot %s not used: %s; trying an older one", path, why);
	return 0;
}

int cqrs__snapshot_restore(cqrs_engine *e, uint64_t next_seq, uint64_t *from)
{
	cqrs__snap *sn = cqrs__snapshot_state(e);
	uint64_t first_seq, seqs[64], t0 = cqrs__mono_ns();
	cqrs__snap_image *img;
	size_t n = 0;
	int rc;

	*from = 0;
	if (!sn)
		return cqrs__fail(-ENOMEM, "out of memory");
	if (sn->verified)
		return cqrs__fail(-EINVAL, "cqrs_engine_verify_snapshot filled this engine's stores: "
				  "open a new engine to start");
	snprintf(sn->dir, sizeof sn->dir, "%s/snapshots", e->data_dir);
	if (mkdir(sn->dir, 0750) && errno != EEXIST)
		return cqrs__fail(-errno, "cannot create %s: %s", sn->dir, strerror(errno));
	cqrs__snapshot_remove_tmp(sn->dir);
	first_seq = journal_first_seq(e);
	if (cqrs__snapshot_enabled(e)) {
		sn->buf = malloc(CQRS_SNAP_CHUNK_MAX + sizeof(cqrs__snap_chunk));
		sn->result = mmap(NULL, sizeof *sn->result, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		img = malloc(sizeof *img);
		if (sn->result == MAP_FAILED)
			sn->result = NULL;
		if (!sn->buf || !sn->result || !img) {
			free(img);
			return cqrs__fail(-ENOMEM, "snapshot: out of memory");
		}
		rc = cqrs__snapshot_seqs(sn->dir, seqs, 64, &n);
		for (size_t i = 0; rc == 0 && i < n && i < 64; i++) {
			rc = try_one(e, seqs[i], first_seq, next_seq, img);
			if (rc == 1) {
				*from = seqs[i];
				rc = 0;
				break;
			}
		}
		free(img);
		if (rc)
			return rc;
		sn->on = 1;
		sn->last_seq = sn->loaded_seq = *from;
		sn->load_ns = cqrs__mono_ns() - t0;
		if (*from)
			cqrs__log(e, CQRS_LOG_INFO, "recovery: snapshot at seq %llu loaded in %.1f ms",
				  (unsigned long long)*from, (double)sn->load_ns / 1e6);
	} else if (cqrs__snapshot_seqs(sn->dir, seqs, 1, &n) == 0 && n) {
		cqrs__log(e, CQRS_LOG_WARN, "snapshots in %s not used: no store or snapshot callbacks "
			  "registered", sn->dir);
	}
	if (*from == 0 && first_seq > 1 && next_seq > 1)
		return cqrs__fail(CQRS_ECORRUPT, "journal starts at seq %llu and no valid snapshot "
				  "covers 1..%llu", (unsigned long long)first_seq,
				  (unsigned long long)(first_seq - 1));
	return 0;
}

void cqrs__snapshot_counters_init(cqrs_engine *e)
{
	cqrs__snap *sn = e->snap;

	if (!sn || !sn->on)
		return;
	CTR_SET(e->ctr, snap_loaded_seq, sn->loaded_seq);
	CTR_SET(e->ctr, snap_load_ns, sn->load_ns);
	CTR_SET(e->ctr, snap_seq, sn->loaded_seq);
	if (sn->loaded_seq)
		CTR_SET(e->ctr, snap_wall_ns, cqrs__wall_ns());
}

/* ---- the writer child --------------------------------------------------------------- */

/* In the child: the parent's durable seq, through the control segment. */
static int child_durable(void *arg, uint64_t seq)
{
	cqrs_engine *e = arg;

	if (getppid() != e->snap->parent || CTR_GET(e->ctr, poison))
		return -1;
	return CTR_GET(e->ctr, durable_seq) >= seq;
}

static _Noreturn void child_main(cqrs_engine *e, uint64_t seq)
{
	cqrs__snap *sn = e->snap;
	cqrs__snap_result *r = sn->result;
	sigset_t all;
	uint64_t t0 = cqrs__mono_ns(), bytes = 0;
	int rc;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != sn->parent) /* the parent died before the prctl */
		_exit(2);
	/* The journal's LOCK ends with the engine, not with this child: a
	 * restart right after a kill -9 finds it free. */
	cqrs__journal_close_lock_in_child(e->journal);
	/* Below the engine's threads for the CPU and the disk: a busy command
	 * thread (and the journal's fdatasync) come first, the snapshot takes
	 * what is left (SCHED_BATCH, nice 10, best-effort I/O level 7). */
	{
		struct sched_param sp = { 0 };
		(void)sched_setscheduler(0, SCHED_BATCH, &sp);
		(void)setpriority(PRIO_PROCESS, 0, 10);
		(void)syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0,
			      (2 << 13) | 7 /* IOPRIO_CLASS_BE, level 7 */);
	}
	rc = cqrs__snapshot_write(e, seq, sn->buf, child_durable, e, &bytes, r->why, sizeof r->why);
	r->rc = rc;
	r->bytes = bytes;
	r->write_ns = cqrs__mono_ns() - t0;
	/* release: the fields above before done; pairs with the parent's
	 * acquire load of done. */
	atomic_store_explicit(&r->done, 1, memory_order_release);
	/* The command thread may sleep on its doorbell: where that lives in
	 * shared memory (the gateway's engine page) the child wakes it; the
	 * heap's own bell is this process's copy (a wake-up would reach no
	 * one): the parent then sees done within its 10 ms sleep. */
	if (e->bell != &e->own_bell)
		cqrs__bell_ring(e->bell);
	_exit(rc ? 1 : 0);
}

/* The requests a snapshot (or its failure) answers. */
static void answer(cqrs_engine *e, uint64_t api, uint64_t ctl, uint64_t seq, int rc,
		   const char *why)
{
	cqrs__snap *sn = e->snap;

	snprintf(sn->api_why, sizeof sn->api_why, "%s", why ? why : "");
	atomic_store_explicit(&sn->api_seq, seq, memory_order_relaxed);  /* published below */
	atomic_store_explicit(&sn->api_rc, rc, memory_order_relaxed);    /* published below */
	/* release: seq, rc and why before served; pairs with
	 * cqrs_engine_snapshot's acquire load of api_served. */
	atomic_store_explicit(&sn->api_served, api, memory_order_release);
	sn->ctl_seen = ctl;
	/* release: snap_seq and snap_failed before snap_served; pairs with
	 * cqrs snapshot's acquire load of snap_served (tools/cmd_snapshot.c). */
	atomic_store_explicit((_Atomic uint64_t *)&e->ctr->snap_served, ctl, memory_order_release);
}

static void taken(cqrs_engine *e, uint64_t seq, uint64_t bytes, uint64_t ns)
{
	cqrs__snap *sn = e->snap;

	sn->last_seq = seq;
	CTR_SET(e->ctr, snap_seq, seq);
	CTR_SET(e->ctr, snap_wall_ns, cqrs__wall_ns());
	CTR_SET(e->ctr, snap_bytes, bytes);
	CTR_ADD(e->ctr, snap_taken, 1);
	cqrs__housekeeping_kick(e); /* a newer pin: retention may collect */
	cqrs__log(e, CQRS_LOG_INFO, "snapshot at seq %llu: %llu bytes in %.1f ms (fork %llu us)",
		  (unsigned long long)seq, (unsigned long long)bytes, (double)ns / 1e6,
		  (unsigned long long)CTR_GET(e->ctr, snap_fork_us));
}

static void failed(cqrs_engine *e, int rc, const char *why)
{
	CTR_ADD(e->ctr, snap_failed, 1);
	e->snap->retry_ns = cqrs__mono_ns() + RETRY_NS;
	cqrs__log(e, CQRS_LOG_WARN, "%s", why);
	(void)rc;
}

/* A child that is done (or died): its result, the requests it answers. */
static void reap(cqrs_engine *e, int died)
{
	cqrs__snap *sn = e->snap;
	cqrs__snap_result *r = sn->result;
	int status;

	while (waitpid(sn->child, &status, 0) < 0 && errno == EINTR)
		;
	if (died) {
		snprintf(r->why, sizeof r->why, "snapshot at seq %llu: the writer (pid %d) died",
			 (unsigned long long)sn->child_seq, sn->child);
		r->rc = -ECHILD;
	}
	if (r->rc == 0)
		taken(e, sn->child_seq, r->bytes, r->write_ns);
	else
		failed(e, r->rc, r->why);
	answer(e, sn->child_covers, sn->child_ctl_covers, r->rc ? 0 : sn->child_seq, r->rc, r->why);
	sn->child = 0;
}

static void begin(cqrs_engine *e, uint64_t api, uint64_t ctl)
{
	cqrs__snap *sn = e->snap;
	uint64_t seq = e->last_assigned, t0, us;
	pid_t pid;

	memset(sn->result, 0, sizeof *sn->result); /* ordered before the child by fork */
	sn->parent = getpid();
	t0 = cqrs__mono_ns();
	pid = fork();
	if (pid == 0)
		child_main(e, seq);
	us = (cqrs__mono_ns() - t0) / 1000;
	if (pid < 0) {
		char why[200];
		snprintf(why, sizeof why, "snapshot at seq %llu: fork failed: %s",
			 (unsigned long long)seq, strerror(errno));
		failed(e, -errno, why);
		answer(e, api, ctl, 0, -EAGAIN, why);
		return;
	}
	sn->fork_us[sn->nforks++ % 64] = us;
	CTR_SET(e->ctr, snap_fork_us, us);
	if (us > CTR_GET(e->ctr, snap_fork_max_us))
		CTR_SET(e->ctr, snap_fork_max_us, us);
	sn->child = pid;
	sn->child_seq = seq;
	sn->child_covers = api;
	sn->child_ctl_covers = ctl;
	sn->next_check_ns = t0 + REAP_CHECK_NS;
	sn->last_bytes_at = CTR_GET(e->ctr, journal_bytes);
}

/* ---- the command thread ---------------------------------------------------------------- */

/* A child in flight: 1 still running, 0 reaped. */
static int poll_child(cqrs_engine *e)
{
	cqrs__snap *sn = e->snap;
	uint64_t now;
	int status;

	/* acquire: pairs with the child's release store of done. */
	if (atomic_load_explicit(&sn->result->done, memory_order_acquire)) {
		reap(e, 0);
		return 0;
	}
	now = cqrs__mono_ns();
	if (now < sn->next_check_ns)
		return 1;
	sn->next_check_ns = now + REAP_CHECK_NS;
	if (waitpid(sn->child, &status, WNOHANG) == 0)
		return 1;
	/* exited (or not our child any more): done may have been set since */
	reap(e, !atomic_load_explicit(&sn->result->done, memory_order_acquire)); /* as above */
	return 0;
}

void cqrs__snapshot_tick(cqrs_engine *e)
{
	cqrs__snap *sn = e->snap;
	uint64_t api, ctl, since;
	int due;

	CQRS_ASSERT(cqrs__on_command_thread(e));
	if (!sn->on) {
		/* no snapshots: a request from cqrs snapshot is answered at once,
		 * snap_seq 0 (the tool says why) */
		ctl = CTR_GET(e->ctr, snap_requests); /* another process's word: a value only */
		if (ctl != sn->ctl_seen)
			answer(e, atomic_load_explicit(&sn->api_served, memory_order_relaxed), ctl, 0,
			       -EINVAL, NULL); /* api_served: this thread's */
		return;
	}
	if (sn->child && poll_child(e))
		return;
	/* acquire: pairs with cqrs_engine_snapshot's fetch_add (a request
	 * made before it kicked). */
	api = atomic_load_explicit(&sn->api_requests, memory_order_acquire);
	ctl = CTR_GET(e->ctr, snap_requests); /* another process's word: a value only */
	since = e->last_assigned - sn->last_seq;
	due = api != atomic_load_explicit(&sn->api_served, memory_order_relaxed) || ctl != sn->ctl_seen;
	if (!due && since && (e->cfg.snapshot_every_events || e->cfg.snapshot_every_bytes)) {
		due = (e->cfg.snapshot_every_events && since >= e->cfg.snapshot_every_events) ||
		      (e->cfg.snapshot_every_bytes &&
		       CTR_GET(e->ctr, journal_bytes) - sn->last_bytes_at >= e->cfg.snapshot_every_bytes);
		if (due && sn->retry_ns && cqrs__mono_ns() < sn->retry_ns)
			due = 0;
	}
	if (!due)
		return;
	/* relaxed: poison is written by this thread. A poisoned journal never
	 * gets durable: requests are answered with its error. */
	if (atomic_load_explicit(&e->poison, memory_order_relaxed)) {
		if (api != atomic_load_explicit(&sn->api_served, memory_order_relaxed) ||
		    ctl != sn->ctl_seen)
			answer(e, api, ctl, 0, atomic_load_explicit(&e->poison, memory_order_relaxed),
			       "snapshot: the journal failed");
		return;
	}
	if (since == 0) { /* nothing new: the newest one (or none, seq 0) answers */
		answer(e, api, ctl, sn->last_seq, 0, NULL);
		return;
	}
	begin(e, api, ctl);
}

static int durable_now(void *arg, uint64_t seq)
{
	cqrs_engine *e = arg;

	/* relaxed: this thread writes durable_seq */
	return atomic_load_explicit(&e->durable_seq, memory_order_relaxed) >= seq ? 1 : -1;
}

void cqrs__snapshot_at_stop(cqrs_engine *e)
{
	cqrs__snap *sn = e->snap;
	uint64_t api, seq = e->last_assigned, bytes, t0;
	char why[240];
	int rc;

	if (!sn || !sn->on)
		return;
	while (sn->child) {
		/* relaxed: written by this thread */
		if (atomic_load_explicit(&e->poison, memory_order_relaxed)) {
			kill(sn->child, SIGKILL);
			sn->next_check_ns = 0;
		}
		if (poll_child(e))
			usleep(1000);
	}
	api = atomic_load_explicit(&sn->api_requests, memory_order_acquire); /* as in tick */
	if (!e->cfg.snapshot_on_stop || seq == sn->last_seq ||
	    atomic_load_explicit(&e->poison, memory_order_relaxed)) { /* as above */
		answer(e, api, CTR_GET(e->ctr, snap_requests), sn->last_seq,
		       sn->last_seq == seq ? 0 : -ECANCELED, "the engine stopped");
		return;
	}
	t0 = cqrs__mono_ns();
	rc = cqrs__snapshot_write(e, seq, sn->buf, durable_now, e, &bytes, why, sizeof why);
	if (rc == 0)
		taken(e, seq, bytes, cqrs__mono_ns() - t0);
	else
		failed(e, rc, why);
	answer(e, api, CTR_GET(e->ctr, snap_requests), rc ? 0 : seq, rc, why);
}

/* ---- cqrs_engine_snapshot --------------------------------------------------------------- */

int cqrs_engine_snapshot(cqrs_engine *e, uint64_t *seq)
{
	cqrs__snap *sn = e->snap;
	uint64_t t;
	int rc;

	if (seq)
		*seq = 0;
	if (!cqrs__snapshot_enabled(e))
		return cqrs__fail(-EINVAL, "cqrs_engine_snapshot: no store or snapshot callbacks "
				  "registered");
	/* acquire: pairs with start's release store of RUNNING */
	if (atomic_load_explicit(&e->state, memory_order_acquire) != ENGINE_RUNNING)
		return cqrs__fail(-EINVAL, "cqrs_engine_snapshot: engine not running");
	if (pthread_equal(pthread_self(), e->command_thread))
		return cqrs__fail(-EDEADLK, "cqrs_engine_snapshot: not from the command thread");
	/* acq_rel: the request is seen by the command thread's acquire load
	 * in tick, after the kick. */
	t = atomic_fetch_add_explicit(&sn->api_requests, 1, memory_order_acq_rel) + 1;
	cqrs__command_kick(e);
	/* acquire: pairs with answer's release store of api_served. */
	while (atomic_load_explicit(&sn->api_served, memory_order_acquire) < t) {
		/* acquire: as above, for the stop */
		if (atomic_load_explicit(&e->state, memory_order_acquire) == ENGINE_STOPPED)
			return cqrs__fail(-ECANCELED, "cqrs_engine_snapshot: the engine stopped");
		usleep(500);
	}
	rc = atomic_load_explicit(&sn->api_rc, memory_order_relaxed); /* after the acquire */
	if (rc)
		return cqrs__fail(rc, "%s", sn->api_why);
	if (seq)
		*seq = atomic_load_explicit(&sn->api_seq, memory_order_relaxed); /* as rc */
	return 0;
}

/* ---- for the bench and tests ----------------------------------------------------------- */

uint64_t cqrs__snapshot_fork_p50_us(const cqrs_engine *e)
{
	const cqrs__snap *sn = e->snap;
	uint64_t v[64], n;

	if (!sn || !sn->nforks)
		return 0;
	n = sn->nforks < 64 ? sn->nforks : 64;
	memcpy(v, sn->fork_us, n * sizeof *v);
	for (uint64_t i = 1; i < n; i++) /* insertion sort of at most 64 */
		for (uint64_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint64_t x = v[j];
			v[j] = v[j - 1];
			v[j - 1] = x;
		}
	return v[n / 2];
}
