/*
 * tests/proc/view_foreign_owner.c - names pre-created by another user.
 *
 * As root, create "/cqrs.<engine>.ctl" and hand it to nobody (uid 65534):
 * the engine must refuse it (-EACCES) and leave it alone. Then with a real
 * control segment, pre-create the view segment name the engine will use
 * next and hand it to nobody: cqrs__vw_create must refuse it too; and a
 * reader whose directory points at a segment owned by someone other than
 * the engine's user must refuse to read it. Skips (77) when not root.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/lib/testutil.h"
#include "tests/unit/test_view_rows.h"

#define NOBODY 65534

static int precreate(const char *name)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0644);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, 8192) || fchown(fd, NOBODY, NOBODY)) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int main(void)
{
	char engine[64], name[CQRS_SEG_NAME_MAX];
	cqrs_vw_config cfg = { 0 };
	cqrs_ctl *ctl;
	cqrs_vw *w;
	cqrs_view *v;
	struct stat st;
	int fail = 0, rc, fd;

	if (geteuid() != 0) {
		printf("needs root to create a segment owned by another user (uid %u)\n", NOBODY);
		return 77;
	}
	tu_unique_name(engine, sizeof engine, "pforeign");

	/* the control segment's name */
	cqrs__seg_name_ctl(name, sizeof name, engine);
	if (precreate(name))
		return 1;
	rc = cqrs__ctl_create(engine, NULL, &ctl);
	printf("create over nobody's %s: %s (%s)\n", name, cqrs_strerror(rc), cqrs_last_error());
	fail |= rc != -EACCES;
	fd = shm_open(name, O_RDONLY, 0);
	fail |= fd < 0 || fstat(fd, &st) || st.st_uid != NOBODY || st.st_size != 8192;
	close(fd);
	fail |= cqrs__seg_remove_stale(name) != -EACCES; /* not ours to remove either */
	shm_unlink(name);

	/* a view segment's name */
	if (cqrs__ctl_create(engine, NULL, &ctl))
		return 1;
	cqrs__seg_name_view(name, sizeof name, engine, "orders", 1);
	if (precreate(name))
		return 1;
	cfg.schema = trow_schema();
	cfg.key_field = "order_id";
	cfg.capacity = 16;
	rc = cqrs__vw_create(ctl, "orders", &cfg, &w);
	printf("view create over nobody's %s: %s\n", name, cqrs_strerror(rc));
	fail |= rc != -EACCES;

	/* a directory entry naming that foreign segment: readers refuse it */
	rc = cqrs__ctl_set_generation(ctl, 0, 1, 0, 16, sizeof(trow));
	fail |= rc != 0;
	rc = cqrs_view_open(engine, "orders", &v);
	printf("reader on nobody's segment: %s (%s)\n", cqrs_strerror(rc), cqrs_last_error());
	fail |= rc == 0;
	shm_unlink(name);

	/* and a real one works */
	rc = cqrs__vw_create(ctl, "orders", &cfg, &w);
	fail |= rc != 0;
	if (!rc) {
		fail |= cqrs__vw_publish(w) != 0;
		fail |= cqrs_view_open(engine, "orders", &v) != 0;
		cqrs_view_close(v);
		cqrs__vw_retire(w);
		cqrs__vw_close(w);
	}
	cqrs__ctl_destroy(ctl);
	fail |= tview_shm_count(engine) != 0;
	printf("%s\n", fail ? "FAIL" : "ok");
	return fail;
}
