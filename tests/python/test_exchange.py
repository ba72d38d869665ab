"""The exchange example from Python: a `cqrs-exchange serve` engine fed
through the gateway (Deposit, PlaceOrder, AmendOrder, CancelOrder), its
book depth read with View.range as examples/exchange/depth.py reads it
(bids descending, asks ascending, one range read a side), the top of book,
positions, and a refused order's reason."""
import importlib.util
import os
import subprocess
import time
import unittest

import cqrs_fixture
from cqrs_fixture import BUILD, ROOT, cqrs

EXCHANGE = os.path.join(BUILD, "cqrs-exchange")
VIEWS = {"book_levels", "top_of_book", "orders", "trades", "positions"}


class ExchangeEngine(cqrs_fixture.ServedEngine):
    def start(self):
        import atexit
        atexit.register(self.cleanup)
        self.log = open(os.path.join(self.dir, "serve.out"), "w")
        self.proc = subprocess.Popen([EXCHANGE, "serve", "--dir", self.dir, "--name", self.name,
                                      "--durability", "none", "--instruments", "2",
                                      "--accounts", "8"], stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     preexec_fn=cqrs_fixture._die_with_parent)
        deadline = time.monotonic() + 30
        while True:
            try:
                e = cqrs.connect(self.name, readonly=True)
                ok = set(e.views()) >= VIEWS
                e.close()
                if ok:
                    return self
            except cqrs.Error:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("cqrs-exchange serve did not come up: " + self.output())
            time.sleep(0.05)


def load_depth_module():
    path = os.path.join(ROOT, "examples", "exchange", "depth.py")
    spec = importlib.util.spec_from_file_location("exchange_depth", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@unittest.skipUnless(os.path.exists(EXCHANGE) and cqrs.HAVE_CLIENT,
                     "needs build/cqrs-exchange and the gateway client")
class TestExchange(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.eng = ExchangeEngine(populate=False, prefix="pyx").start()
        cls.e = cqrs.connect(cls.eng.name)
        e = cls.e
        e.submit("Deposit", account=1, asset=0, amount=10_000_000)
        e.submit("Deposit", account=2, asset=1, amount=1000)
        # asks 101..105 (account 2), bids 95..99 (account 1), two orders at 99
        for i, p in enumerate(range(101, 106)):
            e.submit("PlaceOrder", account=2, client_order_id=100 + i, instrument=1,
                     side=1, type=0, tif=0, price=p, qty=10 * (i + 1))
        for i, p in enumerate(range(95, 100)):
            e.submit("PlaceOrder", account=1, client_order_id=200 + i, instrument=1,
                     side=0, type=0, tif=0, price=p, qty=5)
        cls.last = e.submit("PlaceOrder", account=1, client_order_id=300, instrument=1,
                            side=0, type=0, tif=0, price=99, qty=7)

    @classmethod
    def tearDownClass(cls):
        cls.e.close()
        cls.eng.cleanup()

    def view(self, name):
        v = cqrs.connect(self.eng.name, readonly=True).view(name)
        self.assertTrue(v.wait(self.last, timeout=5))
        return v

    def test_depth_both_sides(self):
        depth = load_depth_module().depth
        v = self.view("book_levels")
        bids, asks = depth(v, 1, 0, n=3), depth(v, 1, 1, n=10)
        self.assertEqual([(r.price, r.qty, r.orders) for r in bids],
                         [(99, 12, 2), (98, 5, 1), (97, 5, 1)])
        self.assertEqual([r.price for r in asks], [101, 102, 103, 104, 105])
        self.assertEqual([r.qty for r in asks], [10, 20, 30, 40, 50])
        self.assertEqual(depth(v, 2, 0), [])

    def test_trade_moves_top_and_positions(self):
        # an IOC buy takes the 10 at 101 and 5 of the 20 at 102
        seq = self.e.submit("PlaceOrder", account=1, client_order_id=400, instrument=1,
                            side=0, type=0, tif=1, price=102, qty=15)
        tob = cqrs.connect(self.eng.name, readonly=True).view("top_of_book")
        self.assertTrue(tob.wait(seq, timeout=5))
        top = tob.get(1)
        self.assertEqual((top.bid, top.bid_qty, top.ask, top.ask_qty), (99, 12, 102, 15))
        self.assertEqual((top.last_price, top.last_qty), (102, 5))
        pos = cqrs.connect(self.eng.name, readonly=True).view("positions")
        self.assertTrue(pos.wait(seq, timeout=5))
        p = pos.get(1 * 256 + 1)  # account 1, instrument 1
        self.assertEqual(p.qty, 15)
        self.assertEqual(p.cost, 10 * 101 + 5 * 102)

    def test_refused_with_reason(self):
        with self.assertRaises(cqrs.Rejected) as cm:
            self.e.submit("PlaceOrder", account=3, client_order_id=1, instrument=1,
                          side=0, type=0, tif=0, price=100, qty=1)
        self.assertIn("insufficient cash", cm.exception.reason)
        with self.assertRaises(cqrs.Rejected) as cm:
            self.e.submit("AmendOrder", account=1, client_order_id=200, qty=5, price=120)
        self.assertIn("cross", cm.exception.reason)

    def test_orders_by_account(self):
        v = self.view("orders")
        mine = sorted(r.client_order_id for r in v.find("account", 1))
        self.assertTrue({200, 201, 202, 203, 204, 300} <= set(mine))


if __name__ == "__main__":
    unittest.main()
