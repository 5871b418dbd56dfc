/*
 * The SQLite extension that makes ha's statements stoppable (docs/decisions/statement-interrupt.md).
 * node:sqlite has neither sqlite3_interrupt nor a progress handler; every engine connection loads
 * this extension, which installs both a progress handler (every 1000 virtual machine steps) and a
 * statement-start trace hook, and gives the connection a guard with an id.
 *
 * Control goes through plain C functions that ha calls with Deno FFI (Deno.dlopen of this same
 * file shares its globals with the copy SQLite loaded):
 *
 * - ha_begin(guard, request, timeout_ms), from the worker thread that owns the connection, before
 *   each engine request: later statements fail with SQLITE_INTERRUPT once one of them has run for
 *   timeout_ms (0 = no limit), and a cancel that arrived for this request before it started
 *   applies now.
 * - ha_cancel(guard, request, reason), from any thread: makes the running statements of that
 *   request fail with SQLITE_INTERRUPT. A cancel for a request that has not started yet is kept
 *   (a few of them) until it starts; one for a finished request is dropped.
 * - ha_reason(guard): why the last interruption happened (HA_CANCEL, HA_TIMEOUT, HA_SHUTDOWN).
 *
 * SQL gets ha_guard_id(), the guard's id, and the replication capture switch of the connection
 * (issue 13): ha_capturing() (0 while switched off, else 1) and ha_capture(on), which sets it
 * (top-level SQL only; clients may not call it, see sql_policy.ts). The capture triggers test
 * ha_capturing() in their WHEN before calling into JavaScript, so a replication apply, which
 * switches it off for its transaction, costs no JavaScript call per applied row. Guards are found by id under a mutex, so
 * no pointer crosses threads and a cancel racing with close is harmless. Ids are reused only after
 * every other free id was used.
 */
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

enum { HA_CANCEL = 1, HA_TIMEOUT = 2, HA_SHUTDOWN = 3 };

#define PENDING 16

typedef struct {
  _Atomic long long started_ns; /* start of the running top-level statement */
  _Atomic long long timeout_ns; /* 0: none */
  _Atomic int stop;             /* non-zero: the current request must stop, and why */
  _Atomic int reason;           /* why the last statement was interrupted */
  long long request;            /* current request (under lock) */
  long long pending[PENDING];   /* cancels of requests not started yet (under lock) */
  int pending_reason[PENDING];
  int next_pending;
  int id;
  int capture_off; /* ha_capture(0) was called last (only the connection's own thread) */
} Guard;

#define MAX_GUARDS 65536
static Guard *guards[MAX_GUARDS];
static int next_id = 1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int on_progress(void *p) {
  Guard *g = p;
  int stop = atomic_load(&g->stop);
  if (!stop) {
    long long limit = atomic_load(&g->timeout_ns);
    if (limit && now_ns() - atomic_load(&g->started_ns) > limit) stop = HA_TIMEOUT;
  }
  if (stop) atomic_store(&g->reason, stop);
  return stop != 0;
}

static int on_trace(unsigned type, void *p, void *stmt, void *x) {
  Guard *g = p;
  const char *sql = x;
  (void)stmt;
  /* Trigger programs report "-- TRIGGER name": they are part of the running statement. */
  if (type == SQLITE_TRACE_STMT && !(sql && sql[0] == '-' && sql[1] == '-')) {
    atomic_store(&g->started_ns, now_ns());
  }
  return 0;
}

static void fn_guard_id(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_int(ctx, ((Guard *)sqlite3_user_data(ctx))->id);
}

static void fn_capturing(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_int(ctx, !((Guard *)sqlite3_user_data(ctx))->capture_off);
}

static void fn_capture(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  Guard *g = sqlite3_user_data(ctx);
  int was = !g->capture_off;
  g->capture_off = !sqlite3_value_int(argv[0]);
  sqlite3_result_int(ctx, was);
}

static void release(void *p) {
  Guard *g = p;
  pthread_mutex_lock(&lock);
  guards[g->id] = 0;
  pthread_mutex_unlock(&lock);
  sqlite3_free(g);
}

/* The guard with this id, or 0. Call with the lock held. */
static Guard *find(int id) { return id > 0 && id < MAX_GUARDS ? guards[id] : 0; }

int ha_begin(int id, long long request, int timeout_ms) {
  pthread_mutex_lock(&lock);
  Guard *g = find(id);
  if (g) {
    int stop = 0;
    for (int i = 0; i < PENDING; i++) {
      if (g->pending[i] == request) {
        stop = g->pending_reason[i];
        g->pending[i] = 0;
      }
    }
    g->request = request;
    atomic_store(&g->timeout_ns, timeout_ms > 0 ? timeout_ms * 1000000LL : 0);
    atomic_store(&g->reason, 0);
    atomic_store(&g->stop, stop);
  }
  pthread_mutex_unlock(&lock);
  return g != 0;
}

int ha_cancel(int id, long long request, int reason) {
  pthread_mutex_lock(&lock);
  Guard *g = find(id);
  if (g && request == g->request) {
    atomic_store(&g->stop, reason);
  } else if (g && request > g->request) {
    g->pending[g->next_pending] = request;
    g->pending_reason[g->next_pending] = reason;
    g->next_pending = (g->next_pending + 1) % PENDING;
  }
  pthread_mutex_unlock(&lock);
  return g != 0;
}

int ha_reason(int id) {
  pthread_mutex_lock(&lock);
  Guard *g = find(id);
  int reason = g ? atomic_load(&g->reason) : 0;
  pthread_mutex_unlock(&lock);
  return reason;
}

int sqlite3_hainterrupt_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  Guard *g = sqlite3_malloc(sizeof *g);
  if (!g) return SQLITE_NOMEM;
  memset(g, 0, sizeof *g);
  pthread_mutex_lock(&lock);
  for (int n = 1; n < MAX_GUARDS && !g->id; n++) {
    int id = next_id;
    next_id = next_id + 1 < MAX_GUARDS ? next_id + 1 : 1;
    if (!guards[id]) {
      g->id = id;
      guards[id] = g;
    }
  }
  pthread_mutex_unlock(&lock);
  if (!g->id) {
    sqlite3_free(g);
    *err = sqlite3_mprintf("ha_interrupt: too many connections");
    return SQLITE_ERROR;
  }
  sqlite3_progress_handler(db, 1000, on_progress, g);
  sqlite3_trace_v2(db, SQLITE_TRACE_STMT, on_trace, g);
  /* Not deterministic: evaluated on every call, never folded into a prepared statement. */
  int rc = sqlite3_create_function_v2(db, "ha_capturing", 0, SQLITE_UTF8 | SQLITE_INNOCUOUS, g,
                                      fn_capturing, 0, 0, 0);
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function_v2(db, "ha_capture", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, g,
                                    fn_capture, 0, 0, 0);
  }
  if (rc != SQLITE_OK) {
    release(g);
    return rc;
  }
  /* The guard lives as long as this function, i.e. the connection (registered last: it frees
   * the guard when the connection closes, after the functions above are gone or unused). */
  return sqlite3_create_function_v2(db, "ha_guard_id", 0, SQLITE_UTF8 | SQLITE_DETERMINISTIC, g,
                                    fn_guard_id, 0, 0, release);
}
