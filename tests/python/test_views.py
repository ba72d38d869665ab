"""Reading views from Python: get / find / scan / wait / schema / get_raw,
Row access, key types and errors, checked against the `cqrs` CLI, which
decodes the same rows through the library's JSON encoder."""
import collections.abc
import json
import resource
import struct
import threading
import time
import unittest

import cqrs_fixture
from cqrs_fixture import cqrs


def setUpModule():
    global ENG, E, OS, CS
    ENG = cqrs_fixture.shared()
    E = cqrs.connect(ENG.name, readonly=True)
    OS = E.view("order_summaries")
    CS = E.view("customer_stats")


def tearDownModule():
    E.close()


def cli_form(row):
    """A decoded row as the CLI's JSON shows it (valid UTF-8 strings pass
    through the CLI's encoder unchanged)."""
    return dict(row)


def from_cli(obj):
    """The CLI's JSON shows every field; Rows leave padding (padN) out."""
    return {k: v for k, v in obj.items() if not (k.startswith("pad") and k[3:].isdigit())}


class ViewRead(unittest.TestCase):
    def test_views_listed(self):
        self.assertEqual(sorted(E.views()), ["active_orders", "customer_stats", "order_summaries"])

    def test_view_is_cached_per_engine(self):
        self.assertIs(E.view("order_summaries"), OS)
        self.assertEqual(OS.name, "order_summaries")
        self.assertEqual(OS.engine, ENG.name)

    def test_get_matches_cli(self):
        for key in (1, 2, 3, 17, 100, 1000):
            row = OS.get(key)
            self.assertIsNotNone(row, key)
            cli = json.loads(ENG.cli("view", "get", ENG.name, "order_summaries", str(key)))
            self.assertEqual(cli_form(row), from_cli(cli))
            self.assertEqual(row._asdict(), dict(row))

    def test_scan_matches_cli_dump(self):
        dump = [from_cli(json.loads(line)) for line in
                ENG.cli("view", "dump", ENG.name, "customer_stats", "--json").splitlines()]
        rows = list(CS.scan())  # other tests may have added customers, never concurrently
        self.assertGreaterEqual(len(rows), cqrs_fixture.CUSTOMERS)
        self.assertEqual(sorted(dump, key=lambda r: r["customer_id"]),
                         sorted((cli_form(r) for r in rows), key=lambda r: r["customer_id"]))
        self.assertEqual(len(CS), len(rows))

    def test_iteration(self):
        ids = {r.customer_id for r in CS}
        self.assertLessEqual(set(range(1, cqrs_fixture.CUSTOMERS + 1)), ids)
        self.assertEqual(len(ids), len(CS))
        self.assertEqual({r.customer_id for r in CS.scan(snapshot=True)}, ids)

    def test_missing_key(self):
        self.assertIsNone(OS.get(10**15))
        self.assertIsNone(OS.get_raw(10**15))
        self.assertIsNone(OS.get(0))
        self.assertNotIn(10**15, OS)
        self.assertIn(1, OS)
        with self.assertRaises(KeyError):
            OS[10**15]
        self.assertEqual(OS[1], OS.get(1))

    def test_get_raw(self):
        raw = OS.get_raw(7)
        self.assertIsInstance(raw, bytes)
        self.assertEqual(len(raw), OS.schema.size)
        row = OS.get(7)
        self.assertEqual(raw, row._raw)
        order_id, customer_id = struct.unpack_from("<QQ", raw)
        self.assertEqual((order_id, customer_id), (7, row.customer_id))

    def test_find_by_secondary_index(self):
        stats = CS.get(3)
        rows = list(OS.find("customer_id", 3))
        self.assertEqual(len(rows), stats.orders)
        self.assertTrue(all(r.customer_id == 3 and r.customer_name == "customer-3" for r in rows))
        self.assertEqual(len({r.order_id for r in rows}), len(rows))
        snap = OS.find("customer_id", 3, snapshot=True)
        self.assertEqual(sorted(r.order_id for r in snap), sorted(r.order_id for r in rows))
        active = [r for r in rows if r.status in (1, 2)]
        self.assertEqual(len(active), stats.active_orders)
        self.assertEqual(list(OS.find("customer_id", 10**12)), [])

    def test_active_orders_are_the_open_order_summaries(self):
        # the seed query's view: the same rows as order_summaries filtered
        # by status, for every customer (the engine is idle: one state)
        AO = E.view("active_orders")
        self.assertEqual(AO.applied_seq, OS.applied_seq)
        for c in range(1, cqrs_fixture.CUSTOMERS + 1):
            want = sorted((r.order_id, r.status, r.total)
                          for r in OS.find("customer_id", c) if r.status in (1, 2))
            got = sorted((r.order_id, r.status, r.total) for r in AO.find("customer_id", c))
            self.assertEqual(got, want, "customer %d" % c)

    def test_find_errors(self):
        with self.assertRaises(cqrs.NotFound):
            OS.find("no_such_field", 1)
        with self.assertRaises(cqrs.NotFound):
            OS.find("status", 1)  # a field, but not indexed
        with self.assertRaises(TypeError):
            OS.find("customer_id", "3")
        with self.assertRaises(TypeError):
            OS.find(3, 3)

    def test_schema(self):
        s = OS.schema
        self.assertIsInstance(s, cqrs.Schema)
        self.assertEqual(s.name, "OrderSummary")
        self.assertEqual(s.key, "order_id")
        self.assertEqual(s.indexes, ("customer_id",))
        self.assertEqual(s.size, 80)
        self.assertEqual([(f.name, f.type, f.offset, f.size) for f in s.fields], [
            ("order_id", "u64", 0, 8), ("customer_id", "u64", 8, 8),
            ("customer_name", "str", 16, 32), ("item_count", "u32", 48, 4),
            ("status", "u32", 52, 4), ("total", "i64", 56, 8), ("created_at", "ts", 64, 8),
            ("shipped_at", "ts", 72, 8)])
        self.assertEqual(CS.schema.key, "customer_id")
        self.assertEqual(CS.schema.indexes, ())
        self.assertEqual(OS.get(1)._schema, s)
        self.assertEqual(s.hash, OS.stat()["schema_hash"])

    def test_stat_and_counters(self):
        st = OS.stat()
        self.assertEqual(st["name"], "order_summaries")
        self.assertEqual(st["key"], "order_id")
        self.assertTrue(st["writer_alive"])
        self.assertEqual(st["rows"], len(OS))
        self.assertEqual(st["applied_seq"], OS.applied_seq)
        self.assertGreater(OS.applied_seq, 0)
        self.assertGreaterEqual(OS.capacity, len(OS))
        self.assertGreaterEqual(OS.generation, 1)


class RowAccess(unittest.TestCase):
    def setUp(self):
        self.row = CS.get(5)

    def test_attribute_and_mapping(self):
        r = self.row
        self.assertEqual(r.customer_id, 5)
        self.assertEqual(r["customer_id"], 5)
        self.assertEqual(r.name, "customer-5")
        self.assertIs(r.active, True)
        self.assertIsInstance(r.total_spent, int)
        self.assertEqual(r.get("name"), "customer-5")
        self.assertIsNone(r.get("nope"))
        self.assertEqual(r.get("nope", 7), 7)
        with self.assertRaises(KeyError):
            r["nope"]
        with self.assertRaises(AttributeError):
            r.nope
        with self.assertRaises(AttributeError):
            r.name = "x"

    def test_mapping_protocol(self):
        r = self.row
        self.assertIsInstance(r, collections.abc.Mapping)
        names = [f.name for f in CS.schema.fields if not f.padding]
        self.assertEqual(names, ["customer_id", "name", "active", "orders", "active_orders",
                                 "total_spent"])  # pad0..pad2 hidden
        self.assertEqual([f.name for f in CS.schema.fields if f.padding], ["pad0", "pad1", "pad2"])
        self.assertNotIn("pad0", r)
        self.assertNotIn("pad0", r._asdict())
        self.assertNotIn("pad0", repr(r))
        with self.assertRaises(KeyError):
            r["pad0"]
        self.assertEqual(list(r), names)
        self.assertEqual(r.keys(), names)
        self.assertEqual(r._fields, tuple(names))
        self.assertEqual(len(r), len(names))
        self.assertIn("orders", r)
        self.assertNotIn("nope", r)
        self.assertEqual(dict(r.items()), dict(r))
        self.assertEqual(r.values(), [r[n] for n in names])
        self.assertIn("customer_id", dir(r))
        self.assertTrue(repr(r).startswith("CustomerStats(customer_id=5, name='customer-5'"))

    def test_equality_and_lifetime(self):
        a, b = CS.get(5), CS.get(5)
        self.assertIsNot(a, b)
        self.assertEqual(a, b)
        self.assertEqual(hash(a), hash(b))
        self.assertNotEqual(a, CS.get(6))
        self.assertNotEqual(a, dict(a))
        e = cqrs.connect(ENG.name, readonly=True)
        v = e.view("customer_stats")
        r = v.get(9)
        e.close()
        self.assertTrue(v.closed)
        self.assertEqual(r.customer_id, 9)  # rows own their bytes


class Keys(unittest.TestCase):
    def test_int_keys(self):
        with self.assertRaises(TypeError):  # bool is an int subclass, but not a key
            OS.get(True)
        self.assertEqual(OS.get(2**64 - 1), None)

    def test_bad_key_types(self):
        for bad in ("1", b"1", 1.0, None, [1]):
            with self.assertRaises(TypeError, msg=repr(bad)):
                OS.get(bad)
            with self.assertRaises(TypeError, msg=repr(bad)):
                OS.get_raw(bad)

    def test_key_out_of_range(self):
        for bad in (-1, 2**64, -(2**70)):
            with self.assertRaises(OverflowError, msg=repr(bad)):
                OS.get(bad)


class Wait(unittest.TestCase):
    def test_wait_reached(self):
        self.assertIs(OS.wait(OS.applied_seq), True)
        self.assertIs(OS.wait(0, timeout=0), True)
        self.assertIs(OS.wait(1), True)

    def test_wait_timeout(self):
        t = time.monotonic()
        self.assertIs(OS.wait(OS.applied_seq + 10**9, timeout=0.2), False)
        self.assertGreaterEqual(time.monotonic() - t, 0.15)
        self.assertIs(OS.wait(OS.applied_seq + 10**9, timeout=0), False)

    def test_wait_arguments(self):
        with self.assertRaises(TypeError):
            OS.wait("1")
        with self.assertRaises(TypeError):
            OS.wait(1.5)
        with self.assertRaises(OverflowError):
            OS.wait(-1)
        with self.assertRaises(ValueError):
            OS.wait(1, timeout=-1)

    def test_wait_releases_the_gil(self):
        done = []
        t = threading.Thread(target=lambda: done.append(
            OS.wait(OS.applied_seq + 10**9, timeout=0.5)))
        t.start()
        gets = 0
        while t.is_alive():
            OS.get(1)
            gets += 1
        t.join()
        self.assertEqual(done, [False])
        self.assertGreater(gets, 1000)


class Errors(unittest.TestCase):
    def test_unknown_view(self):
        with self.assertRaises(cqrs.NotFound) as cm:
            E.view("no_such_view")
        e = cm.exception
        self.assertIsInstance(e, cqrs.Error)
        self.assertIsInstance(e, LookupError)
        self.assertEqual(e.code, -10007)
        self.assertEqual(e.name, "CQRS_ENOTFOUND")
        self.assertIn("no_such_view", str(e))
        self.assertIsNone(e.reason)

    def test_unknown_engine(self):
        with self.assertRaises(cqrs.NotFound) as cm:
            cqrs.connect("no_such_engine_%d" % id(self))
        self.assertIn("no_such_engine", str(cm.exception))

    def test_bad_names(self):
        for bad in ("", "a/b", "x" * 40, "a b"):
            with self.assertRaises(ValueError):
                cqrs.connect(bad)
        with self.assertRaises(TypeError):
            cqrs.connect(5)
        with self.assertRaises(TypeError):
            E.view(5)
        with self.assertRaises(cqrs.Error):
            E.view("../x")

    def test_closed_objects(self):
        e = cqrs.connect(ENG.name, readonly=True)
        v = e.view("order_summaries")
        with v:
            self.assertIsNotNone(v.get(1))
        for call in (lambda: v.get(1), lambda: v.scan(), lambda: v.applied_seq,
                     lambda: v.wait(1), lambda: len(v), lambda: v.find("customer_id", 1)):
            with self.assertRaises(ValueError):
                call()
        v2 = e.view("order_summaries")  # a closed cached view is reopened
        self.assertIsNot(v2, v)
        self.assertIsNotNone(v2.get(1))
        with e:
            pass
        self.assertTrue(e.closed and v2.closed)
        with self.assertRaises(ValueError):
            e.view("order_summaries")
        with self.assertRaises(ValueError):
            e.views()

    def test_view_outlives_its_engine(self):
        import gc
        v = cqrs.connect(ENG.name, readonly=True).view("customer_stats")
        gc.collect()
        self.assertFalse(v.closed)
        self.assertEqual(v.get(2).customer_id, 2)

    def test_strerror(self):
        self.assertEqual(cqrs.strerror(-10001), "command rejected")


class Footprint(unittest.TestCase):
    def test_no_leak_on_hot_path(self):
        keys = [r.order_id for r in OS.find("customer_id", 4)][:256]

        def burn():
            for _ in range(400):
                for k in keys:
                    r = OS.get(k)
                    r.total, r["customer_name"]
                OS.get(10**15)
                OS.get_raw(keys[0])
                try:
                    OS.get("x")
                except TypeError:
                    pass
        burn()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        burn()
        burn()
        grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
        self.assertLess(grown_kb, 8 * 1024, "RSS grew %d KiB over 200k gets" % grown_kb)


if __name__ == "__main__":
    unittest.main()
