/*
 * tools/segments.h - every /dev/shm name that an engine name owns
 * ("cqrs.<engine>.*"), classified for `cqrs ls` and `cqrs rm --orphans`.
 */
#ifndef CQRS_TOOLS_SEGMENTS_H
#define CQRS_TOOLS_SEGMENTS_H

#include <stdint.h>
#include <sys/types.h>

typedef enum tool_seg_kind {
	TOOL_SEG_CONTROL,
	TOOL_SEG_BOARD,
	TOOL_SEG_VIEW,
	TOOL_SEG_UNFINISHED, /* a creator's private name, not sealed */
	TOOL_SEG_OTHER
} tool_seg_kind;

typedef struct tool_seg {
	char name[256]; /* as in /dev/shm, without the leading '/' */
	tool_seg_kind kind;
	uint64_t size;
	uid_t uid;
	uint64_t generation; /* views */
	const char *role;    /* "control", "current", "kept", "pending", "orphaned", ... */
	int orphaned;        /* nothing uses it and nothing will: `cqrs rm --orphans` takes it */
} tool_seg;

/* Lists engine's names, sorted, into a malloc'd array (*out, free it);
 * returns how many, or -errno when /dev/shm cannot be read.
 *
 * A view generation is orphaned when the control segment's directory does
 * not name it current and its engine cannot need it: with a live owner,
 * only generations below the current one (a higher one is being
 * published); with a dead owner or no control segment, every generation
 * except the newest of a view when it was shut down cleanly (a start
 * adopts that one). A private name is orphaned when its creator died. */
int tool_segments(const char *engine, tool_seg **out);

const char *tool_seg_kind_name(tool_seg_kind k);

#endif
