/*
 * tools/cmd_deadletters.c - `cqrs deadletters ENGINE | --dir DATA_DIR`:
 * the events projections refused, from DATA_DIR/deadletters.log (the data
 * directory of a running engine is read from its counters), with whether a
 * later retry resolved them. A DATA_DIR that does not exist, or that holds
 * neither a journal nor a dead-letter log, is an error (exit 1), not an
 * empty list.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tools/commands.h"
#include "cqrs_counters.h"
#include "engine/deadletter.h"
#include "shm/control.h"

static const tool_cmd_help dl_help = {
	"deadletters",
	"usage: cqrs deadletters ENGINE\n"
	"       cqrs deadletters --dir DATA_DIR\n"
	"\n"
	"Lists the events projections refused (DATA_DIR/deadletters.log): seq,\n"
	"projection, error, whether a later retry resolved it, and the reason.\n"
	"ENGINE: a running (or dead) engine; its data directory is read from its\n"
	"counters. --dir DATA_DIR: the directory the engine was started with.\n"
};

typedef struct dl_list {
	cqrs_deadletter d[4096];
	int n;
	int resolved[4096];
} dl_list;

static void collect(void *arg, const cqrs_deadletter *d)
{
	dl_list *l = arg;

	if (d->kind == CQRS_DL_RESOLVED) {
		for (int i = 0; i < l->n; i++)
			if (l->d[i].seq == d->seq && !strcmp(l->d[i].projection, d->projection))
				l->resolved[i] = 1;
		return;
	}
	if (l->n < 4096)
		l->d[l->n++] = *d;
}

int cqrs_cmd_deadletters(int argc, char **argv)
{
	static dl_list l;
	const char *given_dir = NULL;
	const tool_opt opts[] = { { "--dir", TOOL_OPT_STR, &given_dir, 0, 0, NULL }, { NULL } };
	char dir[256], *pos[1];
	uint64_t torn;
	int rc, n;

	if ((rc = tool_args(&dl_help, argc, argv, opts, 0, 1, pos, &n)) != TOOL_ARGS_OK)
		return rc;
	if (n == (given_dir != NULL))
		return tool_usage_error(&dl_help, "give ENGINE or --dir DATA_DIR, not %s",
					n ? "both" : "neither");
	if (given_dir) {
		if (strlen(given_dir) >= sizeof dir) {
			fprintf(stderr, "cqrs: %s: path too long\n", given_dir);
			return TOOL_EXIT_FAIL;
		}
		snprintf(dir, sizeof dir, "%s", given_dir);
	} else {
		cqrs_ctl *ctl;
		const cqrs_counters *c;
		uint64_t size;
		rc = cqrs__ctl_open(pos[0], &ctl);
		if (rc)
			return tool_fail(pos[0], rc);
		c = cqrs__ctl_region(ctl, CQRS_CTL_COUNTERS, &size);
		/* acquire: pairs with the engine's release store of the magic. */
		if (!c || size < sizeof *c ||
		    atomic_load_explicit((const _Atomic uint64_t *)&c->magic, memory_order_acquire) !=
			    CQRS_COUNTERS_MAGIC) {
			cqrs__ctl_close(ctl);
			fprintf(stderr, "cqrs: %s: no counters; use --dir DATA_DIR\n", pos[0]);
			return TOOL_EXIT_FAIL;
		}
		memcpy(dir, c->data_dir, sizeof dir);
		dir[sizeof dir - 1] = 0;
		cqrs__ctl_close(ctl);
	}
	if ((rc = tool_check_data_dir(dir)))
		return rc;
	l.n = 0;
	memset(l.resolved, 0, sizeof l.resolved);
	rc = cqrs__dl_read(dir, collect, &l, &torn);
	if (rc < 0)
		return tool_fail(dir, rc);
	printf("%-12s %-24s %-24s %-10s %s\n", "SEQ", "PROJECTION", "ERROR", "STATE", "REASON");
	for (int i = 0; i < l.n; i++)
		printf("%-12llu %-24.31s %-24s %-10s %s\n", (unsigned long long)l.d[i].seq,
		       l.d[i].projection, cqrs_strerror(l.d[i].code),
		       l.resolved[i] ? "resolved" : "open", l.d[i].reason);
	printf("%d dead letter(s)%s\n", l.n, torn ? " (and a torn record at the end)" : "");
	return TOOL_EXIT_OK;
}
