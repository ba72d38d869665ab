"""What makes the binding feel native: lazy iterators over scans and finds,
signatures and type stubs, required command fields, cqrs.Stopped when an
engine stops under a waiter, columnar reads (numpy, pandas; skipped with a
message when they are not installed), datetimes and hidden padding."""
import ast
import datetime
import inspect
import os
import signal
import threading
import time
import unittest

import cqrs_fixture
from cqrs_fixture import cqrs

try:
    import numpy
except ImportError:
    numpy = None
try:
    import pandas
except ImportError:
    pandas = None

NEED_NUMPY = unittest.skipUnless(numpy, "numpy is not installed (Debian: python3-numpy)")
NEED_PANDAS = unittest.skipUnless(numpy and pandas,
                                  "pandas is not installed (Debian: python3-pandas)")


def setUpModule():
    global ENG, E, OS, CS
    ENG = cqrs_fixture.shared()
    E = cqrs.connect(ENG.name)
    OS = E.view("order_summaries")
    CS = E.view("customer_stats")


def tearDownModule():
    E.close()


_next_id = [(1 << 41) + os.getpid() * 1000]


def fresh_id():
    _next_id[0] += 1
    return _next_id[0]


class LazyIteration(unittest.TestCase):
    def test_scan_is_a_lazy_iterator(self):
        it = iter(CS)
        self.assertIsInstance(it, cqrs.RowIterator)
        self.assertIs(iter(it), it)
        first = next(it)
        self.assertIsInstance(first, cqrs.Row)
        # A row added after the scan started, behind its position (a new
        # slot), is seen: the scan reads rows when it reaches them.
        cid = fresh_id()
        seq = E.submit("RegisterCustomer", customer_id=cid, name="late")
        self.assertTrue(CS.wait(seq, timeout=5))
        rest = [r.customer_id for r in it]
        self.assertIn(cid, rest)
        self.assertNotIn(first.customer_id, rest)  # each row once
        self.assertEqual(len(rest) + 1, len(CS))
        with self.assertRaises(StopIteration):
            next(it)
        # A snapshot is taken at once: later rows are not in it.
        snap = CS.scan(snapshot=True)
        cid2 = fresh_id()
        self.assertTrue(CS.wait(E.submit("RegisterCustomer", customer_id=cid2, name="x"), 5))
        ids = [r.customer_id for r in snap]
        self.assertIn(cid, ids)
        self.assertNotIn(cid2, ids)

    def test_find_is_a_lazy_iterator(self):
        # A customer with four active orders; the walk starts, then the
        # oldest order (last in the chain) is cancelled before the walk
        # reaches it: it leaves active_orders and is not delivered.
        AO = E.view("active_orders")
        cid = fresh_id()
        E.submit("RegisterCustomer", customer_id=cid, name="lazy")
        oids = [fresh_id() for _ in range(4)]
        for oid in oids:
            seq = E.submit("CreateOrder", order_id=oid, customer_id=cid, item_count=1, total=1,
                           shipping_address="")
        self.assertTrue(AO.wait(seq, timeout=5))
        chain = [r.order_id for r in AO.find("customer_id", cid)]
        self.assertEqual(sorted(chain), sorted(oids))
        it = AO.find("customer_id", cid)
        self.assertEqual(next(it).order_id, chain[0])
        self.assertTrue(AO.wait(E.submit("CancelOrder", order_id=chain[-1]), timeout=5))
        self.assertEqual([r.order_id for r in it], chain[1:-1])

    def test_scan_holds_one_row_at_a_time(self):
        # A scan of every order (tens of thousands) keeps no list: the
        # iterator's size does not grow and rows are freed as they pass.
        import sys
        it = OS.scan()
        n = sum(1 for _ in it)
        self.assertGreater(n, 1000)
        self.assertLess(sys.getsizeof(OS.scan()), 200)
        self.assertGreater(OS.scan().__length_hint__(), 1000)

    def test_find_and_scan_keep_old_callers_working(self):
        rows = list(OS.find("customer_id", 5))
        self.assertEqual(len(rows), CS.get(5).orders)
        it = OS.find("customer_id", 5)
        self.assertIsInstance(it, cqrs.RowIterator)
        self.assertEqual(sorted(r.order_id for r in it), sorted(r.order_id for r in rows))
        snap = OS.find("customer_id", 5, snapshot=True)
        self.assertEqual(snap.__length_hint__(), len(rows))
        self.assertEqual(sorted(r.customer_id for r in CS.scan()),
                         sorted(r.customer_id for r in CS))
        # errors in the arguments come at the call, not at the first next()
        with self.assertRaises(cqrs.NotFound):
            OS.find("status", 1)
        with self.assertRaises(TypeError):
            OS.find("customer_id", "x")

    def test_iterator_of_a_closed_view(self):
        e = cqrs.connect(ENG.name, readonly=True)
        v = e.view("customer_stats")
        it = iter(v)
        next(it)
        v.close()
        with self.assertRaises(ValueError):
            next(it)
        e.close()


class Signatures(unittest.TestCase):
    def callables(self):
        out = [("connect", cqrs.connect), ("strerror", cqrs.strerror)]
        for t in (cqrs.Engine, cqrs.View, cqrs.Row, cqrs.RowIterator):
            for name, attr in vars(t).items():
                if callable(attr) and not isinstance(attr, type):
                    out.append(("%s.%s" % (t.__name__, name), getattr(t, name)))
        return out

    def test_every_function_and_method_has_a_signature(self):
        missing = []
        for name, f in self.callables():
            try:
                inspect.signature(f)
            except (ValueError, TypeError):
                missing.append(name)
        self.assertEqual(missing, [])

    def test_signatures(self):
        sig = lambda f: str(inspect.signature(f))  # noqa: E731
        self.assertEqual(sig(cqrs.connect), "(engine, *, readonly=False, client_id=None)")
        self.assertEqual(sig(cqrs.View.get), "(self, key, /, *, datetimes=False)")
        self.assertEqual(sig(cqrs.View.find),
                         "(self, /, field, value, snapshot=False, *, datetimes=False)")
        self.assertEqual(sig(cqrs.View.wait), "(self, /, seq, timeout=None)")
        self.assertEqual(sig(cqrs.Engine.submit), "(self, command, /, **fields)")
        self.assertIn("defaults=None", sig(cqrs.Engine.submit_with))
        self.assertEqual(sig(OS.get), "(key, /, *, datetimes=False)")  # bound

    def test_stubs_ship_and_match_the_module(self):
        here = os.path.dirname(cqrs.__file__)
        self.assertTrue(os.path.exists(os.path.join(here, "py.typed")))
        with open(os.path.join(here, "__init__.pyi")) as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                self.assertTrue(hasattr(cqrs, node.name), node.name)
                cls = getattr(cqrs, node.name)
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                        self.assertTrue(hasattr(cls, item.name), "%s.%s" % (node.name, item.name))
            elif isinstance(node, ast.FunctionDef):
                self.assertTrue(hasattr(cqrs, node.name), node.name)
        # a method's parameters in the stub are the runtime's
        stub_get = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "View"]
        get = [f for f in stub_get[0].body if isinstance(f, ast.FunctionDef) and f.name == "get"][0]
        self.assertEqual([a.arg for a in get.args.posonlyargs + get.args.args] +
                         [a.arg for a in get.args.kwonlyargs],
                         list(inspect.signature(cqrs.View.get).parameters))


class RequiredFields(unittest.TestCase):
    def test_missing_required_field(self):
        with self.assertRaises(TypeError) as cm:
            E.submit("CreateOrder", order_id=fresh_id(), customer_id=1, item_count=1, total=5)
        self.assertIn("'shipping_address'", str(cm.exception))
        # padding may always be left out; all other fields given: accepted
        seq = E.submit("CreateOrder", order_id=fresh_id(), customer_id=1, item_count=1, total=5,
                       shipping_address="")
        self.assertGreater(seq, 0)
        oid = fresh_id()
        seq = E.submit_with("CreateOrder", {"order_id": oid, "customer_id": 1, "total": 7},
                            defaults={"item_count": 1, "shipping_address": ""})
        self.assertTrue(OS.wait(seq, timeout=5))
        self.assertEqual((OS.get(oid).item_count, OS.get(oid).total), (1, 7))


class Datetimes(unittest.TestCase):
    def test_ts_fields_as_datetimes(self):
        row = OS.get(1)
        drow = OS.get(1, datetimes=True)
        self.assertIsInstance(row.created_at, int)
        self.assertIsInstance(drow.created_at, datetime.datetime)
        self.assertEqual(drow.created_at.tzinfo, datetime.timezone.utc)
        self.assertEqual(int(drow.created_at.timestamp() * 1e6), row.created_at // 1000)
        self.assertEqual(drow, row)  # the same bytes
        unshipped = next(r for r in OS.scan(datetimes=True) if r["status"] == 1)
        self.assertIsNone(unshipped.shipped_at)  # 0: never happened
        self.assertIsInstance(dict(unshipped)["created_at"], datetime.datetime)
        found = next(OS.find("customer_id", 2, datetimes=True))
        self.assertIsInstance(found.created_at, datetime.datetime)
        with self.assertRaises(TypeError):
            OS.get(1, bogus=True)


class StopDuringWait(unittest.TestCase):
    def wait_while(self, stop_signal):
        eng = cqrs_fixture.ServedEngine(populate=False, prefix="pystop").start()
        try:
            deadline = time.monotonic() + 20
            while True:  # listed views may not be published yet
                try:
                    v = cqrs.connect(eng.name, readonly=True).view("customer_stats")
                    break
                except cqrs.NotFound:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            got = []
            waiting = threading.Event()

            def waiter():
                waiting.set()
                try:
                    got.append(v.wait(v.applied_seq + 10**6, timeout=30))
                except Exception as e:  # noqa: BLE001 (the test looks at it)
                    got.append(e)

            t = threading.Thread(target=waiter)
            t.start()
            waiting.wait()
            time.sleep(0.3)  # inside cqrs_view_wait
            eng.proc.send_signal(stop_signal)
            eng.proc.wait(timeout=30)
            t.join(30)
            self.assertFalse(t.is_alive())
            return got[0]
        finally:
            eng.cleanup()

    def test_clean_stop_raises_stopped(self):
        e = self.wait_while(signal.SIGTERM)
        self.assertIsInstance(e, cqrs.Stopped)
        self.assertEqual(e.name, "CQRS_ESTOPPED")

    def test_crash_is_not_a_stop(self):
        e = self.wait_while(signal.SIGKILL)
        self.assertIsInstance(e, cqrs.Error)
        self.assertNotIsInstance(e, cqrs.Stopped)
        self.assertEqual(e.name, "CQRS_EWRITERDEAD")


class Columnar(unittest.TestCase):
    @NEED_NUMPY
    def test_to_numpy(self):
        a = CS.to_numpy()
        self.assertIsInstance(a, numpy.ndarray)
        self.assertEqual(a.dtype.itemsize, CS.schema.size)
        self.assertEqual(list(a.dtype.names), [f.name for f in CS.schema.fields if not f.padding])
        self.assertNotIn("pad0", a.dtype.names)
        self.assertEqual(len(a), len(CS))
        by_id = {int(r["customer_id"]): r for r in a}
        for cid in (1, 2, 17):
            row = CS.get(cid)
            r = by_id[cid]
            self.assertEqual((r["name"].decode(), bool(r["active"]), int(r["orders"]),
                              int(r["total_spent"])),
                             (row.name, row.active, row.orders, row.total_spent))
        # one consistent snapshot: the per-customer counts agree with the orders array
        o = OS.to_numpy(datetimes=True)
        self.assertEqual(o.dtype["created_at"], numpy.dtype("M8[ns]"))
        self.assertEqual(int(o[o["order_id"] == 1]["created_at"].astype("i8")[0]),
                         OS.get(1).created_at)

    @NEED_PANDAS
    def test_to_pandas(self):
        df = OS.to_pandas()
        self.assertEqual(len(df), len(OS))
        self.assertEqual(list(df.columns), [f.name for f in OS.schema.fields if not f.padding])
        row = df.loc[1]
        self.assertEqual(row["customer_name"], OS.get(1).customer_name)
        self.assertEqual(str(df["created_at"].dtype), "datetime64[ns, UTC]")
        self.assertEqual(int(row["created_at"].value), OS.get(1).created_at)
        unshipped = df[df["status"] == 1]
        self.assertTrue(unshipped["shipped_at"].isna().all())
        self.assertEqual(str(OS.to_pandas(datetimes=False)["created_at"].dtype), "int64")
        cs = CS.to_pandas(index=False)
        self.assertNotIn("pad1", cs.columns)

    def test_clear_import_error_without_numpy(self):
        import sys
        saved = {m: sys.modules.get(m) for m in ("numpy", "pandas")}
        try:
            sys.modules["numpy"] = None  # as if not installed: import raises ImportError
            sys.modules["pandas"] = None
            with self.assertRaises(ImportError) as cm:
                CS.to_numpy()
            self.assertIn("python3-numpy", str(cm.exception))
            with self.assertRaises(ImportError) as cm:
                CS.to_pandas()
            self.assertIn("python3-pandas", str(cm.exception))
        finally:
            for m, mod in saved.items():
                if mod is None:
                    sys.modules.pop(m, None)
                else:
                    sys.modules[m] = mod
