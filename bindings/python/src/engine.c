/*
 * bindings/python/src/engine.c - cqrs.Engine: a connection to a running
 * engine (cqrs.connect).
 *
 *     eng = cqrs.connect("orders")           # or readonly=True: views only
 *     eng = cqrs.connect("orders", client_id="billing-1")  # or an int
 *                         # a stable client id (1 .. 2**63-1, or a name):
 *                         # resending a client_seq after a lost answer, on
 *                         # a new connection or after an engine restart,
 *                         # raises cqrs.Duplicate with the original .seq;
 *                         # every submit then needs its client_seq
 *     eng.views()                            # ["order_summaries", ...]
 *     v = eng.view("order_summaries")        # cached: one View per name
 *     eng.commands()                         # ["RegisterCustomer", ...]
 *     eng.command_schema("CreateOrder")      # cqrs.Schema
 *     seq = eng.submit("CreateOrder", order_id=1, customer_id=7, ...)
 *     seq = eng.submit_with("ShipOrder", {"order_id": 1},
 *                           aggregate_id=..., expected_version=3,
 *                           client_seq=..., timeout=1.0,
 *                           defaults={"note": ""})
 *     eng.close()                            # or a with-statement
 *
 * submit encodes the fields through the command's schema and waits for the
 * engine's answer. Every field but padding (cqrs_py.h) is required: one
 * left out is a TypeError naming it, never a silent zero; submit_with's
 * defaults= dict gives the values of fields that may be left out (give
 * {"field": 0} for a zero). The answer is the accepted command's seq
 * (its last event's global seq, for View.wait), or cqrs.Rejected /
 * cqrs.Conflict / cqrs.Duplicate carrying the engine's .reason (Duplicate
 * also .seq, the original's), cqrs.Stopped when the engine went away,
 * TimeoutError when timeout passed (the command may still be processed).
 *
 * Threads: one gateway client per Engine, guarded by a lock; the GIL is
 * released while a submit waits. Submits from several threads on one Engine
 * are serialised: connect an Engine per thread to submit in parallel. The
 * request is encoded and sent (wait-free) with the GIL held, then its result
 * is awaited in 50 ms slices so Ctrl-C works; a result that arrives for an
 * earlier, abandoned request (timed out, interrupted) is discarded.
 */
#include "cqrs_py.h"

#include <pythread.h>
#include <string.h>
#include <time.h>

#define SLICE_NS 50000000ull

typedef struct Engine {
	PyObject_HEAD
	char name[CQRS_NAME_MAX];
	PyObject *views;          /* dict name -> View */
	int closed;
	int readonly;
	cqrs_client *c;
	PyThread_type_lock lock;  /* guards c */
	PyObject *cmds;           /* dict name -> (type id, RowSpec) */
} Engine;

static PyObject *closed_error(void)
{
	PyErr_SetString(PyExc_ValueError, "operation on a closed cqrs.Engine");
	return NULL;
}

static __attribute__((unused)) uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int name_ok(const char *s, Py_ssize_t n)
{
	if (n < 1 || n >= CQRS_NAME_MAX)
		return 0;
	for (Py_ssize_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

PyObject *cqrspy_connect(PyObject *module, PyObject *args, PyObject *kwargs)
{
	static char *kw[] = { "engine", "readonly", "client_id", NULL };
	cqrs_client_opts opts = { .size = sizeof opts };
	PyObject *client_id = Py_None;
	const char *name;
	Py_ssize_t n;
	int readonly = 0, rc;
	Engine *self;

	(void)module;
	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s#|$pO:connect", kw, &name, &n, &readonly,
					 &client_id))
		return NULL;
	if (client_id != Py_None) {
		if (readonly) {
			PyErr_SetString(PyExc_ValueError, "client_id needs a gateway connection "
					"(not readonly)");
			return NULL;
		}
		if (PyUnicode_Check(client_id)) {
			opts.client_name = PyUnicode_AsUTF8(client_id);
			if (!opts.client_name)
				return NULL;
			if (!*opts.client_name) {
				PyErr_SetString(PyExc_ValueError, "client_id: empty name");
				return NULL;
			}
		} else if (PyLong_Check(client_id)) {
			unsigned long long v = PyLong_AsUnsignedLongLong(client_id);
			if (PyErr_Occurred() || v == 0 || v >> 63) {
				PyErr_Clear();
				PyErr_SetString(PyExc_ValueError, "client_id: an int in 1 .. 2**63-1, "
						"or a name");
				return NULL;
			}
			opts.client_id = v;
		} else {
			PyErr_SetString(PyExc_TypeError, "client_id: an int or a str");
			return NULL;
		}
	}
	if (!name_ok(name, n)) {
		PyErr_Format(PyExc_ValueError, "bad engine name %R (1..31 of [A-Za-z0-9_])",
			     PyTuple_GET_ITEM(args, 0));
		return NULL;
	}
	/* Does it exist? One look at its control segment. */
	Py_BEGIN_ALLOW_THREADS
	rc = cqrs_view_list(name, NULL, 0);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		char what[80];
		snprintf(what, sizeof what, "connect to engine %s", name);
		return cqrspy_raise(rc == -ENOENT ? CQRS_ENOTFOUND : rc, what, NULL, 1);
	}
	self = PyObject_New(Engine, &cqrspy_EngineType);
	if (!self)
		return NULL;
	memcpy(self->name, name, (size_t)n + 1);
	self->closed = 0;
	self->readonly = readonly;
	self->views = PyDict_New();
	self->c = NULL;
	self->lock = NULL;
	self->cmds = PyDict_New();
	if (!self->views || !self->cmds) {
		Py_DECREF(self);
		return NULL;
	}
	if (!readonly) {
		self->lock = PyThread_allocate_lock();
		if (!self->lock) {
			Py_DECREF(self);
			return PyErr_NoMemory();
		}
		Py_BEGIN_ALLOW_THREADS
		rc = cqrs_client_connect_opts(name, &opts, &self->c);
		Py_END_ALLOW_THREADS
		if (rc) {
			char what[96];
			self->c = NULL;
			snprintf(what, sizeof what, "connect to the gateway of engine %s", name);
			Py_DECREF(self);
			return cqrspy_raise(rc, what, NULL, 1);
		}
	}
	return (PyObject *)self;
}

static void engine_close_all(Engine *self)
{
	PyObject *key, *value, *r;
	Py_ssize_t pos = 0;

	self->closed = 1;
	if (self->views) {
		while (PyDict_Next(self->views, &pos, &key, &value)) {
			r = PyObject_CallMethod(value, "close", NULL);
			if (r)
				Py_DECREF(r);
			else
				PyErr_Clear();
		}
		PyDict_Clear(self->views);
	}
	if (self->c) {
		/* Nobody holds the lock: submit holds a reference to self. */
		cqrs_client_close(self->c);
		self->c = NULL;
	}
}

/* Views outlive their Engine (cqrs.connect(n).view(v) is fine): only
 * close() closes them; dealloc drops the Engine's references. */
static void engine_dealloc(Engine *self)
{
	cqrs_client_close(self->c);
	self->c = NULL;
	Py_XDECREF(self->views);
	Py_XDECREF(self->cmds);
	if (self->lock)
		PyThread_free_lock(self->lock);
	PyObject_Free(self);
}

static PyObject *engine_views(Engine *self, PyObject *unused)
{
	cqrs_view_entry *e;
	PyObject *l;
	int n, m;

	(void)unused;
	if (self->closed)
		return closed_error();
	for (;;) {
		n = cqrs_view_list(self->name, NULL, 0);
		if (n < 0)
			return cqrspy_raise(n, "list views", NULL, 1);
		e = PyMem_Calloc((size_t)n + 1, sizeof *e);
		if (!e)
			return PyErr_NoMemory();
		m = cqrs_view_list(self->name, e, (size_t)n + 1);
		if (m <= n)
			break;
		PyMem_Free(e); /* more views appeared meanwhile */
	}
	if (m < 0) {
		PyMem_Free(e);
		return cqrspy_raise(m, "list views", NULL, 1);
	}
	l = PyList_New(0);
	for (int i = 0; l && i < m; i++) {
		PyObject *s = PyUnicode_FromStringAndSize(e[i].name, (Py_ssize_t)strnlen(e[i].name, CQRS_NAME_MAX));
		if (!s || PyList_Append(l, s))
			Py_CLEAR(l);
		Py_XDECREF(s);
	}
	PyMem_Free(e);
	return l;
}

static PyObject *engine_view(Engine *self, PyObject *name)
{
	PyObject *v;

	if (self->closed)
		return closed_error();
	if (!PyUnicode_Check(name)) {
		PyErr_SetString(PyExc_TypeError, "view(name): name must be a str");
		return NULL;
	}
	v = PyDict_GetItemWithError(self->views, name);
	if (v && ((View *)v)->v)
		return Py_NewRef(v);
	if (PyErr_Occurred())
		return NULL;
	{
		const char *n = PyUnicode_AsUTF8(name);
		if (!n)
			return NULL;
		v = cqrspy_view_open(self->name, n);
	}
	if (!v)
		return NULL;
	if (PyDict_SetItem(self->views, name, v)) {
		Py_DECREF(v);
		return NULL;
	}
	return v;
}

/* ---- commands ------------------------------------------------------------------ */

static int client_ready(Engine *self)
{
	if (self->closed) {
		closed_error();
		return -1;
	}
	if (!self->c) {
		PyErr_Format(cqrspy_Error, "engine %s was connected readonly: no submit", self->name);
		return -1;
	}
	return 0;
}

/* The (type, RowSpec) of a command, cached. Borrowed references. */
static int command_spec(Engine *self, PyObject *name, uint32_t *type, RowSpec **spec)
{
	PyObject *t = PyDict_GetItemWithError(self->cmds, name);
	const cqrs_schema *s;
	const char *n;
	int rc;

	if (t) {
		*type = (uint32_t)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(t, 0));
		*spec = (RowSpec *)PyTuple_GET_ITEM(t, 1);
		return 0;
	}
	if (PyErr_Occurred())
		return -1;
	n = PyUnicode_AsUTF8(name);
	if (!n)
		return -1;
	rc = cqrs_client_command_type(self->c, n, type, &s);
	if (rc) {
		if (rc == CQRS_ENOTFOUND)
			PyErr_Format(cqrspy_NotFound, "engine %s has no command %R", self->name, name);
		else
			cqrspy_raise(rc, "command lookup", NULL, 1);
		return -1;
	}
	*spec = cqrspy_rowspec_new(s, NULL, NULL, 0);
	if (!*spec)
		return -1;
	t = Py_BuildValue("(kN)", (unsigned long)*type, (PyObject *)*spec);
	if (!t || PyDict_SetItem(self->cmds, name, t)) {
		Py_XDECREF(t);
		return -1;
	}
	Py_DECREF(t); /* the dict keeps spec alive */
	return 0;
}

static PyObject *engine_commands(Engine *self, PyObject *unused)
{
	PyObject *l;
	int n;

	(void)unused;
	if (client_ready(self))
		return NULL;
	n = cqrs_client_command_count(self->c);
	if (n < 0)
		return cqrspy_raise(n, "list commands", NULL, 1);
	l = PyList_New(0);
	for (int i = 0; l && i < n; i++) {
		const cqrs_schema *s;
		PyObject *str;
		if (cqrs_client_command_at(self->c, i, NULL, &s))
			continue;
		str = PyUnicode_FromStringAndSize(s->name, (Py_ssize_t)strnlen(s->name, CQRS_NAME_MAX));
		if (!str || PyList_Append(l, str))
			Py_CLEAR(l);
		Py_XDECREF(str);
	}
	return l;
}

static PyObject *engine_command_schema(Engine *self, PyObject *name)
{
	uint32_t type;
	RowSpec *spec;

	if (client_ready(self))
		return NULL;
	if (!PyUnicode_Check(name)) {
		PyErr_SetString(PyExc_TypeError, "command_schema(name): name must be a str");
		return NULL;
	}
	if (command_spec(self, name, &type, &spec))
		return NULL;
	return cqrspy_rowspec_info(spec);
}

/* Sets the fields of a dict (or NULL) into spec->scratch, marking them in
 * *set; fields already in *set are skipped when skip_set. */
static int set_fields(RowSpec *spec, PyObject *name, PyObject *fields, uint64_t *set, int skip_set)
{
	PyObject *k, *v;
	Py_ssize_t pos = 0;

	if (!fields)
		return 0;
	while (PyDict_Next(fields, &pos, &k, &v)) {
		PyObject *i = PyUnicode_Check(k) ? PyDict_GetItemWithError(spec->index, k) : NULL;
		long fi;

		if (!i) {
			if (!PyErr_Occurred())
				PyErr_Format(PyExc_TypeError, "%U has no field %R", name, k);
			return -1;
		}
		fi = PyLong_AsLong(i);
		if (skip_set && (*set >> fi & 1))
			continue;
		if (cqrspy_set_field(spec, spec->scratch, &spec->s.fields[fi], v))
			return -1;
		*set |= 1ull << fi;
	}
	return 0;
}

/* Encodes fields, then defaults for the fields left out (dicts, or NULL),
 * as a record of spec into spec->scratch: TypeError when a required field
 * is in neither. */
static int encode_command(RowSpec *spec, PyObject *name, PyObject *fields, PyObject *defaults)
{
	uint64_t set = 0, missing;

	memset(spec->scratch, 0, spec->s.size);
	if (set_fields(spec, name, fields, &set, 0) || set_fields(spec, name, defaults, &set, 1))
		return -1;
	missing = spec->required & ~set;
	if (missing) {
		PyObject *l = PyList_New(0), *sep, *j;

		for (uint32_t i = 0; l && i < spec->s.nfields; i++) {
			PyObject *r;
			if (!(missing >> i & 1))
				continue;
			r = PyUnicode_FromFormat("'%s'", spec->s.fields[i].name);
			if (!r || PyList_Append(l, r))
				Py_CLEAR(l);
			Py_XDECREF(r);
		}
		if (!l)
			return -1;
		sep = PyUnicode_FromString(", ");
		j = sep ? PyUnicode_Join(sep, l) : NULL;
		if (j)
			PyErr_Format(PyExc_TypeError,
				     "%U: missing required field%s %U (every field is required; "
				     "submit_with(..., defaults={...}) names those that may be left out)",
				     name, PyList_GET_SIZE(l) > 1 ? "s" : "", j);
		Py_XDECREF(sep);
		Py_XDECREF(j);
		Py_DECREF(l);
		return -1;
	}
	return 0;
}

static int get_u64(PyObject *o, const char *what, uint64_t *out)
{
	unsigned long long x;

	if (!o || o == Py_None)
		return 0;
	if (!PyLong_Check(o) || PyBool_Check(o)) { /* True is an int subclass, not a number here */
		PyErr_Format(PyExc_TypeError, "%s must be an int, not %.64s", what, Py_TYPE(o)->tp_name);
		return -1;
	}
	x = PyLong_AsUnsignedLongLong(o);
	if (x == (unsigned long long)-1 && PyErr_Occurred())
		return -1;
	*out = x;
	return 1;
}

static PyObject *do_submit(Engine *self, PyObject *name, PyObject *fields, PyObject *aggregate,
			   PyObject *expected, PyObject *client_seq, PyObject *timeout,
			   PyObject *defaults)
{
	cqrs_submit_opts opts;
	cqrs_result res;
	uint32_t type;
	RowSpec *spec;
	uint64_t tmo, deadline, rid, now;
	int rc, got;

	if (client_ready(self))
		return NULL;
	if (!PyUnicode_Check(name)) {
		PyErr_SetString(PyExc_TypeError, "submit: the command name must be a str");
		return NULL;
	}
	memset(&opts, 0, sizeof opts);
	if (get_u64(aggregate, "aggregate_id", &opts.aggregate_id) < 0 ||
	    (got = get_u64(expected, "expected_version", &opts.expected_version)) < 0 ||
	    get_u64(client_seq, "client_seq", &opts.client_seq) < 0 || cqrspy_timeout_ns(timeout, &tmo))
		return NULL;
	if (got > 0)
		opts.flags |= CQRS_CMD_EXPECT_VERSION;
	Py_INCREF(self);
	if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
		Py_BEGIN_ALLOW_THREADS
		PyThread_acquire_lock(self->lock, WAIT_LOCK);
		Py_END_ALLOW_THREADS
	}
	if (client_ready(self) || command_spec(self, name, &type, &spec) ||
	    encode_command(spec, name, fields, defaults))
		goto fail;
	now = mono_ns();
	deadline = tmo == UINT64_MAX || tmo > UINT64_MAX - now ? UINT64_MAX : now + tmo;
	/* Results of abandoned requests are dropped first, so that the ring of
	 * uncollected results never fills up. */
	while (cqrs_client_pending(self->c) > 0 && cqrs_client_poll(self->c, &res) == 1)
		;
	for (;;) {
		rc = cqrs_client_send(self->c, type, spec->scratch, spec->s.size, &opts, &rid);
		if (rc != -EAGAIN)
			break;
		/* Request ring full or results uncollected: collect, then retry. */
		Py_BEGIN_ALLOW_THREADS
		rc = cqrs_client_wait(self->c, &res, 1000000);
		Py_END_ALLOW_THREADS
		if (rc < 0 && rc != -ETIMEDOUT && rc != -EAGAIN)
			break;
		if (PyErr_CheckSignals())
			goto fail;
		if (mono_ns() >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	if (rc) {
		cqrspy_raise(rc, "submit", NULL, 0);
		goto fail;
	}
	for (;;) {
		uint64_t slice;

		now = mono_ns();
		if (now >= deadline) {
			PyErr_Format(PyExc_TimeoutError,
				     "submit %U: no answer in time (the engine may still process it)",
				     name);
			goto fail;
		}
		slice = deadline - now < SLICE_NS ? deadline - now : SLICE_NS;
		Py_BEGIN_ALLOW_THREADS
		rc = cqrs_client_wait(self->c, &res, slice);
		Py_END_ALLOW_THREADS
		if (rc == 1 && res.request_id == rid)
			break;
		if (rc < 0 && rc != -ETIMEDOUT) {
			cqrspy_raise(rc, "submit", NULL, 0);
			goto fail;
		}
		if (PyErr_CheckSignals())
			goto fail;
	}
	PyThread_release_lock(self->lock);
	Py_DECREF(self);
	if (res.status == 0)
		return PyLong_FromUnsignedLongLong(res.seq);
	{
		char what[96];
		const char *n = PyUnicode_AsUTF8(name);
		res.reason[sizeof res.reason - 1] = 0;
		snprintf(what, sizeof what, "%s", n ? n : "submit");
		return cqrspy_raise_seq(res.status, what, res.reason, 0,
					res.status == CQRS_EDUPLICATE ? &res.seq : NULL);
	}
fail:
	PyThread_release_lock(self->lock);
	Py_DECREF(self);
	return NULL;
}

static PyObject *engine_submit(Engine *self, PyObject *args, PyObject *kwargs)
{
	if (PyTuple_GET_SIZE(args) != 1) {
		PyErr_SetString(PyExc_TypeError, "submit(command, /, **fields)");
		return NULL;
	}
	return do_submit(self, PyTuple_GET_ITEM(args, 0), kwargs, NULL, NULL, NULL, NULL, NULL);
}

static PyObject *engine_submit_with(Engine *self, PyObject *args, PyObject *kwargs)
{
	static char *kw[] = { "command", "fields", "aggregate_id", "expected_version", "client_seq",
			      "timeout", "defaults", NULL };
	PyObject *name, *fields = NULL, *agg = NULL, *exp = NULL, *cs = NULL, *tmo = NULL;
	PyObject *defaults = NULL;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "U|O$OOOOO:submit_with", kw, &name, &fields,
					 &agg, &exp, &cs, &tmo, &defaults))
		return NULL;
	if (fields == Py_None)
		fields = NULL;
	if (defaults == Py_None)
		defaults = NULL;
	if ((fields && !PyDict_Check(fields)) || (defaults && !PyDict_Check(defaults))) {
		PyErr_Format(PyExc_TypeError, "submit_with: %s must be a dict or None, not %.64s",
			     fields && !PyDict_Check(fields) ? "fields" : "defaults",
			     Py_TYPE(fields && !PyDict_Check(fields) ? fields : defaults)->tp_name);
		return NULL;
	}
	return do_submit(self, name, fields, agg, exp, cs, tmo, defaults);
}

static PyObject *engine_client_id(Engine *self, void *closure)
{
	(void)closure;
	if (self->closed)
		return closed_error();
	if (!self->c)
		Py_RETURN_NONE;
	return PyLong_FromUnsignedLongLong(cqrs_client_id(self->c));
}

static PyObject *engine_close(Engine *self, PyObject *unused)
{
	(void)unused;
	if (self->lock) {
		Py_BEGIN_ALLOW_THREADS
		PyThread_acquire_lock(self->lock, WAIT_LOCK);
		Py_END_ALLOW_THREADS
		engine_close_all(self);
		PyThread_release_lock(self->lock);
		Py_RETURN_NONE;
	}
	engine_close_all(self);
	Py_RETURN_NONE;
}

static PyObject *engine_enter(Engine *self, PyObject *unused)
{
	(void)unused;
	if (self->closed)
		return closed_error();
	return Py_NewRef(self);
}

static PyObject *engine_exit(Engine *self, PyObject *args)
{
	PyObject *r = engine_close(self, NULL);

	(void)args;
	if (!r)
		return NULL;
	Py_DECREF(r);
	Py_RETURN_FALSE;
}

static PyObject *engine_name(Engine *self, void *closure)
{
	(void)closure;
	return PyUnicode_FromString(self->name);
}

static PyObject *engine_closed(Engine *self, void *closure)
{
	(void)closure;
	return PyBool_FromLong(self->closed);
}

static PyObject *engine_repr(Engine *self)
{
	return PyUnicode_FromFormat("<cqrs.Engine %s%s%s>", self->name,
				    self->readonly ? " (readonly)" : "", self->closed ? " (closed)" : "");
}

static PyMethodDef engine_methods[] = {
	{ "views", (PyCFunction)engine_views, METH_NOARGS,
	  "views($self, /)\n--\n\nThe engine's view names (list of str)." },
	{ "view", (PyCFunction)engine_view, METH_O,
	  "view($self, name, /)\n--\n\nThe View named name (one per name and Engine); raises cqrs.NotFound." },
	{ "commands", (PyCFunction)engine_commands, METH_NOARGS,
	  "commands($self, /)\n--\n\nThe engine's command names (list of str)." },
	{ "command_schema", (PyCFunction)engine_command_schema, METH_O,
	  "command_schema($self, name, /)\n--\n\nThe cqrs.Schema of a command." },
	{ "submit", (PyCFunction)(void (*)(void))engine_submit, METH_VARARGS | METH_KEYWORDS,
	  "submit($self, command, /, **fields)\n--\n\n"
	  "Encodes the fields through the command's schema (every field but padding\n"
	  "is required: TypeError naming those left out), submits it and waits for\n"
	  "the answer: the seq to pass to View.wait, or cqrs.Rejected / Conflict /\n"
	  "Duplicate (with .reason), cqrs.Stopped." },
	{ "submit_with", (PyCFunction)(void (*)(void))engine_submit_with, METH_VARARGS | METH_KEYWORDS,
	  "submit_with($self, command, fields=None, *, aggregate_id=None, expected_version=None,"
	  " client_seq=None, timeout=None, defaults=None)\n--\n\n"
	  "submit() with options: expected_version (optimistic concurrency on\n"
	  "aggregate_id: cqrs.Conflict when it differs), client_seq (idempotency key:\n"
	  "cqrs.Duplicate, with .seq, when repeated), timeout in seconds (TimeoutError),\n"
	  "defaults (a dict: values for the fields that may be left out of fields)." },
	{ "close", (PyCFunction)engine_close, METH_NOARGS,
	  "close($self, /)\n--\n\nCloses its views and gateway client." },
	{ "__enter__", (PyCFunction)engine_enter, METH_NOARGS, "__enter__($self, /)\n--\n\n" },
	{ "__exit__", (PyCFunction)engine_exit, METH_VARARGS,
	  "__exit__($self, exc_type, exc_value, traceback, /)\n--\n\nCloses the engine." },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef engine_getset[] = {
	{ "name", (getter)engine_name, NULL, "engine name", NULL },
	{ "closed", (getter)engine_closed, NULL, "True after close()", NULL },
	{ "client_id", (getter)engine_client_id, NULL,
	  "the gateway connection's client id (None when readonly)", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

PyTypeObject cqrspy_EngineType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cqrs.Engine",
	.tp_basicsize = sizeof(Engine),
	.tp_dealloc = (destructor)engine_dealloc,
	.tp_repr = (reprfunc)engine_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A connection to a running engine (cqrs.connect(name)).",
	.tp_methods = engine_methods,
	.tp_getset = engine_getset,
};
