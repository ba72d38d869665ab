/*
 * tests/lib/nats_stream.c - see nats_stream.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "core/errors.h"
#include "engine/journal/format.h"
#include "engine/journal/journal.h"
#include "tests/lib/nats_stream.h"

static int connect_js(const char *urls, natsConnection **nc, jsCtx **js)
{
	char buf[512], *save = NULL;
	const char *list[16];
	int n = 0;
	natsOptions *o = NULL;
	jsOptions jo;

	snprintf(buf, sizeof buf, "%s", urls);
	for (char *u = strtok_r(buf, ",", &save); u && n < 16; u = strtok_r(NULL, ",", &save))
		list[n++] = u;
	if (natsOptions_Create(&o) != NATS_OK)
		return -1;
	natsOptions_SetServers(o, list, n);
	natsOptions_SetTimeout(o, 2000);
	if (natsConnection_Connect(nc, o) != NATS_OK) {
		natsOptions_Destroy(o);
		fprintf(stderr, "stream check: cannot connect to %s\n", urls);
		return -1;
	}
	natsOptions_Destroy(o);
	jsOptions_Init(&jo);
	jo.Wait = 10000;
	if (natsConnection_JetStream(js, *nc, &jo) != NATS_OK) {
		natsConnection_Destroy(*nc);
		return -1;
	}
	return 0;
}

static uint64_t hdr(natsMsg *m, const char *k)
{
	const char *v = NULL;
	return natsMsgHeader_Get(m, k, &v) == NATS_OK && v ? strtoull(v, NULL, 10) : 0;
}

int tn_stream_matches_journal(const char *urls, const char *engine, const char *journal_dir,
			      tn_stream_stats *out)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamInfo *si = NULL;
	cqrs_journal_iter *it = NULL;
	char stream[64], subj[96], ssubj[96];
	uint64_t expect = 1;
	jsErrCode jerr = 0;
	uint8_t *copy = NULL;
	int rc = -1;

	memset(out, 0, sizeof *out);
	snprintf(stream, sizeof stream, "CQRS_%s", engine);
	snprintf(subj, sizeof subj, "cqrs.%s.journal", engine);
	snprintf(ssubj, sizeof ssubj, "cqrs.%s.schema", engine);
	if (connect_js(urls, &nc, &js))
		return -1;
	for (int tries = 0; js_GetStreamInfo(&si, js, stream, NULL, &jerr) != NATS_OK; tries++) {
		if (tries == 100) {
			fprintf(stderr, "stream check: no stream %s (js error %d)\n", stream, (int)jerr);
			goto out;
		}
		nats_Sleep(100); /* a leader election after a kill */
	}
	out->stream_last = si->State.LastSeq;
	if (cqrs__journal_iter_open(&it, journal_dir, 1)) {
		fprintf(stderr, "stream check: journal %s: %s\n", journal_dir, cqrs_last_error());
		goto out;
	}
	for (uint64_t s = si->State.FirstSeq; s && s <= si->State.LastSeq; s++) {
		natsMsg *m = NULL;
		const uint8_t *d;
		size_t len, off = 0;
		int tries = 0;

		while (js_GetMsg(&m, js, stream, s, NULL, &jerr) != NATS_OK) {
			if (++tries == 100) {
				fprintf(stderr, "stream check: message %" PRIu64 ": js error %d\n", s, (int)jerr);
				goto out;
			}
			nats_Sleep(100);
		}
		len = (size_t)natsMsg_GetDataLength(m);
		/* An aligned copy: record headers hold 64-bit fields. */
		free(copy);
		copy = malloc(len + 8);
		if (!copy) {
			natsMsg_Destroy(m);
			goto out;
		}
		memcpy(copy, natsMsg_GetData(m), len);
		d = copy;
		if (!strcmp(natsMsg_GetSubject(m), ssubj)) {
			jseg_header h;
			cqrs_schema sc;
			if (cqrs__jseg_header_check(d, len, &h) || cqrs__jseg_schema(d, len, &h, 1, &sc) != 1 ||
			    strcmp(sc.name, "Deposited")) {
				fprintf(stderr, "stream check: schema message %" PRIu64 " does not decode\n", s);
				natsMsg_Destroy(m);
				goto out;
			}
			out->schemas++;
			natsMsg_Destroy(m);
			continue;
		}
		if (strcmp(natsMsg_GetSubject(m), subj) || hdr(m, "Cqrs-First") != expect) {
			fprintf(stderr, "stream check: message %" PRIu64 " on %s starts at %" PRIu64
				", expected seq %" PRIu64 "\n", s, natsMsg_GetSubject(m),
				hdr(m, "Cqrs-First"), expect);
			natsMsg_Destroy(m);
			goto out;
		}
		while (off < len) {
			const cqrs_jrec *r = (const cqrs_jrec *)(d + off), *j = NULL;
			if (len - off < CQRS_JREC_HEADER || cqrs__jrec_span(r) > len - off ||
			    r->checksum != cqrs__jrec_checksum(r) || r->seq != expect) {
				fprintf(stderr, "stream check: message %" PRIu64 ", offset %zu: bad record "
					"(seq %" PRIu64 ", expected %" PRIu64 ")\n", s, off, r->seq, expect);
				natsMsg_Destroy(m);
				goto out;
			}
			if (cqrs__journal_iter_next(it, &j) != 1 || memcmp(j, r, cqrs__jrec_span(r))) {
				fprintf(stderr, "stream check: seq %" PRIu64 " differs from the journal's\n",
					expect);
				natsMsg_Destroy(m);
				goto out;
			}
			off += cqrs__jrec_span(r);
			expect++;
		}
		if (hdr(m, "Cqrs-Last") != expect - 1) {
			fprintf(stderr, "stream check: message %" PRIu64 " says last %" PRIu64 ", holds %"
				PRIu64 "\n", s, hdr(m, "Cqrs-Last"), expect - 1);
			natsMsg_Destroy(m);
			goto out;
		}
		out->messages++;
		natsMsg_Destroy(m);
	}
	out->last_seq = expect - 1;
	rc = 0;
out:
	free(copy);
	if (it)
		cqrs__journal_iter_close(it);
	if (si)
		jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return rc;
}

int tn_stream_leader(const char *urls, const char *engine)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamInfo *si = NULL;
	char stream[64];
	int leader = -1;

	snprintf(stream, sizeof stream, "CQRS_%s", engine);
	if (connect_js(urls, &nc, &js))
		return -1;
	if (js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK) {
		if (si->Cluster && si->Cluster->Leader && si->Cluster->Leader[0] == 'n')
			leader = atoi(si->Cluster->Leader + 1);
		jsStreamInfo_Destroy(si);
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return leader;
}
