/*
 * tests/lib/bank.h - a tiny domain for engine tests: accounts with
 * deposits and withdrawals, one view `balances` (key account), and knobs
 * to make the projection fail on purpose (dead letters).
 *
 * Commands: 1 Deposit{account, amount}, 2 Withdraw{account, amount}
 * (rejected when it would overdraw). Events: 1 Deposited, 2 Withdrawn, both
 * {account, amount, balance}. Aggregate id = account.
 * The projection refuses (CQRS_EREJECTED) any event whose amount equals
 * bank_poison_amount (0: never).
 */
#ifndef CQRS_TESTS_BANK_H
#define CQRS_TESTS_BANK_H

#include <stdatomic.h>

#include "cqrs.h"

#define BANK_CMD_FIELDS(F) F(u64, account) F(i64, amount)
CQRS_RECORD_DECLARE(bank_deposit, BANK_CMD_FIELDS)
CQRS_RECORD_DECLARE(bank_withdraw, BANK_CMD_FIELDS)
#define BANK_EV_FIELDS(F) F(u64, account) F(i64, amount) F(i64, balance)
CQRS_RECORD_DECLARE(bank_deposited, BANK_EV_FIELDS)
CQRS_RECORD_DECLARE(bank_withdrawn, BANK_EV_FIELDS)
#define BANK_ROW_FIELDS(F) F(u64, account) F(i64, balance) F(u64, ops) F(u64, last_seq)
CQRS_RECORD_DECLARE(bank_row, BANK_ROW_FIELDS)

enum { BANK_DEPOSIT = 1, BANK_WITHDRAW = 2 };

typedef struct bank_model {
	cqrs_store *accounts; /* account -> int64 balance */
} bank_model;

/* Set by tests while projector threads read it. */
extern _Atomic int64_t bank_poison_amount;
/* Microseconds the projection sleeps per event (0: none): a slow
 * projection, for tests that watch it catch up. */
extern _Atomic int bank_apply_delay_us;
/* 0: bank_start leaves the Withdrawn event type (2) unregistered. */
extern int bank_register_withdrawn;
/* cqrs_config.pretouch of the engines bank_start opens (default 0). */
extern int bank_pretouch;
/* cqrs_config.threading of the engines bank_start opens (default DEDICATED). */
extern int bank_threading;
/* Called on the config before bank_start opens the engine (NULL: none). */
extern void (*bank_config_hook)(cqrs_config *cfg);
/* 1: bank_start registers the accounts store with the engine (write-model
 * snapshots on; default 0). */
extern int bank_snapshots;
/* The balances view's ordered index fields (NULL: none; default NULL). */
extern const char *const *bank_ordered_fields;

/* Opens and starts an engine named name in dir with the bank domain.
 * capacity: the balances view's initial rows. on_error: projection policy. */
int bank_start(const char *name, const char *dir, int durability, uint64_t capacity, int on_error,
	       bank_model *m, cqrs_engine **out);
/* Stops, closes, frees the model. */
void bank_stop(cqrs_engine *e, bank_model *m);

/* Submits one command and waits; returns the ticket status, *seq its seq. */
int bank_do(cqrs_engine *e, uint32_t type, uint64_t account, int64_t amount, uint64_t client_id,
	    uint64_t client_seq, uint64_t *seq);

#endif
