/*
 * tests/proc/attack_shm_full_restart.c - a restart after kill -9 when
 * /dev/shm has room for one set of views and a half.
 *
 * A crashed run's view generations cannot be resumed (they are rebuilt),
 * and every start retires and removes the generations it does not use.
 * If the start creates the new generations while the dead run's still fill
 * /dev/shm, a host sized for its views (plus headroom, not twice over)
 * never starts the engine again after one crash: each start fails with
 * ENOSPC while the dead generations it would have removed stay. Here, in a
 * private mount namespace, /dev/shm is a tmpfs; the engine runs once,
 * is killed, /dev/shm is shrunk to 1.5 times what the views take, and the
 * engine must come up again with its data. Exits 1 when it does not, 77
 * without the rights to mount.
 */
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include "cqrs_view.h"
#include "tests/proc/gateway_proc.h"

static unsigned long long shm_used(void)
{
	struct statvfs s;
	CHECK(statvfs("/dev/shm", &s) == 0, "statvfs");
	return (unsigned long long)(s.f_blocks - s.f_bfree) * s.f_frsize;
}

int main(void)
{
	unsigned long long used;
	char opts[64];
	cqrs_client *c;
	cqrs_result r;
	uint64_t seq;

	if (geteuid() != 0 || unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=4g,mode=1777")) {
		printf("attack_shm_full_restart: skipped (cannot mount a private /dev/shm: %s)\n",
		       strerror(errno));
		return 77;
	}
	gp_init("atkfull");
	gp_engine_start(0);
	c = gp_connect();
	CHECK(gp_register(c, 1, "a", &r) == 0, "register: %s", r.reason);
	seq = r.seq;
	cqrs_client_close(c);
	used = shm_used();
	gp_engine_stop(SIGKILL);
	snprintf(opts, sizeof opts, "size=%llu", used * 3 / 2);
	CHECK(mount(NULL, "/dev/shm", NULL, MS_REMOUNT, opts) == 0, "remount %s: %s", opts,
	      strerror(errno));
	printf("views take %llu MiB; /dev/shm now %llu MiB; restarting after kill -9\n", used >> 20,
	       (used * 3 / 2) >> 20);
	gp_engine_start(0); /* CHECKs that it comes up */
	{
		cqrs_view *v;
		uint8_t row[4096];
		uint64_t id = 1;
		CHECK(cqrs_view_open(gp_name, "customer_stats", &v) == 0, "open: %s", cqrs_last_error());
		/* the projector catches up after the start: wait for the seq */
		CHECK(cqrs_view_wait(v, seq, 10 * SEC) == 0, "view wait: %s", cqrs_last_error());
		CHECK(cqrs_view_get(v, &id, sizeof id, row, sizeof row) == 0, "customer 1 lost");
		cqrs_view_close(v);
	}
	printf("restarted; /dev/shm holds %llu MiB\n", shm_used() >> 20);
	CHECK(shm_used() <= used + (used >> 4), "%llu bytes in /dev/shm after the restart, %llu before",
	      shm_used(), used);
	gp_engine_stop(SIGTERM);
	printf("attack_shm_full_restart: ok\n");
	return 0;
}
