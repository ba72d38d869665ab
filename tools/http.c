/*
 * tools/http.c - the HTTP server (tools/http.h) on libmicrohttpd.
 *
 * The listening socket is ours (bound before the daemon starts, so that a
 * busy port is reported as EADDRINUSE and port 0 as the port the kernel
 * chose); libmicrohttpd runs one thread per connection over poll(), at most
 * max_conns at once (further connections are refused by the library) and
 * drops a connection idle for timeout_s. A request body is accumulated
 * across the access callback's calls (the upload_data pattern: each call
 * consumes what it is given by setting *upload_data_size to 0; the last
 * call, with no data, answers). A Content-Length over max_body is answered
 * 413 before any of the body is read; a chunked body that grows past it is
 * discarded as it arrives and answered 413 at its end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cqrs_common.h"
#include "tools/http.h"
#include "tools/log.h"
#include "tools/out.h"

struct tool_http {
	struct MHD_Daemon *d;
	tool_http_config cfg;
	uint16_t port;
	int fd;
};

/* One request in progress (*con_cls). */
typedef struct pending {
	char *buf;
	size_t len, cap;
	int too_large;
	int replied;
	enum MHD_Result queued; /* what MHD_queue_response said */
	unsigned nhdr;
	char hdr[4][2][64];     /* tool_http_set_header's, sent with the reply */
} pending;

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = 0;
	tool_log(CQRS_LOG_WARN, "http: %s", msg);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	pending *p = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (p) {
		free(p->buf);
		free(p);
		*con_cls = NULL;
	}
}

static void reply_413(struct MHD_Connection *conn, pending *p, size_t max)
{
	tool_http_req r = { conn, "", "", NULL, 0, p };

	tool_http_error(&r, MHD_HTTP_CONTENT_TOO_LARGE, "request body over %zu bytes", max);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	tool_http *h = cls;
	pending *p = *con_cls;
	size_t max = h->cfg.max_body;

	(void)version;
	if (!p) {
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		p = calloc(1, sizeof *p);
		if (!p)
			return MHD_NO;
		*con_cls = p;
		if (cl && strtoull(cl, NULL, 10) > max) {
			reply_413(conn, p, max);
			return p->queued;
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (p->replied || p->too_large)
			return MHD_YES;
		if (n > max - p->len) {
			p->too_large = 1;
			free(p->buf);
			p->buf = NULL;
			p->len = p->cap = 0;
			return MHD_YES;
		}
		if (p->len + n + 1 > p->cap) {
			size_t cap = p->cap ? p->cap : 1024;
			char *b;
			while (cap < p->len + n + 1)
				cap *= 2;
			if (!(b = realloc(p->buf, cap)))
				return MHD_NO;
			p->buf = b;
			p->cap = cap;
		}
		memcpy(p->buf + p->len, upload_data, n);
		p->len += n;
		return MHD_YES;
	}
	if (p->replied)
		return p->queued;
	if (p->too_large) {
		reply_413(conn, p, max);
	} else {
		tool_http_req r = { conn, method, url, p->buf ? p->buf : "", p->len, p };
		if (p->buf)
			p->buf[p->len] = 0;
		h->cfg.handler(h->cfg.arg, &r);
		if (!p->replied)
			tool_http_error(&r, MHD_HTTP_INTERNAL_SERVER_ERROR, "no answer");
	}
	return p->queued;
}

int tool_http_start(const tool_http_config *cfg, tool_http **out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(cfg->port) };
	socklen_t salen = sizeof sa;
	tool_http *h;
	int one = 1, rc;

	if (inet_pton(AF_INET, cfg->host, &sa.sin_addr) != 1) {
		tool_log(CQRS_LOG_ERROR, "listen address '%s' is not a numeric IPv4 address", cfg->host);
		return -EINVAL;
	}
	h = calloc(1, sizeof *h);
	if (!h)
		return -ENOMEM;
	h->cfg = *cfg;
	h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->fd < 0)
		goto fail;
	setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(h->fd, (struct sockaddr *)&sa, sizeof sa) || listen(h->fd, 128) ||
	    getsockname(h->fd, (struct sockaddr *)&sa, &salen))
		goto fail;
	h->port = ntohs(sa.sin_port);
	h->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
					MHD_USE_ERROR_LOG,
				h->port, NULL, NULL, on_request, h,
				/* first, so that every message of the library comes here */
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				MHD_OPTION_LISTEN_SOCKET, h->fd,
				MHD_OPTION_CONNECTION_LIMIT, cfg->max_conns,
				MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s,
				MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
				MHD_OPTION_END);
	if (!h->d) {
		errno = EIO;
		goto fail;
	}
	*out = h;
	return 0;
fail:
	rc = -errno;
	tool_log(CQRS_LOG_ERROR, "cannot listen on %s:%u: %s", cfg->host, (unsigned)cfg->port,
		 strerror(errno));
	if (h->fd >= 0)
		close(h->fd);
	free(h);
	return rc;
}

uint16_t tool_http_port(const tool_http *h)
{
	return h->port;
}

void tool_http_stop(tool_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d); /* closes the listening socket it was given */
	free(h);
}

const char *tool_http_arg(const tool_http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *tool_http_header(const tool_http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void tool_http_set_header(const tool_http_req *r, const char *name, const char *value)
{
	pending *p = r->priv;

	if (p->nhdr < 4) {
		snprintf(p->hdr[p->nhdr][0], sizeof p->hdr[0][0], "%s", name);
		snprintf(p->hdr[p->nhdr][1], sizeof p->hdr[0][1], "%s", value);
		p->nhdr++;
	}
}

void tool_http_reply(const tool_http_req *r, unsigned status, const char *content_type, char *body,
		     size_t len)
{
	pending *p = r->priv;
	struct MHD_Response *resp;

	if (p->replied) {
		free(body);
		return;
	}
	p->replied = 1;
	p->queued = MHD_NO;
	/* MUST_FREE: the response owns body (malloc'd) and frees it once sent. */
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	for (unsigned i = 0; i < p->nhdr; i++)
		MHD_add_response_header(resp, p->hdr[i][0], p->hdr[i][1]);
	p->queued = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp); /* the queued response holds its own reference */
}

void tool_http_error(const tool_http_req *r, unsigned status, const char *fmt, ...)
{
	char msg[1024], *buf = NULL;
	size_t len = 0;
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	f = open_memstream(&buf, &len);
	if (!f) {
		tool_http_reply(r, status, "application/json", NULL, 0);
		return;
	}
	fputs("{\"error\":", f);
	tool_json_str(f, msg);
	fputs("}\n", f);
	fclose(f);
	tool_http_reply(r, status, "application/json", buf, len);
}
