/**
 * The snapshot bucket in the JetStream object store: one object per database id, holding a
 * SQLite file, with the stream sequence and the node in its headers and metadata. Uploads and
 * downloads are streamed in chunks; downloads are checked against the object's size, chunk count
 * and SHA-256 digest. Storing a new snapshot purges the previous one's chunks, also while they
 * are being read: such a download fails quickly with a {@link SnapshotReplacedError} naming the
 * snapshot stored now (see `download.ts` for the retries).
 *
 * @module
 */
import { createHash } from "node:crypto";
import {
  type ConsumerMessages,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  JsHeaders,
  type JsMsg,
  PubHeaders,
  StorageType,
} from "@nats-io/jetstream";
import {
  Base64UrlPaddedCodec,
  type ObjectInfo,
  type ObjectStore,
  type ObjectStoreMeta,
  Objm,
  setSha256Backend,
} from "@nats-io/obj";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { HaError } from "../errors/mod.ts";
import { isNotFound, isWrongLastSequence } from "../nats/mod.ts";
import { normalizeDigest } from "./sqlite_file.ts";

/** What is known about a stored snapshot. */
export interface SnapshotInfo {
  /** Database id (the object's name), e.g. `app.db`. */
  database: string;
  /** Replication stream sequence the snapshot reflects (0: none applied). */
  sequence: number;
  /** Size of the SQLite file in bytes. */
  size: number;
  /** When it was stored (RFC 3339). */
  created: string;
  /** Node that took it (empty when unknown, e.g. stored by another tool). */
  node: string;
  /** Object store digest, `SHA-256=<base64url>`. */
  digest: string;
}

/** A stored object: its {@link SnapshotInfo} and what reading it needs. */
export interface StoredSnapshot {
  info: SnapshotInfo;
  /** Object store revision (stream sequence of its metadata), for optimistic replacement. */
  revision: number;
  /** Chunk count. */
  chunks: number;
  /** Internal object id: the chunks' subject suffix. */
  nuid: string;
  /** The object's metadata record as stored (object store format, ADR-20). */
  meta: ServerObjectInfo;
}

/** The object store's metadata record of an object (JSON on `$O.<bucket>.M.<name>`). */
export interface ServerObjectInfo {
  name: string;
  description?: string;
  bucket: string;
  nuid: string;
  size: number;
  chunks: number;
  digest: string;
  mtime: string;
  deleted?: boolean;
  headers?: Record<string, string[]>;
  metadata?: Record<string, string>;
  options?: Record<string, unknown>;
}

/** Options of {@link SnapshotStore}. */
export interface SnapshotStoreOptions {
  nc: NatsConnection;
  /** Bucket name, `<stream>_SNAPSHOTS`. */
  bucket: string;
  /** JetStream replicas of the bucket (`--replicas`). */
  replicas: number;
  /** JetStream API and per-chunk publish timeout. Default 10 s. */
  timeoutMs?: number;
  /** A download that receives nothing this long fails. Default 30 s. */
  idleTimeoutMs?: number;
  /**
   * While a download receives nothing for this long, the object's metadata is read again: when
   * the object was replaced or deleted meanwhile (its chunks purged), the download fails at once
   * with a {@link SnapshotReplacedError} instead of waiting for the idle timeout. Default 1 s.
   */
  replacedCheckMs?: number;
  /** Upload chunk size, capped by the server's max_payload. Default 1 MiB. */
  chunkBytes?: number;
}

/**
 * A download failed because the object was replaced (a new snapshot stored, its previous chunks
 * purged) or deleted while it was being read. `current` is the object now stored (`null`:
 * deleted); callers retry with it. Code `unavailable`, details `{replaced: true, sequence,
 * currentSequence}`.
 */
export class SnapshotReplacedError extends HaError {
  /** The snapshot being downloaded. */
  readonly previous: StoredSnapshot;
  /** The snapshot stored now, or `null` when the object was deleted. */
  readonly current: StoredSnapshot | null;

  constructor(
    previous: StoredSnapshot,
    current: StoredSnapshot | null,
    bytes?: number,
    options?: ErrorOptions,
  ) {
    const { info } = previous;
    super(
      "unavailable",
      `snapshot of ${info.database} (seq ${info.sequence}) was ` +
        (current ? `replaced by a newer one (seq ${current.info.sequence})` : "deleted") +
        " while downloading" +
        (bytes === undefined ? "" : `, after ${bytes} of ${info.size} bytes`),
      {
        replaced: true,
        database: info.database,
        sequence: info.sequence,
        currentSequence: current?.info.sequence ?? null,
      },
      options,
    );
    this.previous = previous;
    this.current = current;
  }
}

/** Object store digests are computed per chunk: the native hash is several times faster. */
setSha256Backend("native");

/**
 * Access to the snapshot bucket. The bucket is opened lazily (created on first upload) and
 * re-opened after failures. Every failure to reach it is an `HaError("unavailable")`.
 *
 * @example
 * ```ts
 * const store = new SnapshotStore({ nc, bucket: "ha_replication_SNAPSHOTS", replicas: 1 });
 * const s = await store.get("app.db");
 * if (s) for await (const chunk of store.read(s)) { ... }
 * ```
 */
export class SnapshotStore {
  readonly bucket: string;
  readonly #o: SnapshotStoreOptions;
  readonly #js: JetStreamClient;
  readonly #objm: Objm;
  #os: ObjectStore | null = null;

  constructor(o: SnapshotStoreOptions) {
    this.#o = o;
    this.bucket = o.bucket;
    this.#js = jetstream(o.nc, { timeout: o.timeoutMs ?? 10_000 });
    this.#objm = new Objm(this.#js);
  }

  /** The latest snapshot of `id`, or `null` when there is none (or no bucket yet). */
  async get(id: string): Promise<StoredSnapshot | null> {
    const os = await this.#open(false);
    if (!os) return null;
    try {
      const jsm = await this.#jsm();
      const m = await jsm.streams.getMessage(`OBJ_${this.bucket}`, {
        last_by_subj: this.#metaSubject(id),
      });
      if (!m) return null;
      const meta = m.json<ServerObjectInfo>();
      if (meta.deleted) return null;
      return toStored(meta, m.seq);
    } catch (e) {
      throw this.#fail(e, `reading snapshot info of ${id}`);
    }
  }

  /**
   * Records a later stream sequence for a stored snapshot whose content is still current, by
   * rewriting its metadata only (no chunk moves). Fails with `{conflict: true}` when the object
   * changed since `s` was read.
   */
  async updateSequence(s: StoredSnapshot, sequence: number, node: string): Promise<StoredSnapshot> {
    const meta: ServerObjectInfo = {
      ...s.meta,
      mtime: new Date().toISOString(),
      headers: { ...s.meta.headers, seq: [String(sequence)], node: [node] },
      metadata: { ...s.meta.metadata, seq: String(sequence), node, database: s.info.database },
    };
    const h = headers();
    h.set(JsHeaders.RollupHdr, JsHeaders.RollupValueSubject);
    h.set(PubHeaders.ExpectedLastSubjectSequenceHdr, String(s.revision));
    try {
      const ack = await this.#js.publish(
        this.#metaSubject(s.info.database),
        JSON.stringify(meta),
        { headers: h, timeout: this.#o.timeoutMs ?? 10_000 },
      );
      return toStored(meta, ack.seq);
    } catch (e) {
      throw this.#conflictOr(e, s.info.database, "updating");
    }
  }

  /**
   * Uploads `body` as the snapshot of `id`. With `previousRevision` the replacement only happens
   * if nobody replaced the object since that revision (0: there must be none); otherwise it
   * fails with `HaError("unavailable", ..., {conflict: true})`. Rejects when `body` errors; the
   * previous snapshot stays intact on every failure.
   */
  async put(
    id: string,
    body: ReadableStream<Uint8Array>,
    meta: { sequence: number; node: string; previousRevision?: number },
  ): Promise<StoredSnapshot> {
    const os = await this.#open(true);
    const h = headers();
    h.set("seq", String(meta.sequence));
    h.set("node", meta.node);
    const om: ObjectStoreMeta = {
      name: id,
      description: `ha snapshot of ${id}`,
      headers: h,
      metadata: { seq: String(meta.sequence), node: meta.node, database: id },
      options: { max_chunk_size: this.#o.chunkBytes ?? 1024 * 1024 },
    };
    try {
      const oi = await os!.put(om, body, {
        timeout: this.#o.timeoutMs ?? 10_000,
        previousRevision: meta.previousRevision,
      });
      return toStored(fromInfo(oi), oi.revision);
    } catch (e) {
      throw this.#conflictOr(e, id, "uploading");
    }
  }

  /**
   * Streams the content of a stored snapshot, pulling chunks as the reader asks for them (a few
   * MiB buffered at most). The stream errors with a {@link SnapshotReplacedError} when the
   * object is replaced or deleted meanwhile (its chunks are purged: noticed after
   * `replacedCheckMs` without data, or when the chunks end early), and with
   * `HaError("unavailable")` when the content does not match the object's size, chunk count or
   * digest, or nothing arrives for the idle timeout (the object store is unreachable); with
   * `HaError("cancelled")` when `signal` aborts.
   */
  read(s: StoredSnapshot, signal?: AbortSignal): ReadableStream<Uint8Array> {
    const { info } = s;
    const what = `snapshot of ${info.database} (seq ${info.sequence})`;
    const idleMs = this.#o.idleTimeoutMs ?? 30_000;
    const checkMs = Math.min(this.#o.replacedCheckMs ?? 1_000, idleMs);
    const hash = createHash("sha256");
    let bytes = 0;
    let chunks = 0;
    let iter: ConsumerMessages | null = null;
    let it: AsyncIterator<JsMsg> | null = null;
    // The pending `next()` survives idle checks: calling `next()` again would skip a chunk.
    let pending: Promise<IteratorResult<JsMsg>> | null = null;
    const stop = () => {
      iter?.stop();
      iter = null;
    };
    const finish = (controller: ReadableStreamDefaultController<Uint8Array>) => {
      stop();
      const digest = `SHA-256=${hash.digest("base64url")}`;
      if (bytes !== info.size || chunks !== s.chunks) {
        throw new HaError(
          "unavailable",
          `${what} is corrupt: got ${bytes} bytes in ${chunks} chunks, expected ${info.size} ` +
            `bytes in ${s.chunks} chunks`,
        );
      }
      if (normalizeDigest(info.digest) !== digest) {
        throw new HaError(
          "unavailable",
          `${what} is corrupt: digest mismatch (stored ${info.digest}, computed ${digest})`,
        );
      }
      controller.close();
    };
    /** The next chunk; a replacement noticed while waiting for it throws. */
    const next = async (): Promise<IteratorResult<JsMsg>> => {
      const since = performance.now();
      for (;;) {
        if (!pending) {
          pending = it!.next();
          pending.catch(() => {}); // abandoned when the download fails meanwhile
        }
        const r = await within(pending, checkMs, signal);
        if (r !== "idle") {
          pending = null;
          return r;
        }
        // Real time, checks included: a metadata read may itself wait for its timeout.
        const waited = performance.now() - since;
        const replaced = waited < idleMs ? await this.replacedSince(s, { bytes }) : null;
        if (replaced) throw replaced;
        if (performance.now() - since >= idleMs) {
          throw new HaError(
            "unavailable",
            `${what}: no data for ${idleMs} ms after ${bytes} of ${info.size} bytes ` +
              "(the object store is unreachable?)",
            { unreachable: true },
          );
        }
      }
    };
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          if (signal?.aborted) throw cancelled(what);
          if (s.chunks === 0) return finish(controller);
          if (!it) {
            const oc = await this.#js.consumers.get(`OBJ_${this.bucket}`, {
              filter_subjects: `$O.${this.bucket}.C.${s.nuid}`,
            });
            iter = await oc.consume({ max_messages: 4 });
            it = iter[Symbol.asyncIterator]();
          }
          const r = await next();
          if (r.done) {
            if (signal?.aborted) throw cancelled(what);
            const replaced = await this.replacedSince(s, { bytes });
            if (replaced) throw replaced;
            throw new HaError("unavailable", `${what}: download ended after ${bytes} bytes`);
          }
          const m = r.value;
          bytes += m.data.length;
          chunks++;
          hash.update(m.data);
          if (bytes > info.size) {
            throw new HaError("unavailable", `${what} is corrupt: more than ${info.size} bytes`);
          }
          controller.enqueue(m.data);
          if (m.info.pending === 0) finish(controller);
        } catch (e) {
          stop();
          const err = e instanceof HaError ? e : this.#fail(e, `downloading ${what}`);
          controller.error(err);
        }
      },
      cancel: () => stop(),
    }, { highWaterMark: 1 });
  }

  /**
   * Whether `s` was replaced (another nuid) or deleted since it was read: the
   * {@link SnapshotReplacedError} to throw instead of `cause` (a failed download of `s`, after
   * `bytes`), or `null` when it is still the stored object or the store cannot tell. A metadata
   * rewrite of the same content ({@link updateSequence}) is not a replacement.
   */
  async replacedSince(
    s: StoredSnapshot,
    o: { cause?: unknown; bytes?: number } = {},
  ): Promise<SnapshotReplacedError | null> {
    if (o.cause instanceof SnapshotReplacedError) return o.cause;
    let now: StoredSnapshot | null;
    try {
      now = await this.get(s.info.database);
    } catch {
      return null;
    }
    if (now?.nuid === s.nuid) return null;
    return new SnapshotReplacedError(s, now, o.bytes, o.cause ? { cause: o.cause } : undefined);
  }

  /** Forgets the open bucket so that the next call opens it again. */
  reset(): void {
    this.#os = null;
  }

  async #open(create: boolean): Promise<ObjectStore | null> {
    if (this.#os) return this.#os;
    if (this.#o.nc.isClosed()) {
      throw new HaError("unavailable", `snapshot store ${this.bucket}: NATS connection is closed`);
    }
    let exists: boolean;
    try {
      const jsm = await this.#js.jetstreamManager();
      exists = await jsm.streams.info(`OBJ_${this.bucket}`).then(() => true, (e) => {
        if (isNotFound(e)) return false;
        throw e;
      });
      if (exists) this.#os = await this.#objm.open(this.bucket, false);
    } catch (e) {
      throw this.#fail(e, "opening the bucket");
    }
    if (!exists) {
      if (!create) return null;
      try {
        this.#os = await this.#objm.create(this.bucket, {
          storage: StorageType.File,
          replicas: this.#o.replicas,
          description: "ha database snapshots",
        });
      } catch (e) {
        throw this.#fail(e, "creating the bucket");
      }
    }
    return this.#os;
  }

  #fail(e: unknown, doing: string): HaError {
    this.#os = null;
    const msg = e instanceof Error ? e.message : String(e);
    return new HaError(
      "unavailable",
      `snapshot store ${this.bucket} unavailable (${doing}): ${msg}`,
      { unreachable: true },
      { cause: e },
    );
  }

  #conflictOr(e: unknown, id: string, doing: string): HaError {
    if (e instanceof HaError) return e;
    if (isWrongLastSequence(e)) {
      return new HaError(
        "unavailable",
        `snapshot of ${id} was replaced by another node while ${doing}`,
        { conflict: true },
        { cause: e },
      );
    }
    return this.#fail(e, `${doing} snapshot of ${id}`);
  }

  #metaSubject(id: string): string {
    return `$O.${this.bucket}.M.${Base64UrlPaddedCodec.encode(id)}`;
  }

  async #jsm(): Promise<JetStreamManager> {
    return await this.#js.jetstreamManager();
  }
}

function toStored(meta: ServerObjectInfo, revision: number): StoredSnapshot {
  const seq = meta.metadata?.seq ?? meta.headers?.seq?.[0] ?? meta.headers?.Seq?.[0] ?? "0";
  const node = meta.metadata?.node ?? meta.headers?.node?.[0] ?? meta.headers?.Node?.[0] ?? "";
  const n = Number(seq);
  return {
    info: {
      database: meta.name,
      sequence: Number.isSafeInteger(n) && n >= 0 ? n : 0,
      size: meta.size,
      created: meta.mtime,
      node,
      digest: meta.digest,
    },
    revision,
    chunks: meta.chunks,
    nuid: meta.nuid,
    meta,
  };
}

function fromInfo(oi: ObjectInfo): ServerObjectInfo {
  return {
    name: oi.name,
    description: oi.description,
    bucket: oi.bucket,
    nuid: oi.nuid,
    size: oi.size,
    chunks: oi.chunks,
    digest: oi.digest,
    mtime: oi.mtime,
    deleted: oi.deleted,
    headers: oi.headers
      ? Object.fromEntries([...oi.headers.keys()].map((k) => [k, oi.headers!.values(k)]))
      : undefined,
    metadata: oi.metadata,
    options: oi.options as Record<string, unknown> | undefined,
  };
}

function cancelled(what: string): HaError {
  return new HaError("cancelled", `${what}: transfer cancelled`);
}

/** `p`'s result, or `"idle"` after `ms`, or `{done: true}` when `signal` aborts. */
async function within<T>(
  p: Promise<IteratorResult<T>>,
  ms: number,
  signal?: AbortSignal,
): Promise<IteratorResult<T> | "idle"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const idle = new Promise<"idle">((resolve) => {
    timer = setTimeout(() => resolve("idle"), ms);
  });
  const aborted = new Promise<IteratorResult<T>>((resolve) => {
    onAbort = () => resolve({ done: true, value: undefined });
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([p, idle, aborted]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}
