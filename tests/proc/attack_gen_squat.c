/*
 * tests/proc/attack_gen_squat.c - a view generation name squatted by
 * another user.
 *
 * cqrs.h: "views whose segments were left clean by this engine with the
 * same schema resume from their applied_seq, others are rebuilt". Any local
 * user can create files in /dev/shm. Here uid 65534 creates an empty
 * "/cqrs.<engine>.v.customer_stats.5" while the engine is stopped cleanly.
 * The next start must still adopt the engine's own clean generations (the
 * same generation numbers as before the stop). Exits 1 when the start takes
 * the foreign name for "the newest generation" (it fails to adopt it, then
 * rebuilds the projection from the journal into generation 6 and retires
 * the clean one), 77 when not root.
 */
#include <grp.h>
#include <sys/mman.h>

#include "cqrs_view.h"
#include "tests/proc/gateway_proc.h"

static const char *views[] = { "order_summaries", "active_orders", "customer_stats" };

static void generations(uint64_t *out)
{
	for (int i = 0; i < 3; i++) {
		cqrs_view *v;
		CHECK(cqrs_view_open(gp_name, views[i], &v) == 0, "open %s: %s", views[i],
		      cqrs_last_error());
		out[i] = cqrs_view_generation(v);
		cqrs_view_close(v);
	}
}

int main(void)
{
	char squat[160], prefix[96];
	uint64_t before[3], after[3];
	cqrs_client *c;
	cqrs_result r;
	pid_t kid;
	int st, bad = 0;

	if (geteuid() != 0) {
		printf("attack_gen_squat: skipped (needs root to play another uid)\n");
		return 77;
	}
	gp_init("atksquat");
	snprintf(prefix, sizeof prefix, "cqrs.%s.", gp_name);
	snprintf(squat, sizeof squat, "/cqrs.%s.v.customer_stats.5", gp_name);
	gp_engine_start(0);
	c = gp_connect();
	CHECK(gp_register(c, 1, "a", &r) == 0, "register: %s", r.reason);
	cqrs_client_close(c);
	generations(before);
	gp_engine_stop(SIGTERM); /* clean: the next start adopts these */

	kid = fork();
	CHECK(kid >= 0, "fork");
	if (kid == 0) {
		int fd;
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(77);
		fd = shm_open(squat, O_RDWR | O_CREAT | O_EXCL, 0644);
		_exit(fd >= 0 ? 0 : 3);
	}
	CHECK(waitpid(kid, &st, 0) == kid, "waitpid");
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		printf("attack_gen_squat: skipped (cannot switch to uid 65534)\n");
		return 77;
	}
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "squatter status 0x%x", st);

	gp_engine_start(0);
	generations(after);
	for (int i = 0; i < 3; i++) {
		printf("%-16s generation %llu -> %llu\n", views[i], (unsigned long long)before[i],
		       (unsigned long long)after[i]);
		if (after[i] != before[i]) {
			fprintf(stderr, "BUG: view %s: clean generation %llu not adopted after another "
					"user's file %s appeared (now %llu)%s\n",
				views[i], (unsigned long long)before[i], squat,
				(unsigned long long)after[i],
				after[i] < before[i] ? ": the generation went backwards" : "");
			bad++;
		}
	}
	if (gp_log_has("rebuilding"))
		fprintf(stderr, "engine log: views rebuilt instead of resumed\n");
	gp_engine_stop(SIGTERM);
	shm_unlink(squat);
	tu_shm_unlink_prefix(prefix);
	if (bad)
		return 1;
	printf("attack_gen_squat: ok\n");
	return 0;
}
