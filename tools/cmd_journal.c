/*
 * tools/cmd_journal.c - `cqrs journal verify|dump|stat|repair DIR`:
 * inspection of a journal directory through the journal iterator (which
 * validates every checksum, the seq chain and each segment's end) and the
 * extent checks (manifest, predecessor links), and the operator's repair.
 * DIR is the journal directory or the engine's data directory
 * (DIR/journal is used when DIR itself holds no segments).
 *
 *   verify DIR   exit 0 clean; 3 torn tail (recovery would cut it); 4
 *                corruption, a missing segment (first, middle or last) or
 *                a log shorter than its manifest proves; 1 other errors.
 *                Prints the segment, byte offset and seq of the first
 *                problem, or the missing segment's name.
 *   repair DIR   cuts the journal at its first problem (bytes kept in
 *                .cut files, later segments renamed *.cut) and rewrites
 *                the manifest, so the engine can start after accepting
 *                the loss; exit 0 (repaired, or nothing to repair), 1
 *                error (a writer holds the journal).
 *   dump DIR [--from SEQ] [--limit N] [--json]
 *                one line per event, payload decoded through the schema
 *                embedded in its segment header (hex when there is none).
 *   stat DIR     segments, seq range, bytes, event counts per type, and
 *                what pins each segment (journal retention).
 *   gc DIR [--dry-run] [--min-segments N] [--min-bytes N] [--min-age S]
 *                [--archive DIR]
 *                journal retention on a stopped engine's directory: the
 *                plan (each segment, what pins it, its action), and without
 *                --dry-run the collection (the MANIFEST first, then the
 *                files); refuses while a writer holds the journal.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/commands.h"
#include "engine/journal/journal.h"
#include "engine/journal/retention.h"
#include "engine/retention_pins.h"

static const char journal_help_text[] =
	"usage: cqrs journal verify DIR\n"
	"       cqrs journal dump DIR [--from SEQ] [--limit N] [--json]\n"
	"       cqrs journal stat DIR\n"
	"       cqrs journal repair DIR\n"
	"       cqrs journal gc DIR [--dry-run] [--min-segments N] [--min-bytes N]\n"
	"                           [--min-age SECONDS] [--archive DIR]\n"
	"\n"
	"DIR: a journal directory, or the data directory an engine was started with\n"
	"(its journal/ is used). verify, dump, stat: read-only; safe beside a running\n"
	"engine.\n"
	"verify  checks every record (checksums, seq chain, segment ends) and the\n"
	"        journal's extent (MANIFEST, each segment naming the one before it:\n"
	"        a missing segment, a tail shorter than what was durable) and says\n"
	"        where the first problem is\n"
	"dump    one line per event, payload decoded through the schema stored in\n"
	"        the journal\n"
	"  --from SEQ   start at event SEQ (default: the first)\n"
	"  --limit N    at most N events\n"
	"  --json       one JSON object per event\n"
	"stat    the manifest, segments, seq range, bytes, events per type, and what\n"
	"        pins each segment (snapshots, view checkpoints)\n"
	"gc      journal retention: removes the sealed segments no restart needs (below\n"
	"        the oldest valid snapshot and every view's newest valid checkpoint),\n"
	"        keeping the newest --min-segments (default 2), --min-bytes, and those\n"
	"        younger than --min-age; the active segment always. The MANIFEST\n"
	"        records the new start before any file goes. The engine must be\n"
	"        stopped (refused while it holds the journal).\n"
	"  --dry-run      list each segment, what pins it and what would happen\n"
	"  --archive DIR  move collected segments to DIR instead of deleting them\n"
	"repair  accepts the loss the engine refuses to start with: cuts the journal\n"
	"        at its first problem (the bytes go to SEGMENT.OFFSET.cut, later\n"
	"        segments are renamed SEGMENT.cut, nothing is deleted) and rewrites\n"
	"        the MANIFEST; the engine must be stopped. Views that applied later\n"
	"        events then make the engine refuse to start: remove them (cqrs rm).\n"
	"Exit status: 0 clean (repair, gc: done, or nothing to do); 1 cannot read,\n"
	"repair or collect (gc: the engine is running); 2 usage; 3 (verify) a torn tail, which the engine's next start\n"
	"cuts; 4 corruption or a missing segment.\n";

static int iter_error(const char *dir, int rc)
{
	tool_fail(dir, rc);
	return rc == CQRS_ECORRUPT || rc == CQRS_EFORMAT ? TOOL_EXIT_CORRUPT : TOOL_EXIT_FAIL;
}

/* A payload whose size differs from its schema's is corruption the
 * checksum cannot see (a writer bug); verify and dump report it. */
static int size_mismatch(const cqrs_journal_iter *it, const cqrs_jrec *r)
{
	const cqrs_schema *s = cqrs__journal_iter_schema(it, r->type);
	return s && s->size != r->size;
}

static void where_msg(const cqrs_journal_iter *it, char *buf, size_t cap)
{
	cqrs_journal_segment_info seg;
	uint64_t off;

	cqrs__journal_iter_where(it, &seg, &off);
	snprintf(buf, cap, "segment %s, offset %" PRIu64, seg.name, off);
}

#define NO_MANIFEST "MANIFEST is missing: a lost segment at the end cannot be told from a " \
	"clean end (`cqrs journal repair` rebuilds it)"

/* The extent checks that need no record scan: 0 (with *x filled), or the
 * exit status after printing the problem. */
static int verify_extent(const char *dir, cqrs_journal_extent *x)
{
	int rc = cqrs__journal_extent(dir, x);

	if (rc == CQRS_ECORRUPT || rc == CQRS_EFORMAT) {
		printf("corrupt: %s\n", tool_detail());
		return TOOL_EXIT_CORRUPT;
	}
	if (rc)
		return iter_error(dir, rc);
	if (x->manifest_missing && x->segments > 1) {
		printf("corrupt: journal %s: " NO_MANIFEST "\n", dir);
		return TOOL_EXIT_CORRUPT;
	}
	if (x->legacy)
		printf("note: no MANIFEST (segments of format version 1): a missing last segment "
		       "cannot be detected\n");
	return 0;
}

static int cmd_verify(const char *dir)
{
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	cqrs_journal_tail tail;
	cqrs_journal_segment_info seg;
	uint64_t n = 0, first = 0, last = 0, bytes = 0, nseg = 0;
	char cur[40] = "", where[128];
	cqrs_journal_extent x;
	int rc = verify_extent(dir, &x);

	if (rc)
		return rc;
	rc = cqrs__journal_iter_open(&it, dir, 0);
	if (rc == CQRS_ECORRUPT || rc == CQRS_EFORMAT) {
		printf("corrupt: %s\n", tool_detail());
		return TOOL_EXIT_CORRUPT;
	}
	if (rc)
		return iter_error(dir, rc);
	while ((rc = cqrs__journal_iter_next(it, &r)) == 1) {
		if (size_mismatch(it, r)) {
			where_msg(it, where, sizeof where);
			printf("corrupt: %s, seq %" PRIu64 ": payload of %u bytes, its schema says %u\n",
			       where, r->seq, r->size, cqrs__journal_iter_schema(it, r->type)->size);
			cqrs__journal_iter_close(it);
			return TOOL_EXIT_CORRUPT;
		}
		cqrs__journal_iter_where(it, &seg, NULL);
		if (strcmp(seg.name, cur) != 0) {
			snprintf(cur, sizeof cur, "%s", seg.name);
			nseg++;
		}
		if (!n)
			first = r->seq;
		last = r->seq;
		bytes += cqrs__jrec_span(r);
		n++;
	}
	if (rc < 0) {
		printf("corrupt: %s\n", tool_detail());
		cqrs__journal_iter_close(it);
		return rc == CQRS_ECORRUPT || rc == CQRS_EFORMAT ? TOOL_EXIT_CORRUPT : TOOL_EXIT_FAIL;
	}
	cqrs__journal_iter_tail(it, &tail);
	cqrs__journal_iter_close(it);
	/* Without a manifest only a lone empty segment is whole: creation
	 * was interrupted before the writer wrote one. */
	if (x.manifest_missing && !(n == 0 && tail.end == CQRS_JOURNAL_END_CLEAN)) {
		printf("corrupt: journal %s: " NO_MANIFEST "\n", dir);
		return TOOL_EXIT_CORRUPT;
	}
	if (cqrs__journal_extent_end(dir, &x, tail.next_seq, tail.segment, tail.offset)) {
		printf("corrupt: %s\n", tool_detail());
		return TOOL_EXIT_CORRUPT;
	}
	if (tail.end == CQRS_JOURNAL_END_TORN) {
		printf("torn tail: segment %s, offset %" PRIu64 ", seq %" PRIu64 ": %" PRIu64
		       " bytes after the last complete event (recovery will cut them)\n",
		       tail.segment, tail.offset, tail.next_seq, tail.bytes);
		return TOOL_EXIT_TORN;
	}
	if (n)
		printf("ok: %" PRIu64 " events, seqs %" PRIu64 "..%" PRIu64 ", %" PRIu64
		       " bytes in %" PRIu64 " segment(s)\n", n, first, last, bytes, nseg);
	else
		printf("ok: no events, next seq %" PRIu64 "\n", tail.next_seq);
	return 0;
}

static void put_hex(FILE *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

static int cmd_dump(const char *dir, uint64_t from, uint64_t limit, int json)
{
	size_t cap = 1u << 20;
	char *buf = malloc(cap);
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	uint64_t n = 0;
	int rc;

	if (!buf)
		return tool_fail("dump", -ENOMEM);
	rc = cqrs__journal_iter_open(&it, dir, from);
	if (rc) {
		free(buf);
		return iter_error(dir, rc);
	}
	while (n < limit && (rc = cqrs__journal_iter_next(it, &r)) == 1) {
		const cqrs_schema *s = cqrs__journal_iter_schema(it, r->type);
		const uint8_t *p = cqrs__jrec_payload(r);
		int decoded = s && s->size == r->size && cqrs_record_to_json(s, p, buf, cap) >= 0;

		if (json) {
			printf("{\"seq\":%" PRIu64 ",\"type\":%u,\"event\":", r->seq, r->type);
			if (s)
				printf("\"%s\"", s->name);
			else
				printf("null");
			printf(",\"cmd_end\":%s,\"ts\":%" PRId64 ",\"aggregate_id\":%" PRIu64
			       ",\"aggregate_version\":%" PRIu64 ",\"client_id\":%" PRIu64
			       ",\"client_seq\":%" PRIu64 ",", (r->flags & CQRS_JREC_CMD_END) ? "true" : "false",
			       r->timestamp_ns, r->aggregate_id, r->aggregate_version, r->client_id,
			       r->client_seq);
			if (decoded) {
				printf("\"data\":%s}\n", buf);
			} else {
				printf("\"payload_hex\":\"");
				put_hex(stdout, p, r->size);
				printf("\"}\n");
			}
		} else {
			printf("%" PRIu64 " %s agg=%" PRIu64 " v=%" PRIu64 " client=%" PRIu64 "/%" PRIu64
			       " ts=%" PRId64 "%s ", r->seq, s ? s->name : "?", r->aggregate_id,
			       r->aggregate_version, r->client_id, r->client_seq, r->timestamp_ns,
			       (r->flags & CQRS_JREC_CMD_END) ? " end" : "");
			if (decoded) {
				printf("%s\n", buf);
			} else {
				printf("type=%u hex=", r->type);
				put_hex(stdout, p, r->size);
				printf("\n");
			}
		}
		n++;
	}
	free(buf);
	cqrs__journal_iter_close(it);
	if (rc < 0)
		return iter_error(dir, rc);
	return 0;
}

static void stat_pins(const char *dir);

typedef struct seg_row {
	uint64_t first_seq, last_seq, records, bytes, file_size;
} seg_row;

static int cmd_stat(const char *dir)
{
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	cqrs_journal_tail tail;
	cqrs_journal_segment_info seg;
	uint64_t *segs = NULL, counts[CQRS_JOURNAL_MAX_TYPES] = { 0 }, other = 0, total = 0, bytes = 0;
	uint64_t first = 0, collected_below = 0;
	char names[CQRS_JOURNAL_MAX_TYPES > 64 ? 64 : CQRS_JOURNAL_MAX_TYPES][CQRS_NAME_MAX] = { { 0 } };
	seg_row *rows;
	int nseg, dirfd, rc, si = -1;

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return tool_fail(dir, -errno);
	nseg = cqrs__jseg_list(dirfd, &segs);
	close(dirfd);
	if (nseg <= 0)
		return tool_fail(dir, nseg < 0 ? nseg : CQRS_ENOTFOUND);
	rows = calloc((size_t)nseg, sizeof *rows);
	if (!rows) {
		free(segs);
		return tool_fail(dir, -ENOMEM);
	}
	rc = cqrs__journal_iter_open(&it, dir, 0);
	if (rc) {
		free(rows);
		free(segs);
		return iter_error(dir, rc);
	}
	while ((rc = cqrs__journal_iter_next(it, &r)) == 1) {
		const cqrs_schema *s = cqrs__journal_iter_schema(it, r->type);

		cqrs__journal_iter_where(it, &seg, NULL);
		while (si + 1 < nseg && segs[si + 1] <= seg.first_seq)
			si++;
		if (si >= 0) {
			if (!rows[si].records)
				rows[si].first_seq = r->seq;
			rows[si].last_seq = r->seq;
			rows[si].records++;
			rows[si].bytes += cqrs__jrec_span(r);
			rows[si].file_size = seg.file_size;
		}
		if (r->type < CQRS_JOURNAL_MAX_TYPES) {
			counts[r->type]++;
			if (s && r->type < 64)
				snprintf(names[r->type], sizeof names[r->type], "%s", s->name);
		} else {
			other++;
		}
		if (!total)
			first = r->seq;
		total++;
		bytes += cqrs__jrec_span(r);
	}
	if (rc == 0)
		cqrs__journal_iter_tail(it, &tail);
	cqrs__journal_iter_close(it);
	if (rc < 0) {
		free(rows);
		free(segs);
		return iter_error(dir, rc);
	}
	printf("journal %s\n", dir);
	{
		static const char *why[] = { "?", "create", "roll", "close", "open", "repair",
					     "interval fsync", "retention" };
		cqrs_journal_extent x;
		char mname[32];

		rc = cqrs__journal_extent(dir, &x);
		if (rc == 0 && x.manifest) {
			cqrs__jseg_name(mname, sizeof mname, x.last_segment);
			printf("manifest: journal from seq %" PRIu64 "%s, newest segment %s, seqs up to %"
			       PRIu64 " durable (written at %s)\n", x.first_seq,
			       x.first_seq > 1 ? " (retention collected the seqs before it)" : "", mname,
			       x.durable_seq, x.written_at < 8 ? why[x.written_at] : "?");
			collected_below = x.first_seq;
		} else {
			printf("manifest: %s\n", rc ? tool_detail() : "none");
		}
	}
	printf("segments: %d\n", nseg);
	for (int i = 0; i < nseg; i++) {
		char name[32];
		cqrs__jseg_name(name, sizeof name, segs[i]);
		if (rows[i].records)
			printf("  %s  seqs %" PRIu64 "..%" PRIu64 "  %" PRIu64 " events  %" PRIu64
			       " bytes\n", name, rows[i].first_seq, rows[i].last_seq, rows[i].records,
			       rows[i].bytes);
		else if (segs[i] < collected_below)
			printf("  %s  collected (its file is removed by the next collection)\n", name);
		else
			printf("  %s  empty\n", name);
	}
	if (total)
		printf("seqs: %" PRIu64 "..%" PRIu64 "\n", first, tail.next_seq - 1);
	else
		printf("seqs: none (next %" PRIu64 ")\n", tail.next_seq);
	printf("events: %" PRIu64 "\nbytes: %" PRIu64 "\n", total, bytes);
	if (tail.end == CQRS_JOURNAL_END_TORN)
		printf("torn tail: %" PRIu64 " bytes at %s offset %" PRIu64 "\n", tail.bytes,
		       tail.segment, tail.offset);
	printf("events per type:\n");
	for (uint32_t t = 0; t < CQRS_JOURNAL_MAX_TYPES; t++)
		if (counts[t])
			printf("  %4u %-32s %" PRIu64 "\n", t, t < 64 && names[t][0] ? names[t] : "?",
			       counts[t]);
	if (other)
		printf("  (types >= %u) %" PRIu64 "\n", CQRS_JOURNAL_MAX_TYPES, other);
	free(rows);
	free(segs);
	stat_pins(dir);
	return 0;
}

static int cmd_repair(const char *dir)
{
	cqrs_journal_repair r;
	int rc = cqrs__journal_repair(dir, &r);

	if (rc)
		return tool_fail(dir, rc);
	if (!r.problem[0] && !r.manifest_written) {
		printf("ok: nothing to repair, next seq %" PRIu64 "\n", r.next_seq);
		return TOOL_EXIT_OK;
	}
	if (r.problem[0])
		printf("found: %s\n", r.problem);
	if (r.cut_bytes)
		printf("cut: %" PRIu64 " bytes from segment %s offset %" PRIu64 " (seq %" PRIu64
		       " on), kept in %s\n", r.cut_bytes, r.cut_segment, r.cut_offset, r.cut_from_seq,
		       r.cut_file);
	if (r.segments_moved)
		printf("moved aside: %u later segment(s), renamed *.cut\n", r.segments_moved);
	if (r.manifest_written)
		printf("manifest: rewritten\n");
	printf("repaired: the journal ends at seq %" PRIu64 "; views that applied later seqs "
	       "make the engine refuse to start: remove them (`cqrs rm ENGINE`) to rebuild\n",
	       r.next_seq - 1);
	return TOOL_EXIT_OK;
}

/* The data directory a journal directory belongs to (DATA/journal), or
 * the journal directory itself when it is not named journal (its
 * snapshots and checkpoints are then not found: everything is pinned). */
static void data_dir_of(const char *jdir, char *out, size_t cap)
{
	size_t len = strlen(jdir);

	while (len > 1 && jdir[len - 1] == '/')
		len--;
	if (len >= 8 && memcmp(jdir + len - 7, "journal", 7) == 0 &&
	    (len == 7 || jdir[len - 8] == '/')) {
		len = len == 7 ? 0 : len - 8;
		if (len == 0)
			snprintf(out, cap, "%s", jdir[0] == '/' ? "/" : ".");
		else
			snprintf(out, cap, "%.*s", (int)len, jdir);
		return;
	}
	snprintf(out, cap, "%.*s", (int)len, jdir);
}

static void print_pins(const cqrs__ret_pins *p, const char *note)
{
	if (p->snapshot_valid)
		printf("pin: snapshot at seq %" PRIu64 " (the oldest valid one kept)\n", p->snapshot_seq);
	else
		printf("pin: no valid snapshot (a restart replays from seq 1)\n");
	for (uint32_t v = 0; v < p->nviews; v++)
		if (p->views[v].valid)
			printf("pin: view %s checkpoint at seq %" PRIu64 "\n", p->views[v].view,
			       p->views[v].seq);
		else
			printf("pin: view %s has no valid checkpoint (rebuilds from seq 1)\n",
			       p->views[v].view);
	if (note && note[0])
		printf("pin: %s\n", note);
}

static void print_plan(const cqrs__ret_seg *segs, size_t n, const cqrs__ret_summary *sum,
		       int dry_run)
{
	for (size_t k = 0; k < n; k++) {
		char name[32], last[24];

		cqrs__jseg_name(name, sizeof name, segs[k].first_seq);
		if (segs[k].last_seq == UINT64_MAX)
			snprintf(last, sizeof last, "end");
		else
			snprintf(last, sizeof last, "%" PRIu64, segs[k].last_seq);
		printf("  %s  seqs %" PRIu64 "..%s  %" PRIu64 " bytes  %s%s%s\n", name,
		       segs[k].first_seq, last, segs[k].bytes,
		       cqrs__retention_action_name(segs[k].action), segs[k].pins[0] ? ": " : "",
		       segs[k].pins);
	}
	printf("restart needs seqs from %" PRIu64 "; %s %u segment(s), %" PRIu64 " bytes; "
	       "%" PRIu64 " of %" PRIu64 " bytes stay pinned\n", sum->need_seq,
	       dry_run ? "would collect" : "collected", dry_run ? sum->collect : sum->collected,
	       dry_run ? sum->collect_bytes : sum->collected_bytes, sum->pinned_bytes,
	       sum->journal_bytes);
}

static int cmd_gc(const char *dir, int dry_run, const cqrs__ret_policy *pol)
{
	cqrs__ret_pins *pins = malloc(sizeof *pins);
	cqrs__ret_summary sum;
	cqrs__ret_seg *segs = NULL;
	char data[4096], note[256];
	size_t n = 0;
	int rc;

	if (!pins)
		return tool_fail("gc", -ENOMEM);
	data_dir_of(dir, data, sizeof data);
	rc = cqrs__retention_pins(data, NULL, 0, pins, note, sizeof note);
	if (rc) {
		free(pins);
		return tool_fail(dir, rc);
	}
	printf("journal %s\n", dir);
	print_pins(pins, note);
	rc = cqrs__retention_run_offline(dir, pins, pol, dry_run, &segs, &n, &sum);
	if (segs)
		print_plan(segs, n, &sum, dry_run || rc);
	free(segs);
	free(pins);
	if (rc == CQRS_ECORRUPT || rc == CQRS_EFORMAT) {
		printf("corrupt: %s\n", tool_detail());
		return TOOL_EXIT_CORRUPT;
	}
	if (rc)
		return tool_fail(dir, rc);
	return TOOL_EXIT_OK;
}

/* cqrs journal stat's retention part: the pins and each segment's plan
 * with the defaults. */
static void stat_pins(const char *dir)
{
	cqrs__ret_policy pol = { .min_segments = 2, .action = CQRS__RET_DELETE };
	cqrs__ret_pins *pins = malloc(sizeof *pins);
	cqrs__ret_summary sum;
	cqrs__ret_seg *segs = NULL;
	char data[4096], note[256];
	int n;

	if (!pins)
		return;
	data_dir_of(dir, data, sizeof data);
	printf("retention (pins from %s; default policy, `cqrs journal gc --dry-run` for others):\n",
	       data);
	if (cqrs__retention_pins(data, NULL, 0, pins, note, sizeof note) != 0) {
		printf("  pins: %s\n", tool_detail());
		free(pins);
		return;
	}
	print_pins(pins, note);
	pol.now_ns = 0;
	n = cqrs__retention_scan(dir, &segs, NULL);
	if (n >= 0) {
		cqrs__retention_plan(segs, (size_t)n, pins, &pol, &sum);
		print_plan(segs, (size_t)n, &sum, 1);
	}
	free(segs);
	free(pins);
}

/* The journal directory for what the user gave: dir itself when it holds
 * segments or a manifest, else dir/journal when that exists. 0, or TOOL_EXIT_FAIL with the
 * reason printed. */
static int resolve_dir(const char *dir, char *out, size_t cap)
{
	uint64_t *segs = NULL;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n;

	if (fd < 0)
		return tool_fail(dir, -errno);
	n = cqrs__jseg_list(fd, &segs);
	free(segs);
	if (n < 0) {
		close(fd);
		return tool_fail(dir, n);
	}
	if (n > 0 || faccessat(fd, "MANIFEST", F_OK, 0) == 0 ||
	    snprintf(out, cap, "%s/journal", dir) >= (int)cap) {
		close(fd);
		snprintf(out, cap, "%s", dir);
		return 0;
	}
	close(fd);
	fd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	fprintf(stderr, "cqrs: %s: no journal segments in it (an engine's journal is DATA_DIR/journal)\n",
		dir);
	return TOOL_EXIT_FAIL;
}

int cqrs_cmd_journal(int argc, char **argv)
{
	static const char *subs[] = { "verify", "dump", "stat", "repair", "gc" };
	tool_cmd_help h = { "journal", journal_help_text };
	uint64_t from = 0, limit = UINT64_MAX, min_segments = 2, min_bytes = 0, min_age = 0;
	const char *archive = NULL;
	int json = 0, dry_run = 0, sub, n, rc;
	tool_opt opts[] = { { "--from", TOOL_OPT_U64, &from, 0, 0, NULL },
			    { "--limit", TOOL_OPT_U64, &limit, 0, 0, NULL },
			    { "--json", TOOL_OPT_FLAG, &json, 0, 0, NULL },
			    { NULL } };
	tool_opt gc_opts[] = { { "--dry-run", TOOL_OPT_FLAG, &dry_run, 0, 0, NULL },
			       { "--min-segments", TOOL_OPT_U64, &min_segments, 0, UINT32_MAX, NULL },
			       { "--min-bytes", TOOL_OPT_U64, &min_bytes, 0, 0, NULL },
			       { "--min-age", TOOL_OPT_U64, &min_age, 0, 0, NULL },
			       { "--archive", TOOL_OPT_STR, &archive, 0, 0, NULL },
			       { NULL } };
	char cmdname[24], dir[4096], *pos[1];

	if (argc < 2)
		return tool_usage_error(&h, "missing verify, dump, stat, repair or gc");
	if (tool_is_help(argv[1]))
		return tool_help(&h);
	for (sub = 0; sub < 5 && strcmp(argv[1], subs[sub]); sub++)
		;
	if (sub == 5)
		return tool_usage_error(&h, "unknown journal command '%s'", argv[1]);
	snprintf(cmdname, sizeof cmdname, "journal %s", subs[sub]);
	h.cmd = cmdname;
	if ((rc = tool_args(&h, argc - 1, argv + 1, sub == 1 ? opts : sub == 4 ? gc_opts : NULL, 1, 1,
			    pos, &n)) != TOOL_ARGS_OK)
		return rc;
	if ((rc = resolve_dir(pos[0], dir, sizeof dir)))
		return rc;
	if (sub == 0)
		return cmd_verify(dir);
	if (sub == 2)
		return cmd_stat(dir);
	if (sub == 3)
		return cmd_repair(dir);
	if (sub == 4) {
		cqrs__ret_policy pol = {
			.min_segments = (uint32_t)min_segments,
			.min_bytes = min_bytes,
			.min_age_s = min_age,
			.action = archive ? CQRS__RET_ARCHIVE : CQRS__RET_DELETE,
			.archive_dir = archive,
		};
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		pol.now_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		return cmd_gc(dir, dry_run, &pol);
	}
	return cmd_dump(dir, from, limit, json);
}
