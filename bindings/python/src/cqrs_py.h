/*
 * bindings/python/src/cqrs_py.h - internals shared by the CPython module
 * `cqrs` (module.c, schema.c, row.c, view.c, engine.c).
 *
 * Object model
 *   Engine  one connection to a running engine: its name, its open views
 *           (cached by name) and, when the gateway client is built in and
 *           the engine was not opened read-only, one cqrs_client.
 *   View    one cqrs_view handle (the GIL makes it single-threaded) plus a
 *           small pool of extra handles that View.wait blocks on with the
 *           GIL released, so other threads keep reading meanwhile.
 *   RowSpec one row schema in Python terms: a private copy of the
 *           cqrs_schema, interned field names, name -> index maps. Shared
 *           (reference counted) by a view and every Row it returned, so a
 *           Row decodes with the schema it was read under even after the
 *           engine rebuilt the view with another one.
 *   Row     the raw row bytes (one consistent copy made by cqrs_view_get
 *           straight into the object) and a reference to its RowSpec. A
 *           field is decoded through cqrs_record_get when it is accessed:
 *           View.get allocates exactly one object.
 *
 * Caveats
 *   - A View or Engine must not be used after close (calls raise
 *     ValueError); Rows stay valid: they own their bytes.
 */
#ifndef CQRS_PY_H
#define CQRS_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <stdint.h>

#include "cqrs_common.h"
#include "cqrs_schema.h"
#include "cqrs_view.h"

#include "cqrs_client.h"

/* ---- errors (module.c) ---------------------------------------------------- */

extern PyObject *cqrspy_Error;     /* cqrs.Error(Exception) */
extern PyObject *cqrspy_Rejected;  /* cqrs.Rejected(Error) */
extern PyObject *cqrspy_Conflict;  /* cqrs.Conflict(Error) */
extern PyObject *cqrspy_Duplicate; /* cqrs.Duplicate(Error) */
extern PyObject *cqrspy_NotFound;  /* cqrs.NotFound(Error, LookupError) */
extern PyObject *cqrspy_Stopped;   /* cqrs.Stopped(Error) */

/* Raises the exception for code (a cqrs or -errno code) and returns NULL.
 * what names the operation ("open view orders/x"); reason is the engine's
 * reason (or NULL); detail, when nonzero, appends cqrs_last_error(). */
PyObject *cqrspy_raise(int code, const char *what, const char *reason, int detail);

/* The same, also setting the exception's .seq (a submit's result). */
PyObject *cqrspy_raise_seq(int code, const char *what, const char *reason, int detail,
			   const uint64_t *seq);

/* The symbolic name of a code: "CQRS_EREJECTED", "ENOENT", ... */
const char *cqrspy_code_name(int code);

/* Seconds (None or a non-negative number) to nanoseconds; UINT64_MAX for
 * None. Returns -1 with an exception set on bad input. */
int cqrspy_timeout_ns(PyObject *timeout, uint64_t *out);

/* ---- row schemas (schema.c) ---------------------------------------------- */

typedef struct RowSpec {
	PyObject_HEAD
	cqrs_schema s;        /* private copy */
	uint64_t hash;        /* cqrs_schema_hash(&s) */
	PyObject *names;      /* tuple of interned field names, in order */
	PyObject *index;      /* dict name -> int (every field; mapping access) */
	PyObject *attrs;      /* dict name -> int (fields that do not shadow Row methods) */
	PyObject *info;       /* the cqrs.Schema value, built on first use (or NULL) */
	int key;              /* index of the key field, -1 if none (commands) */
	uint8_t *scratch;     /* s.size bytes: encoding keys and values */
} RowSpec;

extern PyTypeObject cqrspy_RowSpecType;
extern PyTypeObject *cqrspy_SchemaType; /* structseq cqrs.Schema */
extern PyTypeObject *cqrspy_FieldType;  /* structseq cqrs.Field */

/* A new RowSpec for s (copied). key_field may be NULL. */
RowSpec *cqrspy_rowspec_new(const cqrs_schema *s, const char *key_field,
			    const char (*indexes)[CQRS_NAME_MAX], unsigned nindexes);

/* The cqrs.Schema value of spec (new reference). */
PyObject *cqrspy_rowspec_info(RowSpec *spec);

/* Decodes field i of rec (spec->s.size bytes) to a Python value. */
PyObject *cqrspy_decode_field(RowSpec *spec, const uint8_t *rec, int i);

/* Encodes value as field f into the field's bytes at out (f->size bytes).
 * Returns 0, or -1 with TypeError / OverflowError / ValueError set. */
int cqrspy_encode_field(RowSpec *spec, const cqrs_field *f, PyObject *value, uint8_t *out);

/* Sets field f of record rec (spec->s.size bytes) from value; as above. */
int cqrspy_set_field(RowSpec *spec, uint8_t *rec, const cqrs_field *f, PyObject *value);

int cqrspy_schema_types_init(PyObject *module);

/* ---- rows (row.c) --------------------------------------------------------- */

typedef struct Row {
	PyObject_VAR_HEAD  /* ob_size: the row's byte count */
	RowSpec *spec;
	uint8_t data[1];   /* ob_size bytes (tp_itemsize 1) */
} Row;

extern PyTypeObject cqrspy_RowType;

/* A new Row for spec with uninitialised data (the caller fills it). */
static inline Row *cqrspy_row_alloc(RowSpec *spec)
{
	Row *r = PyObject_NewVar(Row, &cqrspy_RowType, (Py_ssize_t)spec->s.size);

	if (r) {
		Py_INCREF(spec);
		r->spec = spec;
	}
	return r;
}

/* ---- views (view.c) ------------------------------------------------------- */

#define CQRSPY_WAIT_POOL 4

typedef struct View {
	PyObject_HEAD
	cqrs_view *v;            /* NULL once closed */
	RowSpec *spec;           /* schema of the generation last seen */
	uint64_t generation;
	const cqrs_field *key;   /* into spec->s */
	PyObject *engine_name;   /* str */
	PyObject *name;          /* str */
	cqrs_view *pool[CQRSPY_WAIT_POOL]; /* idle handles for wait */
	int npool;
	PyObject *weakrefs;
} View;

extern PyTypeObject cqrspy_ViewType;

/* Opens view `name` of engine `engine`: a new View or NULL with an
 * exception set. */
PyObject *cqrspy_view_open(const char *engine, const char *name);

/* ---- engines (engine.c) --------------------------------------------------- */

extern PyTypeObject cqrspy_EngineType;

/* cqrs.connect(name, *, readonly=False) */
PyObject *cqrspy_connect(PyObject *module, PyObject *args, PyObject *kwargs);

#endif /* CQRS_PY_H */
