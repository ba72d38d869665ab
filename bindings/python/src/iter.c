/*
 * bindings/python/src/iter.c - cqrs.RowIterator: the iterators that
 * View.scan, iter(View) and View.find return.
 *
 * Three kinds:
 *   scan   lazy over the view itself: each next() reads the following live
 *          row with cqrs_view_scan_from (one C call, one Row allocated), so
 *          iterating a view of millions of rows holds one row at a time.
 *          Each row is one consistent version, read when the iterator
 *          reaches it; rows changing meanwhile show their state then, and a
 *          row deleted and added again (it may land in another slot) may be
 *          seen twice or not at all. Slots are per generation: when the
 *          engine rebuilds the view before the first row was returned the
 *          iterator starts over in the new one; after that, next() raises
 *          cqrs.Error (EAGAIN: iterate again).
 *   find   lazy over a secondary index's chain (cqrs_view_find_from): each
 *          next() walks on to the following row with the key; every row
 *          that had the key for the whole walk comes exactly once, each
 *          consistent on its own. A rebuilt generation: as for scan.
 *   rows   over rows already copied out in one piece (snapshot scans and
 *          finds: one batch-consistent set), kept as their bytes; Rows are
 *          made as it advances.
 * Both keep the Rows they make decoding with the schema the rows were read
 * under (the RowSpec of that generation).
 */
#include "cqrs_py.h"

#include <string.h>

typedef struct RowIter {
	PyObject_HEAD
	View *view;         /* scan: the view read (NULL once exhausted) */
	RowSpec *spec;      /* the rows' schema */
	uint64_t gen;       /* scan: the generation the cursor counts slots of */
	uint64_t cursor;    /* scan: the next slot */
	Py_ssize_t yielded; /* rows returned */
	PyObject *buf;      /* rows: their bytes (NULL for scan, find) */
	Py_ssize_t n;       /* rows: how many */
	int flags;          /* CQRSPY_DATETIMES */
	PyObject *key;      /* find: the key's bytes (NULL for scan, rows) */
	char field[CQRS_NAME_MAX];
	cqrs_view_cursor fc; /* find: the walk's position */
} RowIter;

PyObject *cqrspy_iter_scan(View *view, int flags)
{
	RowIter *it = PyObject_GC_New(RowIter, &cqrspy_RowIterType);

	if (!it)
		return NULL;
	it->view = (View *)Py_NewRef(view);
	it->spec = (RowSpec *)Py_NewRef(view->spec);
	it->gen = view->generation;
	it->cursor = 0;
	it->yielded = 0;
	it->buf = NULL;
	it->n = 0;
	it->flags = flags;
	it->key = NULL;
	PyObject_GC_Track(it);
	return (PyObject *)it;
}

PyObject *cqrspy_iter_find(View *view, const char *field, PyObject *key, int flags)
{
	RowIter *it = (RowIter *)cqrspy_iter_scan(view, flags);

	if (!it)
		return NULL;
	it->key = Py_NewRef(key);
	snprintf(it->field, sizeof it->field, "%s", field);
	cqrs_view_cursor_init(&it->fc);
	return (PyObject *)it;
}

PyObject *cqrspy_iter_rows(View *view, RowSpec *spec, PyObject *buf, Py_ssize_t n, int flags)
{
	RowIter *it = PyObject_GC_New(RowIter, &cqrspy_RowIterType);

	(void)view;
	if (!it)
		return NULL;
	it->view = NULL;
	it->spec = (RowSpec *)Py_NewRef(spec);
	it->gen = 0;
	it->cursor = 0;
	it->yielded = 0;
	it->buf = Py_NewRef(buf);
	it->n = n;
	it->flags = flags;
	it->key = NULL;
	PyObject_GC_Track(it);
	return (PyObject *)it;
}

static int iter_traverse(RowIter *it, visitproc visit, void *arg)
{
	Py_VISIT(it->view);
	Py_VISIT(it->buf);
	return 0;
}

static int iter_clear(RowIter *it)
{
	Py_CLEAR(it->view);
	Py_CLEAR(it->buf);
	Py_CLEAR(it->key);
	return 0;
}

static void iter_dealloc(RowIter *it)
{
	PyObject_GC_UnTrack(it);
	iter_clear(it);
	Py_XDECREF(it->spec);
	PyObject_GC_Del(it);
}

typedef struct take {
	RowSpec *spec;
	Row *row;
	int failed;
	int resized;
} take;

static int take_one(void *arg, const void *row, size_t size)
{
	take *t = arg;

	if (size != t->spec->s.size) {
		t->resized = 1;
		return 1;
	}
	t->row = cqrspy_row_alloc(t->spec);
	if (!t->row) {
		t->failed = 1;
		return 1;
	}
	memcpy(t->row->data, row, size);
	return 1;
}

static PyObject *scan_next(RowIter *it)
{
	View *v = it->view;

	for (int tries = 0; tries < 4; tries++) {
		take t = { it->spec, NULL, 0, 0 };
		int rc;

		if (!v->v) {
			PyErr_SetString(PyExc_ValueError, "operation on a closed cqrs.View");
			return NULL;
		}
		if (it->key)
			rc = cqrs_view_find_from(v->v, it->field, PyBytes_AS_STRING(it->key),
						 (size_t)PyBytes_GET_SIZE(it->key), &it->fc, take_one, &t);
		else
			rc = cqrs_view_scan_from(v->v, &it->cursor, take_one, &t);
		if (cqrs_view_generation(v->v) != it->gen || (it->key && rc == -EAGAIN)) {
			/* The handle moved to a rebuilt generation: its slots are
			 * another numbering. */
			Py_XDECREF(t.row);
			if (t.failed)
				return NULL;
			if (it->yielded > 0) {
				Py_CLEAR(it->view);
				return cqrspy_view_raise(v, -EAGAIN, it->key ? "find (rebuilt while iterating) in"
									      : "scan (rebuilt while iterating) of");
			}
			if (cqrs_view_generation(v->v) != v->generation && cqrspy_view_sync(v))
				return NULL;
			Py_SETREF(it->spec, (RowSpec *)Py_NewRef(v->spec));
			it->gen = v->generation;
			it->cursor = 0;
			cqrs_view_cursor_init(&it->fc);
			continue;
		}
		if (t.failed)
			return NULL;
		if (rc < 0 || t.resized) {
			Py_XDECREF(t.row);
			Py_CLEAR(it->view);
			return cqrspy_view_raise(v, rc < 0 ? rc : CQRS_EFORMAT, it->key ? "find in" : "scan");
		}
		if (rc == 0) {
			Py_CLEAR(it->view); /* exhausted: StopIteration */
			return NULL;
		}
		t.row->flags = it->flags;
		it->yielded++;
		return (PyObject *)t.row;
	}
	Py_CLEAR(it->view);
	return cqrspy_view_raise(v, -EAGAIN, it->key ? "find in" : "scan");
}

static PyObject *iter_next(RowIter *it)
{
	Py_ssize_t rs = (Py_ssize_t)it->spec->s.size;
	Row *r;

	if (!it->buf)
		return it->view ? scan_next(it) : NULL;
	if (it->yielded >= it->n) {
		Py_CLEAR(it->buf);
		return NULL;
	}
	r = cqrspy_row_alloc(it->spec);
	if (!r)
		return NULL;
	memcpy(r->data, PyByteArray_AS_STRING(it->buf) + it->yielded * rs, (size_t)rs);
	r->flags = it->flags;
	it->yielded++;
	return (PyObject *)r;
}

static PyObject *iter_length_hint(RowIter *it, PyObject *unused)
{
	(void)unused;
	if (it->buf)
		return PyLong_FromSsize_t(it->n - it->yielded);
	if (it->view && it->view->v && !it->key)
		return PyLong_FromUnsignedLongLong(cqrs_view_rows(it->view->v));
	return PyLong_FromLong(0);
}

static PyMethodDef iter_methods[] = {
	{ "__length_hint__", (PyCFunction)iter_length_hint, METH_NOARGS,
	  "__length_hint__($self, /)\n--\n\nRows left (snapshots), the view's row count (scans), 0 (finds)." },
	{ NULL, NULL, 0, NULL }
};

PyTypeObject cqrspy_RowIterType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cqrs.RowIterator",
	.tp_basicsize = sizeof(RowIter),
	.tp_dealloc = (destructor)iter_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "An iterator of view Rows (View.scan, iter(View), View.find).",
	.tp_traverse = (traverseproc)iter_traverse,
	.tp_clear = (inquiry)iter_clear,
	.tp_iter = PyObject_SelfIter,
	.tp_iternext = (iternextfunc)iter_next,
	.tp_methods = iter_methods,
};
