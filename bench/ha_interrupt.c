/*
 * Prototype for issue 11 finding 7 (docs/decisions/statement-interrupt.md): a SQLite extension
 * that node:sqlite can load, giving its connections a statement timeout and a cancel that works
 * while the statement runs, without replacing node:sqlite.
 *
 * - ha_statement_timeout(ms): this connection's statements fail with SQLITE_INTERRUPT once they
 *   have run for `ms` (0 = no limit). The start of each statement is taken from a trace callback,
 *   the check is a progress handler every 1000 virtual machine steps.
 * - ha_guard_id(): a number naming this connection's guard, for ha_cancel.
 * - ha_cancel(id) (C, for Deno FFI from another thread): makes the statement running now on that
 *   connection fail with SQLITE_INTERRUPT. Ids are looked up under a mutex, so a cancel racing
 *   with close is harmless (no pointer crosses threads).
 */
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

typedef struct {
  _Atomic long long started_ns; /* start of the running statement, 0 when idle */
  _Atomic long long timeout_ns; /* 0: none */
  _Atomic int cancel;
  int id;
} Guard;

#define MAX_GUARDS 4096
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
  if (atomic_load(&g->cancel)) return 1;
  long long limit = atomic_load(&g->timeout_ns), started = atomic_load(&g->started_ns);
  return limit && started && now_ns() - started > limit;
}

static int on_trace(unsigned type, void *p, void *stmt, void *x) {
  Guard *g = p;
  (void)stmt;
  (void)x;
  if (type == SQLITE_TRACE_STMT) {
    atomic_store(&g->cancel, 0);
    atomic_store(&g->started_ns, now_ns());
  }
  return 0;
}

static void fn_timeout(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  Guard *g = sqlite3_user_data(ctx);
  (void)argc;
  atomic_store(&g->timeout_ns, sqlite3_value_int64(argv[0]) * 1000000LL);
}

static void fn_guard_id(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_int(ctx, ((Guard *)sqlite3_user_data(ctx))->id);
}

static void release(void *p) {
  Guard *g = p;
  pthread_mutex_lock(&lock);
  if (g->id > 0 && g->id < MAX_GUARDS) guards[g->id] = 0;
  pthread_mutex_unlock(&lock);
  sqlite3_free(g);
}

int ha_cancel(int id) {
  int found = 0;
  pthread_mutex_lock(&lock);
  if (id > 0 && id < MAX_GUARDS && guards[id]) {
    atomic_store(&guards[id]->cancel, 1);
    found = 1;
  }
  pthread_mutex_unlock(&lock);
  return found;
}

int sqlite3_hainterrupt_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  Guard *g = sqlite3_malloc(sizeof *g);
  if (!g) return SQLITE_NOMEM;
  memset(g, 0, sizeof *g);
  pthread_mutex_lock(&lock);
  g->id = next_id < MAX_GUARDS ? next_id++ : 0;
  if (g->id) guards[g->id] = g;
  pthread_mutex_unlock(&lock);
  if (!g->id) {
    sqlite3_free(g);
    *err = sqlite3_mprintf("ha_interrupt: too many connections");
    return SQLITE_ERROR;
  }
  sqlite3_progress_handler(db, 1000, on_progress, g);
  sqlite3_trace_v2(db, SQLITE_TRACE_STMT, on_trace, g);
  sqlite3_create_function_v2(db, "ha_guard_id", 0, SQLITE_UTF8, g, fn_guard_id, 0, 0, 0);
  /* The guard lives as long as this function, i.e. the connection. */
  return sqlite3_create_function_v2(db, "ha_statement_timeout", 1, SQLITE_UTF8, g, fn_timeout, 0,
                                    0, release);
}
