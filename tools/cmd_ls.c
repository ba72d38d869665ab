/*
 * tools/cmd_ls.c - `cqrs ls [ENGINE] [--json]`: the engines found through
 * their control segments in /dev/shm ("cqrs.<engine>.ctl"), each with its
 * state and whether its process lives, and its views: generation, rows,
 * capacity, segment bytes, applied_seq and flags; and every /dev/shm name
 * the engine name owns with its size and role, orphaned generations marked
 * (tools/segments.h). --json prints the same as one JSON document (shape in
 * the help text below and cqrs(1)).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "tools/segments.h"
#include "cqrs_view.h"
#include "shm/control.h"

static const tool_cmd_help ls_help = {
	"ls",
	"usage: cqrs ls [ENGINE] [--json]\n"
	"\n"
	"Lists the engines that have a control segment in /dev/shm (or only ENGINE):\n"
	"state (starting, running, stopped, dead: its process is gone without\n"
	"stopping), pid and whether that process lives; each view's generation, rows,\n"
	"capacity, segment bytes, applied seq and flags (clean: shut down cleanly;\n"
	"retired: replaced by a newer generation); and every segment the engine name\n"
	"owns (/dev/shm/cqrs.ENGINE.*) with its size and role: control, current,\n"
	"pending (being published), kept (clean, for a later run to adopt), being\n"
	"created, or orphaned (nothing uses it: `cqrs rm --orphans` removes it).\n"
	"With ENGINE, an engine without a control segment is listed by its segments.\n"
	"  --json  one JSON document: {\"engines\": [{\"name\", \"state\", \"pid\",\n"
	"          \"alive\", \"views\": [{\"name\", \"generation\", \"rows\", \"capacity\",\n"
	"          \"bytes\", \"applied_seq\", \"clean\", \"retired\", \"writer_alive\"}],\n"
	"          \"segments\": [{\"name\", \"kind\", \"size\", \"uid\", \"role\",\n"
	"          \"orphaned\"}]}]}; an engine or view that cannot be read has \"error\"\n"
	"Exit 1 when an engine cannot be read (ENGINE: has neither a control segment\n"
	"nor any other segment).\n"
};

static const char *state_name(const cqrs_ctl_info *ci)
{
	if (ci->state != CQRS_ENGINE_STOPPED && !ci->owner_alive)
		return "dead";
	switch (ci->state) {
	case CQRS_ENGINE_STARTING: return "starting";
	case CQRS_ENGINE_RUNNING: return "running";
	case CQRS_ENGINE_STOPPED: return "stopped";
	default: return "?";
	}
}

static const char *jbool(int b)
{
	return b ? "true" : "false";
}

static void json_view(const char *engine, const cqrs_ctl_view *e)
{
	cqrs_view *v;
	cqrs_view_info vi;
	int rc;

	printf("{\"name\":");
	tool_json_str(stdout, e->name);
	printf(",\"generation\":%llu", (unsigned long long)e->generation);
	if (e->generation == 0) {
		printf(",\"published\":false}");
		return;
	}
	rc = cqrs_view_open(engine, e->name, &v);
	if (rc) {
		printf(",\"error\":");
		tool_json_str(stdout, cqrs_strerror(rc));
		printf("}");
		return;
	}
	cqrs_view_stat(v, &vi);
	printf(",\"rows\":%llu,\"capacity\":%llu,\"bytes\":%llu,\"applied_seq\":%llu,\"clean\":%s,"
	       "\"retired\":%s,\"writer_alive\":%s}",
	       (unsigned long long)vi.rows, (unsigned long long)vi.capacity,
	       (unsigned long long)vi.bytes, (unsigned long long)vi.applied_seq, jbool(vi.clean),
	       jbool(vi.retired), jbool(vi.writer_alive));
	cqrs_view_close(v);
}

static void text_view(const char *engine, const cqrs_ctl_view *e)
{
	cqrs_view *v;
	cqrs_view_info vi;
	int rc;

	if (e->generation == 0) {
		printf("  %-24s %5s (not published)\n", e->name, "-");
		return;
	}
	rc = cqrs_view_open(engine, e->name, &v);
	if (rc) {
		printf("  %-24s %5llu (unreadable: %s)\n", e->name, (unsigned long long)e->generation,
		       cqrs_strerror(rc));
		return;
	}
	cqrs_view_stat(v, &vi);
	printf("  %-24s %5llu %10llu %10llu %12llu %14llu  %s%s%s\n", e->name,
	       (unsigned long long)vi.generation, (unsigned long long)vi.rows,
	       (unsigned long long)vi.capacity, (unsigned long long)vi.bytes,
	       (unsigned long long)vi.applied_seq, vi.clean ? "clean" : "dirty",
	       vi.retired ? ",retired" : "", vi.writer_alive ? ",writer alive" : ",writer stale");
	cqrs_view_close(v);
}

/* The engine's segments: ",\"segments\":[...]" or an indented table.
 * Returns how many. */
static int list_segments(const char *engine, int json)
{
	tool_seg *v;
	int n = tool_segments(engine, &v);

	if (n < 0) {
		if (json)
			printf(",\"segments\":[]");
		return 0;
	}
	if (json) {
		printf(",\"segments\":[");
		for (int i = 0; i < n; i++) {
			printf("%s{\"name\":", i ? "," : "");
			tool_json_str(stdout, v[i].name);
			printf(",\"kind\":\"%s\",\"size\":%llu,\"uid\":%u,\"role\":\"%s\",\"orphaned\":%s}",
			       tool_seg_kind_name(v[i].kind), (unsigned long long)v[i].size,
			       (unsigned)v[i].uid, v[i].role, jbool(v[i].orphaned));
		}
		printf("]");
	} else if (n) {
		printf("  %-40s %-10s %12s %6s  %s\n", "SEGMENT", "KIND", "SIZE", "UID", "ROLE");
		for (int i = 0; i < n; i++)
			printf("  %-40s %-10s %12llu %6u  %s\n", v[i].name, tool_seg_kind_name(v[i].kind),
			       (unsigned long long)v[i].size, (unsigned)v[i].uid, v[i].role);
	}
	free(v);
	return n;
}

/* Lists one engine; returns 1 when it has neither a readable control
 * segment nor any other segment. */
static int list_engine(const char *engine, int json)
{
	cqrs_ctl *c;
	cqrs_ctl_info ci;
	int rc = cqrs__ctl_open_any(engine, &c);

	if (json) {
		printf("{\"name\":");
		tool_json_str(stdout, engine);
	}
	if (rc) {
		int n;

		if (json) {
			printf(",\"error\":");
			tool_json_str(stdout, cqrs_strerror(rc));
		} else {
			printf("%-24s (no control segment: %s)\n", engine, cqrs_strerror(rc));
		}
		n = list_segments(engine, json);
		if (json)
			printf("}");
		return n > 0 ? 0 : 1;
	}
	cqrs__ctl_info_get(c, &ci);
	if (json)
		printf(",\"state\":\"%s\",\"pid\":%u,\"alive\":%s,\"views\":[", state_name(&ci),
		       ci.owner_pid, jbool(ci.owner_alive));
	else
		printf("%-24s %-9s pid %-8u %s\n", engine, state_name(&ci), ci.owner_pid,
		       ci.owner_alive ? "alive" : "gone");
	if (!json && ci.nviews)
		printf("  %-24s %5s %10s %10s %12s %14s  %s\n", "VIEW", "GEN", "ROWS", "CAPACITY",
		       "BYTES", "APPLIED_SEQ", "FLAGS");
	for (uint32_t i = 0, n = 0; i < ci.nviews; i++) {
		cqrs_ctl_view e;

		if (cqrs__ctl_view_at(c, i, &e))
			continue;
		if (json) {
			printf("%s", n++ ? "," : "");
			json_view(engine, &e);
		} else {
			text_view(engine, &e);
		}
	}
	if (json)
		printf("]");
	cqrs__ctl_close(c);
	list_segments(engine, json);
	if (json)
		printf("}");
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int cqrs_cmd_ls(int argc, char **argv)
{
	DIR *d;
	struct dirent *de;
	char *names[1024], *pos[1];
	int n = 0, status = 0, json = 0, npos, rc;
	const tool_opt opts[] = { { "--json", TOOL_OPT_FLAG, &json, 0, 0, NULL }, { NULL } };

	if ((rc = tool_args(&ls_help, argc, argv, opts, 0, 1, pos, &npos)) != TOOL_ARGS_OK)
		return rc;
	if (npos == 1) {
		names[n++] = strdup(pos[0]);
	} else {
		d = opendir("/dev/shm");
		if (!d)
			return tool_fail("ls /dev/shm", -errno);
		while ((de = readdir(d)) && n < 1024) {
			size_t len = strlen(de->d_name);
			/* "cqrs.<engine>.ctl": engine names hold no dots */
			if (len > 9 && !strncmp(de->d_name, "cqrs.", 5) &&
			    !strcmp(de->d_name + len - 4, ".ctl") && !memchr(de->d_name + 5, '.', len - 9))
				names[n++] = strndup(de->d_name + 5, len - 9);
		}
		closedir(d);
		qsort(names, (size_t)n, sizeof names[0], cmp_str);
	}
	if (json)
		printf("{\"engines\":[");
	else if (n == 0)
		printf("no engines in /dev/shm\n");
	for (int i = 0; i < n; i++) {
		if (json && i)
			printf(",");
		if (names[i])
			status |= list_engine(names[i], json);
		free(names[i]);
	}
	if (json)
		printf("]}\n");
	/* one engine asked for: unreadable is a failure; in a listing, a
	 * segment another user owns is only reported */
	return npos == 1 ? status : TOOL_EXIT_OK;
}
