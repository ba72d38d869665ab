/*
 * bindings/python/src/cqrs_py.h - internals shared by the CPython extension
 * `cqrs._cqrs` (module.c, schema.c, row.c, view.c, iter.c, engine.c), which
 * the package `cqrs` (bindings/python/cqrs/) re-exports.
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
 *   RowIter a lazy iterator over a scan or a find (one cqrs_view_scan_from
 *           or cqrs_view_find_from step at a time) or over rows copied out
 *           in one piece (snapshots): Rows are made as it is advanced.
 *
 * Padding fields (named pad, padN, _pad or _padN: the examples' explicit
 * alignment fields) carry no data: Rows, dicts and arrays leave them out;
 * the Schema still lists them (cqrs.Field.padding).
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
	uint32_t nvis;        /* fields that are not padding */
	uint8_t vis[CQRS_SCHEMA_MAX_FIELDS]; /* their indexes in s.fields, in order */
	uint64_t required;    /* bit i: field i is not padding */
} RowSpec;

/* Whether a field named name is padding (see above). */
int cqrspy_is_padding(const char *name);

extern PyTypeObject cqrspy_RowSpecType;
extern PyTypeObject *cqrspy_SchemaType; /* structseq cqrs.Schema */
extern PyTypeObject *cqrspy_FieldType;  /* structseq cqrs.Field */

/* A new RowSpec for s (copied). key_field may be NULL. */
RowSpec *cqrspy_rowspec_new(const cqrs_schema *s, const char *key_field,
			    const char (*indexes)[CQRS_NAME_MAX], unsigned nindexes);

/* The cqrs.Schema value of spec (new reference). */
PyObject *cqrspy_rowspec_info(RowSpec *spec);

/* Decodes field i of rec (spec->s.size bytes) to a Python value; with
 * CQRSPY_DATETIMES a ts field becomes a UTC datetime (None for 0). */
#define CQRSPY_DATETIMES 1
PyObject *cqrspy_decode_field_as(RowSpec *spec, const uint8_t *rec, int i, int flags);
#define cqrspy_decode_field(spec, rec, i) cqrspy_decode_field_as(spec, rec, i, 0)

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
	int flags;         /* CQRSPY_DATETIMES */
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
		r->flags = 0;
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

/* Brings the View's spec and generation up to date with its handle (cold):
 * 0, or -1 with an exception set. */
int cqrspy_view_sync(View *self);

/* Raises the error of rc for an operation op on the view. */
PyObject *cqrspy_view_raise(View *self, int rc, const char *op);

/* ---- iterators (iter.c) ----------------------------------------------------- */

extern PyTypeObject cqrspy_RowIterType;

/* A lazy scan of view (plain: each row consistent on its own). */
PyObject *cqrspy_iter_scan(View *view, int flags);

/* A lazy plain find of field == key (the key field's bytes, a bytes
 * object) in view. */
PyObject *cqrspy_iter_find(View *view, const char *field, PyObject *key, int flags);

/* An iterator over n rows of spec's size in buf (a bytes or bytearray
 * object it keeps). */
PyObject *cqrspy_iter_rows(View *view, RowSpec *spec, PyObject *buf, Py_ssize_t n, int flags);

/* ---- engines (engine.c) --------------------------------------------------- */

extern PyTypeObject cqrspy_EngineType;

/* cqrs.connect(name, *, readonly=False) */
PyObject *cqrspy_connect(PyObject *module, PyObject *args, PyObject *kwargs);

#endif /* CQRS_PY_H */
