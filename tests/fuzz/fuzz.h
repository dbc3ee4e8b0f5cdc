/*
 * fuzz: what the libFuzzer targets share — a check that crashes (so
 * libFuzzer saves the input) and a small generator that turns bytes of the
 * input into split points, so every run with the same input is the same.
 */
#ifndef AAUTH_FUZZ_H
#define AAUTH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* An invariant the code promises: a violation is a finding like a crash. */
#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: invariant broken: %s\n",       \
			        __FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

/* splitmix64: enough spread for split points, seeded from the input. */
static inline uint64_t
fuzz_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The length of the next piece: mostly short (the interesting splits are
 * inside CRLFs and numbers), sometimes long. */
static inline size_t
fuzz_piece(uint64_t *s)
{
	uint64_t r = fuzz_next(s);

	return (r & 3) == 0 ? 1 + (size_t)((r >> 8) % 512)
	                    : 1 + (size_t)((r >> 8) % 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
