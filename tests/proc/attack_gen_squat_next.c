/*
 * tests/proc/attack_gen_squat_next.c - the next generation's name taken
 * by another user.
 *
 * Any local user can create files in /dev/shm, and a view's next
 * generation number is predictable (the current one + 1). Here uid 65534
 * creates empty "/cqrs.<engine>.v.<view>.2" for every view while the
 * engine runs generation 1; then the engine is killed (kill -9) and
 * started again, which rebuilds its views into a new generation. The start
 * must come up (a foreign name is skipped, never a reason to refuse to
 * start: cqrs.h promises views are rebuilt), with the acknowledged data.
 * Exits 1 when the restart fails, 77 when not root.
 */
#include <grp.h>
#include <sys/mman.h>

#include "cqrs_view.h"
#include "tests/proc/gateway_proc.h"

static const char *views[] = { "order_summaries", "active_orders", "customer_stats" };
static char squat[3][160];

static void unsquat(void)
{
	for (int i = 0; i < 3; i++)
		if (squat[i][0])
			shm_unlink(squat[i]);
}

int main(void)
{
	char prefix[96];
	cqrs_client *c;
	cqrs_result r;
	uint64_t seq;
	pid_t kid;
	int st;

	if (geteuid() != 0) {
		printf("attack_gen_squat_next: skipped (needs root to play another uid)\n");
		return 77;
	}
	gp_init("atksqnext");
	atexit(unsquat); /* runs after gp_cleanup: the names are not the engine's */
	snprintf(prefix, sizeof prefix, "cqrs.%s.", gp_name);
	for (int i = 0; i < 3; i++)
		snprintf(squat[i], sizeof squat[i], "/cqrs.%s.v.%s.2", gp_name, views[i]);
	gp_engine_start(0);
	c = gp_connect();
	CHECK(gp_register(c, 1, "a", &r) == 0, "register: %s", r.reason);
	seq = r.seq;
	cqrs_client_close(c);

	kid = fork();
	CHECK(kid >= 0, "fork");
	if (kid == 0) {
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(77);
		for (int i = 0; i < 3; i++)
			if (shm_open(squat[i], O_RDWR | O_CREAT | O_EXCL, 0644) < 0)
				_exit(3);
		_exit(0);
	}
	CHECK(waitpid(kid, &st, 0) == kid, "waitpid");
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		printf("attack_gen_squat_next: skipped (cannot switch to uid 65534)\n");
		return 77;
	}
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "squatter status 0x%x", st);

	gp_engine_stop(SIGKILL);
	printf("restarting after kill -9 with generation 2 of every view taken by uid 65534\n");
	/* forks serve, CHECKs that it comes up within 30 s */
	gp_engine_start(0);
	c = gp_connect();
	{
		cqrs_view *v;
		uint8_t row[4096];
		uint64_t id = 1;
		CHECK(cqrs_view_open(gp_name, "customer_stats", &v) == 0, "open: %s", cqrs_last_error());
		/* the projector catches up after the start: wait for the seq */
		CHECK(cqrs_view_wait(v, seq, 10 * SEC) == 0, "view wait: %s", cqrs_last_error());
		CHECK(cqrs_view_get(v, &id, sizeof id, row, sizeof row) == 0, "customer 1 lost");
		printf("customer_stats now generation %llu\n",
		       (unsigned long long)cqrs_view_generation(v));
		cqrs_view_close(v);
	}
	cqrs_client_close(c);
	gp_engine_stop(SIGTERM);
	tu_shm_unlink_prefix(prefix);
	printf("attack_gen_squat_next: ok\n");
	return 0;
}
