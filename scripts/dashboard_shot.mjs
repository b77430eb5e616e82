// Logs in to the dashboard in a headless Chromium and saves a screenshot, over the DevTools
// protocol (no npm package: Node's built-in WebSocket, Node 22+, or Node 20 with
// `--experimental-websocket`). The token is typed into the login form, as a person would.
//
// usage: TOWER_SIEM_ADMIN_TOKEN=… node [--experimental-websocket] scripts/dashboard_shot.mjs \
//          [URL [OUT.png [WAIT_SECONDS]]]
//        (default http://127.0.0.1:3000/_siem/, dashboard.png, 40 s)
// env:   CHROMIUM=path (default /usr/bin/chromium); HEIGHT=pixels of the 1280-wide window
//        (default 900); OPEN_ENTITY=ip:… also opens that entity's story before the screenshot.
import { spawn } from "node:child_process";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const url = process.argv[2] || "http://127.0.0.1:3000/_siem/";
const out = process.argv[3] || "dashboard.png";
const waitS = Number(process.argv[4] || 40);
const token = process.env.TOWER_SIEM_ADMIN_TOKEN;
if (!token) throw new Error("set TOWER_SIEM_ADMIN_TOKEN");
const height = Number(process.env.HEIGHT || 900);
const port = 9333;
const profile = mkdtempSync(join(tmpdir(), "siem-shot-"));
const chrome = spawn(process.env.CHROMIUM || "/usr/bin/chromium", [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
  `--remote-debugging-port=${port}`, `--user-data-dir=${profile}`,
  `--window-size=1280,${height}`, "about:blank",
], { stdio: "ignore" });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

try {
  let target;
  for (let i = 0; i < 50 && !target; i++) {
    await sleep(200);
    try {
      const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
      target = list.find((t) => t.type === "page");
    } catch (_) { /* not up yet */ }
  }
  if (!target) throw new Error("chromium did not start");
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((res, rej) => { ws.onopen = res; ws.onerror = rej; });
  let next = 0;
  const waiting = new Map();
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.id && waiting.has(msg.id)) {
      waiting.get(msg.id)(msg);
      waiting.delete(msg.id);
    }
  };
  const send = (method, params = {}) => new Promise((res) => {
    const id = ++next;
    waiting.set(id, res);
    ws.send(JSON.stringify({ id, method, params }));
  });
  const evaluate = async (expression) =>
    (await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true }))
      .result?.result?.value;

  await send("Emulation.setDeviceMetricsOverride",
    { width: 1280, height, deviceScaleFactor: 1, mobile: false });
  await send("Page.navigate", { url });
  await sleep(1500);
  // The login form: type the token, submit.
  await evaluate(`(() => {
    const t = document.getElementById("token");
    if (!t) return "no form";
    t.value = ${JSON.stringify(token)};
    t.form.submit();
    return "submitted";
  })()`);
  await sleep(waitS * 1000);
  if (process.env.OPEN_ENTITY) {
    await evaluate(`(() => {
      const b = [...document.querySelectorAll("button.link")]
        .find((b) => b.textContent === ${JSON.stringify(process.env.OPEN_ENTITY)});
      if (b) b.click();
    })()`);
    await sleep(1500);
  }
  const shot = await send("Page.captureScreenshot", { format: "png" });
  writeFileSync(out, Buffer.from(shot.result.data, "base64"));
  console.log(`saved ${out}`);
  ws.close();
} finally {
  chrome.kill();
}
