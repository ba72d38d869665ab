"""Read the views of a running cqrs engine from shared memory and submit
commands to it.

    import cqrs
    eng = cqrs.connect("orders")
    seq = eng.submit("CreateOrder", order_id=1, customer_id=7, item_count=2,
                     total=1999, shipping_address="1 Main St")
    v = eng.view("order_summaries")
    v.wait(seq)                      # read your write
    row = v.get(1)                   # Row or None
    row.total, row["status"], dict(row)
    for row in v: ...                # a lazy scan
    v.to_numpy(), v.to_pandas()      # one consistent snapshot as columns

The extension (cqrs._cqrs) does the work; this package re-exports it and
holds the columnar helpers (cqrs._columnar) and the type stubs (py.typed).
"""
from cqrs._cqrs import (  # noqa: F401
    HAVE_CLIENT,
    Conflict,
    Duplicate,
    Engine,
    Error,
    Field,
    NotFound,
    Rejected,
    Row,
    RowIterator,
    Schema,
    Stopped,
    View,
    __version__,
    connect,
    strerror,
)

__all__ = ["connect", "strerror", "Engine", "View", "Row", "RowIterator", "Schema", "Field",
           "Error", "Rejected", "Conflict", "Duplicate", "NotFound", "Stopped", "HAVE_CLIENT",
           "__version__"]
