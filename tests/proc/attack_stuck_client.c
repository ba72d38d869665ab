/*
 * tests/proc/attack_stuck_client.c - a client that fills its rings and then
 * never reads (and one stopped with SIGSTOP) must not delay the engine's
 * stop, nor other clients' answers (cqrs_client.h: "it never blocks on
 * it"). Exits 1 when SIGTERM takes more than 5 s with such a client.
 */
#include "tests/proc/gateway_proc.h"

static void stuck_child(int wfd, int stop_self)
{
	cqrs_client *c;
	register_customer cmd = { 0 };
	uint64_t sent = 0;
	uint64_t t0;

	gp_child_guard();
	if (cqrs_client_connect(gp_name, &c))
		_exit(3);
	snprintf(cmd.name, sizeof cmd.name, "s");
	t0 = (uint64_t)time(NULL);
	/* send until the request ring is full and stays full: replies unread */
	for (int again = 0; again < 2000 && (uint64_t)time(NULL) < t0 + 10;) {
		cmd.customer_id = 900000000 + sent + (stop_self ? 5000000 : 0);
		int rc = cqrs_client_send(c, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, NULL, NULL);
		if (rc == 0) {
			sent++;
			again = 0;
		} else if (rc == -EAGAIN) {
			again++;
			usleep(500);
		} else {
			_exit(4);
		}
	}
	if (write(wfd, &sent, sizeof sent) != sizeof sent)
		_exit(5);
	if (stop_self)
		raise(SIGSTOP);
	for (;;)
		pause();
}

int main(void)
{
	int p[2];
	pid_t kids[2];
	uint64_t sent[2];
	cqrs_client *good;
	cqrs_result r;
	struct timespec a, b;
	double secs;
	int st;

	gp_init("atkstuck");
	gp_engine_start(0);
	for (int k = 0; k < 2; k++) {
		CHECK(pipe(p) == 0, "pipe");
		kids[k] = fork();
		CHECK(kids[k] >= 0, "fork");
		if (kids[k] == 0) {
			close(p[0]);
			stuck_child(p[1], k);
		}
		gp_track(kids[k]);
		close(p[1]);
		CHECK(read(p[0], &sent[k], sizeof sent[k]) == sizeof sent[k], "child %d", k);
		close(p[0]);
	}
	printf("stuck clients sent %llu and %llu requests, read none\n", (unsigned long long)sent[0],
	       (unsigned long long)sent[1]);
	good = gp_connect();
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK(gp_register(good, 1, "good", &r) == 0, "good client beside stuck ones: %s", r.reason);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("good client's answer in %.3f ms\n",
	       (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
	cqrs_client_close(good);
	clock_gettime(CLOCK_MONOTONIC, &a);
	kill(gp_engine, SIGTERM);
	for (;;) {
		pid_t w = waitpid(gp_engine, &st, WNOHANG);
		clock_gettime(CLOCK_MONOTONIC, &b);
		secs = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
		if (w == gp_engine)
			break;
		CHECK(secs < 5, "engine stop still not done after %.1f s with a client that does not "
			  "read its answers", secs);
		usleep(10000);
	}
	gp_engine = -1;
	printf("engine stopped in %.3f s (status 0x%x)\n", secs, st);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "stop status 0x%x", st);
	printf("attack_stuck_client: ok\n");
	return 0;
}
