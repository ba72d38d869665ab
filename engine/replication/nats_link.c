/*
 * engine/replication/nats_link.c - the replicator's NATS JetStream calls
 * (see nats_link.h). Cold path apart from cqrs__link_publish, which is one
 * synchronous publish per batch of journal records.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "engine/replication/nats_link.h"

#define DUPLICATE_WINDOW_NS (INT64_C(120) * 1000000000) /* resends within it are dropped */

static int fail(nats_link *l, int rc, const char *what, natsStatus s, jsErrCode jerr)
{
	const char *last = nats_GetLastError(NULL);

	snprintf(l->err, sizeof l->err, "%s: %s%s%s (js error %d)", what, natsStatus_GetText(s),
		 last && *last ? ": " : "", last ? last : "", (int)jerr);
	return rc;
}

int cqrs__link_init(nats_link *l, const char *engine, const char *urls, uint32_t replicas,
		    int64_t wait_ms)
{
	char *save = NULL;

	memset(l, 0, sizeof *l);
	if (!urls || !*urls)
		return -EINVAL;
	l->url_buf = strdup(urls);
	if (!l->url_buf)
		return -ENOMEM;
	for (char *u = strtok_r(l->url_buf, ", ", &save); u; u = strtok_r(NULL, ", ", &save)) {
		if (l->nurls == CQRS_REPL_MAX_URLS) {
			free(l->url_buf);
			l->url_buf = NULL;
			return -EINVAL;
		}
		l->urls[l->nurls++] = u;
	}
	if (!l->nurls) {
		free(l->url_buf);
		l->url_buf = NULL;
		return -EINVAL;
	}
	snprintf(l->engine, sizeof l->engine, "%s", engine);
	snprintf(l->stream, sizeof l->stream, "CQRS_%s", engine);
	snprintf(l->subj, sizeof l->subj, "cqrs.%s.journal", engine);
	snprintf(l->schema_subj, sizeof l->schema_subj, "cqrs.%s.schema", engine);
	l->replicas = replicas ? replicas : 1;
	l->wait_ms = wait_ms;
	return 0;
}

static int ensure_stream(nats_link *l)
{
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	jsOptions jo;
	jsErrCode jerr = 0;
	const char *subjects[2] = { l->subj, l->schema_subj };
	natsStatus s;

	jsOptions_Init(&jo);
	jo.Wait = l->wait_ms;
	s = js_GetStreamInfo(&si, l->js, l->stream, &jo, &jerr);
	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return 0;
	}
	if ((jerr != JSStreamNotFoundErr && s != NATS_NOT_FOUND) || l->no_create)
		return fail(l, -EIO, "stream info", s, jerr);
	jsStreamConfig_Init(&sc);
	sc.Name = l->stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 2;
	sc.Storage = js_FileStorage;
	sc.Replicas = l->replicas;
	sc.Duplicates = DUPLICATE_WINDOW_NS;
	jerr = 0;
	s = js_AddStream(&si, l->js, &sc, &jo, &jerr);
	if (s != NATS_OK)
		return fail(l, -EIO, "create stream", s, jerr);
	jsStreamInfo_Destroy(si);
	return 0;
}

int cqrs__link_connect(nats_link *l)
{
	natsOptions *o = NULL;
	jsOptions jo;
	natsStatus s;
	int rc;

	if (l->nc)
		return ensure_stream(l);
	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetServers(o, l->urls, l->nurls);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, 1000);
	if (s == NATS_OK) /* reconnect for ever, every 100 ms: the loop resyncs after */
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, 100);
	if (s == NATS_OK)
		s = natsOptions_SetNoRandomize(o, true);
	if (s == NATS_OK)
		s = natsConnection_Connect(&l->nc, o);
	natsOptions_Destroy(o);
	if (s != NATS_OK) {
		l->nc = NULL;
		return fail(l, -ENOTCONN, "connect", s, 0);
	}
	jsOptions_Init(&jo);
	jo.Wait = l->wait_ms;
	s = natsConnection_JetStream(&l->js, l->nc, &jo);
	if (s != NATS_OK) {
		rc = fail(l, -ENOTCONN, "jetstream context", s, 0);
		cqrs__link_close(l);
		return rc;
	}
	return ensure_stream(l);
}

/* The journal message's last seq from its Cqrs-Last header. */
static uint64_t header_u64(natsMsg *m, const char *key)
{
	const char *v = NULL;

	if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v)
		return 0;
	return strtoull(v, NULL, 10);
}

int cqrs__link_position(nats_link *l, link_position *out)
{
	jsStreamInfo *si = NULL;
	natsMsg *m = NULL;
	jsOptions jo;
	jsErrCode jerr = 0;
	natsStatus s;

	memset(out, 0, sizeof *out);
	jsOptions_Init(&jo);
	jo.Wait = l->wait_ms;
	s = js_GetStreamInfo(&si, l->js, l->stream, &jo, &jerr);
	if (s != NATS_OK)
		return fail(l, -EIO, "stream info", s, jerr);
	out->stream_last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	jerr = 0;
	s = js_GetLastMsg(&m, l->js, l->stream, l->subj, &jo, &jerr);
	if (s == NATS_OK) {
		out->journal_last = header_u64(m, "Cqrs-Last");
		natsMsg_Destroy(m);
	} else if (jerr != JSNoMessageFoundErr && s != NATS_NOT_FOUND) {
		return fail(l, -EIO, "last journal message", s, jerr);
	}
	l->stream_last = out->stream_last;
	return 0;
}

int cqrs__link_publish(nats_link *l, const char *subj, const char *msg_id, uint64_t first,
		       uint64_t last, const void *data, size_t len)
{
	natsMsg *m = NULL;
	jsPubAck *pa = NULL;
	jsPubOptions po;
	jsErrCode jerr = 0;
	char num[24];
	natsStatus s;
	int rc = 0;

	s = natsMsg_Create(&m, subj, NULL, data, (int)len);
	snprintf(num, sizeof num, "%" PRIu64, first);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Cqrs-First", num);
	snprintf(num, sizeof num, "%" PRIu64, last);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Cqrs-Last", num);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Cqrs-Engine", l->engine);
	if (s != NATS_OK) {
		natsMsg_Destroy(m);
		return fail(l, -EIO, "message", s, 0);
	}
	jsPubOptions_Init(&po);
	po.MaxWait = l->wait_ms; /* without it a lost ack would wait for ever */
	po.MsgId = msg_id;
	po.ExpectStream = l->stream;
	/* One publish at a time, each expecting the last one: nothing lands
	 * out of order or after a message this replicator did not see. */
	po.ExpectLastSeq = l->stream_last;
	po.ExpectNoMessage = false;
	if (!l->stream_last) /* an empty stream: ExpectLastSeq 0 means "no check" */
		po.ExpectLastSeq = 0;
	s = js_PublishMsg(&pa, l->js, m, &po, &jerr);
	natsMsg_Destroy(m);
	if (s != NATS_OK)
		return fail(l, -EIO, "publish", s, jerr);
	if (pa->Duplicate)
		rc = 1;
	else
		l->stream_last = pa->Sequence;
	jsPubAck_Destroy(pa);
	return rc;
}

int64_t cqrs__link_max_payload(const nats_link *l)
{
	return l->nc ? natsConnection_GetMaxPayload(l->nc) : 0;
}

void cqrs__link_close(nats_link *l)
{
	if (l->js)
		jsCtx_Destroy(l->js);
	if (l->nc) {
		natsConnection_Close(l->nc);
		natsConnection_Destroy(l->nc);
	}
	l->js = NULL;
	l->nc = NULL;
}
