/*
 * examples/exchange/serve.c - `cqrs-exchange serve`: the exchange engine
 * alone, for other processes (gateway clients submitting PlaceOrder and
 * the rest, the CLI, the bindings reading the views), until SIGINT or
 * SIGTERM stops it cleanly.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "examples/exchange/demo.h"

int xdemo_serve(const xoptions *o)
{
	exch_market m;
	cqrs_engine *e = NULL;
	sigset_t set;
	int sig, rc;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* engine threads inherit the mask */
	if (xdemo_open_engine(o, &m, &e))
		return 1;
	printf("cqrs-exchange: engine '%s' serving %u instruments, accounts 1..%u, from %s "
	       "(durability %s); SIGINT/SIGTERM stops\n",
	       o->name, o->instruments, o->accounts + 1, o->dir, xdemo_durability_name(o->durability));
	fflush(stdout);
	sigwait(&set, &sig);
	rc = cqrs_engine_stop(e);
	cqrs_engine_close(e);
	exch_market_free(&m);
	printf("cqrs-exchange: stopped cleanly on signal %d\n", sig);
	return rc ? 1 : 0;
}
