/*
 * tools/http.h - the HTTP server of `cqrs metrics`, on libmicrohttpd (a
 * maintained HTTP/1.1 server library from Debian): one thread per
 * connection, a bounded number of connections, idle connections closed
 * after a timeout, request bodies accumulated up to a limit.
 *
 * A handler gets one complete request (its body whole) and answers with
 * tool_http_reply once; it may block (a read waiting for min_seq): only its
 * own connection's thread waits. The engine is not reached from here at
 * all; handlers reach it as any client process does.
 */
#ifndef CQRS_TOOLS_HTTP_H
#define CQRS_TOOLS_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct MHD_Connection;

typedef struct tool_http_req {
	struct MHD_Connection *conn;
	const char *method; /* "GET", "POST", ... */
	const char *path;   /* percent-decoded, without the query string */
	const char *body;   /* NUL-terminated; body_len bytes (may hold NULs) */
	size_t body_len;
	void *priv;         /* the server's */
} tool_http_req;

/* Answers the request (see tool_http_req). Returns nothing: a handler
 * must call tool_http_reply exactly once. */
typedef void (*tool_http_handler)(void *arg, const tool_http_req *r);

typedef struct tool_http_config {
	const char *host;       /* numeric IPv4 address, e.g. "127.0.0.1" */
	uint16_t port;          /* 0: any free port (tool_http_port says which) */
	unsigned max_conns;     /* connections at once (threads) */
	unsigned timeout_s;     /* idle connection timeout */
	size_t max_body;        /* larger bodies are answered 413 */
	tool_http_handler handler;
	void *arg;
} tool_http_config;

typedef struct tool_http tool_http;

/* Starts serving. 0 and *out, or -errno (-EADDRINUSE, -EINVAL for a host
 * that is not a numeric IPv4 address) with a message logged. */
int tool_http_start(const tool_http_config *cfg, tool_http **out);

/* The port it listens on. */
uint16_t tool_http_port(const tool_http *h);

/* Stops accepting, closes every connection (waiting for running
 * handlers) and frees h. */
void tool_http_stop(tool_http *h);

/* The query argument or request header named name, or NULL. */
const char *tool_http_arg(const tool_http_req *r, const char *name);
const char *tool_http_header(const tool_http_req *r, const char *name);

/* Adds a response header to the reply that follows (up to 4 per request;
 * name and value are copied). */
void tool_http_set_header(const tool_http_req *r, const char *name, const char *value);

/* Sends status and body (malloc'd; ownership passes to the server, which
 * frees it after sending) with content_type. */
void tool_http_reply(const tool_http_req *r, unsigned status, const char *content_type,
		     char *body, size_t len);

/* Replies {"error": msg} with status (msg formatted; JSON-escaped). */
void tool_http_error(const tool_http_req *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
