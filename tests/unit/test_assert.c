/*
 * tests/unit/test_assert.c - CQRS_ASSERT is on in test builds: a child
 * process whose assertion fails names the invariant on stderr and dies of
 * SIGABRT, and a true assertion costs nothing visible. Linking this program
 * also shows that the library it links was compiled with CQRS_DEBUG:
 * cqrs__assert_fail (core/assert.c) exists only there. Exits 77 where
 * CQRS_DEBUG is not defined (CQRS_ASSERT compiled out).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "core/assert.h"

#ifdef CQRS_DEBUG
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_failed_assert_aborts(void **state)
{
	char msg[512];
	size_t len = 0;
	ssize_t n;
	int fds[2], status;
	pid_t pid;
	(void)state;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };
		volatile int zero = 0;

		setrlimit(RLIMIT_CORE, &no_core); /* no core file from a test */
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		CQRS_ASSERT(zero == 1);
		_exit(0); /* reached only when CQRS_ASSERT did nothing */
	}
	close(fds[1]);
	while (len < sizeof(msg) - 1 && (n = read(fds[0], msg + len, sizeof(msg) - 1 - len)) > 0)
		len += (size_t)n;
	msg[len] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_non_null(strstr(msg, "zero == 1"));
	assert_non_null(strstr(msg, "test_assert.c"));
}

static void test_true_assert_passes(void **state)
{
	int calls = 0;
	(void)state;

	CQRS_ASSERT(calls == 0);
	CQRS_ASSERT(sizeof(uint64_t) == 8);
	assert_int_equal(calls, 0);
}
#endif

int main(void)
{
#ifndef CQRS_DEBUG
	printf("test_assert: built without CQRS_DEBUG, CQRS_ASSERT is compiled out\n");
	return 77;
#else
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_assert_aborts),
		cmocka_unit_test(test_true_assert_passes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
#endif
}
