/*
 * tools/cmd_metrics.c - `cqrs metrics ENGINE [--listen HOST:PORT] ...`: an
 * HTTP server (tools/http.c, libmicrohttpd) with
 *   GET  /metrics                 the engine's counters and latency
 *                                 histograms, Prometheus text (tools/prom.c),
 *                                 read from its control segment as any
 *                                 process may, across restarts
 *                                 (tools/engine_watch.c)
 *   POST /commands/<Type>         a command, JSON in and out
 *   GET  /views/<view>/<key>      a row                 (tools/http_gateway.c)
 *   GET  /views/<view>/find?field=&value=   rows by an indexed field
 * until SIGINT or SIGTERM. Listens on 127.0.0.1:9464 unless told otherwise;
 * port 0 takes a free port. The first line on stdout says where it listens;
 * log lines go to stderr (--log-format json: JSON lines).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "tools/engine_watch.h"
#include "tools/http.h"
#include "tools/http_gateway.h"
#include "tools/log.h"
#include "tools/prom.h"

static const tool_cmd_help metrics_help = {
	"metrics",
	"usage: cqrs metrics ENGINE [--listen HOST:PORT] [--no-gateway] [--max-wait SECONDS]\n"
	"                    [--max-body BYTES] [--max-conns N] [--idle-timeout SECONDS]\n"
	"                    [--log-format text|json]\n"
	"\n"
	"Serves HTTP until SIGINT or SIGTERM:\n"
	"  GET  /metrics                  the engine's counters and latency histograms\n"
	"                                 (Prometheus text format); cqrs_engine_up says\n"
	"                                 whether it runs; follows its restarts\n"
	"  POST /commands/TYPE            a command: body a JSON object of its fields,\n"
	"                                 ?aggregate_id=&expected_version=&client_seq=;\n"
	"                                 answers {\"status\",\"seq\",\"reason\"}\n"
	"  GET  /views/VIEW/KEY           the row with that key (JSON)\n"
	"  GET  /views/VIEW/find?field=F&value=V[&limit=N][&snapshot=1]\n"
	"                                 rows whose indexed field F equals V\n"
	"  reads take ?min_seq=S (or a Cqrs-Min-Seq header): wait until the view\n"
	"  has applied seq S (at most --max-wait), else 504\n"
	"  --listen HOST:PORT     numeric IPv4 address and port (default\n"
	"                         127.0.0.1:9464; port 0: a free one). The gateway\n"
	"                         takes commands from whoever reaches it: listen\n"
	"                         elsewhere than loopback only with --no-gateway or\n"
	"                         behind something that authenticates\n"
	"  --no-gateway           serve /metrics only\n"
	"  --max-wait SECONDS     longest min_seq wait (default 5)\n"
	"  --max-body BYTES       larger request bodies get 413 (default 65536)\n"
	"  --max-conns N          connections at once (default 64)\n"
	"  --idle-timeout SECONDS idle connections are closed (default 30)\n"
	"  --log-format FORMAT    text (default) or json (one object per line)\n"
	"The first line on stdout is \"listening on http://HOST:PORT\".\n"
};

typedef struct server {
	const char *engine;
	tool_engine_watch *watch;
	tool_gateway *gw; /* NULL: --no-gateway */
} server;

static void serve_metrics(server *s, const tool_http_req *r)
{
	static __thread cqrs_counters c; /* 18 KiB: not on the stack */
	cqrs_ctl_info ci;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int have;

	if (!f) {
		tool_http_error(r, 500, "out of memory");
		return;
	}
	have = tool_engine_watch_snapshot(s->watch, &c, &ci);
	tool_prom_write(f, s->engine, have ? &c : NULL, have ? &ci : NULL);
	fclose(f);
	tool_http_reply(r, 200, TOOL_PROM_CONTENT_TYPE, buf, len);
}

static void route(void *arg, const tool_http_req *r)
{
	server *s = arg;
	const char *p = r->path;
	int get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");

	if (!strcmp(p, "/metrics")) {
		if (!get) {
			tool_http_set_header(r, "Allow", "GET, HEAD");
			tool_http_error(r, 405, "/metrics takes GET");
			return;
		}
		serve_metrics(s, r);
		return;
	}
	if (s->gw && !strncmp(p, "/commands/", 10)) {
		if (strcmp(r->method, "POST")) {
			tool_http_set_header(r, "Allow", "POST");
			tool_http_error(r, 405, "/commands/TYPE takes POST");
			return;
		}
		tool_gateway_command(s->gw, r, p + 10);
		return;
	}
	if (s->gw && !strncmp(p, "/views/", 7)) {
		char view[CQRS_NAME_MAX + 1];
		const char *slash = strchr(p + 7, '/');
		size_t n = slash ? (size_t)(slash - (p + 7)) : strlen(p + 7);

		if (!get) {
			tool_http_set_header(r, "Allow", "GET, HEAD");
			tool_http_error(r, 405, "/views/... takes GET");
			return;
		}
		if (n > CQRS_NAME_MAX)
			n = CQRS_NAME_MAX; /* too long: refused as a name */
		memcpy(view, p + 7, n);
		view[n] = 0;
		tool_gateway_view(s->gw, r, view, slash ? slash + 1 : "");
		return;
	}
	tool_http_error(r, 404, "no such resource (try /metrics%s)",
			s->gw ? ", /commands/TYPE, /views/VIEW/KEY" : "");
}

/* "HOST:PORT" into host (cap bytes) and port. 0 or -1. */
static int parse_listen(const char *s, char *host, size_t cap, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	uint64_t p;
	char why[64];

	if (!colon || colon == s || (size_t)(colon - s) >= cap ||
	    tool_parse_u64(colon + 1, 0, 65535, &p, why, sizeof why))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	*port = (uint16_t)p;
	return 0;
}

int cqrs_cmd_metrics(int argc, char **argv)
{
	const char *listen = "127.0.0.1:9464", *log_format = "text";
	uint64_t max_wait_ms = 5000, max_body = 65536, max_conns = 64, idle_ms = 30000;
	int no_gateway = 0, npos, rc, sig;
	char host[64], *pos[1];
	tool_http_config cfg = { 0 };
	server s = { 0 };
	tool_http *h = NULL;
	sigset_t set;
	const tool_opt opts[] = {
		{ "--listen", TOOL_OPT_STR, &listen, 0, 0, NULL },
		{ "--no-gateway", TOOL_OPT_FLAG, &no_gateway, 0, 0, NULL },
		{ "--max-wait", TOOL_OPT_SECONDS, &max_wait_ms, 0, 3600 * 1000, NULL },
		{ "--max-body", TOOL_OPT_U64, &max_body, 16, 1u << 24, NULL },
		{ "--max-conns", TOOL_OPT_U64, &max_conns, 1, 4096, NULL },
		{ "--idle-timeout", TOOL_OPT_SECONDS, &idle_ms, 1000, 3600 * 1000, NULL },
		{ "--log-format", TOOL_OPT_STR, &log_format, 0, 0, NULL },
		{ NULL }
	};

	if ((rc = tool_args(&metrics_help, argc, argv, opts, 1, 1, pos, &npos)) != TOOL_ARGS_OK)
		return rc;
	if (tool_log_set_format(log_format))
		return tool_usage_error(&metrics_help, "--log-format takes text or json, not '%s'", log_format);
	if (parse_listen(listen, host, sizeof host, &cfg.port))
		return tool_usage_error(&metrics_help, "--listen wants HOST:PORT, got '%s'", listen);
	s.engine = pos[0];
	s.watch = tool_engine_watch_new(pos[0]);
	s.gw = no_gateway ? NULL : tool_gateway_new(pos[0], max_wait_ms);
	if (!s.watch || (!no_gateway && !s.gw)) {
		rc = tool_fail("metrics", -ENOMEM);
		goto out;
	}
	/* The HTTP threads inherit this mask: the signals come to sigwait. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	cfg.host = host;
	cfg.max_conns = (unsigned)max_conns;
	cfg.timeout_s = (unsigned)((idle_ms + 999) / 1000);
	cfg.max_body = (size_t)max_body;
	cfg.handler = route;
	cfg.arg = &s;
	if ((rc = tool_http_start(&cfg, &h))) {
		rc = TOOL_EXIT_FAIL;
		goto out;
	}
	printf("listening on http://%s:%u\n", host, (unsigned)tool_http_port(h));
	fflush(stdout);
	tool_log(CQRS_LOG_INFO, "serving engine %s on http://%s:%u (%s)", s.engine, host,
		 (unsigned)tool_http_port(h), no_gateway ? "metrics only" : "metrics and gateway");
	if (!no_gateway && strncmp(host, "127.", 4))
		tool_log(CQRS_LOG_WARN, "the gateway takes commands from anyone who reaches %s "
			 "(nothing authenticates them): --no-gateway serves metrics only", host);
	{
		static cqrs_counters c0; /* logs whether the engine runs now */
		cqrs_ctl_info ci0;
		tool_engine_watch_snapshot(s.watch, &c0, &ci0);
	}
	sigwait(&set, &sig);
	tool_log(CQRS_LOG_INFO, "stopping on signal %d", sig);
	tool_http_stop(h);
	rc = TOOL_EXIT_OK;
out:
	tool_gateway_free(s.gw);
	tool_engine_watch_free(s.watch);
	return rc;
}
