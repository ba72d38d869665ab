/*
 * tests/lib/nats_cluster.c - see nats_cluster.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "tests/lib/nats_cluster.h"
#include "tests/lib/testutil.h"

#define PORT_STRIDE 25

extern char **environ;

static char server_path[512];

bool tn_available(const char **why)
{
	const char *path = getenv("PATH"), *own = getenv("CQRS_NATS_SERVER");
	char buf[4096];

	if (own && *own) { /* a server of one's own choosing (or none: a path that is not one) */
		snprintf(server_path, sizeof server_path, "%s", own);
		if (access(server_path, X_OK) == 0)
			return true;
		server_path[0] = 0;
		if (why)
			*why = "CQRS_NATS_SERVER names no executable nats-server";
		return false;
	}

	snprintf(buf, sizeof buf, "%s:/usr/sbin:/usr/bin", path ? path : "");
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(server_path, sizeof server_path, "%s/nats-server", d);
		if (access(server_path, X_OK) == 0)
			return true;
	}
	server_path[0] = 0;
	if (why)
		*why = "nats-server is not installed (Debian package nats-server; sh mk/deps.sh installs it)";
	return false;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 if a TCP port on 127.0.0.1 can be bound now. */
static int port_free(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 0;
	/* As the servers bind (Go sets SO_REUSEADDR): a port whose last
	 * connections linger in TIME_WAIT is free for them. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
	ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

static int set_free(int base, int n)
{
	for (int i = 0; i < n; i++)
		if (!port_free(base + i) || !port_free(base + 10 + i))
			return 0;
	return 1;
}

static int write_config(const tn_cluster *c, int i)
{
	char path[320], store[320];
	FILE *f;

	snprintf(path, sizeof path, "%s/n%d.conf", c->dir, i);
	snprintf(store, sizeof store, "%s/s%d", c->dir, i);
	if (mkdir(store, 0700) && errno != EEXIST)
		return -errno;
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "server_name: n%d\nlisten: 127.0.0.1:%d\n", i, c->base + i);
	fprintf(f, "jetstream { store_dir: \"%s\" }\n", store);
	if (c->n > 1) {
		fprintf(f, "cluster { name: cqrs_test, listen: 127.0.0.1:%d, routes: [", c->base + 10 + i);
		for (int k = 0; k < c->n; k++)
			fprintf(f, "%snats-route://127.0.0.1:%d", k ? ", " : "", c->base + 10 + k);
		fprintf(f, "] }\n");
	}
	return fclose(f) ? -errno : 0;
}

/* posix_spawn, not fork: a fork of a multi-threaded test runs every
 * atfork handler (jemalloc's take all its locks, more than ThreadSanitizer
 * can track). setpriv --pdeathsig (util-linux) kills the server when the
 * test dies before its stop. */
static int spawn(tn_cluster *c, int i)
{
	char conf[320], log[320];
	const char *argv[8];
	posix_spawn_file_actions_t fa;
	int k = 0, rc;
	pid_t pid;

	snprintf(conf, sizeof conf, "%s/n%d.conf", c->dir, i);
	snprintf(log, sizeof log, "%s/n%d.log", c->dir, i);
	if (access("/usr/bin/setpriv", X_OK) == 0) {
		argv[k++] = "/usr/bin/setpriv";
		argv[k++] = "--pdeathsig";
		argv[k++] = "KILL";
	}
	argv[k++] = server_path;
	argv[k++] = "-c";
	argv[k++] = conf;
	argv[k] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return -rc;
	c->pid[i] = pid;
	return 0;
}

void tn_node_url(const tn_cluster *c, int i, char *buf, size_t cap)
{
	snprintf(buf, cap, "nats://127.0.0.1:%d", c->base + i);
}

/* One JetStream request through every node's URL: 1 when answered. */
static int js_answers(tn_cluster *c)
{
	natsOptions *o = NULL;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsAccountInfo *ai = NULL;
	jsOptions jo;
	jsErrCode jerr = 0;
	int ok = 0;

	const char *urls[TN_MAX_NODES];
	char bufs[TN_MAX_NODES][64];

	if (natsOptions_Create(&o) != NATS_OK)
		return 0;
	for (int i = 0; i < c->n; i++) {
		tn_node_url(c, i, bufs[i], sizeof bufs[i]);
		urls[i] = bufs[i];
	}
	natsOptions_SetServers(o, urls, c->n);
	natsOptions_SetTimeout(o, 500);
	natsOptions_SetAllowReconnect(o, false);
	if (natsConnection_Connect(&nc, o) == NATS_OK) {
		jsOptions_Init(&jo);
		jo.Wait = 1000;
		if (natsConnection_JetStream(&js, nc, &jo) == NATS_OK &&
		    js_GetAccountInfo(&ai, js, NULL, &jerr) == NATS_OK) {
			ok = 1;
			jsAccountInfo_Destroy(ai);
		}
		jsCtx_Destroy(js);
		natsConnection_Destroy(nc);
	}
	natsOptions_Destroy(o);
	return ok;
}

int tn_cluster_wait_ready(tn_cluster *c, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (now_ms() < end) {
		if (js_answers(c))
			return 0;
		usleep(50 * 1000);
	}
	return -ETIMEDOUT;
}

int tn_cluster_start(tn_cluster *c, int n, int timeout_ms)
{
	const char *env = getenv("CQRS_NATS_PORT_BASE");
	size_t len = 0;
	int rc;

	memset(c, 0, sizeof *c);
	if (!server_path[0] && !tn_available(NULL))
		return -ENOENT;
	if (n < 1 || n > TN_MAX_NODES)
		return -EINVAL;
	c->n = n;
	c->base = env && *env ? atoi(env) : 20000 + (int)(getpid() % 1500) * PORT_STRIDE;
	for (int tries = 0; !set_free(c->base, n); tries++) {
		if (tries == 40)
			return -EADDRINUSE;
		c->base += PORT_STRIDE;
		if (c->base + PORT_STRIDE > 65000)
			c->base = 20000;
	}
	rc = tu_mkdtemp(c->dir, sizeof c->dir, "cqrs_nats");
	if (rc)
		return rc;
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(c->urls + len, sizeof c->urls - len, "%snats://127.0.0.1:%d",
					i ? "," : "", c->base + i);
	for (int i = 0; i < n && !rc; i++)
		rc = write_config(c, i);
	for (int i = 0; i < n && !rc; i++)
		rc = spawn(c, i);
	if (!rc)
		rc = tn_cluster_wait_ready(c, timeout_ms);
	if (rc) {
		fprintf(stderr, "nats cluster: start failed (%s); logs in %s\n", strerror(-rc), c->dir);
		tn_cluster_stop(c);
	}
	return rc;
}

void tn_node_kill(tn_cluster *c, int i)
{
	if (i < 0 || i >= c->n || c->pid[i] <= 0)
		return;
	kill(c->pid[i], SIGKILL);
	waitpid(c->pid[i], NULL, 0);
	c->pid[i] = 0;
}

int tn_node_restart(tn_cluster *c, int i)
{
	if (i < 0 || i >= c->n || c->pid[i] > 0)
		return -EINVAL;
	return spawn(c, i);
}

void tn_cluster_stop(tn_cluster *c)
{
	int64_t end;

	for (int i = 0; i < c->n; i++)
		if (c->pid[i] > 0)
			kill(c->pid[i], SIGTERM);
	end = now_ms() + 3000;
	for (int i = 0; i < c->n; i++) {
		if (c->pid[i] <= 0)
			continue;
		while (waitpid(c->pid[i], NULL, WNOHANG) == 0) {
			if (now_ms() > end) {
				kill(c->pid[i], SIGKILL);
				waitpid(c->pid[i], NULL, 0);
				break;
			}
			usleep(20 * 1000);
		}
		c->pid[i] = 0;
	}
	if (c->dir[0] && !getenv("CQRS_NATS_KEEP"))
		tu_rmrf(c->dir);
	c->dir[0] = 0;
}
