"""Columnar reads for cqrs.View: to_numpy() and to_pandas().

View._snapshot() copies every row once, batch-consistent (the library's
CQRS_FIND_SNAPSHOT scan), into a bytearray; to_numpy() lays a structured
dtype over those bytes without copying them again: field offsets and the
row size as the engine stores them, padding fields left out (gaps in the
dtype). numpy and pandas are optional: without them these raise ImportError
saying which Debian package brings them.

Field types: u8..u64 and i8..i64 as the same-width integers, f64 float64,
bool bool, ts int64 nanoseconds since the epoch (datetime64[ns] with
datetimes=True), str fixed-width bytes ('S<n>', NUL padded; to_pandas
decodes them to str), bytes an array of n uint8.
"""

_NUMPY_TYPES = {"u8": "<u1", "u16": "<u2", "u32": "<u4", "u64": "<u8", "i8": "<i1",
                "i16": "<i2", "i32": "<i4", "i64": "<i8", "f64": "<f8", "bool": "?", "ts": "<i8"}


def _import(name, package):
    try:
        return __import__(name)
    except ImportError as e:
        raise ImportError("cqrs: View.to_%s() needs %s (Debian: apt-get install %s; "
                          "or pip install %s in a virtualenv)"
                          % ("numpy" if name == "numpy" else "pandas", name, package, name)) from e


def dtype(schema, datetimes=False):
    """The numpy dtype of a view's rows (a cqrs.Schema)."""
    np = _import("numpy", "python3-numpy")
    names, formats, offsets = [], [], []
    for f in schema.fields:
        if f.padding:
            continue
        names.append(f.name)
        offsets.append(f.offset)
        if f.type == "str":
            formats.append("S%d" % f.size)
        elif f.type == "bytes":
            formats.append(("u1", (f.size,)))
        elif f.type == "ts" and datetimes:
            formats.append("<M8[ns]")
        else:
            formats.append(_NUMPY_TYPES[f.type])
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": schema.size})


def to_numpy(view, *, datetimes=False):
    np = _import("numpy", "python3-numpy")
    buf, n, schema = view._snapshot()
    return np.frombuffer(buf, dtype=dtype(schema, datetimes), count=n)


def to_pandas(view, *, datetimes=True, index=True):
    pd = _import("pandas", "python3-pandas")
    np = _import("numpy", "python3-numpy")
    buf, n, schema = view._snapshot()
    arr = np.frombuffer(buf, dtype=dtype(schema, False), count=n)
    cols = {}
    for f in schema.fields:
        if f.padding:
            continue
        col = arr[f.name]
        if f.type == "str":
            col = [b.decode("utf-8", "surrogateescape") for b in col]
        elif f.type == "bytes":
            col = [bytes(b) for b in col]
        elif f.type == "ts" and datetimes:
            col = pd.to_datetime(np.where(col == 0, np.iinfo(np.int64).min, col), utc=True,
                                 unit="ns")
        cols[f.name] = col
    df = pd.DataFrame(cols, columns=[f.name for f in schema.fields if not f.padding])
    if index and schema.key:
        df = df.set_index(schema.key, drop=False)
        df.index.name = None
    return df
