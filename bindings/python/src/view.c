/*
 * bindings/python/src/view.c - cqrs.View: one view of a running engine,
 * read straight from shared memory.
 *
 *     v.get(key, *, datetimes=False)   Row or None; v[key] raises KeyError
 *     v.get_raw(key)          the row's bytes, or None
 *     v.find(field, value, snapshot=False, *, datetimes=False)
 *                             iterator of Rows (secondary index; iter.c)
 *     v.scan(snapshot=False, *, datetimes=False), iter(v)
 *                             iterator of every Row (iter.c)
 *     v.wait(seq, timeout=None) -> bool      read-your-writes; raises
 *                             cqrs.Stopped when the engine stopped cleanly
 *     v.to_numpy(), v.to_pandas()  one snapshot as columns (cqrs/_columnar.py)
 *     v.range(lo=None, hi=None, desc=False, limit=0, snapshot=False,
 *             index=None)     iterator over the Rows of the ordered index with
 *                             lo <= key < hi (lo, hi: a value or a tuple of
 *                             the index fields' values, a prefix allowed)
 *     v.applied_seq, v.schema, v.name, v.engine, v.generation, v.capacity,
 *     len(v) (live rows), key in v, v.stat(), v.close(), with-statement
 *
 * Keys are the key field's type: int for integer fields, str or bytes for
 * str and bytes fields (shorter ones are zero padded, as stored).
 *
 * Hot path (get): the key is encoded without allocating (an exact int for a
 * u64 key is converted in place), the Row is allocated once and
 * cqrs_view_get copies the row into it. Then one load tells whether the
 * handle moved to a rebuilt generation meanwhile; if it did, the row schema
 * is refreshed (only when it changed) and the read is redone, so a Row is
 * always decoded with the schema it was read under.
 *
 * A little over 800 lines: every View method shares the handle's move
 * handling (moved, cqrspy_view_sync), which keeps them in one file; the
 * iterators live in iter.c, the columns in cqrs/_columnar.py.
 *
 * Threads: the GIL serialises use of the main handle. wait() releases the
 * GIL while it blocks, on a handle of its own taken from a small pool (an
 * open is several syscalls, so they are kept), and wakes every 50 ms to
 * let signal handlers (Ctrl-C) run.
 */
#include "cqrs_py.h"

#include <string.h>
#include <time.h>

#define WAIT_SLICE_NS 50000000ull
#define MOVE_TRIES 4

static PyObject *closed_error(void)
{
	PyErr_SetString(PyExc_ValueError, "operation on a closed cqrs.View");
	return NULL;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

PyObject *cqrspy_view_raise(View *self, int rc, const char *op)
{
	char what[128];

	snprintf(what, sizeof what, "%s %s/%s", op, PyUnicode_AsUTF8(self->engine_name),
		 PyUnicode_AsUTF8(self->name));
	/* Opening is a cold path that leaves a detailed message. */
	return cqrspy_raise(rc, what, NULL, !strncmp(op, "open", 4));
}

int cqrspy_view_sync(View *self)
{
	cqrs_view_info info;
	const cqrs_schema *s;
	RowSpec *spec;
	int rc = cqrs_view_stat(self->v, &info);

	if (rc) {
		cqrspy_view_raise(self, rc, "stat");
		return -1;
	}
	s = cqrs_view_schema(self->v);
	if (!self->spec || cqrs_schema_hash(s) != self->spec->hash) {
		spec = cqrspy_rowspec_new(s, info.key_field, (const char (*)[CQRS_NAME_MAX])info.secondary,
					  info.nsecondary < CQRS_VIEW_MAX_SECONDARY ? info.nsecondary
										    : CQRS_VIEW_MAX_SECONDARY);
		if (!spec)
			return -1;
		if (spec->key < 0) {
			Py_DECREF(spec);
			cqrspy_view_raise(self, CQRS_EFORMAT, "key field of");
			return -1;
		}
		Py_XSETREF(self->spec, spec);
		self->key = &spec->s.fields[spec->key];
	}
	self->generation = info.generation;
	return 0;
}

PyObject *cqrspy_view_open(const char *engine, const char *name)
{
	View *self;
	int rc;

	self = PyObject_New(View, &cqrspy_ViewType);
	if (!self)
		return NULL;
	self->v = NULL;
	self->spec = NULL;
	self->key = NULL;
	self->npool = 0;
	self->weakrefs = NULL;
	self->engine_name = PyUnicode_FromString(engine);
	self->name = PyUnicode_FromString(name);
	if (!self->engine_name || !self->name) {
		Py_DECREF(self);
		return NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	rc = cqrs_view_open(engine, name, &self->v);
	Py_END_ALLOW_THREADS
	if (rc) {
		self->v = NULL;
		cqrspy_view_raise(self, rc, "open view");
		Py_DECREF(self);
		return NULL;
	}
	if (cqrspy_view_sync(self)) {
		Py_DECREF(self);
		return NULL;
	}
	return (PyObject *)self;
}

static void view_close_handles(View *self)
{
	cqrs_view_close(self->v);
	self->v = NULL;
	while (self->npool > 0)
		cqrs_view_close(self->pool[--self->npool]);
}

static void view_dealloc(View *self)
{
	if (self->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)self);
	view_close_handles(self);
	Py_XDECREF(self->spec);
	Py_XDECREF(self->engine_name);
	Py_XDECREF(self->name);
	PyObject_Free(self);
}

/* Encodes key for the current key field. *kp points at the key bytes
 * (into *u or the spec's scratch record). */
static inline int encode_key(View *self, PyObject *key, uint64_t *u, const void **kp, size_t *klen)
{
	const cqrs_field *f = self->key;

	if (PyLong_CheckExact(key) && f->type == CQRS_FT_U64) {
		*u = PyLong_AsUnsignedLongLong(key);
		if (__builtin_expect(*u != (uint64_t)-1 || !PyErr_Occurred(), 1)) {
			*kp = u;
			*klen = 8;
			return 0;
		}
		PyErr_Clear(); /* the general path says what is wrong */
	}
	if (cqrspy_set_field(self->spec, self->spec->scratch, f, key))
		return -1;
	*kp = self->spec->scratch + f->offset;
	*klen = f->size;
	return 0;
}

/* Moved to another generation since the last sync? Then sync (cold). */
static inline int moved(View *self, int *err)
{
	if (__builtin_expect(cqrs_view_generation(self->v) == self->generation, 1))
		return 0;
	*err = cqrspy_view_sync(self);
	return 1;
}

static PyObject *get_row(View *self, PyObject *key, int flags)
{
	for (int t = 0; t < MOVE_TRIES; t++) {
		uint64_t u;
		const void *kp;
		size_t klen;
		Row *r;
		int rc, err = 0;

		if (__builtin_expect(!self->v, 0))
			return closed_error();
		if (encode_key(self, key, &u, &kp, &klen))
			return NULL;
		r = cqrspy_row_alloc(self->spec);
		if (!r)
			return NULL;
		r->flags = flags;
		rc = cqrs_view_get(self->v, kp, klen, r->data, (size_t)Py_SIZE(r));
		if (__builtin_expect(!moved(self, &err), 1)) {
			if (rc == 0)
				return (PyObject *)r;
			Py_DECREF(r);
			if (rc == CQRS_ENOTFOUND)
				Py_RETURN_NONE;
			return cqrspy_view_raise(self, rc, "get from");
		}
		Py_DECREF(r);
		if (err)
			return NULL;
	}
	return cqrspy_view_raise(self, -EAGAIN, "get from");
}

/* keyword-only datetimes=: CQRSPY_DATETIMES or 0 in *flags; -1 on error */
static int dt_kw(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int *flags)
{
	*flags = 0;
	if (!kwnames)
		return 0;
	for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
		PyObject *k = PyTuple_GET_ITEM(kwnames, i);
		int t;

		if (!PyUnicode_Check(k) || PyUnicode_CompareWithASCIIString(k, "datetimes")) {
			PyErr_Format(PyExc_TypeError, "unexpected keyword argument %R", k);
			return -1;
		}
		t = PyObject_IsTrue(args[nargs + i]);
		if (t < 0)
			return -1;
		*flags = t ? CQRSPY_DATETIMES : 0;
	}
	return 0;
}

static PyObject *view_get(View *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	int flags = 0;

	if (__builtin_expect(nargs != 1, 0)) {
		PyErr_Format(PyExc_TypeError, "get() takes 1 positional argument (%zd given)", nargs);
		return NULL;
	}
	if (__builtin_expect(kwnames != NULL, 0) && dt_kw(args, nargs, kwnames, &flags))
		return NULL;
	return get_row(self, args[0], flags);
}

static PyObject *view_getitem(View *self, PyObject *key)
{
	PyObject *r = get_row(self, key, 0);

	if (r == Py_None) {
		Py_DECREF(r);
		PyErr_SetObject(PyExc_KeyError, key);
		return NULL;
	}
	return r;
}

static int view_contains(View *self, PyObject *key)
{
	PyObject *r = get_row(self, key, 0);

	if (!r)
		return -1;
	Py_DECREF(r);
	return r != Py_None;
}

static PyObject *view_get_raw(View *self, PyObject *key)
{
	for (int t = 0; t < MOVE_TRIES; t++) {
		uint64_t u;
		const void *kp;
		size_t klen;
		PyObject *b;
		int rc, err = 0;

		if (!self->v)
			return closed_error();
		if (encode_key(self, key, &u, &kp, &klen))
			return NULL;
		b = PyBytes_FromStringAndSize(NULL, self->spec->s.size);
		if (!b)
			return NULL;
		rc = cqrs_view_get(self->v, kp, klen, PyBytes_AS_STRING(b), self->spec->s.size);
		if (!moved(self, &err)) {
			if (rc == 0)
				return b;
			Py_DECREF(b);
			if (rc == CQRS_ENOTFOUND)
				Py_RETURN_NONE;
			return cqrspy_view_raise(self, rc, "get from");
		}
		Py_DECREF(b);
		if (err)
			return NULL;
	}
	return cqrspy_view_raise(self, -EAGAIN, "get from");
}

/* ---- find and scan -------------------------------------------------------------- */

/* Rows copied out in one piece (find, snapshot scans, to_numpy) go into
 * a bytearray: row size x rows, no object per row until iterated. */
typedef struct collect {
	RowSpec *spec;
	PyObject *buf;  /* bytearray */
	Py_ssize_t n;   /* rows in buf */
	Py_ssize_t cap; /* rows buf has room for */
	int failed;     /* a Python error is set */
	int resized;    /* a row of another size came: the handle moved */
} collect;

static int collect_row(void *arg, const void *row, size_t size)
{
	collect *c = arg;
	size_t rs = c->spec->s.size;

	if (size != rs) {
		c->resized = 1;
		return 1;
	}
	if (c->n == c->cap) {
		Py_ssize_t cap = c->cap ? c->cap * 2 : 16;
		if (PyByteArray_Resize(c->buf, cap * (Py_ssize_t)rs)) {
			c->failed = 1;
			return 1;
		}
		c->cap = cap;
	}
	memcpy(PyByteArray_AS_STRING(c->buf) + c->n * (Py_ssize_t)rs, row, rs);
	c->n++;
	return 0;
}

/* find when field is non-NULL, scan otherwise: the rows in c->buf (a new
 * bytearray of exactly c->n rows of c->spec, both new references). */
static int query(View *self, PyObject *field, PyObject *value, int snapshot, collect *out)
{
	for (int t = 0; t < MOVE_TRIES; t++) {
		collect c = { self->spec, NULL, 0, 0, 0, 0 };
		unsigned flags = snapshot ? CQRS_FIND_SNAPSHOT : 0;
		int rc, err = 0;

		if (!self->v) {
			closed_error();
			return -1;
		}
		c.buf = PyByteArray_FromStringAndSize(NULL, 0);
		if (!c.buf)
			return -1;
		if (!field && snapshot) {
			uint64_t hint = cqrs_view_rows(self->v);
			if (hint && hint < (1ull << 40) / (self->spec->s.size + 1)) {
				if (PyByteArray_Resize(c.buf, (Py_ssize_t)(hint + hint / 8 + 16) *
								 (Py_ssize_t)self->spec->s.size)) {
					Py_DECREF(c.buf);
					return -1;
				}
				c.cap = (Py_ssize_t)(hint + hint / 8 + 16);
			}
		}
		if (field) {
			const char *fname = PyUnicode_AsUTF8(field);
			const cqrs_field *f = fname ? cqrs_schema_field(&self->spec->s, fname) : NULL;

			if (!f || cqrspy_is_padding(f->name)) {
				Py_DECREF(c.buf);
				if (!fname)
					return -1;
				PyErr_Format(cqrspy_NotFound, "view %U has no field %R", self->name, field);
				return -1;
			}
			if (cqrspy_set_field(self->spec, self->spec->scratch, f, value)) {
				Py_DECREF(c.buf);
				return -1;
			}
			rc = cqrs_view_find(self->v, fname, self->spec->scratch + f->offset, f->size,
					    collect_row, &c, flags);
			if (rc == CQRS_ENOTFOUND && !moved(self, &err)) {
				Py_DECREF(c.buf);
				PyErr_Format(cqrspy_NotFound, "field %R of view %U is not indexed", field,
					     self->name);
				return -1;
			}
		} else {
			rc = cqrs_view_scan(self->v, collect_row, &c, flags);
		}
		if (c.failed) {
			Py_DECREF(c.buf);
			return -1;
		}
		if (!c.resized && !moved(self, &err)) {
			if (rc >= 0) {
				if (PyByteArray_Resize(c.buf, c.n * (Py_ssize_t)c.spec->s.size)) {
					Py_DECREF(c.buf);
					return -1;
				}
				Py_INCREF(c.spec);
				*out = c;
				return 0;
			}
			Py_DECREF(c.buf);
			cqrspy_view_raise(self, rc, field ? "find in" : "scan");
			return -1;
		}
		Py_DECREF(c.buf);
		if (err)
			return -1;
		if (c.resized && cqrs_view_generation(self->v) == self->generation &&
		    cqrspy_view_sync(self))
			return -1;
	}
	cqrspy_view_raise(self, -EAGAIN, field ? "find in" : "scan");
	return -1;
}

static PyObject *rows_iter(View *self, PyObject *field, PyObject *value, int snapshot, int flags)
{
	collect c;
	PyObject *it;

	if (query(self, field, value, snapshot, &c))
		return NULL;
	it = cqrspy_iter_rows(self, c.spec, c.buf, c.n, flags);
	Py_DECREF(c.spec);
	Py_DECREF(c.buf);
	return it;
}

/* A lazy plain find: the field and key checked now (errors at the call),
 * the chain walked as the iterator advances. */
static PyObject *lazy_find(View *self, PyObject *field, PyObject *value, int flags)
{
	const char *fname = PyUnicode_AsUTF8(field);
	const cqrs_field *f;
	PyObject *key, *it, *idx;
	int err = 0, indexed = 0;

	if (!fname)
		return NULL;
	if (!self->v)
		return closed_error();
	if (moved(self, &err) && err)
		return NULL;
	f = cqrs_schema_field(&self->spec->s, fname);
	if (!f || cqrspy_is_padding(f->name)) {
		PyErr_Format(cqrspy_NotFound, "view %U has no field %R", self->name, field);
		return NULL;
	}
	if (cqrspy_set_field(self->spec, self->spec->scratch, f, value))
		return NULL;
	/* the indexes of the generation in use, as cqrspy_view_sync read them */
	idx = PyStructSequence_GET_ITEM(self->spec->info, 4);
	for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(idx); i++)
		indexed |= !PyUnicode_Compare(PyTuple_GET_ITEM(idx, i), field);
	if (!indexed) {
		PyErr_Format(cqrspy_NotFound, "field %R of view %U is not indexed", field, self->name);
		return NULL;
	}
	key = PyBytes_FromStringAndSize((const char *)self->spec->scratch + f->offset, f->size);
	if (!key)
		return NULL;
	it = cqrspy_iter_find(self, fname, key, flags);
	Py_DECREF(key);
	return it;
}

static PyObject *view_find(View *self, PyObject *args, PyObject *kwargs)
{
	static char *kw[] = { "field", "value", "snapshot", "datetimes", NULL };
	PyObject *field, *value;
	int snapshot = 0, dt = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "UO|p$p:find", kw, &field, &value, &snapshot,
					 &dt))
		return NULL;
	if (!snapshot)
		return lazy_find(self, field, value, dt ? CQRSPY_DATETIMES : 0);
	return rows_iter(self, field, value, snapshot, dt ? CQRSPY_DATETIMES : 0);
}

static PyObject *view_scan(View *self, PyObject *args, PyObject *kwargs)
{
	static char *kw[] = { "snapshot", "datetimes", NULL };
	int snapshot = 0, dt = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p$p:scan", kw, &snapshot, &dt))
		return NULL;
	if (snapshot)
		return rows_iter(self, NULL, NULL, 1, dt ? CQRSPY_DATETIMES : 0);
	if (!self->v)
		return closed_error();
	return cqrspy_iter_scan(self, dt ? CQRSPY_DATETIMES : 0);
}

static PyObject *view_iter(View *self)
{
	if (!self->v)
		return closed_error();
	return cqrspy_iter_scan(self, 0);
}

/* _snapshot() -> (bytearray, count, Schema): one batch-consistent copy of
 * every row, for to_numpy (the bytearray becomes the array's memory). */
static PyObject *view_snapshot(View *self, PyObject *unused)
{
	collect c;

	(void)unused;
	if (query(self, NULL, NULL, 1, &c))
		return NULL;
	{
		PyObject *r = Py_BuildValue("(NnO)", c.buf, c.n, c.spec->info);
		Py_DECREF(c.spec);
		return r;
	}
}

/* to_numpy / to_pandas: cqrs/_columnar.py builds them from _snapshot(). */
static PyObject *columnar(View *self, const char *fn, PyObject *args, PyObject *kwargs)
{
	PyObject *mod = PyImport_ImportModule("cqrs._columnar"), *f, *a, *r;

	if (!mod)
		return NULL;
	f = PyObject_GetAttrString(mod, fn);
	Py_DECREF(mod);
	if (!f)
		return NULL;
	a = PyTuple_New(1 + PyTuple_GET_SIZE(args));
	if (!a) {
		Py_DECREF(f);
		return NULL;
	}
	PyTuple_SET_ITEM(a, 0, Py_NewRef(self));
	for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++)
		PyTuple_SET_ITEM(a, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
	r = PyObject_Call(f, a, kwargs);
	Py_DECREF(a);
	Py_DECREF(f);
	return r;
}

static PyObject *view_to_numpy(View *self, PyObject *args, PyObject *kwargs)
{
	return columnar(self, "to_numpy", args, kwargs);
}

static PyObject *view_to_pandas(View *self, PyObject *args, PyObject *kwargs)
{
	return columnar(self, "to_pandas", args, kwargs);
}

/* ---- the ordered index ------------------------------------------------------------ */

/* Encodes a bound (None, a value, or a tuple of the first index fields'
 * values) into key; *len 0 and *none 1 for None. -1 with an error set. */
static int encode_bound(View *self, PyObject *o, uint8_t *key, size_t *len, int *none)
{
	const char *names[8];
	int n = cqrs_view_ordered(self->v, names, 8), k;
	PyObject *t;

	*len = 0;
	*none = o == Py_None;
	if (*none)
		return 0;
	t = PyTuple_Check(o) ? (Py_INCREF(o), o) : PyTuple_Pack(1, o);
	if (!t)
		return -1;
	k = (int)PyTuple_GET_SIZE(t);
	if (k > n || k == 0) {
		PyErr_Format(PyExc_ValueError, "a bound of view %U has 1 to %d values, not %d", self->name,
			     n, k);
		Py_DECREF(t);
		return -1;
	}
	for (int i = 0; i < k; i++) {
		const cqrs_field *f = cqrs_schema_field(&self->spec->s, names[i]);

		if (!f || *len + f->size > 64 ||
		    cqrspy_set_field(self->spec, self->spec->scratch, f, PyTuple_GET_ITEM(t, i))) {
			if (!PyErr_Occurred())
				PyErr_Format(PyExc_ValueError, "bad bound for view %U", self->name);
			Py_DECREF(t);
			return -1;
		}
		memcpy(key + *len, self->spec->scratch + f->offset, f->size);
		*len += f->size;
	}
	Py_DECREF(t);
	return 0;
}

/* range(): the rows collected in one call into the library (GIL held: the
 * walk makes no syscalls) into one bytearray, returned as an iterator that
 * makes a Row per step. */
static PyObject *view_range(View *self, PyObject *args, PyObject *kwargs)
{
	static char *kw[] = { "lo", "hi", "desc", "limit", "snapshot", "index", NULL };
	PyObject *lo = Py_None, *hi = Py_None;
	const char *index = NULL;
	unsigned long long limit = 0;
	int desc = 0, snapshot = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOpKpz:range", kw, &lo, &hi, &desc, &limit,
					 &snapshot, &index))
		return NULL;
	for (int t = 0; t < MOVE_TRIES; t++) {
		collect c = { self->spec, NULL, 0, 0, 0, 0 };
		uint8_t klo[64], khi[64];
		size_t llo, lhi;
		int nlo, nhi, rc, err = 0;
		PyObject *it;

		if (!self->v)
			return closed_error();
		if (cqrs_view_ordered(self->v, NULL, 0) <= 0) {
			PyErr_Format(cqrspy_NotFound, "view %U has no ordered index", self->name);
			return NULL;
		}
		if (encode_bound(self, lo, klo, &llo, &nlo) || encode_bound(self, hi, khi, &lhi, &nhi))
			return NULL;
		c.buf = PyByteArray_FromStringAndSize(NULL, 0);
		if (!c.buf)
			return NULL;
		rc = cqrs_view_range(self->v, index, nlo ? NULL : klo, llo, nhi ? NULL : khi, lhi,
				     (desc ? CQRS_RANGE_DESC : 0) | (snapshot ? CQRS_RANGE_SNAPSHOT : 0),
				     limit, collect_row, &c);
		if (c.failed) {
			Py_DECREF(c.buf);
			return NULL;
		}
		if (!c.resized && !moved(self, &err)) {
			if (rc == CQRS_ENOTFOUND) {
				Py_DECREF(c.buf);
				PyErr_Format(cqrspy_NotFound, "view %U has no ordered index %s", self->name,
					     index ? index : "");
				return NULL;
			}
			if (rc < 0) {
				Py_DECREF(c.buf);
				return cqrspy_view_raise(self, rc, "range in");
			}
			if (PyByteArray_Resize(c.buf, c.n * (Py_ssize_t)c.spec->s.size)) {
				Py_DECREF(c.buf);
				return NULL;
			}
			it = cqrspy_iter_rows(self, c.spec, c.buf, c.n, 0);
			Py_DECREF(c.buf);
			return it;
		}
		Py_DECREF(c.buf);
		if (err)
			return NULL;
		if (c.resized && cqrs_view_generation(self->v) == self->generation &&
		    cqrspy_view_sync(self))
			return NULL;
	}
	return cqrspy_view_raise(self, -EAGAIN, "range in");
}

/* ---- waiting -------------------------------------------------------------------- */

/* After wait said the writer is gone: did it shut down cleanly (a stop,
 * not a crash)? The engine marks each view's segment clean when it stops;
 * h still maps the segment its writer left. */
static int stopped_cleanly(cqrs_view *h)
{
	cqrs_view_info info;

	return cqrs_view_stat(h, &info) == 0 && info.clean && !info.writer_alive;
}

static PyObject *view_wait(View *self, PyObject *args, PyObject *kwargs)
{
	static char *kw[] = { "seq", "timeout", NULL };
	PyObject *seqo, *timeout = Py_None;
	unsigned long long seq;
	uint64_t tmo, deadline, now;
	cqrs_view *h;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!|O:wait", kw, &PyLong_Type, &seqo, &timeout))
		return NULL;
	seq = PyLong_AsUnsignedLongLong(seqo);
	if (seq == (unsigned long long)-1 && PyErr_Occurred())
		return NULL;
	if (!self->v)
		return closed_error();
	if (cqrspy_timeout_ns(timeout, &tmo))
		return NULL;
	if (cqrs_view_applied_seq(self->v) >= seq)
		Py_RETURN_TRUE;
	if (tmo == 0)
		Py_RETURN_FALSE;
	if (self->npool > 0) {
		h = self->pool[--self->npool];
	} else {
		const char *e = PyUnicode_AsUTF8(self->engine_name), *n = PyUnicode_AsUTF8(self->name);
		if (!e || !n)
			return NULL;
		Py_BEGIN_ALLOW_THREADS
		rc = cqrs_view_open(e, n, &h);
		Py_END_ALLOW_THREADS
		if (rc)
			return cqrspy_view_raise(self, rc, "open (for wait) view");
	}
	now = mono_ns();
	deadline = tmo == UINT64_MAX || tmo > UINT64_MAX - now ? UINT64_MAX : now + tmo;
	for (;;) {
		uint64_t slice = deadline - now < WAIT_SLICE_NS ? deadline - now : WAIT_SLICE_NS;

		Py_BEGIN_ALLOW_THREADS
		rc = cqrs_view_wait(h, seq, slice);
		Py_END_ALLOW_THREADS
		if (rc != -ETIMEDOUT)
			break;
		now = mono_ns();
		if (now >= deadline || PyErr_CheckSignals())
			break;
	}
	if (rc == CQRS_EWRITERDEAD && stopped_cleanly(h))
		rc = CQRS_ESTOPPED;
	if (self->v && self->npool < CQRSPY_WAIT_POOL)
		self->pool[self->npool++] = h;
	else
		cqrs_view_close(h);
	if (PyErr_Occurred())
		return NULL;
	if (rc == 0)
		Py_RETURN_TRUE;
	if (rc == -ETIMEDOUT)
		Py_RETURN_FALSE;
	return cqrspy_view_raise(self, rc, "wait on");
}

/* ---- introspection -------------------------------------------------------------- */

static PyObject *view_applied_seq(View *self, void *closure)
{
	(void)closure;
	if (!self->v)
		return closed_error();
	return PyLong_FromUnsignedLongLong(cqrs_view_applied_seq(self->v));
}

static PyObject *view_schema(View *self, void *closure)
{
	int err = 0;

	(void)closure;
	if (!self->v)
		return closed_error();
	if (moved(self, &err) && err)
		return NULL;
	return cqrspy_rowspec_info(self->spec);
}

static PyObject *view_generation(View *self, void *closure)
{
	(void)closure;
	if (!self->v)
		return closed_error();
	return PyLong_FromUnsignedLongLong(cqrs_view_generation(self->v));
}

static PyObject *view_capacity(View *self, void *closure)
{
	(void)closure;
	if (!self->v)
		return closed_error();
	return PyLong_FromUnsignedLongLong(cqrs_view_capacity(self->v));
}

static PyObject *view_closed(View *self, void *closure)
{
	(void)closure;
	return PyBool_FromLong(self->v == NULL);
}

static Py_ssize_t view_len(View *self)
{
	if (!self->v) {
		closed_error();
		return -1;
	}
	return (Py_ssize_t)cqrs_view_rows(self->v);
}

static PyObject *view_stat(View *self, PyObject *unused)
{
	cqrs_view_info i;
	PyObject *sec;
	int rc;

	(void)unused;
	if (!self->v)
		return closed_error();
	rc = cqrs_view_stat(self->v, &i);
	if (rc)
		return cqrspy_view_raise(self, rc, "stat");
	sec = PyTuple_New(i.nsecondary);
	if (!sec)
		return NULL;
	for (uint32_t k = 0; k < i.nsecondary && k < CQRS_VIEW_MAX_SECONDARY; k++) {
		PyObject *s = PyUnicode_FromString(i.secondary[k]);
		if (!s) {
			Py_DECREF(sec);
			return NULL;
		}
		PyTuple_SET_ITEM(sec, k, s);
	}
	return Py_BuildValue("{s:s,s:s,s:s,s:K,s:K,s:K,s:K,s:K,s:K,s:I,s:O,s:O,s:O,s:s,s:N}",
			     "engine", i.engine, "name", i.name, "segment", i.segment,
			     "generation", (unsigned long long)i.generation,
			     "capacity", (unsigned long long)i.capacity,
			     "rows", (unsigned long long)i.rows, "bytes", (unsigned long long)i.bytes,
			     "applied_seq", (unsigned long long)i.applied_seq,
			     "schema_hash", (unsigned long long)i.schema_hash,
			     "row_size", (unsigned)i.row_size,
			     "clean", i.clean ? Py_True : Py_False,
			     "retired", i.retired ? Py_True : Py_False,
			     "writer_alive", i.writer_alive ? Py_True : Py_False,
			     "key", i.key_field, "indexes", sec);
}

static PyObject *view_close(View *self, PyObject *unused)
{
	(void)unused;
	view_close_handles(self);
	Py_RETURN_NONE;
}

static PyObject *view_enter(View *self, PyObject *unused)
{
	(void)unused;
	if (!self->v)
		return closed_error();
	return Py_NewRef(self);
}

static PyObject *view_exit(View *self, PyObject *args)
{
	(void)args;
	view_close_handles(self);
	Py_RETURN_FALSE;
}

static PyObject *view_repr(View *self)
{
	return PyUnicode_FromFormat("<cqrs.View %U/%U%s>", self->engine_name, self->name,
				    self->v ? "" : " (closed)");
}

static PyMethodDef view_methods[] = {
	{ "get", (PyCFunction)(void (*)(void))view_get, METH_FASTCALL | METH_KEYWORDS,
	  "get($self, key, /, *, datetimes=False)\n--\n\n"
	  "The row with this key (a Row), or None: one consistent copy, decoded\n"
	  "through the view's schema on access. Keys: int for integer key fields,\n"
	  "str/bytes for str/bytes key fields. datetimes=True: ts fields read as\n"
	  "UTC datetimes (None for 0)." },
	{ "get_raw", (PyCFunction)view_get_raw, METH_O,
	  "get_raw($self, key, /)\n--\n\n"
	  "The row's bytes, or None (see .schema for the layout)." },
	{ "find", (PyCFunction)(void (*)(void))view_find, METH_VARARGS | METH_KEYWORDS,
	  "find($self, field, value, snapshot=False, *, datetimes=False)\n--\n\n"
	  "A lazy iterator of the Rows whose secondary-indexed field equals value\n"
	  "(list(...) for a list): the index's chain is walked as it advances, each\n"
	  "row consistent on its own, every row that keeps the key meanwhile once.\n"
	  "snapshot=True: one batch-consistent set, copied at the call." },
	{ "scan", (PyCFunction)(void (*)(void))view_scan, METH_VARARGS | METH_KEYWORDS,
	  "scan($self, snapshot=False, *, datetimes=False)\n--\n\n"
	  "A lazy iterator of every live Row, in slot order: each row consistent on\n"
	  "its own, read when the iterator reaches it (rows changing meanwhile show\n"
	  "their state then; one deleted and added again may be seen twice or not\n"
	  "at all). cqrs.Error (EAGAIN) if the view is rebuilt after the first row.\n"
	  "snapshot=True: one batch-consistent copy of all rows, taken at once." },
	{ "range", (PyCFunction)(void (*)(void))view_range, METH_VARARGS | METH_KEYWORDS,
	  "range($self, lo=None, hi=None, desc=False, limit=0, snapshot=False, index=None)\n--\n\n"
	  "An iterator of Rows: the rows of the view's ordered index with lo <= key < hi, in key "
	  "order\n(desc: from hi down). lo and hi: None (open), a value, or a tuple of\nthe index "
	  "fields' first values (a prefix). limit: at most that many rows." },
	{ "wait", (PyCFunction)(void (*)(void))view_wait, METH_VARARGS | METH_KEYWORDS,
	  "wait($self, seq, timeout=None)\n--\n\n"
	  "Waits (GIL released) until the view has applied seq (a submit's result):\n"
	  "True, or False when timeout seconds passed. Raises cqrs.Stopped when the\n"
	  "engine stopped cleanly meanwhile, cqrs.Error when it died." },
	{ "to_numpy", (PyCFunction)(void (*)(void))view_to_numpy, METH_VARARGS | METH_KEYWORDS,
	  "to_numpy($self, *, datetimes=False)\n--\n\n"
	  "One batch-consistent snapshot of every row as a numpy structured array\n"
	  "(the row's dtype, padding left out), copied once into the array's memory.\n"
	  "datetimes=True: ts fields as datetime64[ns]." },
	{ "to_pandas", (PyCFunction)(void (*)(void))view_to_pandas, METH_VARARGS | METH_KEYWORDS,
	  "to_pandas($self, *, datetimes=True, index=True)\n--\n\n"
	  "to_numpy() as a pandas DataFrame: str fields as str, ts fields as UTC\n"
	  "datetimes (NaT for 0) unless datetimes=False, indexed by the key field\n"
	  "unless index=False." },
	{ "_snapshot", (PyCFunction)view_snapshot, METH_NOARGS,
	  "_snapshot($self, /)\n--\n\n"
	  "(bytearray, count, Schema): one batch-consistent copy of every row." },
	{ "stat", (PyCFunction)view_stat, METH_NOARGS,
	  "stat($self, /)\n--\n\nThe view's statistics (a dict)." },
	{ "close", (PyCFunction)view_close, METH_NOARGS,
	  "close($self, /)\n--\n\nUnmaps the view (Rows stay valid)." },
	{ "__enter__", (PyCFunction)view_enter, METH_NOARGS, "__enter__($self, /)\n--\n\n" },
	{ "__exit__", (PyCFunction)view_exit, METH_VARARGS,
	  "__exit__($self, exc_type, exc_value, traceback, /)\n--\n\nCloses the view." },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef view_getset[] = {
	{ "applied_seq", (getter)view_applied_seq, NULL,
	  "the last journal seq whose effects the view shows", NULL },
	{ "schema", (getter)view_schema, NULL, "the row schema (cqrs.Schema)", NULL },
	{ "generation", (getter)view_generation, NULL, "the segment generation being read", NULL },
	{ "capacity", (getter)view_capacity, NULL, "row capacity", NULL },
	{ "closed", (getter)view_closed, NULL, "True after close()", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

static PyMemberDef view_members[] = {
	{ "name", T_OBJECT, offsetof(View, name), READONLY, "view name" },
	{ "engine", T_OBJECT, offsetof(View, engine_name), READONLY, "engine name" },
	{ NULL, 0, 0, 0, NULL }
};

static PyMappingMethods view_as_mapping = {
	.mp_length = (lenfunc)view_len,
	.mp_subscript = (binaryfunc)view_getitem,
};

static PySequenceMethods view_as_sequence = {
	.sq_contains = (objobjproc)view_contains,
};

PyTypeObject cqrspy_ViewType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cqrs.View",
	.tp_basicsize = sizeof(View),
	.tp_dealloc = (destructor)view_dealloc,
	.tp_repr = (reprfunc)view_repr,
	.tp_as_sequence = &view_as_sequence,
	.tp_as_mapping = &view_as_mapping,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A view of a running engine, read from shared memory (Engine.view(name)).",
	.tp_weaklistoffset = offsetof(View, weakrefs),
	.tp_iter = (getiterfunc)view_iter,
	.tp_methods = view_methods,
	.tp_members = view_members,
	.tp_getset = view_getset,
};
