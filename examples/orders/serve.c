/*
 * examples/orders/serve.c - `cqrs-orders serve`: the orders engine alone,
 * for other processes (the CLI, the bindings, gateway clients) to use,
 * until SIGINT or SIGTERM stops it cleanly.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "examples/orders/demo.h"

int demo_serve(const options *o)
{
	orders_model m;
	cqrs_engine *e = NULL;
	sigset_t set;
	int sig, rc;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* engine threads inherit the mask */
	if (demo_open_engine(o, &m, &e))
		return 1;
	printf("cqrs-orders: engine '%s' serving from %s (durability %s); SIGINT/SIGTERM stops\n",
	       o->name, o->dir, demo_durability_name(o->durability));
	fflush(stdout);
	sigwait(&set, &sig);
	rc = cqrs_engine_stop(e);
	cqrs_engine_close(e);
	orders_model_free(&m);
	printf("cqrs-orders: stopped cleanly on signal %d\n", sig);
	return rc ? 1 : 0;
}
