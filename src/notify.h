/*
 * notify: the systemd readiness protocol (sd_notify) without libsystemd —
 * one datagram of NAME=value lines to the socket $NOTIFY_SOCKET names
 * (a path, or "@name" for the abstract namespace). A no-op without it.
 */
#ifndef AAUTH_NOTIFY_H
#define AAUTH_NOTIFY_H

/* Read $NOTIFY_SOCKET (and remove it, so nothing we start inherits it). */
void notify_init(void);
/* Send the formatted lines; 0 sent or nothing to send to, -1 failed (the
 * caller logs at most). */
int notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "RELOADING=1" with MONOTONIC_USEC=now, as Type=notify-reload expects. */
int notify_reloading(const char *status);
void notify_free(void);

#endif
