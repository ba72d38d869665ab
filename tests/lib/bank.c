/*
 * tests/lib/bank.c - the bank test domain (see bank.h).
 */
#include <string.h>
#include <unistd.h>

#include "tests/lib/bank.h"

CQRS_RECORD_DEFINE(bank_deposit, "Deposit", BANK_CMD_FIELDS)
CQRS_RECORD_DEFINE(bank_withdraw, "Withdraw", BANK_CMD_FIELDS)
CQRS_RECORD_DEFINE(bank_deposited, "Deposited", BANK_EV_FIELDS)
CQRS_RECORD_DEFINE(bank_withdrawn, "Withdrawn", BANK_EV_FIELDS)
CQRS_RECORD_DEFINE(bank_row, "Balance", BANK_ROW_FIELDS)

_Atomic int64_t bank_poison_amount;
_Atomic int bank_apply_delay_us;
int bank_register_withdrawn = 1;
int bank_pretouch;
int bank_threading;
void (*bank_config_hook)(cqrs_config *cfg);
const char *const *bank_ordered_fields;
int bank_snapshots;

static int64_t balance_of(bank_model *m, uint64_t account)
{
	const int64_t *b = cqrs_store_get(m->accounts, &account);
	return b ? *b : 0;
}

static int decide_deposit(cqrs_ctx *ctx, const void *cmd, void *model)
{
	const bank_deposit *c = cmd;
	bank_deposited ev = { c->account, c->amount, balance_of(model, c->account) + c->amount };

	if (c->amount <= 0)
		return cqrs_reject(ctx, "deposit must be positive");
	return cqrs_emit(ctx, 1, c->account, &ev);
}

static int decide_withdraw(cqrs_ctx *ctx, const void *cmd, void *model)
{
	const bank_withdraw *c = cmd;
	int64_t bal = balance_of(model, c->account);
	bank_withdrawn ev = { c->account, c->amount, bal - c->amount };

	if (c->amount <= 0 || c->amount > bal)
		return cqrs_reject(ctx, "insufficient funds: balance %lld", (long long)bal);
	return cqrs_emit(ctx, 2, c->account, &ev);
}

static void evolve(void *model, const cqrs_event *ev)
{
	const bank_deposited *e = ev->data; /* both events share the layout */
	int64_t *b = cqrs_store_upsert(((bank_model *)model)->accounts, &e->account, NULL);

	if (b)
		*b = e->balance;
}

static int apply(cqrs_proj *p, const cqrs_event *ev, void *arg)
{
	const bank_deposited *e = ev->data;
	bank_row row;
	(void)arg;

	/* relaxed: a test knob; the test orders its changes through the engine. */
	int64_t poison = atomic_load_explicit(&bank_poison_amount, memory_order_relaxed);

	if (poison && e->amount == poison)
		return cqrs_proj_fail(p, CQRS_EREJECTED, "poison amount %lld", (long long)e->amount);
	/* relaxed: a test knob, as above */
	if (atomic_load_explicit(&bank_apply_delay_us, memory_order_relaxed))
		usleep((useconds_t)atomic_load_explicit(&bank_apply_delay_us, memory_order_relaxed));
	if (cqrs_proj_get(p, 0, &e->account, 8, &row))
		memset(&row, 0, sizeof row);
	row.account = e->account;
	row.balance = e->balance;
	row.ops++;
	row.last_seq = ev->seq;
	return cqrs_proj_upsert(p, 0, &row);
}

int bank_start(const char *name, const char *dir, int durability, uint64_t capacity, int on_error,
	       bank_model *m, cqrs_engine **out)
{
	cqrs_projection_def pd = {
		.name = "balances",
		.views = { { .name = "balances", .row = bank_row_schema(), .key_field = "account",
			     .capacity = capacity, .ordered_fields = bank_ordered_fields } },
		.nviews = 1,
		.apply = apply,
		.on_error = on_error,
	};
	cqrs_config cfg;
	int rc;

	*out = NULL;
	rc = cqrs_store_create(8, 8, 1024, &m->accounts);
	if (rc)
		return rc;
	cqrs_config_init(&cfg);
	cfg.name = name;
	cfg.data_dir = dir;
	cfg.durability = durability;
	cfg.ring_bytes = 1u << 22;
	cfg.segment_bytes = 1u << 20;
	cfg.pretouch = bank_pretouch;
	cfg.threading = bank_threading;
	if (bank_config_hook)
		bank_config_hook(&cfg);
	rc = cqrs_engine_open(&cfg, m, out);
	if (!rc) rc = cqrs_register_command(*out, BANK_DEPOSIT, bank_deposit_schema(), decide_deposit);
	if (!rc) rc = cqrs_register_command(*out, BANK_WITHDRAW, bank_withdraw_schema(), decide_withdraw);
	if (!rc) rc = cqrs_register_event(*out, 1, bank_deposited_schema(), evolve);
	if (!rc && bank_register_withdrawn)
		rc = cqrs_register_event(*out, 2, bank_withdrawn_schema(), evolve);
	if (!rc) rc = cqrs_register_projection(*out, &pd);
	if (!rc && bank_snapshots) rc = cqrs_engine_register_store(*out, "accounts", m->accounts);
	if (!rc) rc = cqrs_engine_start(*out);
	if (rc) {
		cqrs_engine_close(*out);
		*out = NULL;
		cqrs_store_destroy(m->accounts);
		m->accounts = NULL;
	}
	return rc;
}

void bank_stop(cqrs_engine *e, bank_model *m)
{
	cqrs_engine_close(e);
	cqrs_store_destroy(m->accounts);
	m->accounts = NULL;
}

int bank_do(cqrs_engine *e, uint32_t type, uint64_t account, int64_t amount, uint64_t client_id,
	    uint64_t client_seq, uint64_t *seq)
{
	bank_deposit c = { account, amount };
	cqrs_command cmd = { .type = type, .size = sizeof c, .data = &c, .aggregate_id = account,
			     .client_id = client_id, .client_seq = client_seq };
	cqrs_ticket t;
	int rc = cqrs_submit(e, &cmd, &t);

	if (rc)
		return rc;
	rc = cqrs_ticket_wait(&t, UINT64_MAX);
	if (seq)
		*seq = cqrs_ticket_seq(&t);
	return rc;
}
