/**
 * Headless Chromium driven over the DevTools protocol (a minimal client on Deno's WebSocket):
 * start it on a free port, open a page, evaluate expressions in it, take a screenshot. The
 * browser is a child process stopped by pid.
 *
 * @example
 * ```ts
 * const browser = await Chromium.launch();
 * const page = await browser.open("http://127.0.0.1:8080/ui");
 * await page.eval("document.title");
 * await browser.close();
 * ```
 * @module
 */
import { descendants, freePort, waitFor } from "./cluster.ts";

/** Chromium's binary: `$CHROMIUM`, else Debian's. */
export function chromiumBin(): string | null {
  for (const p of [Deno.env.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"]) {
    if (!p) continue;
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* absent */ }
  }
  return null;
}

/** A page (target) and its DevTools connection. */
export class Page {
  #id = 0;
  readonly #waiting = new Map<number, PromiseWithResolvers<unknown>>();
  readonly #events: { method: string; params: unknown }[] = [];

  private constructor(private readonly ws: WebSocket) {
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data as string);
      if (m.id !== undefined) {
        const w = this.#waiting.get(m.id);
        this.#waiting.delete(m.id);
        if (m.error) w?.reject(new Error(`CDP ${JSON.stringify(m.error)}`));
        else w?.resolve(m.result);
      } else this.#events.push({ method: m.method, params: m.params });
    };
  }

  static async connect(url: string): Promise<Page> {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    return new Page(ws);
  }

  /** Sends a DevTools command; resolves to its result. */
  send<T = Record<string, unknown>>(method: string, params: unknown = {}): Promise<T> {
    const id = ++this.#id;
    const w = Promise.withResolvers<unknown>();
    this.#waiting.set(id, w);
    this.ws.send(JSON.stringify({ id, method, params }));
    return w.promise as Promise<T>;
  }

  /** Evaluates `expr` in the page (promises awaited); its value, or throws the page's error. */
  async eval<T = unknown>(expr: string): Promise<T> {
    const r = await this.send<{ result: { value?: T }; exceptionDetails?: unknown }>(
      "Runtime.evaluate",
      { expression: expr, awaitPromise: true, returnByValue: true },
    );
    if (r.exceptionDetails) throw new Error(`page error: ${JSON.stringify(r.exceptionDetails)}`);
    return r.result.value as T;
  }

  /** Console messages and uncaught exceptions seen so far (after `Runtime.enable`). */
  problems(): string[] {
    return this.#events.flatMap((e) => {
      const p = e.params as Record<string, unknown>;
      if (e.method === "Runtime.exceptionThrown") return [JSON.stringify(p.exceptionDetails)];
      if (e.method === "Runtime.consoleAPICalled" && p.type === "error") {
        return [JSON.stringify(p.args)];
      }
      if (e.method === "Log.entryAdded") {
        const entry = p.entry as { level: string; text: string };
        return entry.level === "error" ? [entry.text] : [];
      }
      return [];
    });
  }

  /** A PNG screenshot of the whole page. */
  async screenshot(path: string): Promise<void> {
    const r = await this.send<{ data: string }>("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: true,
    });
    await Deno.writeFile(path, Uint8Array.from(atob(r.data), (c) => c.charCodeAt(0)));
  }

  close(): void {
    this.ws.close();
  }
}

/** A headless Chromium process. */
export class Chromium {
  private constructor(
    private readonly child: Deno.ChildProcess,
    private readonly port: number,
    private readonly profile: string,
    private readonly pages: Page[] = [],
  ) {}

  /** Starts Chromium; throws with its output when it cannot start. */
  static async launch(): Promise<Chromium> {
    const bin = chromiumBin();
    if (!bin) throw new Error("chromium not found (apt-get install chromium, or set CHROMIUM)");
    const port = freePort();
    const profile = await Deno.makeTempDir({ prefix: "ha-chromium-" });
    const child = new Deno.Command(bin, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--window-size=1280,1000",
        `--remote-debugging-port=${port}`,
        "--remote-debugging-address=127.0.0.1",
        `--user-data-dir=${profile}`,
        "about:blank",
      ],
      stdout: "null",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    let err = "";
    (async () => {
      const dec = new TextDecoder();
      for await (const c of child.stderr) err += dec.decode(c, { stream: true });
    })().catch(() => {});
    const browser = new Chromium(child, port, profile);
    try {
      await waitFor("chromium DevTools", async () => {
        const r = await fetch(`http://127.0.0.1:${port}/json/version`).catch(() => null);
        if (!r) return false;
        await r.body?.cancel();
        return r.ok;
      }, 30_000);
    } catch (e) {
      await browser.close();
      throw new Error(`chromium did not start: ${(e as Error).message}\n${err.slice(-2000)}`);
    }
    return browser;
  }

  /** Opens `url` in a new tab and waits for its load event. */
  async open(url: string): Promise<Page> {
    const r = await fetch(`http://127.0.0.1:${this.port}/json/new?about:blank`, { method: "PUT" });
    const target = await r.json() as { webSocketDebuggerUrl: string };
    const page = await Page.connect(target.webSocketDebuggerUrl);
    this.pages.push(page);
    await page.send("Runtime.enable");
    await page.send("Log.enable");
    await page.send("Page.enable");
    await page.send("Page.navigate", { url });
    await waitFor(
      `${url} loaded`,
      async () => await page.eval("document.readyState") === "complete",
      30_000,
    );
    return page;
  }

  /** Stops the browser (by pid) and removes its profile. */
  async close(): Promise<void> {
    for (const p of this.pages) p.close();
    const kids = descendants(this.child.pid);
    for (const pid of [this.child.pid, ...kids]) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await this.child.status;
    await Deno.remove(this.profile, { recursive: true }).catch(() => {});
  }
}
