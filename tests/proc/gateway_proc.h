/*
 * tests/proc/gateway_proc.h - helpers for the gateway's process tests: run
 * `cqrs-orders serve` (found next to the test binary: $BUILD/cqrs-orders) as
 * a child with a unique engine name and a temporary data folder, connect to
 * it, encode orders commands, and clean everything up at exit (children
 * killed by pid, segments and folders removed). Header-only: each test
 * program includes it once.
 */
#ifndef CQRS_TESTS_GATEWAY_PROC_H
#define CQRS_TESTS_GATEWAY_PROC_H

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cqrs.h"
#include "cqrs_client.h"
#include "cqrs_counters.h"
#include "client/gateway_format.h"
#include "shm/control.h"
#include "examples/orders/orders.h"
#include "tests/lib/testutil.h"

#define SEC UINT64_C(1000000000)

static char gp_bin[4096];     /* folder of $BUILD (where cqrs-orders is) */
static char gp_name[64];
static char gp_dir[512];
static pid_t gp_engine = -1;
static pid_t gp_kids[64];
static int gp_nkids;
static int gp_failures;

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, \
				__LINE__, #cond);                             \
			fprintf(stderr, __VA_ARGS__);                         \
			fprintf(stderr, "\n");                                \
			gp_failures++;                                        \
			exit(1);                                              \
		}                                                             \
	} while (0)

static void gp_cleanup(void)
{
	for (int i = 0; i < gp_nkids; i++)
		if (gp_kids[i] > 0) {
			kill(gp_kids[i], SIGKILL);
			waitpid(gp_kids[i], NULL, 0);
		}
	if (gp_engine > 0) {
		kill(gp_engine, SIGKILL);
		waitpid(gp_engine, NULL, 0);
		gp_engine = -1;
	}
	if (gp_name[0])
		cqrs_engine_remove_segments(gp_name);
	if (gp_dir[0])
		tu_rmrf(gp_dir);
}

static pid_t gp_main_pid;

static void gp_atexit(void)
{
	if (getpid() == gp_main_pid)
		gp_cleanup();
}

static inline void gp_track(pid_t kid)
{
	if (gp_nkids < (int)(sizeof gp_kids / sizeof gp_kids[0]))
		gp_kids[gp_nkids++] = kid;
}

/* In a forked child: die with the test process. */
static inline void gp_child_guard(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != gp_main_pid)
		_exit(126);
}

static inline void gp_untrack(pid_t kid)
{
	for (int i = 0; i < gp_nkids; i++)
		if (gp_kids[i] == kid)
			gp_kids[i] = -1;
}

/* Unique engine name, data folder, paths; cleanup at exit. */
static inline void gp_init(const char *prefix)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

	CHECK(n > 0, "readlink /proc/self/exe");
	self[n] = 0;
	/* $BUILD/tests/proc/<prog> -> $BUILD */
	snprintf(gp_bin, sizeof gp_bin, "%s", dirname(dirname(dirname(self))));
	tu_unique_name(gp_name, sizeof gp_name, prefix);
	CHECK(tu_mkdtemp(gp_dir, sizeof gp_dir, "cqrs-gwproc") == 0, "mkdtemp");
	gp_main_pid = getpid();
	atexit(gp_atexit);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static int gp_per_uid; /* CQRS_GATEWAY_PER_UID for the next engine (0: default) */

/* Starts `cqrs-orders serve` and waits until a client can connect.
 * clients: CQRS_GATEWAY_CLIENTS for the child (0: default). */
static inline void gp_engine_start(int clients)
{
	char path[4200], log[700], slots_s[16];
	uint64_t deadline;
	pid_t pid;

	snprintf(path, sizeof path, "%s/cqrs-orders", gp_bin);
	CHECK(access(path, X_OK) == 0, "no %s (build it first)", path);
	snprintf(log, sizeof log, "%s/serve.log", gp_dir);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
		if (getppid() != gp_main_pid)
			_exit(126);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (clients) {
			snprintf(slots_s, sizeof slots_s, "%d", clients);
			setenv("CQRS_GATEWAY_CLIENTS", slots_s, 1);
		}
		if (gp_per_uid) {
			snprintf(slots_s, sizeof slots_s, "%d", gp_per_uid);
			setenv("CQRS_GATEWAY_PER_UID", slots_s, 1);
		}
		execl(path, path, "serve", "--name", gp_name, "--dir", gp_dir, "--durability", "none",
		      "--quiet", (char *)NULL);
		_exit(127);
	}
	gp_engine = pid;
	deadline = (uint64_t)time(NULL) + 30;
	for (;;) {
		cqrs_client *c;
		int st;
		if (cqrs_client_connect(gp_name, &c) == 0) {
			cqrs_client_close(c);
			return;
		}
		CHECK(waitpid(pid, &st, WNOHANG) == 0, "cqrs-orders serve exited early (see %s)", log);
		CHECK((uint64_t)time(NULL) < deadline, "engine did not come up (see %s)", log);
		usleep(20000);
	}
}

/* SIGTERM (clean stop) or SIGKILL; waits for the process. */
static inline void gp_engine_stop(int sig)
{
	int st = 0;

	if (gp_engine <= 0)
		return;
	kill(gp_engine, sig);
	CHECK(waitpid(gp_engine, &st, 0) == gp_engine, "waitpid engine");
	if (sig == SIGTERM)
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "engine stop status 0x%x", st);
	gp_engine = -1;
}

static inline cqrs_client *gp_connect(void)
{
	cqrs_client *c = NULL;
	int rc = cqrs_client_connect(gp_name, &c);

	CHECK(rc == 0, "connect %s: %s (%s)", gp_name, cqrs_strerror(rc), cqrs_last_error());
	return c;
}

static inline int gp_register(cqrs_client *c, uint64_t id, const char *name, cqrs_result *r)
{
	register_customer cmd = { .customer_id = id };

	snprintf(cmd.name, sizeof cmd.name, "%s", name);
	return cqrs_client_submit(c, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, NULL, r, 30 * SEC);
}

static inline int gp_create_order(cqrs_client *c, uint64_t order, uint64_t customer, int64_t total,
			   cqrs_result *r)
{
	create_order cmd = { .order_id = order, .customer_id = customer, .item_count = 1,
			     .total = total };

	snprintf(cmd.shipping_address, sizeof cmd.shipping_address, "street %llu",
		 (unsigned long long)order);
	return cqrs_client_submit(c, CMD_CREATE_ORDER, &cmd, sizeof cmd, NULL, r, 30 * SEC);
}

/* The running engine's counters (a copy, read from its control segment). */
static inline void gp_counters(cqrs_counters *out)
{
	cqrs_ctl *ctl = NULL;
	uint64_t size = 0;
	const void *r;

	CHECK(cqrs__ctl_open(gp_name, &ctl) == 0, "open control segment: %s", cqrs_last_error());
	r = cqrs__ctl_region(ctl, CQRS_CTL_COUNTERS, &size);
	CHECK(r && size >= sizeof *out, "counters region");
	memcpy(out, r, sizeof *out);
	cqrs__ctl_close(ctl);
}

/* 1 if the engine's log (serve.log) contains needle. */
static inline int gp_log_has(const char *needle)
{
	char path[700], line[1024];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof path, "%s/serve.log", gp_dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

/* Number of open descriptors of process pid. */
static inline int gp_fd_count(pid_t pid)
{
	char path[64];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof path, "ls /proc/%d/fd | wc -l", (int)pid);
	f = popen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &n) != 1)
		n = -1;
	pclose(f);
	return n;
}

/* Runs the cqrs tool with args; returns its exit status, stdout in out. */
static inline int gp_cli(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[12288], args[4096];
	va_list ap;
	FILE *f;
	size_t n = 0;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof cmd, "'%s/cqrs' %s 2>&1", gp_bin, args);
	f = popen(cmd, "r");
	CHECK(f != NULL, "popen");
	while (n + 1 < cap && fgets(out + n, (int)(cap - n), f))
		n += strlen(out + n);
	out[n] = 0;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}


/* A bare connection to the engine's gateway socket (no hello read, no ask
 * sent): for tests that speak the socket protocol by hand. */
static inline int gp_raw_connect(void)
{
	cqrs_ctl *ctl;
	uint64_t size;
	const cqrs_gw_dir *d;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	CHECK(cqrs__ctl_open(gp_name, &ctl) == 0, "control");
	d = cqrs__ctl_region(ctl, CQRS_CTL_GATEWAY, &size);
	memcpy(a.sun_path + 1, d->sock_name, strlen(d->sock_name));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un,
								      sun_path) + 1 + strlen(d->sock_name))) == 0,
	      "raw connect");
	cqrs__ctl_close(ctl);
	return fd;
}

#endif
