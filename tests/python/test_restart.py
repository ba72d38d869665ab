"""Views that stay open while the engine is killed (SIGKILL) and restarted:
the open View objects move to the restarted engine's generation by
themselves, an order created after the restart is seen, read-your-writes
holds (wait(seq) true implies get() shows it, on the same View), and the
engine's segments in /dev/shm do not pile up with restarts."""
import os
import random
import signal
import time
import unittest

import cqrs_fixture
from cqrs_fixture import cqrs

HAVE_CLIENT = bool(cqrs.HAVE_CLIENT)
CYCLES = 3


def shm_usage(name):
    prefix = "cqrs.%s." % name
    names = [n for n in os.listdir("/dev/shm") if n.startswith(prefix)]
    return len(names), sum(os.stat(os.path.join("/dev/shm", n)).st_size for n in names), names


def open_view(engine, name, timeout=10):
    """engine.view(name), once the engine has published it (the fixture
    waits for the directory's entries, which come just before)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return engine.view(name)
        except cqrs.NotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def connect_when_up(eng, timeout=60):
    """A gateway connection to the restarted engine (the dead one's control
    segment may still be there until the new one replaces it)."""
    deadline = time.monotonic() + timeout
    while True:
        c = None
        try:
            c = cqrs.connect(eng.name)
            c.submit("RegisterCustomer", customer_id=(1 << 41) + random.randrange(1 << 36),
                     name="probe")
            return c
        except cqrs.Error:
            if c is not None:
                c.close()
        if eng.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("engine did not come back: " + eng.output())
        time.sleep(0.05)


@unittest.skipUnless(HAVE_CLIENT, "module built without the gateway client")
class RestartWithReadersOpen(unittest.TestCase):
    def test_kill_restart_readers_follow(self):
        eng = cqrs_fixture.ServedEngine(populate=False, prefix="pyrs").start()
        try:
            self._cycles(eng)
        finally:
            eng.cleanup()

    def _cycles(self, eng):
        ro = cqrs.connect(eng.name, readonly=True)
        os_view = open_view(ro, "order_summaries")
        cs_view = open_view(ro, "customer_stats")
        os_view.wait(1 << 62, timeout=0.01)  # gives the View a waiting handle too
        c = cqrs.connect(eng.name)
        cid = (1 << 40) + os.getpid()
        seq = c.submit("RegisterCustomer", customer_id=cid, name="Ada")
        self.assertTrue(cs_view.wait(seq, timeout=10))
        self.assertIsNotNone(cs_view.get(cid))
        orders, first = [], None
        for cycle in range(1, CYCLES + 1):
            gen = os_view.generation
            eng.proc.send_signal(signal.SIGKILL)
            eng.proc.wait()
            c.close()
            eng.start()
            c = connect_when_up(eng)
            oid = (1 << 40) + cycle * 1000 + os.getpid() % 1000
            seq = c.submit("CreateOrder", order_id=oid, customer_id=cid, item_count=1,
                           total=100 * cycle, shipping_address="1 Main St")
            orders.append(oid)
            # read-your-writes on the View that was open across the restart
            self.assertTrue(os_view.wait(seq, timeout=10))
            row = os_view.get(oid)
            self.assertIsNotNone(row, "wait(%d) was true but get(%d) is None" % (seq, oid))
            self.assertEqual((row.order_id, row.total), (oid, 100 * cycle))
            for o in orders:
                self.assertIsNotNone(os_view.get(o))
            self.assertIsNotNone(cs_view.get(cid))
            fresh = cqrs.connect(eng.name, readonly=True)
            self.assertEqual(os_view.generation, open_view(fresh, "order_summaries").generation)
            self.assertGreater(os_view.generation, gen)
            fresh.close()
            usage = shm_usage(eng.name)
            if first is None:
                first = usage
            self.assertEqual(usage[:2], first[:2], "segments after cycle %d: %s, after the "
                             "first restart: %s" % (cycle, usage[2], first[2]))
        c.close()
        ro.close()


if __name__ == "__main__":
    unittest.main()
