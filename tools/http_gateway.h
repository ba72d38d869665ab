/*
 * tools/http_gateway.h - the HTTP gateway of `cqrs metrics`: commands in
 * (POST /commands/<Type>) through the engine's command gateway, views out
 * (GET /views/<view>/<key>, GET /views/<view>/find) from shared memory,
 * JSON both ways. The routes and answers are in tools/http_gateway.c and
 * cqrs(1).
 */
#ifndef CQRS_TOOLS_HTTP_GATEWAY_H
#define CQRS_TOOLS_HTTP_GATEWAY_H

#include <stdint.h>

#include "tools/http.h"

typedef struct tool_gateway tool_gateway;

/* A gateway to engine; reads wait for min_seq at most max_wait_ms. NULL on
 * -ENOMEM. Connects to the engine at the first command. */
tool_gateway *tool_gateway_new(const char *engine, uint64_t max_wait_ms);
void tool_gateway_free(tool_gateway *g);

/* POST /commands/<type> (type: the path's last part). */
void tool_gateway_command(tool_gateway *g, const tool_http_req *r, const char *type);

/* GET /views/<view>/<rest>: rest is a key, or "find" with ?field=&value=. */
void tool_gateway_view(tool_gateway *g, const tool_http_req *r, const char *view, const char *rest);

#endif
