/*
 * bindings/python/src/schema.c - row schemas in Python terms (RowSpec), the
 * cqrs.Schema / cqrs.Field values, and the conversions between Python
 * values and record fields. Decoding and encoding go through the library's
 * cqrs_record_get / cqrs_record_set, so the binding reads and writes fields
 * exactly as the engine, the CLI and the C API do.
 *
 * Field types in Python
 *   u8..u64, i8..i64, ts   int            (ts: nanoseconds since the epoch;
 *                                          bool refused: TypeError; with
 *                                          datetimes=True a ts reads as an
 *                                          aware UTC datetime, microsecond
 *                                          precision, and 0 as None)
 *   f64                    float          (ints accepted when encoding, bool
 *                                          refused)
 *   bool                   bool           (0/1 accepted when encoding)
 *   str                    str            (UTF-8; up to the first NUL;
 *                                          undecodable bytes surrogate-escaped;
 *                                          bytes accepted when encoding; a
 *                                          value holding a NUL is refused:
 *                                          ValueError)
 *   bytes                  bytes          (the whole field; str accepted when
 *                                          encoding, as UTF-8)
 */
#include "cqrs_py.h"

#include <datetime.h>
#include <string.h>

PyTypeObject *cqrspy_SchemaType, *cqrspy_FieldType;

static PyStructSequence_Field schema_fields[] = {
	{ "name", "record name" },
	{ "size", "record size in bytes" },
	{ "hash", "schema hash (XXH3-64 of the canonical form)" },
	{ "key", "key field name (views), or None" },
	{ "indexes", "tuple of secondary-indexed field names (views)" },
	{ "fields", "tuple of cqrs.Field" },
	{ NULL, NULL }
};
static PyStructSequence_Desc schema_desc = { "cqrs.Schema", "A record schema.", schema_fields, 6 };

static PyStructSequence_Field field_fields[] = {
	{ "name", "field name" },
	{ "type", "field type name: u8 .. u64, i8 .. i64, f64, bool, ts, str, bytes" },
	{ "offset", "byte offset in the record" },
	{ "size", "size in bytes" },
	{ "padding", "True for a padding field (pad, padN, _pad, _padN): no data, left out of rows" },
	{ NULL, NULL }
};
static PyStructSequence_Desc field_desc = { "cqrs.Field", "One field of a record schema.",
					    field_fields, 5 };

static PyObject *epoch; /* datetime(1970, 1, 1, tzinfo=timezone.utc) */

int cqrspy_is_padding(const char *name)
{
	const char *p = name[0] == '_' ? name + 1 : name;

	if (strncmp(p, "pad", 3))
		return 0;
	for (p += 3; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

int cqrspy_schema_types_init(PyObject *m)
{
	cqrspy_SchemaType = PyStructSequence_NewType(&schema_desc);
	if (!cqrspy_SchemaType)
		return -1;
	cqrspy_FieldType = PyStructSequence_NewType(&field_desc);
	if (!cqrspy_FieldType)
		return -1;
	Py_INCREF(cqrspy_SchemaType);
	if (PyModule_AddObject(m, "Schema", (PyObject *)cqrspy_SchemaType)) {
		Py_DECREF(cqrspy_SchemaType);
		return -1;
	}
	Py_INCREF(cqrspy_FieldType);
	if (PyModule_AddObject(m, "Field", (PyObject *)cqrspy_FieldType)) {
		Py_DECREF(cqrspy_FieldType);
		return -1;
	}
	PyDateTime_IMPORT;
	if (!PyDateTimeAPI)
		return -1;
	epoch = PyDateTimeAPI->DateTime_FromDateAndTime(1970, 1, 1, 0, 0, 0, 0, PyDateTime_TimeZone_UTC,
							 PyDateTimeAPI->DateTimeType);
	return epoch ? 0 : -1;
}

/* ---- RowSpec ---------------------------------------------------------------- */

static void rowspec_dealloc(RowSpec *self)
{
	Py_XDECREF(self->names);
	Py_XDECREF(self->index);
	Py_XDECREF(self->attrs);
	Py_XDECREF(self->info);
	PyMem_Free(self->scratch);
	PyObject_Free(self);
}

PyTypeObject cqrspy_RowSpecType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cqrs._RowSpec",
	.tp_basicsize = sizeof(RowSpec),
	.tp_dealloc = (destructor)rowspec_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "internal: a row schema shared by a view and its rows",
};

static PyObject *build_info(const RowSpec *spec, const char *key_field,
			    const char (*indexes)[CQRS_NAME_MAX], unsigned nindexes)
{
	PyObject *info = PyStructSequence_New(cqrspy_SchemaType), *fields, *idx;

	if (!info)
		return NULL;
	fields = PyTuple_New(spec->s.nfields);
	idx = PyTuple_New(nindexes);
	if (!fields || !idx)
		goto fail;
	for (uint32_t i = 0; i < spec->s.nfields; i++) {
		const cqrs_field *f = &spec->s.fields[i];
		PyObject *fo = PyStructSequence_New(cqrspy_FieldType);
		if (!fo)
			goto fail;
		PyTuple_SET_ITEM(fields, i, fo);
		PyStructSequence_SET_ITEM(fo, 0, PyUnicode_FromStringAndSize(f->name,
			(Py_ssize_t)strnlen(f->name, CQRS_NAME_MAX)));
		PyStructSequence_SET_ITEM(fo, 1, PyUnicode_FromString(cqrs_ftype_name(f->type)));
		PyStructSequence_SET_ITEM(fo, 2, PyLong_FromUnsignedLong(f->offset));
		PyStructSequence_SET_ITEM(fo, 3, PyLong_FromUnsignedLong(f->size));
		PyStructSequence_SET_ITEM(fo, 4, PyBool_FromLong(cqrspy_is_padding(f->name)));
		if (!PyStructSequence_GET_ITEM(fo, 0) || !PyStructSequence_GET_ITEM(fo, 1) ||
		    !PyStructSequence_GET_ITEM(fo, 2) || !PyStructSequence_GET_ITEM(fo, 3))
			goto fail;
	}
	for (unsigned i = 0; i < nindexes; i++) {
		PyObject *n = PyUnicode_FromStringAndSize(indexes[i], (Py_ssize_t)strnlen(indexes[i], CQRS_NAME_MAX));
		if (!n)
			goto fail;
		PyTuple_SET_ITEM(idx, i, n);
	}
	PyStructSequence_SET_ITEM(info, 0, PyUnicode_FromStringAndSize(spec->s.name,
		(Py_ssize_t)strnlen(spec->s.name, CQRS_NAME_MAX)));
	PyStructSequence_SET_ITEM(info, 1, PyLong_FromUnsignedLong(spec->s.size));
	PyStructSequence_SET_ITEM(info, 2, PyLong_FromUnsignedLongLong(spec->hash));
	PyStructSequence_SET_ITEM(info, 3, key_field && *key_field ? PyUnicode_FromString(key_field)
								  : Py_NewRef(Py_None));
	PyStructSequence_SET_ITEM(info, 4, idx);
	PyStructSequence_SET_ITEM(info, 5, fields);
	for (int i = 0; i < 4; i++)
		if (!PyStructSequence_GET_ITEM(info, i)) {
			Py_DECREF(info);
			return NULL;
		}
	return info;
fail:
	Py_XDECREF(fields);
	Py_XDECREF(idx);
	Py_DECREF(info);
	return NULL;
}

RowSpec *cqrspy_rowspec_new(const cqrs_schema *s, const char *key_field,
			    const char (*indexes)[CQRS_NAME_MAX], unsigned nindexes)
{
	RowSpec *spec;

	if (cqrs_schema_validate(s)) {
		cqrspy_raise(CQRS_EFORMAT, "schema", NULL, 1);
		return NULL;
	}
	spec = PyObject_New(RowSpec, &cqrspy_RowSpecType);
	if (!spec)
		return NULL;
	spec->s = *s;
	spec->hash = cqrs_schema_hash(s);
	spec->nvis = 0;
	spec->required = 0;
	for (uint32_t i = 0; i < s->nfields; i++)
		if (!cqrspy_is_padding(s->fields[i].name)) {
			spec->vis[spec->nvis++] = (uint8_t)i;
			spec->required |= 1ull << i;
		}
	spec->names = PyTuple_New(spec->nvis);
	spec->index = PyDict_New();
	spec->attrs = PyDict_New();
	spec->info = NULL;
	spec->key = -1;
	spec->scratch = PyMem_Calloc(1, s->size ? s->size : 1);
	if (!spec->names || !spec->index || !spec->attrs || !spec->scratch)
		goto fail;
	for (uint32_t j = 0; j < spec->nvis; j++) {
		uint32_t i = spec->vis[j];
		const char *fn = s->fields[i].name;
		PyObject *name = PyUnicode_FromStringAndSize(fn, (Py_ssize_t)strnlen(fn, CQRS_NAME_MAX));
		PyObject *num;
		int shadow;

		if (!name)
			goto fail;
		PyUnicode_InternInPlace(&name);
		PyTuple_SET_ITEM(spec->names, j, name);
		num = PyLong_FromUnsignedLong(i);
		if (!num || PyDict_SetItem(spec->index, name, num)) {
			Py_XDECREF(num);
			goto fail;
		}
		/* A field named like a Row method (keys, get, _asdict...) stays
		 * reachable as row["keys"], not as an attribute. */
		shadow = PyDict_Contains(cqrspy_RowType.tp_dict, name);
		if (shadow < 0 || (!shadow && PyDict_SetItem(spec->attrs, name, num))) {
			Py_DECREF(num);
			goto fail;
		}
		Py_DECREF(num);
	}
	for (uint32_t i = 0; i < s->nfields; i++)
		if (key_field && !strcmp(s->fields[i].name, key_field))
			spec->key = (int)i;
	spec->info = build_info(spec, key_field, indexes, nindexes);
	if (!spec->info)
		goto fail;
	return spec;
fail:
	Py_DECREF(spec);
	return NULL;
}

PyObject *cqrspy_rowspec_info(RowSpec *spec)
{
	return Py_NewRef(spec->info);
}

/* ---- decoding ----------------------------------------------------------------- */

/* ns since the epoch -> an aware UTC datetime (microseconds), None for 0. */
static PyObject *ts_datetime(int64_t ns)
{
	int64_t us, days, secs;
	PyObject *d, *r;

	if (ns == 0)
		Py_RETURN_NONE;
	us = ns / 1000 - (ns % 1000 < 0);
	days = us / 86400000000ll - (us % 86400000000ll < 0);
	us -= days * 86400000000ll;
	secs = us / 1000000;
	us -= secs * 1000000;
	d = PyDelta_FromDSU((int)days, (int)secs, (int)us);
	if (!d)
		return NULL;
	r = PyNumber_Add(epoch, d);
	Py_DECREF(d);
	return r;
}

PyObject *cqrspy_decode_field_as(RowSpec *spec, const uint8_t *rec, int i, int flags)
{
	const cqrs_field *f = &spec->s.fields[i];
	cqrs_value v;

	if (cqrs_record_get(&spec->s, rec, f, &v))
		return cqrspy_raise(CQRS_EFORMAT, "decode field", NULL, 0);
	switch (f->type) {
	case CQRS_FT_U8: case CQRS_FT_U16: case CQRS_FT_U32: case CQRS_FT_U64:
		return PyLong_FromUnsignedLongLong(v.v.u);
	case CQRS_FT_TS:
		if (flags & CQRSPY_DATETIMES)
			return ts_datetime(v.v.i);
		return PyLong_FromLongLong(v.v.i);
	case CQRS_FT_I8: case CQRS_FT_I16: case CQRS_FT_I32: case CQRS_FT_I64:
		return PyLong_FromLongLong(v.v.i);
	case CQRS_FT_F64:
		return PyFloat_FromDouble(v.v.f);
	case CQRS_FT_BOOL:
		return PyBool_FromLong(v.v.u != 0);
	case CQRS_FT_STR:
		return PyUnicode_DecodeUTF8(v.v.b.ptr, (Py_ssize_t)v.v.b.len, "surrogateescape");
	case CQRS_FT_BYTES:
		return PyBytes_FromStringAndSize(v.v.b.ptr, (Py_ssize_t)v.v.b.len);
	default:
		return cqrspy_raise(CQRS_EFORMAT, "decode field", NULL, 0);
	}
}

/* ---- encoding ----------------------------------------------------------------- */

static int is_array(int t)
{
	return t == CQRS_FT_STR || t == CQRS_FT_BYTES;
}

/* Python value -> cqrs_value for field f. Buffers taken from value stay
 * valid while value lives (str's UTF-8 is cached in the object; *view is
 * released by the caller when view->obj is set). */
static int to_value(const cqrs_field *f, PyObject *value, cqrs_value *out, Py_buffer *view)
{
	view->obj = NULL;
	if (is_array(f->type)) {
		if (PyUnicode_Check(value)) {
			Py_ssize_t n;
			const char *p = PyUnicode_AsUTF8AndSize(value, &n);
			if (!p)
				return -1;
			out->type = CQRS_FT_STR;
			out->v.b.ptr = p;
			out->v.b.len = (size_t)n;
			return 0;
		}
		if (PyObject_CheckBuffer(value) && !PyUnicode_Check(value)) {
			if (PyObject_GetBuffer(value, view, PyBUF_SIMPLE))
				return -1;
			out->type = CQRS_FT_BYTES;
			out->v.b.ptr = view->buf;
			out->v.b.len = (size_t)view->len;
			return 0;
		}
		PyErr_Format(PyExc_TypeError, "field %.32s (%s) wants str or bytes, not %.64s",
			     f->name, cqrs_ftype_name(f->type), Py_TYPE(value)->tp_name);
		return -1;
	}
	/* bool is an int subclass: True for a count or an id is a mistake, not 1 */
	if (PyBool_Check(value) && f->type != CQRS_FT_BOOL) {
		PyErr_Format(PyExc_TypeError, "field %.32s (%s) wants %s, not bool", f->name,
			     cqrs_ftype_name(f->type), f->type == CQRS_FT_F64 ? "float or int" : "int");
		return -1;
	}
	if (PyLong_Check(value)) {
		int overflow;
		long long x = PyLong_AsLongLongAndOverflow(value, &overflow);
		if (x == -1 && PyErr_Occurred())
			return -1;
		if (overflow > 0) {
			unsigned long long u = PyLong_AsUnsignedLongLong(value);
			if (u == (unsigned long long)-1 && PyErr_Occurred())
				goto range;
			out->type = CQRS_FT_U64;
			out->v.u = u;
		} else if (overflow < 0) {
			goto range;
		} else if (x < 0) {
			out->type = CQRS_FT_I64;
			out->v.i = x;
		} else {
			out->type = CQRS_FT_U64;
			out->v.u = (uint64_t)x;
		}
		return 0;
	}
	if (f->type == CQRS_FT_F64 && PyFloat_Check(value)) {
		out->type = CQRS_FT_F64;
		out->v.f = PyFloat_AS_DOUBLE(value);
		return 0;
	}
	PyErr_Format(PyExc_TypeError, "field %.32s (%s) wants %s, not %.64s", f->name,
		     cqrs_ftype_name(f->type),
		     f->type == CQRS_FT_F64 ? "float or int" : f->type == CQRS_FT_BOOL ? "bool" : "int",
		     Py_TYPE(value)->tp_name);
	return -1;
range:
	PyErr_Clear();
	PyErr_Format(PyExc_OverflowError, "%R is out of range for field %.32s (%s)", value, f->name,
		     cqrs_ftype_name(f->type));
	return -1;
}

int cqrspy_set_field(RowSpec *spec, uint8_t *rec, const cqrs_field *f, PyObject *value)
{
	cqrs_value v;
	Py_buffer view;
	int rc;

	if (to_value(f, value, &v, &view))
		return -1;
	rc = cqrs_record_set(&spec->s, rec, f, &v);
	if (view.obj)
		PyBuffer_Release(&view);
	if (rc == 0)
		return 0;
	if (is_array(f->type)) /* too long, or a NUL in a str: the library says which */
		PyErr_SetString(PyExc_ValueError, cqrs_last_error());
	else
		PyErr_Format(PyExc_OverflowError, "%R is out of range for field %.32s (%s)", value,
			     f->name, cqrs_ftype_name(f->type));
	return -1;
}

int cqrspy_encode_field(RowSpec *spec, const cqrs_field *f, PyObject *value, uint8_t *out)
{
	if (cqrspy_set_field(spec, spec->scratch, f, value))
		return -1;
	memcpy(out, spec->scratch + f->offset, f->size);
	return 0;
}
