// Driven by tests/e2e/test_js_sdks.py: the older `langfuse` 3.x JS SDK (batched ingestion API) against a
// Lightfuse server.
//
// Server URL and keys come from LANGFUSE_BASE_URL / LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY. The script uses
// only the SDK's public API, then prints the ids (and client-side results) as one JSON line on stdout. Any
// error the SDK reports (its "error" event, console warnings) makes it exit non-zero, because it never
// throws on delivery failures.
import { readFileSync } from "node:fs";

import { Langfuse, LangfuseMedia, LangfuseWeb } from "langfuse";

const logged = [];
for (const level of ["warn", "error"]) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    logged.push(`${level}: ${args.map((a) => (a instanceof Error ? a.stack : String(a))).join(" ")}`);
    original(...args);
  };
}

// langfuse-core loads node's crypto module with a dynamic import when it is first imported; LangfuseMedia
// needs it to hash the bytes, so a media object built in the same tick fails client-side ("Crypto support is
// not available"). Yield once, as any app that does I/O before tracing does.
await new Promise((resolve) => setTimeout(resolve, 50));

const suffix = process.env.LF_TEST_SUFFIX || String(Date.now());
const langfuse = new Langfuse({
  baseUrl: process.env.LANGFUSE_BASE_URL,
  publicKey: process.env.LANGFUSE_PUBLIC_KEY,
  secretKey: process.env.LANGFUSE_SECRET_KEY,
  flushAt: 50,
  flushInterval: 500,
});
langfuse.on("error", (err) => logged.push(`sdk error event: ${err?.stack || JSON.stringify(err)}`));
const version = JSON.parse(readFileSync(new URL("./node_modules/langfuse/package.json", import.meta.url))).version;
const out = { sdk: { langfuse: version } };

const PNG_B64 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
out.png_b64 = PNG_B64;

// --- tracing: trace > span > generation (usage), a second generation with cost, errors, an event, media ----
const trace = langfuse.trace({
  name: "legacy-pipeline",
  userId: "legacy-user",
  sessionId: `legacy-session-${suffix}`,
  tags: ["js", "legacy"],
  input: { question: "What is Lightfuse?" },
  metadata: { tenant: "acme" },
  release: "r-1",
  version: "v-1",
});
out.trace_id = trace.id;
const span = trace.span({ name: "retrieve", input: { q: "lightfuse" } });
out.retrieve = span.id;
const gen = span.generation({
  name: "summarise",
  model: "gpt-4o",
  modelParameters: { temperature: 0.2, max_tokens: 256 },
  input: [{ role: "user", content: "summarise" }],
  usage: { input: 1000, output: 200 },
});
out.summarise = gen.id;
gen.end({ output: { role: "assistant", content: "Lightfuse is small." } });
span.end({ output: { hits: 2 } });
const rerank = trace.generation({
  name: "rerank",
  model: "gpt-4o-mini",
  usageDetails: { input: 50, output: 5 },
  costDetails: { input: 0.01, output: 0.02 },
});
out.rerank = rerank.id;
rerank.end({ output: "doc-2, doc-1" });
const failing = trace.span({ name: "failing-tool", input: { x: 1 } });
out.failing = failing.id;
failing.end({ level: "ERROR", statusMessage: "tool exploded" });
const event = trace.event({ name: "cache-miss", level: "WARNING", statusMessage: "cold cache" });
out.event = event.id;
const withMedia = trace.span({
  name: "with-media",
  input: {
    text: "look",
    image: new LangfuseMedia({ base64DataUri: `data:image/png;base64,${PNG_B64}` }),
  },
});
out.with_media = withMedia.id;
withMedia.end();
trace.update({ output: { answer: "A small Langfuse-compatible server." } });

// --- scores ---------------------------------------------------------------------------------------------------
trace.score({ name: "legacy-helpfulness", value: 0.9, comment: "good" });
langfuse.score({ traceId: trace.id, observationId: gen.id, name: "legacy-correct", value: 1, dataType: "BOOLEAN" });
langfuse.score({ traceId: trace.id, name: "legacy-tone", value: "friendly", dataType: "CATEGORICAL" });
await langfuse.flushAsync();

// --- prompts ----------------------------------------------------------------------------------------------------
const promptName = `legacy-text-${suffix}`;
const v1 = await langfuse.createPrompt({
  name: promptName,
  prompt: "Hello {{name}}, v1",
  labels: ["production"],
  config: { temperature: 0.1 },
});
const v2 = await langfuse.createPrompt({ name: promptName, prompt: "Hi {{name}} from {{place}}, v2", labels: ["staging"] });
out.prompt = { name: promptName, created: [v1.version, v2.version] };
const prod = await langfuse.getPrompt(promptName, undefined, { cacheTtlSeconds: 0 });
const staging = await langfuse.getPrompt(promptName, undefined, { label: "staging", cacheTtlSeconds: 0 });
const byVersion = await langfuse.getPrompt(promptName, 1, { cacheTtlSeconds: 0 });
out.prompt.production = { version: prod.version, compiled: prod.compile({ name: "Ada" }), config: prod.config };
out.prompt.staging = { version: staging.version, compiled: staging.compile({ name: "Ada", place: "Oslo" }) };
out.prompt.by_version = { version: byVersion.version, labels: byVersion.labels };
const chatName = `legacy-chat-${suffix}`;
await langfuse.createPrompt({
  name: chatName,
  type: "chat",
  prompt: [
    { role: "system", content: "You are {{persona}}." },
    { role: "user", content: "{{question}}" },
  ],
  labels: ["production"],
});
const chat = await langfuse.getPrompt(chatName, undefined, { type: "chat", cacheTtlSeconds: 0 });
out.chat_prompt = { name: chatName, version: chat.version, compiled: chat.compile({ persona: "a pirate", question: "where?" }) };
const prompted = trace.generation({ name: "prompted", model: "gpt-4o", prompt: prod });
out.prompted = prompted.id;
prompted.end();

// --- datasets, items, and a run linked to traces (the 3.x way of running an experiment) ----------------------
const datasetName = `legacy-dataset-${suffix}`;
await langfuse.createDataset({ name: datasetName, description: "from legacy js", metadata: { team: "qa" } });
const created = [];
for (const [i, q] of ["2+2", "3+3"].entries()) {
  const item = await langfuse.createDatasetItem({
    datasetName,
    id: `legacy-item-${suffix}-${i}`,
    input: { question: q },
    expectedOutput: { answer: String(eval(q)) },
    metadata: { i },
  });
  created.push(item.id);
}
const dataset = await langfuse.getDataset(datasetName);
out.dataset = { name: datasetName, created_items: created, fetched_items: dataset.items.map((it) => it.id).sort() };
const runName = `legacy-run-${suffix}`;
out.run = { name: runName, traces: [], observations: [] };
for (const item of dataset.items) {
  const runTrace = langfuse.trace({ name: "legacy-experiment-item", input: item.input });
  const runGen = runTrace.generation({ name: "answer", input: item.input });
  runGen.end({ output: { answer: String(eval(item.input.question)) } });
  await item.link(runGen, runName, { description: "legacy run", metadata: { model: "none" } });
  runTrace.score({ name: "exact", value: 1 });
  out.run.traces.push(runTrace.id);
  out.run.observations.push(runGen.id);
}
await langfuse.flushAsync();
const run = await langfuse.getDatasetRun({ datasetName, runName });
out.run.fetched_items = run.datasetRunItems.map((ri) => ri.datasetItemId).sort();

// --- read back through the SDK: trace, media resolution ------------------------------------------------------
const fetched = await langfuse.fetchTrace(trace.id);
out.read_trace = { name: fetched.data.name, observations: fetched.data.observations.length, scores: fetched.data.scores.length };
const mediaObs = (await langfuse.fetchObservation(withMedia.id)).data;
out.media_input = mediaObs.input;
out.media_resolved = await langfuse.resolveMediaReferences({ obj: mediaObs.input, resolveWith: "base64DataUri" });

// --- more of the 3.x surface: client-chosen ids and timestamps, a public trace, the fetch* read helpers,
// updatePrompt, dataset runs list; each call's outcome is recorded so one failure does not hide the others
const customTraceId = `legacy-custom-${suffix}`;
const t0 = new Date(Date.UTC(2026, 0, 15, 10, 0, 0));
const custom = langfuse.trace({ id: customTraceId, name: "custom-ids", timestamp: t0, public: true });
const customSpan = custom.span({ id: `${customTraceId}-span`, name: "timed", startTime: t0 });
customSpan.generation({
  id: `${customTraceId}-gen`,
  name: "timed-gen",
  startTime: new Date(t0.getTime() + 100),
  completionStartTime: new Date(t0.getTime() + 300),
  endTime: new Date(t0.getTime() + 900),
  model: "gpt-4o",
  usage: { promptTokens: 7, completionTokens: 3, totalTokens: 10 },
});
customSpan.end(); // end() always stamps "now" (client-side)
// every trace event restates `public` (Langfuse does the same), so the update says it again
custom.update({ public: true, metadata: { second: "update" } });
await langfuse.flushAsync();
out.extras = { custom_trace_id: customTraceId, t0: t0.toISOString(), api: {} };
async function call(name, fn) {
  try {
    out.extras.api[name] = { ok: true, value: await fn() };
  } catch (err) {
    out.extras.api[name] = { ok: false, error: String(err?.message || err) };
  }
}
await call("fetchTraces", async () =>
  (await langfuse.fetchTraces({ userId: "legacy-user", tags: ["legacy"] })).data.map((t) => t.id),
);
await call("fetchObservations", async () =>
  (await langfuse.fetchObservations({ traceId: trace.id, type: "GENERATION" })).data.map((o) => o.name).sort(),
);
await call("fetchSessions", async () => (await langfuse.fetchSessions({ limit: 100 })).data.map((x) => x.id));
await call("getDatasetRuns", async () => (await langfuse.getDatasetRuns(datasetName)).data.map((r) => r.name));
await call("getDatasetItem", async () => (await langfuse.getDatasetItem(created[0])).expectedOutput);
await call("updatePrompt", async () => {
  await langfuse.updatePrompt({ name: promptName, version: 2, newLabels: ["production"] });
  return (await langfuse.getPrompt(promptName, undefined, { cacheTtlSeconds: 0 })).version;
});
await call("fetchMedia", async () => {
  const id = String(mediaObs.input.image).match(/id=([^|@]+)/)[1];
  const media = await langfuse.fetchMedia(id);
  return { contentType: media.contentType, contentLength: media.contentLength };
});

// the browser client: public key only, scores through POST /api/public/scores
const web = new LangfuseWeb({ publicKey: process.env.LANGFUSE_PUBLIC_KEY, baseUrl: process.env.LANGFUSE_BASE_URL });
web.on("error", (err) => logged.push(`web error event: ${err?.stack || JSON.stringify(err)}`));
await web.score({ traceId: trace.id, observationId: gen.id, name: "web-feedback", value: 1, comment: "thumbs up" });
await web.shutdownAsync();

await langfuse.shutdownAsync();
process.stdout.write(`${JSON.stringify(out)}\n`);
if (logged.length) {
  process.stderr.write(`SDK logged:\n${logged.join("\n")}\n`);
  process.exit(3);
}
