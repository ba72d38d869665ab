/*
 * tools/args.h - the `cqrs` tool's argument parsing and exit statuses,
 * shared by every subcommand so that each one refuses what it does not
 * understand in the same words.
 *
 * A subcommand describes its options in a table of tool_opt and calls
 * tool_args() once. Accepted forms: `--name VALUE`, `--name=VALUE`, flags
 * `--name`; options may come before, between or after the positional
 * arguments; `--` ends the options (a positional that starts with "-"
 * goes after it; a word that starts with "-" and a digit is taken as a
 * positional: a negative key). `-h` and `--help` print the subcommand's
 * help on stdout and exit 0. Anything else that starts with "-", an
 * option given twice, a missing or malformed value, or too few or too
 * many positionals is a usage error: one line naming the problem, the
 * synopsis (the help text's lines up to its first blank line) and where
 * to find more, all on stderr, exit TOOL_EXIT_USAGE.
 */
#ifndef CQRS_TOOLS_ARGS_H
#define CQRS_TOOLS_ARGS_H

#include <stdint.h>

/* Exit statuses of every subcommand (documented in `cqrs --help` and
 * cqrs(1)). */
enum tool_exit {
	TOOL_EXIT_OK = 0,      /* done; the engine accepted */
	TOOL_EXIT_FAIL = 1,    /* the operation failed, or the engine said no */
	TOOL_EXIT_USAGE = 2,   /* bad command line; nothing was done */
	TOOL_EXIT_TORN = 3,    /* journal verify: a torn tail (recovery cuts it) */
	TOOL_EXIT_CORRUPT = 4, /* journal verify/dump/stat: corruption */
};

/* tool_args() returns this when the command line parsed; anything else is
 * the exit status to return at once (help printed: 0; usage error: 2). */
#define TOOL_ARGS_OK (-1)

enum tool_opt_kind {
	TOOL_OPT_FLAG,    /* value: int *, set to 1 */
	TOOL_OPT_U64,     /* value: uint64_t *; decimal digits in [min, max] */
	TOOL_OPT_STR,     /* value: const char ** (points into argv) */
	TOOL_OPT_SECONDS, /* value: uint64_t * (milliseconds); decimal seconds
			   * with an optional fraction ("2", "0.25"), in
			   * [min, max] milliseconds */
};

typedef struct tool_opt {
	const char *name;        /* with its dashes: "--limit" */
	enum tool_opt_kind kind;
	void *value;
	uint64_t min, max;       /* TOOL_OPT_U64/SECONDS bounds; max 0: no bound */
	int *given;              /* optional: set to 1 when the option appears */
} tool_opt;

/* Describes a subcommand for messages: `cmd` as the user typed it ("view
 * find"), `help` its help text (usage lines first). */
typedef struct tool_cmd_help {
	const char *cmd;
	const char *help;
} tool_cmd_help;

/* Parses argv[1..argc-1] (argv[0] is the subcommand's own word) against
 * opts (terminated by a NULL name; may be NULL). Positionals go to pos[],
 * their count to *npos; fewer than min_pos or more than max_pos is a usage
 * error. Returns TOOL_ARGS_OK, or the exit status to return. */
int tool_args(const tool_cmd_help *h, int argc, char **argv, const tool_opt *opts, int min_pos,
	      int max_pos, char **pos, int *npos);

/* Prints "cqrs CMD: <message>", the synopsis and a pointer to --help to
 * stderr; returns TOOL_EXIT_USAGE. */
int tool_usage_error(const tool_cmd_help *h, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prints the help text on stdout; returns TOOL_EXIT_OK. */
int tool_help(const tool_cmd_help *h);

/* 1 when s is "-h" or "--help". */
int tool_is_help(const char *s);

/* Parses s as an unsigned decimal (digits only: no sign, spaces, 0x or
 * octal) in [min, max]. Returns 0, or -1 with a message in why ("is not a
 * decimal number", "is out of range (1..3600)"). */
int tool_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *why,
		   unsigned why_cap);

#endif
