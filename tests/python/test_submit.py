"""Submitting commands from Python through the engine's shared-memory
gateway: round trips, read-your-writes, rejections with the engine's
reasons, optimistic concurrency, idempotency, encoding errors, threads, and
the engine going away while connected."""
import random
import threading
import unittest

import cqrs_fixture
from cqrs_fixture import cqrs

HAVE_CLIENT = bool(cqrs.HAVE_CLIENT)
NEED_CLIENT = unittest.skipUnless(HAVE_CLIENT, "module built without the gateway client")


def setUpModule():
    global ENG, E, OS, CS
    if not HAVE_CLIENT:
        return
    ENG = cqrs_fixture.shared()
    E = cqrs.connect(ENG.name)
    OS = E.view("order_summaries")
    CS = E.view("customer_stats")


def tearDownModule():
    if HAVE_CLIENT:
        E.close()


_ids = random.Random()


def fresh_id():
    """Ids far above the demo's, unique within the run."""
    return (1 << 40) + _ids.randrange(1 << 36)


def new_customer(name="Ada"):
    cid = fresh_id()
    seq = E.submit("RegisterCustomer", customer_id=cid, name=name)
    return cid, seq


@NEED_CLIENT
class RoundTrip(unittest.TestCase):
    def test_commands_and_schemas(self):
        self.assertEqual(set(E.commands()), {"RegisterCustomer", "DeactivateCustomer",
                                             "CreateOrder", "ShipOrder", "CompleteOrder",
                                             "CancelOrder"})
        s = E.command_schema("CreateOrder")
        self.assertEqual([f.name for f in s.fields], ["order_id", "customer_id", "item_count",
                                                      "pad0", "total", "shipping_address"])
        self.assertIsNone(s.key)
        with self.assertRaises(cqrs.NotFound):
            E.command_schema("NoSuchCommand")
        self.assertIsInstance(E.client_id, int)

    def test_read_your_writes(self):
        cid, seq = new_customer("Grace Hopper")
        self.assertIsInstance(seq, int)
        self.assertTrue(CS.wait(seq, timeout=5))
        row = CS.get(cid)
        self.assertEqual((row.customer_id, row.name, row.active, row.orders), (cid, "Grace Hopper",
                                                                               True, 0))
        oid = fresh_id()
        seq2 = E.submit("CreateOrder", order_id=oid, customer_id=cid, item_count=3, total=4999,
                        shipping_address="1 Main St")
        self.assertGreater(seq2, seq)
        self.assertTrue(OS.wait(seq2, timeout=5))
        o = OS.get(oid)
        self.assertEqual((o.order_id, o.customer_id, o.customer_name, o.item_count, o.status,
                          o.total, o.shipped_at), (oid, cid, "Grace Hopper", 3, 1, 4999, 0))
        self.assertGreater(o.created_at, 0)
        self.assertEqual([r.order_id for r in OS.find("customer_id", cid)], [oid])
        seq3 = E.submit("ShipOrder", order_id=oid)
        self.assertTrue(OS.wait(seq3, timeout=5))
        self.assertEqual(OS.get(oid).status, 2)
        self.assertTrue(CS.wait(seq3, timeout=5))
        self.assertEqual(CS.get(cid).active_orders, 1)
        # the CLI sees the same row
        self.assertIn('"status":2', ENG.cli("view", "get", ENG.name, "order_summaries", str(oid)))

    def test_many_round_trips(self):
        cid, _ = new_customer()
        base = fresh_id()
        last = 0
        for i in range(500):
            seq = E.submit("CreateOrder", shipping_address="2 Side St", order_id=base + i, customer_id=cid, item_count=1,
                           total=i)
            self.assertGreater(seq, last)
            last = seq
        self.assertTrue(CS.wait(last, timeout=5))
        self.assertEqual(CS.get(cid).orders, 500)
        self.assertEqual(CS.get(cid).active_orders, 500)


@NEED_CLIENT
class Outcomes(unittest.TestCase):
    def test_rejected_with_reason(self):
        unknown = fresh_id()
        with self.assertRaises(cqrs.Rejected) as cm:
            E.submit("CreateOrder", shipping_address="2 Side St", order_id=fresh_id(), customer_id=unknown, item_count=1,
                     total=1)
        e = cm.exception
        self.assertIsInstance(e, cqrs.Error)
        self.assertEqual(e.reason, "customer %d unknown" % unknown)
        self.assertEqual((e.code, e.name), (-10001, "CQRS_EREJECTED"))
        self.assertIn(e.reason, str(e))

    def test_rejected_from_wrong_state(self):
        cid, _ = new_customer()
        oid = fresh_id()
        E.submit("CreateOrder", shipping_address="2 Side St", order_id=oid, customer_id=cid, item_count=1, total=1)
        with self.assertRaises(cqrs.Rejected) as cm:
            E.submit("CreateOrder", shipping_address="2 Side St", order_id=oid, customer_id=cid, item_count=1, total=1)
        self.assertEqual(cm.exception.reason, "order %d exists" % oid)
        with self.assertRaises(cqrs.Rejected) as cm:
            E.submit("CompleteOrder", order_id=oid)
        self.assertIn("cannot", cm.exception.reason)
        E.submit("DeactivateCustomer", customer_id=cid)
        with self.assertRaises(cqrs.Rejected) as cm:
            E.submit("CreateOrder", shipping_address="2 Side St", order_id=fresh_id(), customer_id=cid, item_count=1, total=1)
        self.assertEqual(cm.exception.reason, "customer %d inactive" % cid)

    def test_conflict(self):
        cid = fresh_id()
        seq = E.submit_with("RegisterCustomer", {"customer_id": cid, "name": "Linus"},
                            aggregate_id=cid, expected_version=0)
        self.assertGreater(seq, 0)
        with self.assertRaises(cqrs.Conflict) as cm:
            E.submit_with("DeactivateCustomer", {"customer_id": cid}, aggregate_id=cid,
                          expected_version=0)
        self.assertEqual(cm.exception.name, "CQRS_ECONFLICT")
        self.assertTrue(cm.exception.reason)
        E.submit_with("DeactivateCustomer", {"customer_id": cid}, aggregate_id=cid,
                      expected_version=1)

    def test_duplicate(self):
        # Explicit client_seq values get a connection of their own: the
        # client numbers seq-less requests 1, 2, ... on each connection.
        with cqrs.connect(ENG.name) as e2:
            cid = fresh_id()
            seq = e2.submit_with("RegisterCustomer", {"customer_id": cid, "name": "Once"},
                                 client_seq=424242)
            with self.assertRaises(cqrs.Duplicate) as cm:
                e2.submit_with("RegisterCustomer", {"customer_id": cid, "name": "Once"},
                               client_seq=424242)
            self.assertEqual(cm.exception.seq, seq)
            self.assertEqual(cm.exception.name, "CQRS_EDUPLICATE")

    def test_timeout_option(self):
        cid = fresh_id()
        seq = E.submit_with("RegisterCustomer", {"customer_id": cid, "name": "T"}, timeout=5.0)
        self.assertTrue(CS.wait(seq, timeout=5))
        with self.assertRaises(ValueError):
            E.submit_with("RegisterCustomer", {"customer_id": fresh_id()}, timeout=-1)


@NEED_CLIENT
class Encoding(unittest.TestCase):
    def test_unknown_command(self):
        with self.assertRaises(cqrs.NotFound):
            E.submit("NoSuchCommand", x=1)

    def test_unknown_field(self):
        with self.assertRaises(TypeError) as cm:
            E.submit("RegisterCustomer", customer_id=fresh_id(), nick="x")
        self.assertIn("nick", str(cm.exception))

    def test_bad_values(self):
        with self.assertRaises(TypeError):
            E.submit("RegisterCustomer", customer_id="7", name="x")
        with self.assertRaises(TypeError):
            E.submit("RegisterCustomer", customer_id=fresh_id(), name=7)
        with self.assertRaises(OverflowError):
            E.submit("CreateOrder", shipping_address="2 Side St", order_id=fresh_id(), customer_id=1, item_count=2**32,
                     total=1)
        with self.assertRaises(OverflowError):
            E.submit("CreateOrder", shipping_address="2 Side St", order_id=-1, customer_id=1, item_count=1, total=1)
        with self.assertRaises(ValueError):
            E.submit("RegisterCustomer", customer_id=fresh_id(), name="x" * 33)
        with self.assertRaises(TypeError):
            E.submit(5)
        with self.assertRaises(TypeError):
            E.submit_with("RegisterCustomer", [("customer_id", 1)])

    def test_values_stored_as_something_else_are_refused(self):
        # a str holding a NUL would read back cut short ("a\0b" as "a")
        for name in ("a\0b", b"a\0b", "\0"):
            with self.assertRaises(ValueError, msg=repr(name)) as cm:
                E.submit("RegisterCustomer", customer_id=fresh_id(), name=name)
            self.assertIn("NUL", str(cm.exception))
        # True is an int subclass, not a number for an int or f64 field
        with self.assertRaises(TypeError) as cm:
            E.submit("RegisterCustomer", customer_id=True, name="x")
        self.assertIn("not bool", str(cm.exception))
        with self.assertRaises(TypeError):
            E.submit("CreateOrder", shipping_address="2 Side St", order_id=fresh_id(), customer_id=1, item_count=False,
                     total=1)
        with self.assertRaises(TypeError):
            E.submit_with("RegisterCustomer", {"customer_id": fresh_id(), "name": "x"},
                          client_seq=True)
        # numbers that do not fit the field
        with self.assertRaises(OverflowError) as cm:
            E.submit("CreateOrder", shipping_address="2 Side St", order_id=2**64, customer_id=1, item_count=1, total=1)
        self.assertIn("out of range", str(cm.exception))
        with self.assertRaises(OverflowError):
            E.submit("CreateOrder", shipping_address="2 Side St", order_id=fresh_id(), customer_id=1, item_count=1,
                     total=-(2**63) - 1)

    def test_bytes_and_unicode(self):
        cid = fresh_id()
        seq = E.submit("RegisterCustomer", customer_id=cid, name="Zoë")
        CS.wait(seq)
        self.assertEqual(CS.get(cid).name, "Zoë")
        cid = fresh_id()
        seq = E.submit("RegisterCustomer", customer_id=cid, name=b"raw")
        CS.wait(seq)
        self.assertEqual(CS.get(cid).name, "raw")

    def test_missing_field_is_an_error(self):
        # A field left out is a TypeError naming it, before anything is sent.
        with self.assertRaises(TypeError) as cm:
            E.submit("RegisterCustomer", customer_id=fresh_id())
        self.assertIn("'name'", str(cm.exception))
        with self.assertRaises(TypeError) as cm:
            E.submit_with("CreateOrder", {"order_id": fresh_id()})
        for f in ("customer_id", "item_count", "total", "shipping_address"):
            self.assertIn("'%s'" % f, str(cm.exception))
        self.assertNotIn("pad0", str(cm.exception))  # padding is never required

    def test_defaults_declare_optional_fields(self):
        cid = fresh_id()
        # defaults= gives the fields that may be left out; a given field wins
        seq = E.submit_with("RegisterCustomer", {"customer_id": cid},
                            defaults={"name": "Default", "customer_id": 1})
        self.assertTrue(CS.wait(seq, timeout=5))
        self.assertEqual(CS.get(cid).name, "Default")
        # an explicit zero default reaches the engine, which judges it
        with self.assertRaises(cqrs.Rejected) as cm:
            E.submit_with("RegisterCustomer", {"customer_id": fresh_id()}, defaults={"name": ""})
        self.assertEqual(cm.exception.reason, "customer name is empty")
        with self.assertRaises(TypeError):
            E.submit_with("RegisterCustomer", {"customer_id": 1}, defaults={"nosuch": 1})
        with self.assertRaises(TypeError):
            E.submit_with("RegisterCustomer", {"customer_id": 1}, defaults=[("name", "x")])
        with self.assertRaises(TypeError):  # None is no fields at all, not a wildcard
            E.submit_with("RegisterCustomer", None, defaults=None)

    def test_readonly_engine_cannot_submit(self):
        with cqrs.connect(ENG.name, readonly=True) as ro:
            self.assertIsNone(ro.client_id)
            with self.assertRaises(cqrs.Error):
                ro.submit("RegisterCustomer", customer_id=fresh_id(), name="x")
            self.assertIsNotNone(ro.view("customer_stats").get(1))


@NEED_CLIENT
class Threads(unittest.TestCase):
    def test_shared_engine_across_threads(self):
        cid, _ = new_customer()
        base = fresh_id()
        seqs, errors = [], []

        def work(t):
            try:
                for i in range(100):
                    seqs.append(E.submit("CreateOrder", shipping_address="2 Side St", order_id=base + t * 1000 + i,
                                         customer_id=cid, item_count=1, total=1))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(set(seqs)), 400)
        self.assertTrue(CS.wait(max(seqs), timeout=5))
        self.assertEqual(CS.get(cid).orders, 400)


@NEED_CLIENT
class EngineGoesAway(unittest.TestCase):
    def test_stopped_engine(self):
        srv = cqrs_fixture.ServedEngine(populate=False, prefix="pystop").start()
        try:
            e = cqrs.connect(srv.name)
            v = e.view("customer_stats")
            seq = e.submit("RegisterCustomer", customer_id=1, name="Before")
            self.assertTrue(v.wait(seq, timeout=5))
            self.assertEqual(srv.stop(), 0)
            with self.assertRaises(cqrs.Stopped) as cm:
                e.submit("RegisterCustomer", customer_id=2, name="After")
            self.assertEqual(cm.exception.name, "CQRS_ESTOPPED")
            # the views stay readable; waiting for what never comes fails clearly
            self.assertEqual(v.get(1).name, "Before")
            with self.assertRaises(cqrs.Error):
                v.wait(seq + 1, timeout=5)
            e.close()
            with self.assertRaises(cqrs.Error):
                cqrs.connect(srv.name)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
