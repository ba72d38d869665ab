/*
 * bindings/python/src/module.c - the extension `cqrs._cqrs` (the package
 * cqrs re-exports it): exceptions, error mapping, cqrs.connect, module
 * initialisation.
 *
 * Errors
 *   Every failure of the library becomes a cqrs.Error (or a subclass) whose
 *   instances carry .code (the int the C API returned), .name ("ENOENT",
 *   "CQRS_EREJECTED", ...) and .reason (the engine's reason for a rejected
 *   command, else None):
 *     CQRS_EREJECTED  -> cqrs.Rejected     CQRS_ENOTFOUND, -ENOENT -> cqrs.NotFound
 *     CQRS_ECONFLICT  -> cqrs.Conflict     CQRS_ESTOPPED           -> cqrs.Stopped
 *     CQRS_EDUPLICATE -> cqrs.Duplicate    anything else           -> cqrs.Error
 *   View.wait maps a writer that died after marking its views clean (a
 *   clean stop) to CQRS_ESTOPPED, so it raises cqrs.Stopped.
 *   Misuse is reported the Python way: TypeError (wrong argument type),
 *   OverflowError / ValueError (value does not fit the field), ValueError
 *   (closed object), TimeoutError (submit timed out).
 */
#include "cqrs_py.h"

#include <string.h>

PyObject *cqrspy_Error, *cqrspy_Rejected, *cqrspy_Conflict, *cqrspy_Duplicate, *cqrspy_NotFound,
	*cqrspy_Stopped;

const char *cqrspy_code_name(int code)
{
	return cqrs_errname(code);
}

static PyObject *exc_for(int code)
{
	switch (code) {
	case CQRS_EREJECTED: return cqrspy_Rejected;
	case CQRS_ECONFLICT: return cqrspy_Conflict;
	case CQRS_EDUPLICATE: return cqrspy_Duplicate;
	case CQRS_ENOTFOUND: case -ENOENT: return cqrspy_NotFound;
	case CQRS_ESTOPPED: return cqrspy_Stopped;
	default: return cqrspy_Error;
	}
}

PyObject *cqrspy_raise(int code, const char *what, const char *reason, int detail)
{
	return cqrspy_raise_seq(code, what, reason, detail, NULL);
}

PyObject *cqrspy_raise_seq(int code, const char *what, const char *reason, int detail,
			   const uint64_t *seq)
{
	const char *name = cqrspy_code_name(code);
	const char *last = detail ? cqrs_last_error() : "";
	PyObject *type = exc_for(code), *msg, *exc;

	if (reason && *reason)
		msg = PyUnicode_FromFormat("%s: %s (%s)", what, reason, name);
	else if (last && *last)
		msg = PyUnicode_FromFormat("%s: %s (%s; %s)", what, cqrs_strerror(code), name, last);
	else
		msg = PyUnicode_FromFormat("%s: %s (%s)", what, cqrs_strerror(code), name);
	if (!msg)
		return NULL;
	exc = PyObject_CallOneArg(type, msg);
	Py_DECREF(msg);
	if (!exc)
		return NULL;
	{
		PyObject *c = PyLong_FromLong(code), *n = PyUnicode_FromString(name);
		PyObject *r = reason && *reason ? PyUnicode_DecodeUTF8(reason, (Py_ssize_t)strlen(reason),
								       "replace")
						: Py_NewRef(Py_None);
		PyObject *s = seq ? PyLong_FromUnsignedLongLong(*seq) : Py_NewRef(Py_None);
		if (!c || !n || !r || !s || PyObject_SetAttrString(exc, "code", c) ||
		    PyObject_SetAttrString(exc, "name", n) || PyObject_SetAttrString(exc, "reason", r) ||
		    PyObject_SetAttrString(exc, "seq", s)) {
			Py_XDECREF(c);
			Py_XDECREF(n);
			Py_XDECREF(r);
			Py_XDECREF(s);
			Py_DECREF(exc);
			return NULL;
		}
		Py_DECREF(c);
		Py_DECREF(n);
		Py_DECREF(r);
		Py_DECREF(s);
	}
	PyErr_SetObject(type, exc);
	Py_DECREF(exc);
	return NULL;
}

int cqrspy_timeout_ns(PyObject *timeout, uint64_t *out)
{
	double s;

	if (!timeout || timeout == Py_None) {
		*out = UINT64_MAX;
		return 0;
	}
	s = PyFloat_AsDouble(timeout);
	if (s == -1.0 && PyErr_Occurred())
		return -1;
	if (!(s >= 0)) {
		PyErr_SetString(PyExc_ValueError, "timeout must be None or >= 0 seconds");
		return -1;
	}
	*out = s >= 1.8e10 ? UINT64_MAX : (uint64_t)(s * 1e9);
	return 0;
}

static PyObject *mod_strerror(PyObject *self, PyObject *arg)
{
	long code = PyLong_AsLong(arg);

	(void)self;
	if (code == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(cqrs_strerror((int)code));
}

static PyMethodDef module_methods[] = {
	{ "connect", (PyCFunction)(void (*)(void))cqrspy_connect, METH_VARARGS | METH_KEYWORDS,
	  "connect($module, engine, *, readonly=False, client_id=None)\n--\n\n"
	  "Connects to the running engine named `engine`: its views for reading and,\n"
	  "unless readonly, its command gateway for submit(). client_id (an int or a\n"
	  "name) is a stable identity whose dedup window survives reconnects and engine\n"
	  "restarts; its submits need an explicit client_seq. Raises cqrs.NotFound when\n"
	  "no such engine runs." },
	{ "strerror", mod_strerror, METH_O,
	  "strerror($module, code, /)\n--\n\nThe library's description of an error code (str)." },
	{ NULL, NULL, 0, NULL }
};

static struct PyModuleDef module_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "cqrs._cqrs",
	.m_doc = "Read the views of a running cqrs engine from shared memory and submit\n"
		 "commands to it.\n\n"
		 "    import cqrs\n"
		 "    eng = cqrs.connect(\"orders\")\n"
		 "    seq = eng.submit(\"CreateOrder\", order_id=1, customer_id=7, item_count=2,\n"
		 "                     total=1999, shipping_address=\"1 Main St\")\n"
		 "    v = eng.view(\"order_summaries\")\n"
		 "    v.wait(seq)                      # read your write\n"
		 "    row = v.get(1)                   # Row or None\n"
		 "    row.total, row[\"status\"], dict(row)\n",
	.m_size = -1,
	.m_methods = module_methods,
};

static int add_exc(PyObject *m, PyObject **slot, const char *name, PyObject *bases, const char *doc)
{
	char full[64];

	snprintf(full, sizeof full, "cqrs.%s", name);
	*slot = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
	if (!*slot)
		return -1;
	Py_INCREF(*slot);
	return PyModule_AddObject(m, name, *slot) ? (Py_DECREF(*slot), -1) : 0;
}

static int add_type(PyObject *m, PyTypeObject *t, const char *name)
{
	if (PyType_Ready(t))
		return -1;
	Py_INCREF(t);
	if (PyModule_AddObject(m, name, (PyObject *)t)) {
		Py_DECREF(t);
		return -1;
	}
	return 0;
}

/* Registers Row with collections.abc.Mapping (isinstance checks). */
static int register_mapping(void)
{
	PyObject *abc = PyImport_ImportModule("collections.abc"), *mapping, *r;

	if (!abc)
		return -1;
	mapping = PyObject_GetAttrString(abc, "Mapping");
	Py_DECREF(abc);
	if (!mapping)
		return -1;
	r = PyObject_CallMethod(mapping, "register", "O", (PyObject *)&cqrspy_RowType);
	Py_DECREF(mapping);
	if (!r)
		return -1;
	Py_DECREF(r);
	return 0;
}

PyMODINIT_FUNC PyInit__cqrs(void)
{
	PyObject *m = PyModule_Create(&module_def), *bases;

	if (!m)
		return NULL;
	if (add_exc(m, &cqrspy_Error, "Error", NULL,
		    "A cqrs library error: .code (int), .name (str), .reason (str or None),\n"
		    ".seq (the original command's seq for Duplicate, else None)."))
		goto fail;
	if (add_exc(m, &cqrspy_Rejected, "Rejected", cqrspy_Error,
		    "The engine rejected the command; .reason says why.") ||
	    add_exc(m, &cqrspy_Conflict, "Conflict", cqrspy_Error,
		    "The aggregate was not at the expected version.") ||
	    add_exc(m, &cqrspy_Duplicate, "Duplicate", cqrspy_Error,
		    "The engine already processed this (client, client_seq).") ||
	    add_exc(m, &cqrspy_Stopped, "Stopped", cqrspy_Error,
		    "The engine stopped (cleanly: View.wait) or went away; connect again."))
		goto fail;
	bases = PyTuple_Pack(2, cqrspy_Error, PyExc_LookupError);
	if (!bases)
		goto fail;
	if (add_exc(m, &cqrspy_NotFound, "NotFound", bases,
		    "No such engine, view, field or command.")) {
		Py_DECREF(bases);
		goto fail;
	}
	Py_DECREF(bases);
	if (PyType_Ready(&cqrspy_RowSpecType) || add_type(m, &cqrspy_RowType, "Row") ||
	    add_type(m, &cqrspy_ViewType, "View") || add_type(m, &cqrspy_EngineType, "Engine") ||
	    add_type(m, &cqrspy_RowIterType, "RowIterator") ||
	    cqrspy_schema_types_init(m) || register_mapping())
		goto fail;
	if (PyModule_AddStringConstant(m, "__version__", "0.1.0") ||
	    /* Always 1: the gateway client is part of libcqrs_client. Kept
	     * for scripts written when it could be absent. */
	    PyModule_AddIntConstant(m, "HAVE_CLIENT", 1))
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
