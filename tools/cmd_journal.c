/*
 * tools/cmd_journal.c - `cqrs journal verify|dump|stat DIR`: read-only
 * inspection of a journal directory through the journal iterator (which
 * validates every checksum, the seq chain and each segment's end).
 *
 *   verify DIR   exit 0 clean; 2 torn tail (recovery would cut it); 3
 *                corruption; 1 other errors. Prints the segment, byte offset
 *                and seq of the first problem.
 *   dump DIR [--from SEQ] [--limit N] [--json]
 *                one line per event, payload decoded through the schema
 *                embedded in its segment header (hex when there is none).
 *   stat DIR     segments, seq range, bytes, event counts per type.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/commands.h"
#include "engine/journal/journal.h"

enum { EXIT_TORN = 2, EXIT_CORRUPT = 3 };

static int usage(void)
{
	fprintf(stderr, "usage: cqrs journal verify DIR\n"
			"       cqrs journal dump DIR [--from SEQ] [--limit N] [--json]\n"
			"       cqrs journal stat DIR\n");
	return 1;
}

static int iter_error(const char *dir, int rc)
{
	tool_fail(dir, rc);
	return rc == CQRS_ECORRUPT ? EXIT_CORRUPT : 1;
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

static int cmd_verify(const char *dir)
{
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	cqrs_journal_tail tail;
	cqrs_journal_segment_info seg;
	uint64_t n = 0, first = 0, last = 0, bytes = 0, nseg = 0;
	char cur[40] = "", where[128];
	int rc = cqrs__journal_iter_open(&it, dir, 0);

	if (rc == CQRS_ECORRUPT || rc == CQRS_EFORMAT) {
		printf("corrupt: %s\n", cqrs_last_error());
		return EXIT_CORRUPT;
	}
	if (rc)
		return iter_error(dir, rc);
	while ((rc = cqrs__journal_iter_next(it, &r)) == 1) {
		if (size_mismatch(it, r)) {
			where_msg(it, where, sizeof where);
			printf("corrupt: %s, seq %" PRIu64 ": payload of %u bytes, its schema says %u\n",
			       where, r->seq, r->size, cqrs__journal_iter_schema(it, r->type)->size);
			cqrs__journal_iter_close(it);
			return EXIT_CORRUPT;
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
		printf("corrupt: %s\n", cqrs_last_error());
		cqrs__journal_iter_close(it);
		return rc == CQRS_ECORRUPT || rc == CQRS_EFORMAT ? EXIT_CORRUPT : 1;
	}
	cqrs__journal_iter_tail(it, &tail);
	cqrs__journal_iter_close(it);
	if (tail.end == CQRS_JOURNAL_END_TORN) {
		printf("torn tail: segment %s, offset %" PRIu64 ", seq %" PRIu64 ": %" PRIu64
		       " bytes after the last complete event (recovery will cut them)\n",
		       tail.segment, tail.offset, tail.next_seq, tail.bytes);
		return EXIT_TORN;
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
	uint64_t first = 0;
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
	printf("segments: %d\n", nseg);
	for (int i = 0; i < nseg; i++) {
		char name[32];
		cqrs__jseg_name(name, sizeof name, segs[i]);
		if (rows[i].records)
			printf("  %s  seqs %" PRIu64 "..%" PRIu64 "  %" PRIu64 " events  %" PRIu64
			       " bytes\n", name, rows[i].first_seq, rows[i].last_seq, rows[i].records,
			       rows[i].bytes);
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
	return 0;
}

int cqrs_cmd_journal(int argc, char **argv)
{
	uint64_t from = 0, limit = UINT64_MAX;
	int json = 0;

	if (argc < 3)
		return usage();
	if (!strcmp(argv[1], "verify") && argc == 3)
		return cmd_verify(argv[2]);
	if (!strcmp(argv[1], "stat") && argc == 3)
		return cmd_stat(argv[2]);
	if (strcmp(argv[1], "dump") != 0)
		return usage();
	for (int i = 3; i < argc; i++) {
		char *end;
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--from") && i + 1 < argc) {
			from = strtoull(argv[++i], &end, 10);
			if (*end)
				return usage();
		} else if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
			limit = strtoull(argv[++i], &end, 10);
			if (*end)
				return usage();
		} else {
			return usage();
		}
	}
	return cmd_dump(argv[2], from, limit, json);
}
