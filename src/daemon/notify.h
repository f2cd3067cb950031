/* notify.h - systemd integration (Type=notify): readiness, reload and stop
 * notifications and the watchdog, through libsystemd's sd_notify(). Every
 * call is a no-op when the daemon does not run under systemd (no
 * NOTIFY_SOCKET), so the same binary runs anywhere. */
#ifndef RECD_DAEMON_NOTIFY_H
#define RECD_DAEMON_NOTIFY_H

#include <uv.h>

/* READY=1 with a STATUS line; call once the model is loaded and sockets
 * listen. Starts the watchdog timer when WatchdogSec= is set: it pings at
 * half the interval from the loop, so a stuck loop is restarted. */
void notify_ready(uv_loop_t *loop, const char *status);
void notify_reloading(void);
void notify_reloaded(const char *status);
void notify_stopping(void);
/* Stops the watchdog timer (before the loop is closed). */
void notify_close(void);

#endif
