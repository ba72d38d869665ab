/*
 * bindings/python/src/row.c - cqrs.Row: one view row, decoded lazily.
 *
 * A Row owns a private copy of the row's bytes, made by cqrs_view_get (or a
 * find/scan callback) directly into the object: one consistent version,
 * never torn. Fields are decoded through the schema on access:
 *
 *     row.total            attribute access (fields that do not shadow a
 *                          Row method)
 *     row["total"]         mapping access (every field); KeyError if none
 *     dict(row), row.keys(), row.values(), row.items(), row.get(name, d)
 *     "total" in row, len(row) (fields), iter(row) (field names)
 *     row._raw             the row bytes; row._fields the names;
 *     row._schema          its cqrs.Schema; row._asdict() a dict
 *
 * Padding fields (cqrs_py.h) are left out of all of these; row._raw keeps
 * their bytes. A Row read with datetimes=True decodes ts fields as UTC
 * datetimes (None for 0).
 *
 * Rows compare equal when their schemas and bytes are equal; they are
 * immutable and hashable. Trade-off: a field read twice is decoded twice;
 * decoding is a few ns (ints) to one small allocation (str).
 */
#include "cqrs_py.h"

#include <string.h>

static void row_dealloc(Row *self)
{
	Py_DECREF(self->spec);
	PyObject_Free(self);
}

/* Field index of name in d, -1 if absent (no exception), -2 on error. */
static inline int lookup(PyObject *d, PyObject *name)
{
	PyObject *i = PyDict_GetItemWithError(d, name);

	if (!i)
		return PyErr_Occurred() ? -2 : -1;
	return (int)PyLong_AsLong(i);
}

static PyObject *row_getattro(Row *self, PyObject *name)
{
	if (PyUnicode_CheckExact(name)) {
		int i = lookup(self->spec->attrs, name);
		if (i >= 0)
			return cqrspy_decode_field_as(self->spec, self->data, i, self->flags);
		if (i == -2)
			return NULL;
	}
	return PyObject_GenericGetAttr((PyObject *)self, name);
}

static int row_setattro(Row *self, PyObject *name, PyObject *value)
{
	(void)value;
	PyErr_Format(PyExc_AttributeError, "cqrs.Row is read-only (field %R)", name);
	(void)self;
	return -1;
}

static PyObject *row_subscript(Row *self, PyObject *key)
{
	int i = PyUnicode_Check(key) ? lookup(self->spec->index, key) : -1;

	if (i >= 0)
		return cqrspy_decode_field_as(self->spec, self->data, i, self->flags);
	if (i == -1)
		PyErr_SetObject(PyExc_KeyError, key);
	return NULL;
}

static Py_ssize_t row_length(Row *self)
{
	return (Py_ssize_t)self->spec->nvis;
}

static int row_contains(Row *self, PyObject *key)
{
	int i = PyUnicode_Check(key) ? lookup(self->spec->index, key) : -1;

	return i == -2 ? -1 : i >= 0;
}

static PyObject *row_iter(Row *self)
{
	return PyObject_GetIter(self->spec->names);
}

static PyObject *row_keys(Row *self, PyObject *unused)
{
	(void)unused;
	return PySequence_List(self->spec->names);
}

static PyObject *row_values(Row *self, PyObject *unused)
{
	uint32_t n = self->spec->nvis;
	PyObject *l = PyList_New(n);

	(void)unused;
	if (!l)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		PyObject *v = cqrspy_decode_field_as(self->spec, self->data, self->spec->vis[i],
						     self->flags);
		if (!v) {
			Py_DECREF(l);
			return NULL;
		}
		PyList_SET_ITEM(l, i, v);
	}
	return l;
}

static PyObject *row_items(Row *self, PyObject *unused)
{
	uint32_t n = self->spec->nvis;
	PyObject *l = PyList_New(n);

	(void)unused;
	if (!l)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		PyObject *v = cqrspy_decode_field_as(self->spec, self->data, self->spec->vis[i],
						     self->flags), *t;
		if (!v) {
			Py_DECREF(l);
			return NULL;
		}
		t = PyTuple_Pack(2, PyTuple_GET_ITEM(self->spec->names, i), v);
		Py_DECREF(v);
		if (!t) {
			Py_DECREF(l);
			return NULL;
		}
		PyList_SET_ITEM(l, i, t);
	}
	return l;
}

static PyObject *row_asdict(Row *self, PyObject *unused)
{
	PyObject *d = PyDict_New();

	(void)unused;
	if (!d)
		return NULL;
	for (uint32_t i = 0; i < self->spec->nvis; i++) {
		PyObject *v = cqrspy_decode_field_as(self->spec, self->data, self->spec->vis[i],
						     self->flags);
		if (!v || PyDict_SetItem(d, PyTuple_GET_ITEM(self->spec->names, i), v)) {
			Py_XDECREF(v);
			Py_DECREF(d);
			return NULL;
		}
		Py_DECREF(v);
	}
	return d;
}

static PyObject *row_get(Row *self, PyObject *const *args, Py_ssize_t nargs)
{
	int i;

	if (nargs < 1 || nargs > 2) {
		PyErr_SetString(PyExc_TypeError, "get(name, default=None)");
		return NULL;
	}
	i = PyUnicode_Check(args[0]) ? lookup(self->spec->index, args[0]) : -1;
	if (i >= 0)
		return cqrspy_decode_field_as(self->spec, self->data, i, self->flags);
	if (i == -2)
		return NULL;
	return Py_NewRef(nargs == 2 ? args[1] : Py_None);
}

static PyObject *row_dir(Row *self, PyObject *unused)
{
	PyObject *l = row_keys(self, NULL), *more, *r;

	(void)unused;
	if (!l)
		return NULL;
	more = PyObject_Dir((PyObject *)Py_TYPE(self));
	if (!more) {
		Py_DECREF(l);
		return NULL;
	}
	r = PyList_SetSlice(l, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, more) ? NULL : l;
	Py_DECREF(more);
	if (!r)
		Py_DECREF(l);
	return r;
}

static PyObject *row_raw(Row *self, void *closure)
{
	(void)closure;
	return PyBytes_FromStringAndSize((const char *)self->data, Py_SIZE(self));
}

static PyObject *row_fields(Row *self, void *closure)
{
	(void)closure;
	return Py_NewRef(self->spec->names);
}

static PyObject *row_schema(Row *self, void *closure)
{
	(void)closure;
	return cqrspy_rowspec_info(self->spec);
}

static PyObject *row_repr(Row *self)
{
	PyObject *parts = PyList_New(0), *sep = NULL, *body = NULL, *r = NULL;

	if (!parts)
		return NULL;
	for (uint32_t i = 0; i < self->spec->nvis; i++) {
		PyObject *v = cqrspy_decode_field_as(self->spec, self->data, self->spec->vis[i],
						     self->flags), *s;
		if (!v)
			goto out;
		s = PyUnicode_FromFormat("%U=%R", PyTuple_GET_ITEM(self->spec->names, i), v);
		Py_DECREF(v);
		if (!s || PyList_Append(parts, s)) {
			Py_XDECREF(s);
			goto out;
		}
		Py_DECREF(s);
	}
	sep = PyUnicode_FromString(", ");
	if (!sep)
		goto out;
	body = PyUnicode_Join(sep, parts);
	if (body)
		r = PyUnicode_FromFormat("%s(%U)", self->spec->s.name, body);
out:
	Py_XDECREF(sep);
	Py_XDECREF(body);
	Py_DECREF(parts);
	return r;
}

static PyObject *row_richcompare(PyObject *a, PyObject *b, int op)
{
	const Row *x = (const Row *)a, *y = (const Row *)b;
	int eq;

	if (!PyObject_TypeCheck(b, &cqrspy_RowType) || (op != Py_EQ && op != Py_NE))
		Py_RETURN_NOTIMPLEMENTED;
	eq = x->spec->hash == y->spec->hash && Py_SIZE(x) == Py_SIZE(y) &&
	     memcmp(x->data, y->data, (size_t)Py_SIZE(x)) == 0;
	return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static Py_hash_t row_hash(Row *self)
{
	PyObject *b = row_raw(self, NULL);
	Py_hash_t h;

	if (!b)
		return -1;
	h = PyObject_Hash(b) ^ (Py_hash_t)self->spec->hash;
	Py_DECREF(b);
	return h == -1 ? -2 : h;
}

static PyMethodDef row_methods[] = {
	{ "keys", (PyCFunction)row_keys, METH_NOARGS, "keys($self, /)\n--\n\nfield names (list)" },
	{ "values", (PyCFunction)row_values, METH_NOARGS,
	  "values($self, /)\n--\n\ndecoded values (list)" },
	{ "items", (PyCFunction)row_items, METH_NOARGS,
	  "items($self, /)\n--\n\n(name, value) pairs (list)" },
	{ "get", (PyCFunction)(void (*)(void))row_get, METH_FASTCALL,
	  "get($self, name, default=None, /)\n--\n\na field's value, or default" },
	{ "_asdict", (PyCFunction)row_asdict, METH_NOARGS,
	  "_asdict($self, /)\n--\n\nthe row as a dict" },
	{ "__dir__", (PyCFunction)row_dir, METH_NOARGS,
	  "__dir__($self, /)\n--\n\nfield names and methods" },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef row_getset[] = {
	{ "_raw", (getter)row_raw, NULL, "the row's bytes, as the view stores them", NULL },
	{ "_fields", (getter)row_fields, NULL, "field names (tuple)", NULL },
	{ "_schema", (getter)row_schema, NULL, "the row's cqrs.Schema", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

static PyMappingMethods row_as_mapping = {
	.mp_length = (lenfunc)row_length,
	.mp_subscript = (binaryfunc)row_subscript,
};

static PySequenceMethods row_as_sequence = {
	.sq_contains = (objobjproc)row_contains,
};

PyTypeObject cqrspy_RowType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cqrs.Row",
	.tp_basicsize = offsetof(Row, data),
	.tp_itemsize = 1,
	.tp_dealloc = (destructor)row_dealloc,
	.tp_repr = (reprfunc)row_repr,
	.tp_as_sequence = &row_as_sequence,
	.tp_as_mapping = &row_as_mapping,
	.tp_hash = (hashfunc)row_hash,
	.tp_getattro = (getattrofunc)row_getattro,
	.tp_setattro = (setattrofunc)row_setattro,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "One view row: attribute and mapping access to its fields, decoded\n"
		  "through the view's schema from the consistent copy the row holds.",
	.tp_richcompare = row_richcompare,
	.tp_iter = (getiterfunc)row_iter,
	.tp_methods = row_methods,
	.tp_getset = row_getset,
};
