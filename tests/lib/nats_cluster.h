/*
 * tests/lib/nats_cluster.h - a NATS JetStream cluster for tests: three (or
 * one) nats-server processes on 127.0.0.1, started by the test, stopped by
 * it, nothing else touched.
 *
 * Ports: client port base+i, cluster port base+10+i, where base is
 * $CQRS_NATS_PORT_BASE or derived from the pid (20000 + pid % 1500 * 25),
 * moved on by 25 while a port of the set is taken. Every node stores in
 * its own folder under a temporary directory, removed by tn_cluster_stop.
 * Processes are tracked by pid: kill and restart act on one node, stop
 * terminates exactly the processes this harness started (SIGTERM, then
 * SIGKILL after 3 s) and reaps them.
 *
 * A test calls tn_available() first and exits 77 with its message when
 * nats-server is not installed ($CQRS_NATS_SERVER, if set, names the
 * server to use instead of the PATH's).
 */
#ifndef CQRS_TESTS_NATS_CLUSTER_H
#define CQRS_TESTS_NATS_CLUSTER_H

#include <stdbool.h>
#include <sys/types.h>

#define TN_MAX_NODES 3

typedef struct tn_cluster {
	int n;
	int base;
	pid_t pid[TN_MAX_NODES];     /* 0: not running */
	char dir[256];               /* store dirs and configs below it */
	char urls[256];              /* "nats://127.0.0.1:P0,nats://..." */
} tn_cluster;

/* true if nats-server is on the PATH; else false and why in *why. */
bool tn_available(const char **why);

/* Starts n (1 or 3) nodes and waits until JetStream answers (a meta
 * leader exists), at most timeout_ms. 0 or -errno / -ETIMEDOUT; on error
 * everything started is stopped. */
int tn_cluster_start(tn_cluster *c, int n, int timeout_ms);

/* Waits until JetStream answers on the cluster, at most timeout_ms. */
int tn_cluster_wait_ready(tn_cluster *c, int timeout_ms);

/* kill -9 of node i (reaped). */
void tn_node_kill(tn_cluster *c, int i);

/* Starts node i again with its store (after tn_node_kill). 0 or -errno. */
int tn_node_restart(tn_cluster *c, int i);

/* Client URL of node i ("nats://127.0.0.1:P"). */
void tn_node_url(const tn_cluster *c, int i, char *buf, size_t cap);

/* Stops every node this harness started and removes its folder. */
void tn_cluster_stop(tn_cluster *c);

#endif
