/**
 * Issue 11 finding 11: an interceptor bundle embeds only files from the interceptor's own
 * directory tree — not a `.json` (or any file) by `../` path, absolute path or symbolic link.
 */
import assert from "node:assert/strict";
import { bundleInterceptor } from "../../src/interceptor/bundle.ts";

Deno.test("interceptor bundle: imports outside the interceptor's directory are refused", async () => {
  const root = await Deno.makeTempDir({ prefix: "ha-sec-bundle-" });
  try {
    const dir = `${root}/interceptor`;
    await Deno.mkdir(`${dir}/lib`, { recursive: true });
    await Deno.writeTextFile(`${root}/secret.json`, '{"password": "hunter2"}');
    await Deno.writeTextFile(`${dir}/lib/limits.json`, '{"max": 3}');
    await Deno.symlink(`${root}/secret.json`, `${dir}/link.json`);
    const cases: [string, string][] = [
      ["relative.ts", 'import s from "../secret.json";'],
      ["absolute.ts", `import s from ${JSON.stringify(`${root}/secret.json`)};`],
      ["symlink.ts", 'import s from "./link.json";'],
    ];
    for (const [file, imp] of cases) {
      await Deno.writeTextFile(`${dir}/${file}`, `${imp}\nexport const beforeApply = () => s;\n`);
      await assert.rejects(
        () => bundleInterceptor(`${dir}/${file}`),
        (e: Error) => {
          assert.match(e.message, /outside the interceptor's directory|relative path/, file);
          assert.ok(!e.message.includes("hunter2"));
          return true;
        },
      );
    }
    await Deno.writeTextFile(
      `${dir}/own.ts`,
      'import l from "./lib/limits.json";\nexport const beforeApply = () => l.max > 0 ? undefined : { skip: true };\n',
    );
    const own = await bundleInterceptor(`${dir}/own.ts`);
    assert.match(own.code, /max/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
