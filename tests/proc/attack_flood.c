/*
 * tests/proc/attack_flood.c - noisy neighbours of a well-behaved client:
 * a client ringing the doorbell nonstop, a client submitting at full
 * speed, connection storms (connect/close, connect/_exit) and a stranger
 * (uid 65534, refused) hammering the socket. The good client's answers
 * and connects must keep coming (each within 1 s; cqrs_client.h: nothing
 * a client does makes the engine stall), and the engine must end with its
 * descriptors and connection count back where they were.
 */
#include <grp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "client/client_internal.h"
#include "tests/proc/gateway_proc.h"

static char sock[CQRS_GW_SOCK_NAME];

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static pid_t spawn(void (*fn)(void))
{
	pid_t k = fork();
	CHECK(k >= 0, "fork");
	if (k == 0) {
		gp_child_guard();
		fn();
		_exit(0);
	}
	gp_track(k);
	return k;
}

static void ringer(void)
{
	cqrs_client *c;
	if (cqrs_client_connect(gp_name, &c))
		_exit(3);
	for (;;)
		cqrs__client_ring(c);
}

static void blaster(void)
{
	cqrs_client *c;
	cqrs_result r;
	register_customer cmd = { 0 };
	uint64_t i = 0;
	if (cqrs_client_connect(gp_name, &c))
		_exit(3);
	snprintf(cmd.name, sizeof cmd.name, "b");
	for (;;) {
		cmd.customer_id = 800000000 + (i++ % 1000000);
		(void)cqrs_client_send(c, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, NULL, NULL);
		while (cqrs_client_poll(c, &r) == 1)
			;
	}
}

static void storm_close(void)
{
	for (;;) {
		cqrs_client *c;
		if (cqrs_client_connect(gp_name, &c) == 0)
			cqrs_client_close(c);
	}
}

static void storm_exit(void)
{
	for (;;) {
		pid_t k = fork();
		if (k == 0) {
			cqrs_client *c;
			(void)cqrs_client_connect(gp_name, &c);
			_exit(0); /* no close */
		}
		if (k > 0)
			waitpid(k, NULL, 0);
	}
}

static void stranger(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n = strlen(sock);
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		_exit(77);
	memcpy(a.sun_path + 1, sock, n);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		(void)connect(fd, (struct sockaddr *)&a,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n));
		close(fd);
	}
}

/* The good client: nsub submits and one fresh connect; the worst times. */
static void measure(const char *what, int nsub)
{
	cqrs_client *c;
	cqrs_result r;
	double worst = 0, t, t0 = now_ms(), cworst = 0;
	static uint64_t id = 1;

	for (int k = 0; k < 5; k++) {
		t = now_ms();
		c = gp_connect();
		t = now_ms() - t;
		if (t > cworst)
			cworst = t;
		for (int i = 0; i < nsub / 5; i++) {
			double s = now_ms();
			CHECK(gp_register(c, id++, "g", &r) == 0, "%s: %s", what, r.reason);
			s = now_ms() - s;
			if (s > worst)
				worst = s;
		}
		cqrs_client_close(c);
	}
	printf("%-28s %d submits in %.0f ms, worst %.2f ms; worst connect %.2f ms\n", what, nsub,
	       now_ms() - t0, worst, cworst);
	CHECK(worst < 1000 && cworst < 1000, "%s: the good client waited %.0f ms (connect %.0f ms)",
	      what, worst, cworst);
}

static void stop_kids(void)
{
	for (int i = 0; i < gp_nkids; i++)
		if (gp_kids[i] > 0) {
			kill(gp_kids[i], SIGKILL);
			waitpid(gp_kids[i], NULL, 0);
			gp_kids[i] = -1;
		}
	gp_nkids = 0;
}

int main(void)
{
	cqrs_counters ctr;
	cqrs_ctl *ctl;
	uint64_t size;
	int fds0, fds1;

	gp_init("atkflood");
	gp_engine_start(0);
	CHECK(cqrs__ctl_open(gp_name, &ctl) == 0, "control");
	snprintf(sock, sizeof sock, "%s",
		 ((const cqrs_gw_dir *)cqrs__ctl_region(ctl, CQRS_CTL_GATEWAY, &size))->sock_name);
	cqrs__ctl_close(ctl);
	measure("quiet", 200);
	fds0 = gp_fd_count(gp_engine);

	spawn(ringer);
	measure("doorbell ringer", 200);
	stop_kids();
	spawn(blaster);
	measure("full-speed submitter", 200);
	stop_kids();
	spawn(storm_close);
	spawn(storm_exit);
	measure("connect storms", 200);
	stop_kids();
	if (geteuid() == 0) {
		spawn(stranger);
		spawn(stranger);
		measure("refused stranger x2", 200);
		stop_kids();
	}
	measure("quiet again", 200);
	/* a storm's last child may still be between connect and exit */
	for (int i = 0; i < 300; i++) {
		gp_counters(&ctr);
		if (ctr.gw_clients == 0)
			break;
		usleep(10000);
	}
	fds1 = gp_fd_count(gp_engine);
	printf("engine fds %d -> %d, gw_clients %llu, connects %llu, refused %llu, kicked %llu\n", fds0,
	       fds1, (unsigned long long)ctr.gw_clients, (unsigned long long)ctr.gw_connects,
	       (unsigned long long)ctr.gw_refused, (unsigned long long)ctr.gw_kicked);
	CHECK(fds1 <= fds0 + 2, "engine descriptors %d -> %d", fds0, fds1);
	CHECK(ctr.gw_clients == 0, "%llu clients still counted", (unsigned long long)ctr.gw_clients);
	gp_engine_stop(SIGTERM);
	printf("attack_flood: ok\n");
	return 0;
}
