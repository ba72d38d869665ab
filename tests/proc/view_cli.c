/*
 * tests/proc/view_cli.c - the `cqrs ls` and `cqrs view get|find|dump`
 * commands against a live engine's view, decoded through the schema in the
 * segment. Runs $BUILD/cqrs (BUILD defaults to "build").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tests/lib/testutil.h"
#include "tests/unit/test_view_rows.h"

static char engine[64], out[65536];
static int fail;

/* Runs `cqrs ARGS`, captures stdout into out, returns the exit status. */
static int run(const char *args)
{
	char cmd[512];
	const char *build = getenv("BUILD");
	FILE *p;
	size_t n;
	int st;

	snprintf(cmd, sizeof cmd, "%s/cqrs %s 2>&1", build && *build ? build : "build", args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, sizeof out - 1, p);
	out[n] = 0;
	st = pclose(p);
	printf("$ cqrs %s\n%s", args, out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int lines(void)
{
	int n = 0;
	for (const char *c = out; *c; c++)
		n += *c == '\n';
	return n;
}

#define EXPECT(cond)                                                                   \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
			fail = 1;                                                      \
		}                                                                      \
	} while (0)

int main(void)
{
	char args[256];
	cqrs_ctl *ctl;
	cqrs_vw *w;
	trow r;

	setvbuf(stdout, NULL, _IONBF, 0);
	tu_unique_name(engine, sizeof engine, "pcli");
	if (tview_setup(engine, 64, &ctl, &w))
		return 1;
	cqrs__vw_begin(w);
	for (uint64_t i = 1; i <= 3; i++) {
		trow_fill(&r, i, i == 3 ? 2 : 1, i);
		cqrs__vw_upsert(w, &r);
	}
	cqrs__vw_end(w, 42);

	snprintf(args, sizeof args, "ls %s", engine);
	EXPECT(run(args) == 0);
	EXPECT(strstr(out, "running") && strstr(out, "orders") && strstr(out, " 42 "));
	EXPECT(run("ls") == 0 && strstr(out, engine));

	snprintf(args, sizeof args, "view get %s orders 2", engine);
	EXPECT(run(args) == 0);
	EXPECT(strstr(out, "{\"order_id\":2,\"customer_id\":1,") && lines() == 1);
	snprintf(args, sizeof args, "view get %s orders 3", engine);
	EXPECT(run(args) == 0 && strstr(out, "\"customer_id\":2"));
	/* keys are decimal, as field values: 0x3 is refused, not read as 3 */
	snprintf(args, sizeof args, "view get %s orders 0x3", engine);
	EXPECT(run(args) == 1 && strstr(out, "not a decimal integer"));
	snprintf(args, sizeof args, "view get %s orders 99", engine);
	EXPECT(run(args) == 1 && strstr(out, "no such key"));
	snprintf(args, sizeof args, "view get %s orders notanumber", engine);
	EXPECT(run(args) == 1);
	snprintf(args, sizeof args, "view get %s nosuchview 1", engine);
	EXPECT(run(args) == 1);

	snprintf(args, sizeof args, "view find %s orders customer_id 1 --json", engine);
	EXPECT(run(args) == 0 && lines() == 2 && strstr(out, "\"order_id\":1,"));
	snprintf(args, sizeof args, "view find %s orders customer_id 1 --snapshot", engine);
	EXPECT(run(args) == 0 && lines() == 3 && !strncmp(out, "order_id\tcustomer_id", 20));
	snprintf(args, sizeof args, "view find %s orders total 1", engine);
	EXPECT(run(args) == 1 && strstr(out, "not indexed") && lines() == 1);

	snprintf(args, sizeof args, "view dump %s orders", engine);
	EXPECT(run(args) == 0 && lines() == 4 && strstr(out, "\n3\t2\t3\t10\t"));
	snprintf(args, sizeof args, "view dump %s orders --json", engine);
	EXPECT(run(args) == 0 && lines() == 3 && strstr(out, "\"note\":\""));
	EXPECT(run("view") == 2);

	tview_teardown(ctl, w);
	EXPECT(tview_shm_count(engine) == 0);
	printf("%s\n", fail ? "FAIL" : "ok");
	return fail;
}
