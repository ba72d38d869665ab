/*
 * tests/proc/test_journal_cli.c - `cqrs journal verify|dump|stat|repair` on
 * real journals: exit 0 when clean, 3 for a torn tail, 4 for corruption
 * (each naming segment/offset/seq) and for a missing first, middle or last
 * segment or a zeroed durable tail (naming what is missing); repair makes
 * each openable again; dump decodes payloads through the schemas
 * embedded in the segment headers; stat counts events per type. Runs
 * $BUILD/cqrs (BUILD defaults to build); skips (77) if it is not built.
 */
#include <sys/wait.h>

#include "tests/unit/test_journal_util.h"

static char g_cqrs[512];

static int run(const char *args, char *out, size_t cap)
{
	char cmd[2048];
	size_t n = 0;
	FILE *f;
	int st;

	snprintf(cmd, sizeof cmd, "%s journal %s 2>&1", g_cqrs, args);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (n + 1 < cap && fgets(out + n, (int)(cap - n), f))
		n += strlen(out + n);
	out[n] = 0;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define CHECK(cond, ...)                                        \
	do {                                                    \
		if (!(cond)) {                                  \
			fprintf(stderr, __VA_ARGS__);           \
			fprintf(stderr, "\n");                  \
			return 1;                               \
		}                                               \
	} while (0)

int main(void)
{
	const char *b = getenv("BUILD");
	char dir[256], args[1024], seg[600];
	static char out[1 << 20];
	cqrs_journal_config c;
	cqrs_journal *j;
	uint64_t sub = 0;
	int rc;

	snprintf(g_cqrs, sizeof g_cqrs, "%s/cqrs", b && *b ? b : "build");
	if (access(g_cqrs, X_OK) != 0) {
		printf("skip: %s not built\n", g_cqrs);
		return 77;
	}
	if (tu_mkdtemp(dir, sizeof dir, "cqrs_jcli") != 0)
		return 1;
	jt_config(&c, dir, CQRS_DURABILITY_BATCH);
	c.segment_size = 32u << 10;
	CHECK(cqrs__journal_open(&j, &c, NULL) == 0, "open: %s", cqrs_last_error());
	CHECK(jt_append(j, 500, 3, 1, &sub) == 0, "append");
	CHECK(cqrs__journal_close(j) == 0, "close");

	snprintf(args, sizeof args, "verify %s", dir);
	rc = run(args, out, sizeof out);
	CHECK(rc == 0 && strstr(out, "ok: 500 events, seqs 1..500"), "verify clean: rc %d: %s", rc, out);

	snprintf(args, sizeof args, "dump %s --from 5 --limit 2 --json", dir);
	rc = run(args, out, sizeof out);
	CHECK(rc == 0, "dump rc %d: %s", rc, out);
	CHECK(strstr(out, "{\"seq\":5,\"type\":1,\"event\":\"Ev256\"") &&
	      strstr(out, "\"data\":{\"seq_copy\":5,") && strstr(out, "\"seq\":6,") &&
	      !strstr(out, "\"seq\":7,"), "dump --json: %s", out);
	snprintf(args, sizeof args, "dump %s --limit 1", dir);
	rc = run(args, out, sizeof out);
	CHECK(rc == 0 && !strncmp(out, "1 Ev64 agg=1 v=1 client=42/1", 28), "dump text: %s", out);

	snprintf(args, sizeof args, "stat %s", dir);
	rc = run(args, out, sizeof out);
	CHECK(rc == 0 && strstr(out, "events: 500") && strstr(out, "seqs: 1..500") &&
	      strstr(out, "Ev64") && strstr(out, "Ev256") && strstr(out, " 100\n"),
	      "stat: rc %d: %s", rc, out);

	/* A torn tail: garbage after the last record of the last segment. */
	{
		cqrs_journal_iter *it;
		const cqrs_jrec *r;
		cqrs_journal_tail t;
		uint8_t junk[100];
		int fd;

		CHECK(cqrs__journal_iter_open(&it, dir, 1) == 0, "iter");
		while (cqrs__journal_iter_next(it, &r) == 1)
			;
		cqrs__journal_iter_tail(it, &t);
		cqrs__journal_iter_close(it);
		jt_path(seg, sizeof seg, dir, t.segment);
		memset(junk, 0x5a, sizeof junk);
		fd = open(seg, O_RDWR);
		CHECK(fd >= 0 && pwrite(fd, junk, sizeof junk, (off_t)t.offset) == (ssize_t)sizeof junk,
		      "write junk");
		close(fd);
		snprintf(args, sizeof args, "verify %s", dir);
		rc = run(args, out, sizeof out);
		CHECK(rc == 3 && strstr(out, "torn tail: segment ") && strstr(out, t.segment) &&
		      strstr(out, "seq 501"), "verify torn: rc %d: %s", rc, out);
		/* Recovery cuts it; then clean again. */
		CHECK(cqrs__journal_open(&j, &c, NULL) == 0 && cqrs__journal_close(j) == 0, "recover");
		rc = run(args, out, sizeof out);
		CHECK(rc == 0, "verify after recovery: rc %d: %s", rc, out);
	}
	/* Corruption mid-log. */
	{
		uint8_t x;
		int fd;

		jt_segment(dir, 1, seg, sizeof seg);
		fd = open(seg, O_RDWR);
		CHECK(fd >= 0 && pread(fd, &x, 1, 4096 + 200) == 1, "read");
		x ^= 0x20;
		CHECK(pwrite(fd, &x, 1, 4096 + 200) == 1, "flip");
		close(fd);
		snprintf(args, sizeof args, "verify %s", dir);
		rc = run(args, out, sizeof out);
		CHECK(rc == 4 && strstr(out, "corrupt: ") && strstr(out, strrchr(seg, '/') + 1) &&
		      strstr(out, "offset ") && strstr(out, "seq "), "verify corrupt: rc %d: %s", rc, out);
		snprintf(args, sizeof args, "dump %s", dir);
		rc = run(args, out, sizeof out);
		CHECK(rc == 4, "dump over corruption: rc %d", rc);
	}
	/* Missing segments and a short durable tail, each repaired. */
	{
		static const int which[] = { -1, 0, 2 };
		char name[64], man[600];
		uint8_t *img;
		size_t len;

		for (int w = 0; w < 4; w++) {
			tu_rmrf(dir);
			CHECK(cqrs__journal_open(&j, &c, NULL) == 0, "open: %s", cqrs_last_error());
			CHECK(jt_append(j, 900, 3, 1, &sub) == 0, "append");
			CHECK(cqrs__journal_close(j) == 0, "close");
			if (w < 3) {
				jt_segment(dir, which[w], seg, sizeof seg);
				snprintf(name, sizeof name, "%s", strrchr(seg, '/') + 1);
				unlink(seg);
			} else {
				/* zero the last 16 records of the last segment */
				cqrs_journal_iter *it;
				const cqrs_jrec *r;
				cqrs_journal_segment_info si;
				uint64_t offs[16] = { 0 }, k = 0, end = 0;
				CHECK(cqrs__journal_iter_open(&it, dir, 1) == 0, "iter");
				while (cqrs__journal_iter_next(it, &r) == 1) {
					cqrs__journal_iter_where(it, &si, &offs[k % 16]);
					end = offs[k % 16] + cqrs__jrec_span(r);
					k++;
				}
				cqrs__journal_iter_close(it);
				jt_path(seg, sizeof seg, dir, si.name);
				CHECK(jt_read_file(seg, &img, &len) == 0, "read");
				memset(img + offs[k % 16], 0, end - offs[k % 16]);
				CHECK(jt_write_file(seg, img, len) == 0, "write");
				free(img);
				snprintf(name, sizeof name, "seqs %llu..900 are missing",
					 (unsigned long long)(900 - 15));
			}
			snprintf(args, sizeof args, "verify %s", dir);
			rc = run(args, out, sizeof out);
			CHECK(rc == 4 && strstr(out, "corrupt: ") && strstr(out, name),
			      "verify with %s gone: rc %d: %s", name, rc, out);
			CHECK(cqrs__journal_open(&j, &c, NULL) == CQRS_ECORRUPT &&
			      strstr(cqrs_last_error(), name), "open with %s gone: %s", name,
			      cqrs_last_error());
			snprintf(args, sizeof args, "repair %s", dir);
			rc = run(args, out, sizeof out);
			CHECK(rc == 0 && strstr(out, "found: ") && strstr(out, "repaired: "),
			      "repair: rc %d: %s", rc, out);
			CHECK(cqrs__journal_open(&j, &c, NULL) == 0 && cqrs__journal_close(j) == 0,
			      "open after repair: %s", cqrs_last_error());
			snprintf(args, sizeof args, "verify %s", dir);
			rc = run(args, out, sizeof out);
			CHECK(rc == 0 && strstr(out, "ok: "), "verify after repair: rc %d: %s", rc, out);
			snprintf(args, sizeof args, "repair %s", dir);
			rc = run(args, out, sizeof out);
			CHECK(rc == 0 && strstr(out, "ok: nothing to repair"), "repair again: %s", out);
		}
		/* stat shows the manifest; verify refuses without it */
		snprintf(args, sizeof args, "stat %s", dir);
		rc = run(args, out, sizeof out);
		CHECK(rc == 0 && strstr(out, "manifest: journal from seq 1"), "stat: %s", out);
		jt_path(man, sizeof man, dir, JMAN_NAME);
		unlink(man);
		snprintf(args, sizeof args, "verify %s", dir);
		rc = run(args, out, sizeof out);
		CHECK(rc == 4 && strstr(out, JMAN_NAME " is missing"), "verify no manifest: %d: %s", rc,
		      out);
	}
	snprintf(args, sizeof args, "verify %s/nonexistent", dir);
	rc = run(args, out, sizeof out);
	CHECK(rc == 1, "verify missing dir: rc %d: %s", rc, out);
	tu_rmrf(dir);
	printf("ok\n");
	return 0;
}
