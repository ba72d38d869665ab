/*
 * bench/lib/ck_ring_baseline.h - ck_ring baselines for bench/bench_ring.cc
 * (see ck_ring_baseline.c for why they are in C).
 */
#ifndef CQRS_BENCH_CK_RING_BASELINE_H
#define CQRS_BENCH_CK_RING_BASELINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { CKB_SPSC = 0, CKB_SPMC = 1, CKB_MPSC = 2 };

/* Moves n 64-byte messages (pointers to them) through a ck_ring of slots
 * entries (a power of two) from np producers to nc consumers; yield: wait
 * with sched_yield() instead of a pause-spin; pin_threads: pin the k-th
 * thread it creates to CPU (k + 1) % 2 (the caller pins itself to CPU 0).
 * Returns the messages consumed (n when all went well). */
uint64_t ckb_run(int mode, unsigned np, unsigned nc, uint64_t n, unsigned slots, int yield, int pin_threads);

/* Pins the calling thread to cpu, saving its mask in saved (a cpu_set_t's
 * worth of bytes); ckb_unpin_self restores it. */
int ckb_pin_self(int cpu, void *saved, size_t saved_size);
void ckb_unpin_self(const void *saved);

#ifdef __cplusplus
}
#endif

#endif
