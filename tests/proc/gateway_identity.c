/*
 * tests/proc/gateway_identity.c - stable client ids against a running
 * `cqrs-orders serve` (client/gateway_format.h, "Client ids"):
 *
 *   lost      a child connects with a stable client name, sends one command
 *             (client_seq 7) and is SIGKILLed once the engine accepted it,
 *             its answer never read; a new connection with the same name,
 *             made at once, resends it: CQRS_EDUPLICATE with the original
 *             seq, and the next command's seq shows no second event was
 *             journaled. A numeric id works the same.
 *   restart   the same resend after a clean stop and after a SIGKILL of the
 *             engine: the dedup window rebuilt from the journal answers
 *             CQRS_EDUPLICATE with the original seq.
 *   busy      a second live connection with the same id is refused -EBUSY
 *             (with a reason); closing the first frees the id at once.
 *   refused   ids with bit 63 set (the engine's), an id and a name at
 *             once, a bad size: -EINVAL before any socket; a request
 *             without client_seq on a stable connection: -EINVAL; raw asks
 *             with garbage, another version or reserved bytes set:
 *             CQRS_EFORMAT hellos; a peer that connects and never asks
 *             holds its slot only (others are served) and leaves no trace
 *             when it closes.
 */
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "client/gateway_format.h"
#include "tests/proc/gateway_proc.h"

static cqrs_client *connect_as(uint64_t id, const char *name, int *rc_out)
{
	cqrs_client_opts o = { .size = sizeof o, .client_id = id, .client_name = name };
	cqrs_client *c = NULL;
	int rc = cqrs_client_connect_opts(gp_name, &o, &c);

	if (rc_out)
		*rc_out = rc;
	else
		CHECK(rc == 0, "connect as %llu/%s: %s (%s)", (unsigned long long)id,
		      name ? name : "-", cqrs_strerror(rc), cqrs_last_error());
	return c;
}

static int register_seq(cqrs_client *c, uint64_t customer, uint64_t cseq, cqrs_result *r)
{
	register_customer cmd = { .customer_id = customer };
	cqrs_submit_opts o = { .client_seq = cseq };

	snprintf(cmd.name, sizeof cmd.name, "c%llu", (unsigned long long)customer);
	return cqrs_client_submit(c, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, &o, r, 30 * SEC);
}

/* The seq the next event gets: register a fresh customer with a new
 * (engine-assigned) connection. */
static uint64_t next_seq(uint64_t customer)
{
	cqrs_client *c = gp_connect();
	cqrs_result r;

	CHECK(gp_register(c, customer, "probe", &r) == 0, "probe: %s", r.reason);
	cqrs_client_close(c);
	return r.seq;
}

/* A child sends customer's registration with client_seq cseq as id/name
 * and is killed once the engine accepted it; returns the seq it got. */
static uint64_t lose_answer(uint64_t id, const char *name, uint64_t customer, uint64_t cseq)
{
	cqrs_counters before, now;
	uint64_t base = next_seq(customer + 1), deadline;
	int st, p[2];
	pid_t kid;

	CHECK(pipe(p) == 0, "pipe");
	gp_counters(&before);
	kid = fork();
	CHECK(kid >= 0, "fork");
	if (kid == 0) {
		register_customer cmd = { .customer_id = customer };
		cqrs_submit_opts o = { .client_seq = cseq };
		cqrs_client *c;
		char b = 1;

		gp_child_guard();
		close(p[0]);
		c = connect_as(id, name, NULL);
		snprintf(cmd.name, sizeof cmd.name, "lost");
		if (cqrs_client_send(c, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, &o, NULL) != 0)
			_exit(3);
		if (write(p[1], &b, 1) != 1)
			_exit(4);
		pause(); /* never reads the answer */
		_exit(0);
	}
	gp_track(kid);
	close(p[1]);
	{
		char b;
		CHECK(read(p[0], &b, 1) == 1, "child did not send");
	}
	close(p[0]);
	deadline = (uint64_t)time(NULL) + 30;
	do {
		usleep(1000);
		gp_counters(&now);
		CHECK((uint64_t)time(NULL) < deadline, "the engine never accepted the child's command");
	} while (now.accepted < before.accepted + 1);
	kill(kid, SIGKILL);
	CHECK(waitpid(kid, &st, 0) == kid && WIFSIGNALED(st), "child status 0x%x", st);
	gp_untrack(kid);
	return base + 1; /* the only command accepted since the probe */
}

static void resend(uint64_t id, const char *name, uint64_t customer, uint64_t cseq,
		   uint64_t orig, const char *when)
{
	cqrs_client *c = connect_as(id, name, NULL);
	cqrs_result r;
	int rc = register_seq(c, customer, cseq, &r);

	CHECK(rc == CQRS_EDUPLICATE && r.seq == orig, "%s: resend gave %s seq %llu, expected "
	      "duplicate seq %llu (%s)", when, cqrs_strerror(rc), (unsigned long long)r.seq,
	      (unsigned long long)orig, r.reason);
	CHECK(cqrs_client_id(c) == (name ? cqrs_client_id_from_name(name) : id), "%s: id", when);
	cqrs_client_close(c);
}

static uint64_t orig_name, orig_num;

static void lost(void)
{
	uint64_t after;

	orig_name = lose_answer(0, "identity-lost", 700, 7);
	resend(0, "identity-lost", 700, 7, orig_name, "reconnect by name");
	after = next_seq(703);
	CHECK(after == orig_name + 1, "a second event was journaled: next seq %llu after %llu",
	      (unsigned long long)after, (unsigned long long)orig_name);
	orig_num = lose_answer(4242, NULL, 710, 1);
	resend(4242, NULL, 710, 1, orig_num, "reconnect by number");
	/* another client_seq on the same id is a new command */
	{
		cqrs_client *c = connect_as(4242, NULL, NULL);
		cqrs_result r;
		CHECK(register_seq(c, 712, 2, &r) == 0, "seq 2: %s", r.reason);
		cqrs_client_close(c);
	}
	printf("lost: the killed client's command resent after reconnecting answered duplicate "
	       "seq %llu, no second event: ok\n", (unsigned long long)orig_name);
}

static void restart(void)
{
	gp_engine_stop(SIGTERM);
	gp_engine_start(0);
	resend(0, "identity-lost", 700, 7, orig_name, "after a clean stop");
	resend(4242, NULL, 710, 1, orig_num, "after a clean stop");
	gp_engine_stop(SIGKILL);
	gp_engine_start(0);
	resend(0, "identity-lost", 700, 7, orig_name, "after SIGKILL");
	resend(4242, NULL, 710, 1, orig_num, "after SIGKILL");
	printf("restart: duplicates answered with the original seqs after a stop and a kill: ok\n");
}

static void busy(void)
{
	cqrs_client *a = connect_as(0, "identity-busy", NULL), *b;
	cqrs_result r;
	int rc;

	b = connect_as(0, "identity-busy", &rc);
	CHECK(rc == -EBUSY && !b && strstr(cqrs_last_error(), "another live connection"),
	      "second live connection: %s (%s)", cqrs_strerror(rc), cqrs_last_error());
	CHECK(register_seq(a, 720, 1, &r) == 0, "the holder goes on: %s", r.reason);
	cqrs_client_close(a);
	b = connect_as(0, "identity-busy", NULL); /* freed at once by the close */
	CHECK(register_seq(b, 720, 1, &r) == CQRS_EDUPLICATE, "b: %s", cqrs_strerror(r.status));
	cqrs_client_close(b);
	printf("busy: a second live connection with the id refused -EBUSY, freed by close: ok\n");
}

/* Sends ask, expects a refusing hello with status and then the close. */
static void raw_refused(const void *ask, size_t n, int status, const char *what)
{
	int fd = gp_raw_connect();
	cqrs_gw_hello h;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b;

	CHECK(send(fd, ask, n, MSG_NOSIGNAL) == (ssize_t)n, "%s: send", what);
	CHECK(poll(&p, 1, 10000) == 1, "%s: no answer", what);
	CHECK(recv(fd, &h, sizeof h, MSG_WAITALL) == (ssize_t)sizeof h &&
	      h.magic == CQRS_GW_HELLO_MAGIC && h.status == status, "%s: hello status %d, want %d",
	      what, h.status, status);
	CHECK(recv(fd, &b, 1, 0) == 0, "%s: not closed after the refusal", what);
	close(fd);
}

static void refused(void)
{
	cqrs_client_opts o = { .size = sizeof o, .client_id = UINT64_C(1) << 63 };
	cqrs_gw_ask ask = { .magic = CQRS_GW_ASK_MAGIC, .version = CQRS_GW_VERSION };
	cqrs_client *c = NULL;
	cqrs_result r;
	char junk[64];
	int silent, rc;

	CHECK(cqrs_client_connect_opts(gp_name, &o, &c) == -EINVAL && !c, "bit 63 id");
	o = (cqrs_client_opts){ .size = sizeof o, .client_id = 5, .client_name = "x" };
	CHECK(cqrs_client_connect_opts(gp_name, &o, &c) == -EINVAL && !c, "id and name");
	o = (cqrs_client_opts){ .size = 4, .client_id = 5 };
	CHECK(cqrs_client_connect_opts(gp_name, &o, &c) == -EINVAL && !c, "size 4");
	o = (cqrs_client_opts){ .size = sizeof o, .flags = 2 };
	CHECK(cqrs_client_connect_opts(gp_name, &o, &c) == -EINVAL && !c, "flags");
	CHECK(cqrs_client_id_from_name("a") == cqrs_client_id_from_name("a") &&
	      cqrs_client_id_from_name("a") != cqrs_client_id_from_name("b") &&
	      !(cqrs_client_id_from_name("a") >> 63) && cqrs_client_id_from_name("") == 0,
	      "id_from_name");
	c = connect_as(0, "identity-auto", NULL);
	{
		register_customer cmd = { .customer_id = 730 };
		rc = cqrs_client_submit(c, CMD_REGISTER_CUSTOMER, &cmd, sizeof cmd, NULL, &r, 30 * SEC);
		CHECK(rc == -EINVAL, "no client_seq on a stable id: %s", cqrs_strerror(rc));
	}
	cqrs_client_close(c);

	silent = gp_raw_connect(); /* connects, never asks */
	memset(junk, 'x', sizeof junk);
	raw_refused(junk, sizeof junk, CQRS_EFORMAT, "garbage ask");
	raw_refused(&ask, 10, CQRS_EFORMAT, "short ask");
	ask.version = 99;
	raw_refused(&ask, sizeof ask, CQRS_EFORMAT, "another version");
	ask.version = CQRS_GW_VERSION;
	ask.reserved[2] = 1;
	raw_refused(&ask, sizeof ask, CQRS_EFORMAT, "reserved bytes");
	ask.reserved[2] = 0;
	ask.client_id = UINT64_C(1) << 63 | 5;
	raw_refused(&ask, sizeof ask, -EINVAL, "an assigned id asked for");
	c = gp_connect();
	CHECK(gp_register(c, 731, "s", &r) == 0, "served beside a silent peer: %s", r.reason);
	cqrs_client_close(c);
	close(silent);
	CHECK(gp_log_has("sent no valid gateway ask"), "no log line for the bad ask");
	printf("refused: bad ids and options -EINVAL, bad asks CQRS_EFORMAT, a silent peer "
	       "harmless: ok\n");
}

int main(void)
{
	gp_init("gwid");
	gp_engine_start(0);
	lost();
	busy();
	refused();
	restart();
	gp_engine_stop(SIGTERM);
	printf("gateway_identity: ok\n");
	return 0;
}
