/* notify.c - see notify.h. */
#include "notify.h"

#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"

static uv_timer_t notify__watchdog;
static int notify__watchdog_on;

static void notify__ping(uv_timer_t *t) {
  (void)t;
  sd_notify(0, "WATCHDOG=1");
}

void notify_ready(uv_loop_t *loop, const char *status) {
  sd_notifyf(0, "READY=1\nSTATUS=%s\nMAINPID=%lu", status, (unsigned long)getpid());
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    uv_timer_init(loop, &notify__watchdog);
    uint64_t ms = usec / 2000 ? usec / 2000 : 1;
    uv_timer_start(&notify__watchdog, notify__ping, ms, ms);
    /* The watchdog must not keep the loop alive at shutdown on its own. */
    uv_unref((uv_handle_t *)&notify__watchdog);
    notify__watchdog_on = 1;
    log_verbose("systemd watchdog: pinging every %llu ms", (unsigned long long)ms);
  }
}

void notify_reloading(void) {
  sd_notify(0, "RELOADING=1\nSTATUS=reloading the model");
}

void notify_reloaded(const char *status) {
  sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void notify_stopping(void) {
  sd_notify(0, "STOPPING=1\nSTATUS=finishing requests in flight");
}

void notify_close(void) {
  if (notify__watchdog_on) {
    uv_close((uv_handle_t *)&notify__watchdog, NULL);
    notify__watchdog_on = 0;
  }
}
