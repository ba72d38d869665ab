/*
 * tests/proc/attack_impostor.c - another local user posing as an engine.
 *
 * /dev/shm is writable by every user, so while an engine is not running
 * (before its first start after boot, after a clean stop, after `cqrs rm`)
 * any user can create "/cqrs.<engine>.ctl" by running an engine of the
 * same name themselves. cqrs_client.h and client/gateway_format.h promise
 * that a client checks who answers ("so no other process can pose as the
 * engine"), and cqrs_view.h that readers read what the engine wrote. Here
 * uid 65534 (nobody) starts an engine with the same name that admits uid 0;
 * then root, as a client and as a reader, opens that engine by name. The
 * client must refuse to connect (it would submit to, and take answers from,
 * another user's process) and the reader must refuse to open (it would read
 * that user's data as the engine's). Exits 1 when either goes through, 77
 * when not root.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cqrs.h"
#include "cqrs_client.h"
#include "cqrs_view.h"
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"

#define NOBODY 65534

static char name[64], dir[512], prefix[96];
static pid_t imp = -1;

static void cleanup(void)
{
	if (imp > 0) {
		kill(imp, SIGKILL);
		waitpid(imp, NULL, 0);
		imp = -1;
	}
	/* the impostor's segments belong to nobody: remove them by name */
	if (prefix[0])
		tu_shm_unlink_prefix(prefix);
	if (name[0])
		cqrs_engine_remove_segments(name);
	if (dir[0])
		tu_rmrf(dir);
}

static const uint32_t admit_root[1] = { 0 };

static void admit_hook(cqrs_config *cfg)
{
	cfg->gateway_uids = admit_root;
	cfg->gateway_nuids = 1;
}

static void impostor(int wfd)
{
	bank_model m;
	cqrs_engine *e;
	char sub[600];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
		_exit(77);
	snprintf(sub, sizeof sub, "%s/imp", dir);
	bank_config_hook = admit_hook;
	if (bank_start(name, sub, CQRS_DURABILITY_NONE, 1024, CQRS_ON_ERROR_SKIP, &m, &e)) {
		fprintf(stderr, "impostor: %s\n", cqrs_last_error());
		_exit(3);
	}
	if (write(wfd, "R", 1) != 1)
		_exit(4);
	for (;;)
		pause();
}

int main(void)
{
	int p[2], failures = 0, rc;
	cqrs_client *c = NULL;
	cqrs_view *v = NULL;
	char ch;

	if (geteuid() != 0) {
		printf("attack_impostor: skipped (needs root to play another uid)\n");
		return 77;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	tu_unique_name(name, sizeof name, "atkimp");
	snprintf(prefix, sizeof prefix, "cqrs.%s.", name);
	if (tu_mkdtemp(dir, sizeof dir, "cqrs-atkimp") || chown(dir, NOBODY, NOBODY)) {
		fprintf(stderr, "mkdtemp/chown\n");
		return 1;
	}
	atexit(cleanup);
	if (pipe(p))
		return 1;
	imp = fork();
	if (imp < 0)
		return 1;
	if (imp == 0) {
		close(p[0]);
		impostor(p[1]);
	}
	close(p[1]);
	if (read(p[0], &ch, 1) != 1) {
		int st = 0;
		waitpid(imp, &st, 0);
		imp = -1;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
			printf("attack_impostor: skipped (cannot switch to uid %d)\n", NOBODY);
			return 77;
		}
		fprintf(stderr, "impostor did not start (status 0x%x)\n", st);
		return 1;
	}
	/* Root, a client of "the engine named <name>", connects by name. */
	rc = cqrs_client_connect(name, &c);
	if (rc == 0) {
		bank_deposit d = { .account = 7, .amount = 100 };
		uint32_t type;
		cqrs_result r;
		memset(&r, 0, sizeof r);
		if (cqrs_client_command_type(c, "bank_deposit", &type, NULL) != 0)
			type = BANK_DEPOSIT;
		rc = cqrs_client_submit(c, type, &d, sizeof d, NULL, &r, 5ull * 1000000000);
		fprintf(stderr, "BUG: client connected to engine %s run by uid %d (another user) and "
				"was answered by it: status %d seq %llu\n",
			name, NOBODY, rc, (unsigned long long)r.seq);
		cqrs_client_close(c);
		failures++;
	} else {
		printf("client refused the impostor: %s (%s)\n", cqrs_strerror(rc), cqrs_last_error());
	}
	/* And as a reader. */
	rc = cqrs_view_open(name, "balances", &v);
	if (rc == 0) {
		fprintf(stderr, "BUG: reader opened view %s/balances, written by uid %d (another user), "
				"as the engine's\n", name, NOBODY);
		cqrs_view_close(v);
		failures++;
	} else {
		printf("reader refused the impostor: %s (%s)\n", cqrs_strerror(rc), cqrs_last_error());
	}
	/* An engine of another uid is reachable only when the caller names
	 * that uid as trusted (CQRS_TRUST_UIDS): then both open. */
	setenv("CQRS_TRUST_UIDS", "1,65534", 1);
	rc = cqrs_client_connect(name, &c);
	if (rc) {
		fprintf(stderr, "with CQRS_TRUST_UIDS naming uid %d the client still failed: %s (%s)\n",
			NOBODY, cqrs_strerror(rc), cqrs_last_error());
		failures++;
	} else {
		cqrs_client_close(c);
	}
	rc = cqrs_view_open(name, "balances", &v);
	if (rc) {
		fprintf(stderr, "with CQRS_TRUST_UIDS naming uid %d the reader still failed: %s\n",
			NOBODY, cqrs_strerror(rc));
		failures++;
	} else {
		cqrs_view_close(v);
	}
	unsetenv("CQRS_TRUST_UIDS");
	if (failures)
		return 1;
	printf("attack_impostor: ok (refused by default, reachable once its uid is trusted)\n");
	return 0;
}
