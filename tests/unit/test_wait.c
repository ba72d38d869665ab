/*
 * tests/unit/test_wait.c - how callers wait for an answer (core/backoff.h):
 * the spin-yield-sleep steps (yields stop at the caller's deadline), a
 * ticket answered by another thread while its waiter spins, yields or
 * sleeps, and a ticket wait that keeps its timeout while every core is
 * taken by threads that never yield.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "core/backoff.h"
#include "core/clock.h"
#include "cqrs.h"
#include "engine/ticket.h"

static void test_backoff_steps(void **state)
{
	cqrs_backoff b = cqrs__backoff_make(3, 5, UINT64_MAX);
	int steps = 0;
	(void)state;

	while (cqrs__backoff_step(&b))
		steps++;
	/* The spins, at least one yield, at most all five (fewer when the
	 * yields outlast CQRS_BACKOFF_YIELD_NS: a busy machine, TSan). */
	assert_true(steps >= 4 && steps <= 8);
	assert_false(cqrs__backoff_step(&b)); /* and stays used up */

	/* A deadline already passed: the spins, then no yield at all. */
	b = cqrs__backoff_make(3, 5, cqrs__mono_ns());
	for (steps = 0; cqrs__backoff_step(&b);)
		steps++;
	assert_int_equal(steps, 3);
}

typedef struct answerer {
	cqrs_ticket *t;
	uint64_t delay_ns;
} answerer;

static void *answer(void *arg)
{
	answerer *a = arg;
	uint64_t until = cqrs__mono_ns() + a->delay_ns;

	while (cqrs__mono_ns() < until)
		;
	cqrs__ticket_complete(ticket_of(a->t), CQRS_EREJECTED, 42, "no");
	return NULL;
}

/* Answers after 0, 50 us (in the yields), 5 ms (asleep on the futex). */
static void test_ticket_answered(void **state)
{
	const uint64_t delays[] = { 0, 50000, 5000000 };
	(void)state;

	for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
		cqrs_ticket t;
		answerer a = { &t, delays[i] };
		pthread_t th;

		cqrs__ticket_arm(&t);
		assert_int_equal(pthread_create(&th, NULL, answer, &a), 0);
		assert_int_equal(cqrs_ticket_wait(&t, UINT64_MAX), CQRS_EREJECTED);
		assert_int_equal(cqrs_ticket_seq(&t), 42);
		assert_string_equal(cqrs_ticket_reason(&t), "no");
		pthread_join(th, NULL);
	}
}

static atomic_int g_stop;

static void *hog(void *arg)
{
	(void)arg;
	/* relaxed: a stop flag; nothing is published by it. */
	while (!atomic_load_explicit(&g_stop, memory_order_relaxed))
		;
	return NULL;
}

static void test_ticket_timeout_under_hogs(void **state)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int nhogs = ncpu < 1 ? 1 : ncpu > 16 ? 16 : (int)ncpu;
	pthread_t th[16];
	(void)state;

	atomic_store(&g_stop, 0);
	for (int i = 0; i < nhogs; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hog, NULL), 0);
	for (int round = 0; round < 5; round++) {
		cqrs_ticket t;
		uint64_t t0, took;

		cqrs__ticket_arm(&t);
		t0 = cqrs__mono_ns();
		assert_int_equal(cqrs_ticket_wait(&t, 2000000), -ETIMEDOUT);
		took = cqrs__mono_ns() - t0;
		/* 2 ms asked; a few scheduler ticks of slack for a busy
		 * machine (the sleeper wakes behind a hog). */
		if (took > 200000000)
			fail_msg("a 2 ms ticket wait took %.1f ms", (double)took / 1e6);
	}
	atomic_store(&g_stop, 1);
	for (int i = 0; i < nhogs; i++)
		pthread_join(th[i], NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_steps),
		cmocka_unit_test(test_ticket_answered),
		cmocka_unit_test(test_ticket_timeout_under_hogs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
