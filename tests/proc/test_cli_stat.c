/*
 * tests/proc/test_cli_stat.c - `cqrs stat` tells a projection's state as
 * it is: "catching up" with applied/target seq, a rate and an ETA while a
 * slow projection is behind the journal, "running" once it caught up,
 * "halted" after a dead letter stopped it; the rebuild counter counts a
 * requested rebuild. Runs an engine with the bank domain in this process
 * and $BUILD/cqrs (BUILD defaults to build) beside it; skips (77) if the
 * tool is not built.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

static char g_cqrs[512], g_name[64], out[1 << 16];
static _Atomic int fails;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "%s:%d: %s failed: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                           \
			fprintf(stderr, "\n");                                  \
			fails++;                                                \
		}                                                               \
	} while (0)

/* Runs `cqrs ARGS` (stderr too) into out; returns the exit status. */
static int run(const char *args)
{
	char cmd[1024];
	size_t n;
	FILE *f;
	int st;

	snprintf(cmd, sizeof cmd, "%s %s 2>&1", g_cqrs, args);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	n = fread(out, 1, sizeof out - 1, f);
	out[n] = 0;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The state stat --json gives the projection (NULL: none found); points
 * into out. */
static const char *proj_field(const char *doc, const char *key)
{
	const char *p = strstr(doc, "\"projections\":");
	char k[64];

	snprintf(k, sizeof k, "\"%s\":", key);
	return p ? strstr(p, k) : NULL;
}

static int proj_state_is(const char *doc, const char *state)
{
	const char *p = proj_field(doc, "state");
	char want[64];

	snprintf(want, sizeof want, "\"state\":\"%s\"", state);
	return p && !strncmp(p, want, strlen(want));
}

/* 1 when a document after the first (one per line) shows the projection
 * catching up with a rate above 0 and an ETA. */
static int has_rate_and_eta(const char *docs)
{
	for (const char *l = strchr(docs, '\n'); l && l[1]; l = strchr(l + 1, '\n')) {
		const char *r = proj_field(l + 1, "applied_per_s"), *eta = proj_field(l + 1, "eta_s");
		if (proj_state_is(l + 1, "catching up") && r && eta &&
		    strtod(r + strlen("\"applied_per_s\":"), NULL) > 0 &&
		    strncmp(eta, "\"eta_s\":null", 12))
			return 1;
	}
	return 0;
}

/* Submits 20 bursts of 200 deposits, 150 ms apart. */
static void *submitter(void *arg)
{
	cqrs_engine *e = arg;
	uint64_t seq;

	for (int b = 0; b < 20; b++) {
		for (int i = 0; i < 200; i++)
			CHECK(bank_do(e, BANK_DEPOSIT, (uint64_t)(i % 100) + 1, 1, 0, 0, &seq) == 0,
			      "deposit %d", i);
		usleep(150000);
	}
	return NULL;
}

/* Polls `cqrs stat --json` until the projection is in state (10 s). */
static int wait_state(const char *state)
{
	char args[128];

	snprintf(args, sizeof args, "stat %s --json", g_name);
	for (int i = 0; i < 200; i++) {
		if (run(args) == 0 && proj_state_is(out, state))
			return 1;
		usleep(50000);
	}
	return 0;
}

int main(void)
{
	const char *build = getenv("BUILD");
	char dir[256], args[256];
	bank_model m;
	cqrs_engine *e;
	uint64_t seq = 0;
	pthread_t t;
	int rc;

	setvbuf(stdout, NULL, _IONBF, 0);
	snprintf(g_cqrs, sizeof g_cqrs, "%s/cqrs", build && *build ? build : "build");
	if (access(g_cqrs, X_OK)) {
		printf("%s not built\n", g_cqrs);
		return 77;
	}
	tu_unique_name(g_name, sizeof g_name, "clistat");
	if (tu_mkdtemp(dir, sizeof dir, "cqrs_clistat"))
		return 1;
	rc = bank_start(g_name, dir, CQRS_DURABILITY_NONE, 4096, CQRS_ON_ERROR_HALT, &m, &e);
	if (rc) {
		fprintf(stderr, "bank_start: %s\n", cqrs_strerror(rc));
		return 1;
	}

	/* A slow projection (1 ms an event) behind a steady 1300 events/s:
	 * always catching up, and its applied seq moves (it is published at
	 * the end of each ring run the projector takes). */
	atomic_store(&bank_apply_delay_us, 1000);
	CHECK(pthread_create(&t, NULL, submitter, e) == 0, "thread");
	usleep(300000);
	snprintf(args, sizeof args, "stat %s --json", g_name);
	rc = run(args);
	CHECK(rc == 0 && strstr(out, "\"catching_up\":true") && proj_state_is(out, "catching up"),
	      "stat while behind: %d %s", rc, out);
	snprintf(args, sizeof args, "stat %s --json --watch --interval 0.7 --count 3", g_name);
	rc = run(args);
	CHECK(rc == 0 && has_rate_and_eta(out), "watch while behind: no rate and ETA: %d %s", rc, out);
	snprintf(args, sizeof args, "stat %s --watch --interval 0.7 --count 3", g_name);
	rc = run(args);
	CHECK(rc == 0 && strstr(out, "state running, catching up") && strstr(out, "catching up ") &&
		      strstr(out, "ETA") && strstr(out, "%)"),
	      "text while behind: %d %s", rc, out);
	pthread_join(t, NULL);

	/* caught up: running, no rebuild counted */
	atomic_store(&bank_apply_delay_us, 0);
	CHECK(wait_state("running"), "never caught up: %s", out);
	CHECK(strstr(out, "\"catching_up\":false") && strstr(out, "\"rebuilds\":0") &&
		      strstr(out, "\"lag\":0"),
	      "caught up: %s", out);

	/* a requested rebuild is counted */
	CHECK(cqrs_engine_rebuild(e, "balances") == 0, "rebuild request");
	snprintf(args, sizeof args, "stat %s --json", g_name);
	for (int i = 0; i < 200 && !(run(args) == 0 && strstr(out, "\"rebuilds\":1")); i++)
		usleep(50000);
	CHECK(strstr(out, "\"rebuilds\":1"), "rebuild not counted: %s", out);

	/* a dead letter halts the projection (policy HALT): halted */
	atomic_store(&bank_poison_amount, 777);
	CHECK(bank_do(e, BANK_DEPOSIT, 1, 777, 0, 0, &seq) == 0, "poison deposit");
	CHECK(wait_state("halted"), "not halted: %s", out);
	CHECK(strstr(out, "\"halted\":true") && strstr(out, "\"dead_letters\":1"), "halted: %s", out);
	snprintf(args, sizeof args, "stat %s", g_name);
	CHECK(run(args) == 0 && strstr(out, "halted"), "text halted: %s", out);
	snprintf(args, sizeof args, "deadletters %s", g_name);
	CHECK(run(args) == 0 && strstr(out, "poison amount 777") && strstr(out, "1 dead letter(s)"),
	      "deadletters: %s", out);

	bank_stop(e, &m);
	cqrs_engine_remove_segments(g_name);
	tu_rmrf(dir);
	printf("%s\n", fails ? "FAIL" : "ok");
	return fails ? 1 : 0;
}
