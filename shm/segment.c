/*
 * shm/segment.c - see segment.h for the common layout and the rules.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/schema_internal.h"
#include "shm/segment.h"

#define CSUM_OFF (CQRS_SEG_IMM_SIZE - 8)
#define PAGE 4096u

/* ---- names ---------------------------------------------------------------- */

static int name_ok(const char *what, const char *n)
{
	if (!n || !cqrs__name_valid(n, CQRS_NAME_MAX))
		return cqrs__fail(-EINVAL, "bad %s name '%.40s' (1..%d of [A-Za-z0-9_])", what,
				 n ? n : "(null)", CQRS_NAME_MAX - 1);
	return 0;
}

static int name_fmt(size_t cap, int n)
{
	if (n < 0 || (size_t)n >= cap)
		return cqrs__fail(-EINVAL, "segment name does not fit %zu bytes", cap);
	return 0;
}

int cqrs__seg_name_ctl(char *out, size_t cap, const char *engine)
{
	int rc = name_ok("engine", engine);
	return rc ? rc : name_fmt(cap, snprintf(out, cap, "/cqrs.%s.ctl", engine));
}

int cqrs__seg_name_board(char *out, size_t cap, const char *engine)
{
	int rc = name_ok("engine", engine);
	return rc ? rc : name_fmt(cap, snprintf(out, cap, "/cqrs.%s.wait", engine));
}

int cqrs__seg_name_view(char *out, size_t cap, const char *engine, const char *view, uint64_t gen)
{
	int rc = name_ok("engine", engine);

	if (!rc)
		rc = name_ok("view", view);
	if (rc)
		return rc;
	return name_fmt(cap, snprintf(out, cap, "/cqrs.%s.v.%s.%llu", engine, view,
					   (unsigned long long)gen));
}

/* ---- owners --------------------------------------------------------------- */

int cqrs__seg_proc_start(uint32_t pid, uint64_t *ticks, int *zombie)
{
	char path[64], buf[1024];
	const char *p;
	unsigned long long st = 0;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof path, "/proc/%u/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = 0;
	/* "pid (comm) S ...": comm may hold spaces and ')', so start after the
	 * last ')'. The state is field 3, the start time field 22. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EIO;
	p += 2;
	*zombie = *p == 'Z' || *p == 'X';
	for (field = 3; field < 22 && *p; p++)
		if (*p == ' ')
			field++;
	if (field != 22 || sscanf(p, "%llu", &st) != 1)
		return -EIO;
	*ticks = st;
	return 0;
}

uint64_t cqrs__seg_self_owner(void)
{
	static _Atomic uint64_t cached; /* per process; a fork gets a new pid */
	static _Atomic uint32_t cached_pid;
	uint32_t pid = (uint32_t)getpid();
	uint64_t ticks = 0;
	int zombie;

	/* relaxed: a racy recompute is harmless (same value) */
	if (atomic_load_explicit(&cached_pid, memory_order_relaxed) == pid)
		return atomic_load_explicit(&cached, memory_order_relaxed);
	if (cqrs__seg_proc_start(pid, &ticks, &zombie))
		ticks = 0;
	uint64_t w = (uint64_t)pid | ticks << 22;
	atomic_store_explicit(&cached, w, memory_order_relaxed); /* before the pid: see above */
	atomic_store_explicit(&cached_pid, pid, memory_order_relaxed);
	return w;
}

int cqrs__seg_owner_alive(uint64_t owner)
{
	uint32_t pid = cqrs__seg_owner_pid(owner);
	uint64_t ticks;
	int zombie;

	if (!owner || !pid)
		return 0;
	if (cqrs__seg_proc_start(pid, &ticks, &zombie))
		return 0;
	return !zombie && ticks == owner >> 22;
}

/* ---- validation ----------------------------------------------------------- */

int cqrs__seg_check(const void *base, size_t len, uint32_t kind, void *imm_out)
{
	const cqrs_seg_hdr *h = imm_out;
	uint64_t sum;

	if (len < CQRS_SEG_REGION_OFF)
		return cqrs__fail(CQRS_EFORMAT, "segment of %zu bytes is smaller than a header", len);
	memcpy(imm_out, base, CQRS_SEG_IMM_SIZE);
	if (h->magic != CQRS_SHM_MAGIC)
		return cqrs__fail(CQRS_EFORMAT, "not a cqrs segment (magic 0x%016llx)",
				 (unsigned long long)h->magic);
	if (h->format != CQRS_SHM_FORMAT)
		return cqrs__fail(CQRS_EFORMAT, "segment format %u, this library reads %u", h->format,
				 CQRS_SHM_FORMAT);
	if (h->kind != kind)
		return cqrs__fail(CQRS_EFORMAT, "segment kind %u, expected %u", h->kind, kind);
	memcpy(&sum, (const uint8_t *)imm_out + CSUM_OFF, 8);
	if (XXH3_64bits(imm_out, CSUM_OFF) != sum)
		return cqrs__fail(CQRS_ECORRUPT, "segment header checksum mismatch");
	if (h->imm_size != CQRS_SEG_IMM_SIZE)
		return cqrs__fail(CQRS_ECORRUPT, "bad header size %u", h->imm_size);
	if (h->total_size != len || h->total_size % PAGE)
		return cqrs__fail(CQRS_ECORRUPT, "segment is %zu bytes, its header says %llu (truncated?)",
				 len, (unsigned long long)h->total_size);
	if (!cqrs__name_valid(h->engine, sizeof h->engine))
		return cqrs__fail(CQRS_ECORRUPT, "bad engine name in header");
	if (kind == CQRS_SEG_VIEW ? !cqrs__name_valid(h->object, sizeof h->object)
				  : h->object[0] != 0)
		return cqrs__fail(CQRS_ECORRUPT, "bad object name in header");
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------ */

/* Large views are random-access: 2 MiB pages save most TLB misses where the
 * system allows them for shared memory (shmem_enabled=advise); elsewhere
 * the advice is ignored. */
static void advise_huge(void *p, size_t size)
{
	if (size >= (8u << 20))
		(void)madvise(p, size, MADV_HUGEPAGE);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

void cqrs__seg_prefault(cqrs_seg *s, uint64_t off, uint64_t len)
{
	uint64_t lo = off & ~UINT64_C(4095), hi;

	if (!s->writable || off >= s->size)
		return;
	hi = len > s->size - off ? s->size : off + len;
	(void)madvise(s->base + lo, hi - lo, MADV_POPULATE_WRITE); /* a hint */
}

#define SHM_DIR "/dev/shm/" /* where glibc's shm_open keeps its names */

/* The private name of a segment being created by this process: its owner
 * word and a count, so that two creates of one name never share it. */
static int tmp_name(char *out, size_t cap, const char *name)
{
	static _Atomic uint32_t count;
	/* relaxed: only uniqueness matters */
	uint32_t k = atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
	int n = snprintf(out, cap, "%s~%016llx.%u", name, (unsigned long long)cqrs__seg_self_owner(), k);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int cqrs__seg_is_unfinished_name(const char *name, uint64_t *owner)
{
	const char *t = strrchr(name, '~'), *p;
	uint64_t w = 0;

	if (!t)
		return 0;
	for (p = t + 1; p < t + 17; p++) {
		int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
		if (d < 0)
			return 0;
		w = w << 4 | (uint64_t)d;
	}
	if (*p++ != '.' || !*p)
		return 0;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	*owner = w;
	return 1;
}

/* Whether the first bytes of fd (up to the kind's lines) are all zero:
 * what an interrupted creation of an older build left (ftruncated, nothing
 * written yet). */
static int all_zero(int fd, size_t len)
{
	uint8_t buf[CQRS_SEG_LINES_OFF];

	if (len > sizeof buf)
		len = sizeof buf;
	if (pread(fd, buf, len, 0) != (ssize_t)len)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return 0;
	return 1;
}

/* Classifies an existing name for cqrs__seg_create (see segment.h);
 * *owner_out (may be NULL) gets its owner word when it has one. */
static int probe_existing(const char *name, uint64_t *owner_out)
{
	struct stat st;
	cqrs_seg_live live;
	uint64_t magic = 0, owner;
	int fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);

	if (fd < 0 && errno == ENOENT)
		return -ENOENT;
	if (fd < 0)
		return cqrs__fail(-EEXIST, "%s exists but cannot be opened: %s", name, strerror(errno));
	if (fstat(fd, &st)) {
		int e = errno;
		close(fd);
		return cqrs__fail(-e, "fstat %s", name);
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		return cqrs__fail(-EACCES, "%s exists and belongs to uid %u", name, (unsigned)st.st_uid);
	}
	/* Nothing in it: no segment is named before it is sealed, so this is
	 * an interrupted creation of an older build, or an empty file of this
	 * user; replacing it loses nothing. */
	if (st.st_size == 0 || all_zero(fd, (size_t)st.st_size)) {
		close(fd);
		return cqrs__fail(CQRS_ESTALE, "%s is empty (an interrupted creation)", name);
	}
	if (st.st_size < (off_t)CQRS_SEG_REGION_OFF ||
	    pread(fd, &magic, 8, 0) != 8 ||
	    pread(fd, &live, sizeof live, CQRS_SEG_LIVE_OFF) != (ssize_t)sizeof live) {
		close(fd);
		return cqrs__fail(CQRS_EFORMAT, "%s exists and is not a cqrs segment", name);
	}
	close(fd);
	/* pread copied the word: a plain read of the copy is fine. */
	memcpy(&owner, &live.owner, 8);
	if (owner_out)
		*owner_out = owner;
	if (magic != CQRS_SHM_MAGIC && owner == 0)
		return cqrs__fail(CQRS_EFORMAT, "%s exists and is not a cqrs segment", name);
	if (cqrs__seg_owner_alive(owner))
		return cqrs__fail(-EEXIST, "%s is in use by live pid %u", name, cqrs__seg_owner_pid(owner));
	return cqrs__fail(CQRS_ESTALE, "%s was left by dead pid %u", name, cqrs__seg_owner_pid(owner));
}

/* Opens the private name exclusively. One that exists is this very
 * process's (same pid and start time): a failed create whose cleanup was
 * cut short, ours to replace. */
static int open_private(const char *tmp)
{
	int fd = shm_open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0 && errno == EEXIST) {
		shm_unlink(tmp);
		fd = shm_open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	return fd;
}

int cqrs__seg_create(cqrs_seg *s, const char *name, uint64_t size, unsigned mode)
{
	void *p;
	int fd, rc;

	memset(s, 0, sizeof *s);
	if (!name || strlen(name) >= sizeof s->name || name[0] != '/' || strchr(name + 1, '/') ||
	    strchr(name, '~'))
		return cqrs__fail(-EINVAL, "bad segment name");
	size = cqrs__align_up(size, PAGE);
	if (size < CQRS_SEG_REGION_OFF || size > CQRS_SEG_MAX_SIZE)
		return cqrs__fail(-EINVAL, "segment size %llu out of range", (unsigned long long)size);
	if (mode == 0)
		mode = CQRS_SEG_DEFAULT_MODE;
	rc = probe_existing(name, NULL);
	if (rc != -ENOENT)
		return rc;
	if (tmp_name(s->tmp, sizeof s->tmp, name))
		return cqrs__fail(-EINVAL, "segment name %s too long", name);
	fd = open_private(s->tmp);
	if (fd < 0) {
		rc = cqrs__fail(-errno, "shm_open %s: %s", s->tmp, strerror(errno));
		s->tmp[0] = 0;
		return rc;
	}
	/* fchmod, not the open mode: the umask must not change what readers get. */
	if (fchmod(fd, mode & 07777)) {
		rc = cqrs__fail(-errno, "fchmod %s", name);
		goto fail;
	}
	if (ftruncate(fd, (off_t)size)) {
		rc = cqrs__fail(-errno, "ftruncate %s to %llu", name, (unsigned long long)size);
		goto fail;
	}
	/* Reserve the memory now: a full /dev/shm is ENOSPC here, never a
	 * SIGBUS on a later store. */
	rc = posix_fallocate(fd, 0, (off_t)size);
	if (rc) {
		rc = cqrs__fail(-rc, "posix_fallocate %s (%llu bytes): %s", name,
			       (unsigned long long)size, strerror(rc));
		goto fail;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		rc = cqrs__fail(-errno, "mmap %s", name);
		goto fail;
	}
	close(fd);
	advise_huge(p, size);
	s->base = p;
	s->size = size;
	s->writable = 1;
	s->uid = geteuid();
	strcpy(s->name, name);
	/* relaxed: nobody can read this segment before cqrs__seg_seal's release */
	atomic_store_explicit(&cqrs__seg_live_line(s)->owner, cqrs__seg_self_owner(),
			      memory_order_relaxed);
	return 0;
fail:
	close(fd);
	shm_unlink(s->tmp);
	s->tmp[0] = 0;
	return rc;
}

void cqrs__seg_init_header(cqrs_seg *s, uint32_t kind, const char *engine, const char *object,
			  uint64_t generation)
{
	cqrs_seg_hdr *h = (cqrs_seg_hdr *)(void *)s->base;
	uint64_t owner = cqrs__seg_self_owner();

	h->format = CQRS_SHM_FORMAT;
	h->kind = kind;
	h->total_size = s->size;
	h->imm_size = CQRS_SEG_IMM_SIZE;
	h->creator_uid = (uint32_t)geteuid();
	h->creator_pid = cqrs__seg_owner_pid(owner);
	h->creator_start = owner >> 22;
	h->created_ns = cqrs__wall_ns();
	strncpy(h->engine, engine, sizeof h->engine - 1);
	if (object)
		strncpy(h->object, object, sizeof h->object - 1);
	h->generation = generation;
}

static void write_checksum(cqrs_seg *s)
{
	uint64_t sum;

	memcpy(s->base, &(uint64_t){ CQRS_SHM_MAGIC }, 8);
	sum = XXH3_64bits(s->base, CSUM_OFF);
	memcpy(s->base + CSUM_OFF, &sum, 8);
	memcpy(s->imm, s->base, CQRS_SEG_IMM_SIZE);
}

/* Gives a sealed segment its real name (see segment.h). */
static int publish_name(cqrs_seg *s)
{
	char from[sizeof SHM_DIR + CQRS_SEG_TMP_MAX], to[sizeof SHM_DIR + CQRS_SEG_NAME_MAX];
	int rc = 0;

	snprintf(from, sizeof from, SHM_DIR "%s", s->tmp + 1);
	snprintf(to, sizeof to, SHM_DIR "%s", s->name + 1);
	/* link, not rename: it fails when the name exists, so a name another
	 * process took since cqrs__seg_create is never replaced */
	if (link(from, to))
		rc = errno == EEXIST ? cqrs__fail(-EEXIST, "%s was created by another process meanwhile",
						  s->name)
				     : cqrs__fail(-errno, "link %s to %s: %s", from, to, strerror(errno));
	shm_unlink(s->tmp);
	s->tmp[0] = 0;
	return rc;
}

int cqrs__seg_seal(cqrs_seg *s)
{
	/* The checksum covers the magic, so compute it with the magic in
	 * place, then take the magic out and publish it last. */
	write_checksum(s);
	memset(s->base, 0, 8);
	/* release: orders every header, parameter and region store before the
	 * magic; pairs with the fence in cqrs__seg_check's caller (the reader's
	 * mmap after shm_open happens later, so this is belt and braces). */
	atomic_store_explicit((_Atomic uint64_t *)(void *)s->base, CQRS_SHM_MAGIC,
			      memory_order_release);
	return s->tmp[0] ? publish_name(s) : 0;
}

void cqrs__seg_reseal(cqrs_seg *s)
{
	write_checksum(s);
}

bool cqrs__seg_owner_trusted(uint32_t uid)
{
	const char *p = getenv("CQRS_TRUST_UIDS");

	if (uid == (uint32_t)geteuid() || uid == 0)
		return true;
	while (p && *p) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (end != p && (*end == ',' || *end == 0) && v == uid)
			return true;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return false;
}

int cqrs__seg_open(cqrs_seg *s, const char *name, uint32_t kind, int writable)
{
	struct stat st;
	void *p;
	int fd, rc;

	memset(s, 0, sizeof *s);
	if (!name || strlen(name) >= sizeof s->name || name[0] != '/')
		return cqrs__fail(-EINVAL, "bad segment name");
	fd = shm_open(name, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
	if (fd < 0)
		return cqrs__fail(-errno, "shm_open %s: %s", name, strerror(errno));
	if (fstat(fd, &st)) {
		rc = cqrs__fail(-errno, "fstat %s", name);
		close(fd);
		return rc;
	}
	if (st.st_size < (off_t)CQRS_SEG_REGION_OFF || (uint64_t)st.st_size > CQRS_SEG_MAX_SIZE) {
		/* Too small to map safely: ours but truncated, or not ours at all. */
		uint64_t magic = 0;
		int ours = pread(fd, &magic, 8, 0) == 8 && magic == CQRS_SHM_MAGIC;
		close(fd);
		return cqrs__fail(ours ? CQRS_ECORRUPT : CQRS_EFORMAT, "%s: %lld bytes is %s", name,
				 (long long)st.st_size,
				 ours ? "a truncated cqrs segment" : "not a cqrs segment");
	}
	p = mmap(NULL, (size_t)st.st_size, writable ? PROT_READ | PROT_WRITE : PROT_READ,
		 MAP_SHARED, fd, 0);
	rc = p == MAP_FAILED ? cqrs__fail(-errno, "mmap %s", name) : 0;
	close(fd);
	if (rc)
		return rc;
	advise_huge(p, (size_t)st.st_size);
	s->base = p;
	s->size = (size_t)st.st_size;
	s->writable = writable;
	s->uid = st.st_uid;
	strcpy(s->name, name);
	/* acquire: pairs with the release store of the magic in cqrs__seg_seal */
	(void)atomic_load_explicit((_Atomic uint64_t *)(void *)s->base, memory_order_acquire);
	rc = cqrs__seg_check(s->base, s->size, kind, s->imm);
	if (rc) {
		cqrs__seg_close(s);
		/* keep the reason recorded by cqrs__seg_check, prefixed with the name */
		char why[400];
		snprintf(why, sizeof why, "%s", cqrs_last_error());
		return cqrs__fail(rc, "%s: %s", name, why);
	}
	return 0;
}

void cqrs__seg_close(cqrs_seg *s)
{
	if (!s)
		return;
	if (s->tmp[0]) { /* created, never sealed */
		shm_unlink(s->tmp);
		s->tmp[0] = 0;
	}
	if (s->base) {
		munmap(s->base, s->size);
		s->base = NULL;
		s->size = 0;
	}
}

int cqrs__seg_unlink(const char *name)
{
	return shm_unlink(name) ? -errno : 0;
}

/* Sets RETIRED | ORPHANED in the live line of name, whatever its kind,
 * when it holds a cqrs segment (probe_existing said it is this user's). */
static void mark_orphaned(const char *name)
{
	struct stat st;
	uint8_t *p;
	int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);

	if (fd < 0)
		return;
	if (fstat(fd, &st) || st.st_size < (off_t)PAGE) {
		close(fd);
		return;
	}
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return;
	/* relaxed: the magic is only compared; the flag store below is what
	 * readers look at */
	if (atomic_load_explicit((_Atomic uint64_t *)(void *)p, memory_order_relaxed) == CQRS_SHM_MAGIC)
		/* release: pairs with the readers' acquire load of the flags
		 * before they move (shm/view_reader.c) */
		atomic_fetch_or_explicit(&((cqrs_seg_live *)(void *)(p + CQRS_SEG_LIVE_OFF))->flags,
					 CQRS_SEG_RETIRED | CQRS_SEG_ORPHANED, memory_order_release);
	munmap(p, PAGE);
}

int cqrs__seg_remove_stale(const char *name)
{
	int rc = probe_existing(name, NULL);

	if (rc != CQRS_ESTALE)
		return rc;
	/* Mark it so that readers still mapping it move on, then unlink. */
	mark_orphaned(name);
	return cqrs__seg_unlink(name);
}

int cqrs__seg_retire_unlink(const char *name)
{
	mark_orphaned(name);
	return cqrs__seg_unlink(name);
}

int cqrs__seg_remove_unused(const char *name)
{
	uint64_t owner = 0;
	int rc = probe_existing(name, &owner);

	if (rc == -EEXIST && owner == cqrs__seg_self_owner())
		rc = CQRS_ESTALE; /* an earlier run in this process left it */
	if (rc != CQRS_ESTALE)
		return rc;
	/* Mark it so that readers still mapping it move on, then unlink. */
	mark_orphaned(name);
	return cqrs__seg_unlink(name);
}

int cqrs__seg_sweep_unfinished(const char *engine)
{
	char prefix[CQRS_NAME_MAX + 8];
	struct dirent *ent;
	DIR *d;
	size_t n;
	int removed = 0;

	if (!engine || !cqrs__name_valid(engine, CQRS_NAME_MAX))
		return -EINVAL;
	d = opendir(SHM_DIR);
	if (!d)
		return 0;
	n = (size_t)snprintf(prefix, sizeof prefix, "cqrs.%s.", engine);
	while ((ent = readdir(d))) {
		char name[sizeof ent->d_name + 1];
		uint64_t owner;
		struct stat st;

		if (strncmp(ent->d_name, prefix, n) || !cqrs__seg_is_unfinished_name(ent->d_name, &owner) ||
		    cqrs__seg_owner_alive(owner))
			continue;
		snprintf(name, sizeof name, "/%s", ent->d_name);
		if (fstatat(dirfd(d), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) || st.st_uid != geteuid())
			continue;
		if (shm_unlink(name) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

int cqrs__seg_parse_view_name(const char *rest, char *view, uint64_t *gen)
{
	const char *dot = strrchr(rest, '.');
	char *end;
	size_t n;

	if (!dot || dot == rest || (n = (size_t)(dot - rest)) >= CQRS_NAME_MAX)
		return 0;
	if (dot[1] < '0' || dot[1] > '9')
		return 0;
	*gen = strtoull(dot + 1, &end, 10);
	if (*end || *gen == 0)
		return 0;
	memcpy(view, rest, n);
	view[n] = 0;
	return cqrs__name_valid(view, CQRS_NAME_MAX);
}

int cqrs__seg_view_is_clean(const char *name)
{
	cqrs_seg s;
	int clean;

	if (cqrs__seg_open(&s, name, CQRS_SEG_VIEW, 0))
		return 0;
	/* relaxed: a snapshot of the flags (the writer is gone, or the caller
	 * only reports it); nothing is read through it afterwards */
	clean = (atomic_load_explicit(&cqrs__seg_live_line(&s)->flags, memory_order_relaxed) &
		 (CQRS_SEG_CLEAN | CQRS_SEG_RETIRED)) == CQRS_SEG_CLEAN;
	cqrs__seg_close(&s);
	return clean;
}
