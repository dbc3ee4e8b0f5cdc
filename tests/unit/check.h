/*
 * check: the unit tests' tiny harness. CHECK records a failure and goes on;
 * check_done() returns the exit status meson expects. Vectors are read from
 * $AAUTH_VECTORS (set by meson to tests/vectors).
 */
#ifndef AAUTH_CHECK_H
#define AAUTH_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int check_failures;
static int check_count;

#define CHECK(cond)                                                            \
	do {                                                                   \
		check_count++;                                                 \
		if (!(cond)) {                                                 \
			check_failures++;                                      \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
			        __LINE__, #cond);                              \
		}                                                              \
	} while (0)

/* Compare two byte strings and show both on mismatch. */
#define CHECK_STREQ(got, want)                                                 \
	do {                                                                   \
		const char *check_g = (got), *check_w = (want);                \
		check_count++;                                                 \
		if (check_g == NULL || check_w == NULL ||                      \
		    strcmp(check_g, check_w) != 0) {                           \
			check_failures++;                                      \
			fprintf(                                               \
			    stderr,                                            \
			    "%s:%d: CHECK_STREQ failed: %s\n  got:  [%s]\n"    \
			    "  want: [%s]\n",                                  \
			    __FILE__, __LINE__, #got,                          \
			    check_g ? check_g : "(null)",                      \
			    check_w ? check_w : "(null)");                     \
		}                                                              \
	} while (0)

/* Path of a vector file; returns a static buffer. */
static inline const char *
check_vector(const char *rel)
{
	static char path[4096];
	const char *dir = getenv("AAUTH_VECTORS");

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/vectors", rel);
	return path;
}

/* Read a vector file whole; aborts the test when it is missing, since a
 * missing vector must never turn into a silent pass. */
static inline void
check_read_vector(const char *rel, struct buf *out)
{
	char err[ERR_MAX];

	buf_init(out);
	if (util_read_file(check_vector(rel), out, 64 << 20, err) == -1) {
		fprintf(stderr, "cannot read vector: %s\n", err);
		exit(1);
	}
}

static inline int
check_done(const char *name)
{
	fprintf(stderr, "%s: %d checks, %d failed\n", name, check_count,
	        check_failures);
	if (check_count == 0)
		return 1;
	return check_failures ? 1 : 0;
}

#endif
