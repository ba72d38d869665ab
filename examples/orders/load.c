/*
 * examples/orders/load.c - the demo's writers: the customers it registers,
 * the load thread (pipelined batches that move orders through create, ship,
 * complete or cancel; flat out in the full-load phase, at l->rate
 * commands/s in the paced one) and the probe thread (one CreateOrder at a
 * time, timed until order_summaries shows it: command-to-visible latency,
 * kept per phase).
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "cqrs_view.h"
#include "examples/orders/demo.h"

int demo_register_customers(cqrs_engine *e, id_space *ids)
{
	enum { N = 256 };
	register_customer rc_data[N];
	cqrs_command cmds[N];
	cqrs_ticket t[N];
	uint64_t id = ids->first_customer, end = id + ids->customers;

	while (id < end) {
		uint32_t n = 0;
		for (; n < N && id < end; n++, id++) {
			memset(&rc_data[n], 0, sizeof rc_data[n]);
			rc_data[n].customer_id = id;
			snprintf(rc_data[n].name, sizeof rc_data[n].name, "customer-%" PRIu64, id);
			cmds[n] = (cqrs_command){ .type = CMD_REGISTER_CUSTOMER, .size = sizeof rc_data[n],
						  .data = &rc_data[n] };
		}
		for (uint32_t done = 0; done < n;) {
			int rc = cqrs_submit_batch(e, cmds + done, t + done, n - done);
			if (rc == -EAGAIN) {
				sched_yield();
				continue;
			}
			if (rc < 0)
				return rc;
			done += (uint32_t)rc;
		}
		for (uint32_t i = 0; i < n; i++)
			cqrs_ticket_wait(&t[i], UINT64_MAX);
	}
	return 0;
}

#define BATCH 1024
#define DEPTH 4 /* batches in flight: the next is decided while one is synced */

/* Orders the load thread keeps moving through their lifecycle. */
typedef struct live_order {
	uint64_t id;
	uint32_t status;
} live_order;

typedef struct load_batch {
	union {
		create_order create;
		ship_order ref;
	} data[BATCH];
	cqrs_command cmds[BATCH];
	cqrs_ticket tickets[BATCH];
	uint32_t n;
} load_batch;

typedef struct load_state {
	live_order *orders;
	uint32_t norders, cap;
	uint64_t seed;
} load_state;

/* Fills b with a mix: 40% new orders, the rest moves a live order on
 * (ship, then complete; sometimes cancel). The live set is bounded: when
 * it is full, the command moves an order on instead of creating one, so
 * every order the load creates is eventually finished. */
static void fill_batch(load *l, load_state *st, load_batch *b, uint32_t count)
{
	for (uint32_t n = 0; n < count; n++) {
		uint64_t r = rng_next(&st->seed);
		cqrs_command *c = &b->cmds[n];

		if (st->norders < 1000 || (r % 100 < 40 && st->norders < st->cap)) {
			create_order *co = &b->data[n].create;
			memset(co, 0, sizeof *co);
			co->order_id = l->ids.next_order++;
			co->customer_id = l->ids.first_customer + (r >> 8) % l->ids.customers;
			co->item_count = 1 + (uint32_t)(r % 7);
			co->total = (int64_t)(100 + (r >> 20) % 100000);
			snprintf(co->shipping_address, sizeof co->shipping_address, "%u Main St",
				 (unsigned)(r % 9999));
			*c = (cqrs_command){ .type = CMD_CREATE_ORDER, .size = sizeof *co, .data = co };
			st->orders[st->norders++] = (live_order){ co->order_id, ORDER_CREATED };
		} else {
			uint32_t i = (uint32_t)((r >> 16) % st->norders);
			live_order *lo = &st->orders[i];
			uint32_t type = lo->status == ORDER_SHIPPED ? CMD_COMPLETE_ORDER
				      : r % 100 < 85 ? CMD_SHIP_ORDER : CMD_CANCEL_ORDER;
			b->data[n].ref.order_id = lo->id;
			*c = (cqrs_command){ .type = type, .size = sizeof(ship_order), .data = &b->data[n].ref };
			if (type == CMD_SHIP_ORDER)
				lo->status = ORDER_SHIPPED;
			else /* finished: drop it from the live set */
				st->orders[i] = st->orders[--st->norders];
		}
	}
	b->n = count;
}

/* Paced phase: how many commands may go now to keep to l->rate since the
 * phase began (*t0; *sent so far), in steps of about a millisecond's
 * worth; sleeps while none may. 0: stop. */
static uint32_t paced_count(load *l, uint64_t *t0, uint64_t *sent)
{
	uint64_t rate = atomic_load_explicit(&l->rate, memory_order_relaxed);
	uint64_t step = rate / 1000 ? rate / 1000 : 1;

	if (*t0 == 0)
		*t0 = cqrs__mono_ns();
	while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
		uint64_t allowed = (uint64_t)((double)rate * (double)(cqrs__mono_ns() - *t0) / 1e9);
		if (allowed > *sent) {
			uint64_t n = allowed - *sent;
			n = n > step ? step : n;
			n = n > BATCH ? BATCH : n;
			*sent += n;
			return (uint32_t)n;
		}
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int submit_batch(load *l, load_batch *b)
{
	for (uint32_t done = 0; done < b->n;) {
		int rc = cqrs_submit_batch(l->e, b->cmds + done, b->tickets + done, b->n - done);
		if (rc == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (rc < 0) {
			b->n = done;
			return rc;
		}
		done += (uint32_t)rc;
	}
	return 0;
}

static void reap_batch(load *l, load_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++) {
		if (cqrs_ticket_wait(&b->tickets[i], UINT64_MAX) == 0)
			atomic_fetch_add_explicit(&l->accepted, 1, memory_order_relaxed);
		else
			atomic_fetch_add_explicit(&l->rejected, 1, memory_order_relaxed);
	}
	b->n = 0;
}

void *demo_load_main(void *arg)
{
	load *l = arg;
	load_batch *batches = calloc(DEPTH, sizeof *batches);
	load_state st = { .cap = 1 << 16,
			  .seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)cqrs__mono_ns() };

	st.orders = calloc(st.cap, sizeof *st.orders);
	if (!batches || !st.orders) {
		free(batches);
		free(st.orders);
		return NULL;
	}
	uint64_t paced_t0 = 0, paced_sent = 0;

	for (uint64_t k = 0; !atomic_load_explicit(&l->stop, memory_order_relaxed); k++) {
		load_batch *b = &batches[k % DEPTH];
		uint32_t count = BATCH;

		reap_batch(l, b); /* the batch DEPTH submissions ago */
		if (atomic_load_explicit(&l->phase, memory_order_relaxed) == PHASE_PACED &&
		    (count = paced_count(l, &paced_t0, &paced_sent)) == 0)
			break;
		fill_batch(l, &st, b, count);
		if (submit_batch(l, b))
			atomic_store(&l->stop, 1);
		atomic_fetch_add_explicit(&l->submitted, b->n, memory_order_relaxed);
	}
	for (int k = 0; k < DEPTH; k++)
		reap_batch(l, &batches[k]);
	free(batches);
	free(st.orders);
	return NULL;
}

/* One CreateOrder at a time, then wait until the view shows it. */
void *demo_probe_main(void *arg)
{
	load *l = arg;
	cqrs_view *v = NULL;
	uint64_t order_id = (UINT64_C(1) << 61);
	int rc;

	if (cqrs_view_open(l->o->name, "order_summaries", &v)) {
		fprintf(stderr, "probe: cannot open order_summaries: %s\n", cqrs_last_error());
		return NULL;
	}
	/* Probe ids live in their own range, above the load's. */
	order_id += l->ids.next_order;
	while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
		create_order co = { .order_id = order_id++, .customer_id = l->ids.first_customer,
				    .item_count = 1, .total = 999 };
		cqrs_command c = { .type = CMD_CREATE_ORDER, .size = sizeof co, .data = &co };
		cqrs_ticket t;
		int phase = atomic_load_explicit(&l->phase, memory_order_relaxed);
		uint64_t t0 = cqrs__mono_ns(), seq;
		struct timespec pause = { 0, 200000 };

		strcpy(co.shipping_address, "probe");
		rc = cqrs_submit(l->e, &c, &t);
		if (rc == -EAGAIN)
			continue;
		if (rc || cqrs_ticket_wait(&t, UINT64_MAX) != 0)
			break;
		seq = cqrs_ticket_seq(&t);
		/* a probe that straddles the phase change counts for neither */
		if (cqrs_view_wait(v, seq, 5000000000ull) == 0 &&
		    atomic_load_explicit(&l->phase, memory_order_relaxed) == phase) {
			cqrs__hist_record_mt(&l->visible[phase], cqrs__mono_ns() - t0);
			atomic_fetch_add_explicit(&l->probes[phase], 1, memory_order_relaxed);
		}
		if (l->probe_fd >= 0) {
			uint64_t msg[2] = { seq, co.order_id };
			if (write(l->probe_fd, msg, sizeof msg) != (ssize_t)sizeof msg)
				l->probe_fd = -1;
		}
		nanosleep(&pause, NULL);
	}
	cqrs_view_close(v);
	return NULL;
}
