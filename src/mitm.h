/*
 * mitm: the local CA that lets the proxy read (and so sign) what agents
 * send to https:// hosts — loading and creating it, minting a short-lived
 * ECDSA P-256 leaf per host (cached in a bounded LRU), and the host
 * binding of an intercepted connection: the TLS SNI must name the host and
 * port of the CONNECT, or the handshake is aborted.
 */
#ifndef AAUTH_MITM_H
#define AAUTH_MITM_H

#include <stddef.h>

struct event_base;
struct mitm_ca;
struct xport;
struct xport_cbs;

/* Leaves are valid this many days (and re-minted a day before the end). */
#define MITM_LEAF_DAYS 7
/* Hosts whose leaf is kept. */
#define MITM_CACHE_MAX 512
/* A new CA is valid this long. */
#define MITM_CA_DAYS 1825

/* Load the CA certificate (PEM; the first certificate issues the leaves,
 * every certificate in the file is served with each leaf as its chain)
 * and its private key (PEM, not readable by group or others). */
struct mitm_ca *mitm_ca_load(const char *cert_file, const char *key_file,
                             char *err);
void mitm_ca_free(struct mitm_ca *ca);
/* Leaves minted since the CA was loaded (the cache's misses). */
size_t mitm_ca_minted(const struct mitm_ca *ca);

/* The server side of TLS for a CONNECT to host:port (host canonical, as
 * ingress has it), layered on lower: the leaf for host, ALPN http/1.1,
 * TLS 1.2 or newer, and an SNI that must name host (and port, if it says
 * one). lower is taken over; on failure (NULL, err set) it is not. */
struct xport *mitm_xport_new(struct mitm_ca *ca, struct event_base *base,
                             struct xport *lower, const char *host, int port,
                             const char *label, unsigned handshake_ms,
                             const struct xport_cbs *cbs, void *arg, char *err);

/* Does a TLS server name (SNI) name host:port? host is canonical; sni may
 * carry ":port" (some clients send it), which must then equal port. */
int mitm_sni_matches(const char *host, int port, const char *sni);

/* Create a CA: an ECDSA P-256 key (mode 0600) and a self-signed
 * certificate with CN cn, CA:TRUE pathlen 0. Refuses to replace either
 * file unless force. */
int mitm_ca_create(const char *cert_file, const char *key_file, const char *cn,
                   int force, char *err);
/* The SHA-256 fingerprint of the first certificate in a PEM file, as
 * colon-separated hex (out: 96 bytes), and its PEM text (caller frees). */
int mitm_ca_describe(const char *cert_file, char *fingerprint, char **pem,
                     char *err);

#endif
