#!/usr/bin/env python3
"""examples/exchange/depth.py - the exchange demo's Python reader: prints the
top 10 levels of each side of instrument 1's book (book_levels through its
ordered index, View.range) every two seconds while the demo runs.

    python3 depth.py ENGINE SECONDS
"""
import sys
import time

import cqrs


def depth(view, instrument, side, n=10):
    """The best n levels of a side: bids descending, asks ascending."""
    return list(view.range(lo=(instrument, side), hi=(instrument, side + 1),
                           desc=(side == 0), limit=n, snapshot=True))


def main():
    engine, secs = sys.argv[1], float(sys.argv[2])
    view = cqrs.connect(engine, readonly=True).view("book_levels")
    end = time.monotonic() + secs
    while True:
        time.sleep(min(2.0, max(0.0, end - time.monotonic())))
        bids, asks = depth(view, 1, 0), depth(view, 1, 1)
        print("[depth.py] instrument 1 at seq %d:   bids qty @ price | asks price @ qty" % view.applied_seq)
        for i in range(max(len(bids), len(asks))):
            b = "%8d @ %-6d" % (bids[i].qty, bids[i].price) if i < len(bids) else " " * 17
            a = "%6d @ %-8d" % (asks[i].price, asks[i].qty) if i < len(asks) else ""
            print("[depth.py]   %s | %s" % (b, a))
        sys.stdout.flush()
        if time.monotonic() >= end:
            break


if __name__ == "__main__":
    main()
