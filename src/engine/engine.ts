/** The set of databases one node serves, addressed by id; the first is the default. */
import { HaError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import { Database } from "./database.ts";
import { type DatabaseSource, resolveSources } from "./dsn.ts";
import type { PluginSpec } from "./plugin.ts";
import { checkFollowerSource } from "./read_only.ts";
import { Semaphore } from "./sync.ts";

/** Options for {@link openEngine}. */
export interface EngineOptions {
  /** Command-line DSNs (paths, globs, `file:` URIs); empty means `ha.db`. */
  dsns: string[];
  /** Keep databases in memory (`-m`), loading existing files. */
  memory: boolean;
  /** Maximum concurrent statements (`--concurrent-queries`). */
  concurrentQueries: number;
  /** SQLite extensions to load into every connection. */
  extensions?: string[];
  /** `--attach-dir`: client ATTACH / VACUUM INTO only in this directory; absent = denied. */
  attachDir?: string | null;
  /** Writer plugins (change capture, replication apply). */
  plugins?: PluginSpec[];
  /**
   * Let statements change ha's own `_ha_*` tables (default false: clients may only read them).
   * For tests that stand in for replication.
   */
  allowInternalWrites?: boolean;
  /**
   * A read-only follower (`--read-only`): client writes are refused, replicated apply still
   * writes; file databases must stay in WAL mode.
   */
  readOnly?: boolean;
  /** Reader workers per database (default: 2, at most `concurrentQueries`). */
  readersPerDatabase?: number;
  /**
   * Path of `ha_interrupt.so` (`native/locate.ts`), loaded into every connection: statement
   * timeouts, PG cancel, HTTP disconnects and shutdown stop running statements. Null = they cannot.
   */
  interrupt?: string | null;
  /** `--statement-timeout` in ms for client statements (0 = none; needs `interrupt`). */
  statementTimeoutMs?: number;
  logger: Logger;
}

/** The node's databases. */
export class Engine {
  private constructor(
    private readonly dbs: Map<string, Database>,
    private readonly order: string[],
    /** `--statement-timeout` in ms (0 = none): the default PG sessions show. */
    readonly statementTimeoutMs: number,
    /** Path of `ha_interrupt.so` (null = none): pgwire's catalog databases load it too. */
    readonly interrupt: string | null = null,
  ) {}

  /** Opens every database; on failure closes those already open. */
  static async open(opts: EngineOptions): Promise<Engine> {
    const sources: DatabaseSource[] = resolveSources(opts.dsns, opts.memory);
    if (opts.readOnly) sources.forEach(checkFollowerSource);
    const limiter = new Semaphore(opts.concurrentQueries);
    const readers = Math.min(opts.readersPerDatabase ?? 2, opts.concurrentQueries);
    const dbs = new Map<string, Database>();
    try {
      for (const source of sources) {
        const db = await Database.open({
          source,
          limiter,
          readers,
          plugins: opts.plugins ?? [],
          extensions: opts.extensions ?? [],
          allowInternalWrites: opts.allowInternalWrites ?? false,
          policy: { attachDir: opts.attachDir ?? null },
          readOnly: opts.readOnly ?? false,
          interrupt: opts.interrupt ?? null,
          statementTimeoutMs: opts.statementTimeoutMs ?? 0,
          logger: opts.logger.child({ db: source.id }),
        });
        dbs.set(source.id, db);
        opts.logger.info("database open", {
          db: source.id,
          path: source.path,
          memory: source.memory,
        });
      }
    } catch (e) {
      await Promise.allSettled([...dbs.values()].map((d) => d.close()));
      throw e;
    }
    return new Engine(
      dbs,
      sources.map((s) => s.id),
      opts.statementTimeoutMs ?? 0,
      opts.interrupt ?? null,
    );
  }

  /** Database ids in command-line order. */
  ids(): string[] {
    return [...this.order];
  }

  /** The database with `id` (also accepted without a `.db` suffix). */
  get(id: string): Database {
    const db = this.dbs.get(id) ?? this.dbs.get(`${id}.db`);
    if (!db) {
      throw new HaError("not_found", `database "${id}" not found (have: ${this.order.join(", ")})`);
    }
    return db;
  }

  /** The first database. */
  get defaultDb(): Database {
    return this.dbs.get(this.order[0])!;
  }

  /** All databases in order. */
  databases(): Database[] {
    return this.order.map((id) => this.dbs.get(id)!);
  }

  /** Shutdown: refuses client statements and stops those running (see `Database.stopClients`). */
  stopClients(): void {
    for (const db of this.dbs.values()) db.stopClients();
  }

  /** Closes every database. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.dbs.values()].map((d) => d.close()));
  }
}

/** Opens the engine. */
export function openEngine(opts: EngineOptions): Promise<Engine> {
  return Engine.open(opts);
}
