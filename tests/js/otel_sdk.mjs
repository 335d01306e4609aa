// Driven by tests/e2e/test_js_sdks.py: the current Langfuse JS SDKs (@langfuse/tracing + @langfuse/otel on an
// OpenTelemetry NodeTracerProvider, and @langfuse/client) against a Lightfuse server.
//
// Server URL and keys come from LANGFUSE_BASE_URL / LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY. The script uses
// only the SDKs' public API, then prints the ids (and client-side results) as one JSON line on stdout. Any
// warning or error the SDKs log makes it exit non-zero, because they never throw on delivery failures.
import { readFileSync } from "node:fs";

import { LangfuseClient, LangfuseMedia } from "@langfuse/client";
import { LangfuseSpanProcessor } from "@langfuse/otel";
import {
  createTraceId,
  observe,
  propagateAttributes,
  setActiveTraceIO,
  setLangfuseTracerProvider,
  startActiveObservation,
  startObservation,
  updateActiveObservation,
} from "@langfuse/tracing";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

const logged = [];
let expectedLog = null; // a log line the current step provokes on purpose (a prompt fallback logs its 404)
for (const level of ["warn", "error"]) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    if (expectedLog && args.some((a) => String(a).includes(expectedLog))) return;
    logged.push(`${level}: ${args.map((a) => (a instanceof Error ? a.stack : String(a))).join(" ")}`);
    original(...args);
  };
}

const baseUrl = process.env.LANGFUSE_BASE_URL;
const publicKey = process.env.LANGFUSE_PUBLIC_KEY;
const secretKey = process.env.LANGFUSE_SECRET_KEY;
const suffix = process.env.LF_TEST_SUFFIX || String(Date.now());

const processor = new LangfuseSpanProcessor({ baseUrl, publicKey, secretKey, exportMode: "immediate" });
const provider = new NodeTracerProvider({ spanProcessors: [processor] });
provider.register();
setLangfuseTracerProvider(provider);
const langfuse = new LangfuseClient({ baseUrl, publicKey, secretKey });

const pkg = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version;
const out = { sdk: { tracing: pkg("@langfuse/tracing"), otel: pkg("@langfuse/otel"), client: pkg("@langfuse/client") } };

// a 1x1 PNG as a data URI: the span processor uploads it through /api/public/media and puts a reference in
const PNG_B64 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
out.png_b64 = PNG_B64;

// --- tracing: a trace with nested spans and generations, usage, cost, errors, media ------------------------
await propagateAttributes(
  { userId: "js-user-1", sessionId: `js-session-${suffix}`, tags: ["js", "otel"], traceName: "js-pipeline",
    metadata: { tenant: "acme" } },
  () =>
    startActiveObservation("js-pipeline", async (root) => {
      out.trace_id = root.traceId;
      out.root = root.id;
      root.update({ input: { question: "What is Lightfuse?" }, metadata: { step: "root" } });
      await startActiveObservation("retrieve", async (span) => {
        out.retrieve = span.id;
        span.update({ input: { q: "lightfuse" } });
        // nested generation: usage only, so the server prices it with the built-in gpt-4o price
        await startActiveObservation(
          "summarise",
          async (gen) => {
            out.summarise = gen.id;
            gen.update({
              model: "gpt-4o",
              modelParameters: { temperature: 0.2, max_tokens: 256 },
              input: [{ role: "user", content: "summarise the docs" }],
              usageDetails: { input: 1000, output: 200 },
              output: { role: "assistant", content: "Lightfuse is small." },
            });
          },
          { asType: "generation" },
        );
        span.update({ output: { hits: 2 } });
      });
      // provided cost wins over the model price; OpenAI-shaped usage
      const rerank = startObservation(
        "rerank",
        {
          model: "gpt-4o-mini",
          input: [{ role: "user", content: "rank" }],
          usageDetails: { prompt_tokens: 50, completion_tokens: 5, total_tokens: 55 },
          costDetails: { input: 0.01, output: 0.02 },
        },
        { asType: "generation" },
      );
      out.rerank = rerank.id;
      rerank.update({ output: "doc-2, doc-1" }).end();
      // an error: the observation's level and status message
      const failing = startObservation("failing-tool", { input: { x: 1 } }, { asType: "tool" });
      out.failing = failing.id;
      failing.update({ level: "ERROR", statusMessage: "tool exploded" }).end();
      // an exception thrown inside an active observation
      try {
        await startActiveObservation("throws", async (span) => {
          out.throws = span.id;
          throw new Error("boom inside");
        });
      } catch {
        // expected
      }
      // media: a data URI in the input is replaced by a reference to uploaded media
      const withMedia = startObservation("with-media", {
        input: { text: "look", image: `data:image/png;base64,${PNG_B64}` },
      });
      out.with_media = withMedia.id;
      withMedia.end();
      root.update({ output: { answer: "A small Langfuse-compatible server." } });
    }),
);
// --- more of the tracing API: every observation type, observe(), a seeded trace id, completion start time,
// environment/version/release, trace IO set from inside, an explicit parent
const seededTraceId = await createTraceId(`seed-${suffix}`);
out.extras = { seeded_trace_id: seededTraceId, types: {} };
const answer = observe(
  async (question) => {
    updateActiveObservation({ metadata: { via: "observe" } });
    return `answer to ${question}`;
  },
  { name: "observed-fn", asType: "chain" },
);
await propagateAttributes({ version: "app-v2", environment: "staging-js", traceName: "js-extras" }, () =>
  startActiveObservation(
    "extras-root",
    async (root) => {
      out.extras.root = root.id;
      out.extras.trace_id = root.traceId;
      setActiveTraceIO({ input: { from: "setActiveTraceIO" }, output: { done: true } });
      for (const type of ["agent", "tool", "chain", "retriever", "evaluator", "guardrail", "embedding", "event"]) {
        const obs = startObservation(`as-${type}`, { input: { type } }, { asType: type });
        out.extras.types[type] = obs.id;
        if (type !== "event") obs.end();
      }
      const started = new Date(Date.now() - 2000);
      const streamed = startObservation(
        "streamed",
        {
          model: "gpt-4o",
          completionStartTime: new Date(started.getTime() + 500),
          usageDetails: { input: 10, output: 20, cache_read_input_tokens: 4 },
          version: "gen-v1",
        },
        { asType: "generation", startTime: started },
      );
      out.extras.streamed = { id: streamed.id, start: started.toISOString() };
      streamed.end();
      await answer("why?");
    },
    { asType: "agent" },
  ),
);
const detached = startObservation(
  "detached-child",
  { input: "explicit parent" },
  { parentSpanContext: { traceId: seededTraceId, spanId: "a1b2c3d4e5f60718", traceFlags: 1 } },
);
out.extras.detached = detached.id;
detached.end();
await provider.forceFlush();

// --- scores --------------------------------------------------------------------------------------------------
langfuse.score.create({ name: "js-helpfulness", value: 0.9, traceId: out.trace_id, comment: "good" });
langfuse.score.create({
  name: "js-correct",
  value: 1,
  dataType: "BOOLEAN",
  traceId: out.trace_id,
  observationId: out.summarise,
});
langfuse.score.create({ name: "js-tone", value: "friendly", dataType: "CATEGORICAL", traceId: out.trace_id });
langfuse.score.create({ name: "js-session-score", value: 0.5, sessionId: `js-session-${suffix}` });
await langfuse.score.flush();

// --- prompts: create (two versions, labels), get by label and version, compile -----------------------------
const promptName = `js-text-${suffix}`;
const v1 = await langfuse.prompt.create({
  name: promptName,
  prompt: "Hello {{name}}, v1",
  labels: ["production"],
  config: { temperature: 0.1 },
  tags: ["js"],
});
const v2 = await langfuse.prompt.create({ name: promptName, prompt: "Hi {{name}} from {{place}}, v2", labels: ["staging"] });
out.prompt = { name: promptName, created: [v1.version, v2.version] };
const prod = await langfuse.prompt.get(promptName, { cacheTtlSeconds: 0 });
const staging = await langfuse.prompt.get(promptName, { label: "staging", cacheTtlSeconds: 0 });
const byVersion = await langfuse.prompt.get(promptName, { version: 1, cacheTtlSeconds: 0 });
out.prompt.production = { version: prod.version, compiled: prod.compile({ name: "Ada" }), config: prod.config };
out.prompt.staging = { version: staging.version, compiled: staging.compile({ name: "Ada", place: "Oslo" }) };
out.prompt.by_version = { version: byVersion.version, labels: byVersion.labels };
const chatName = `js-chat-${suffix}`;
await langfuse.prompt.create({
  name: chatName,
  type: "chat",
  prompt: [
    { role: "system", content: "You are {{persona}}." },
    { type: "placeholder", name: "history" },
    { role: "user", content: "{{question}}" },
  ],
  labels: ["production"],
});
const chat = await langfuse.prompt.get(chatName, { type: "chat", cacheTtlSeconds: 0 });
out.chat_prompt = {
  name: chatName,
  version: chat.version,
  compiled: chat.compile({ persona: "a pirate", question: "where?" }, { history: [{ role: "user", content: "hi" }] }),
};
// composition: a prompt that references another by label, resolved by the server; a commit message
await langfuse.prompt.create({
  name: `${promptName}-composed`,
  prompt: `@@@langfusePrompt:name=${promptName}|label=staging@@@ Answer briefly.`,
  labels: ["production"],
  commitMessage: "compose with staging",
});
const composed = await langfuse.prompt.get(`${promptName}-composed`, { cacheTtlSeconds: 0 });
out.prompt.composed = {
  prompt: composed.prompt,
  commitMessage: composed.commitMessage,
  compiled: composed.compile({ name: "Ada", place: "Oslo" }),
};
// a generation linked to the prompt
const linked = startObservation("prompted", { model: "gpt-4o", prompt: prod }, { asType: "generation" });
out.prompted = { trace_id: linked.traceId, id: linked.id };
linked.end();

// --- datasets and items -----------------------------------------------------------------------------------
const datasetName = `js-dataset-${suffix}`;
await langfuse.api.datasets.create({ name: datasetName, description: "from js", metadata: { team: "qa" } });
const items = [];
for (const [i, q] of ["2+2", "3+3"].entries()) {
  const item = await langfuse.dataset.createItem({
    datasetName,
    id: `js-item-${suffix}-${i}`,
    input: { question: q },
    expectedOutput: { answer: String(eval(q)) },
    metadata: { i },
  });
  items.push(item.id);
}
// an item with a file in it: the SDK uploads it for the item and stores a reference in its place
const attachment = Buffer.from(`attachment of ${datasetName}`).toString("base64");
out.attachment_b64 = attachment;
const withFile = await langfuse.dataset.createItem({
  datasetName,
  id: `js-item-${suffix}-file`,
  input: {
    question: "what is in the file?",
    doc: new LangfuseMedia({ source: "base64_data_uri", base64DataUri: `data:text/plain;base64,${attachment}` }),
  },
  expectedOutput: { answer: "an attachment" },
});
items.push(withFile.id);
const dataset = await langfuse.dataset.get(datasetName);
// dataset.get hands back the file as a LangfuseMediaReference with a download URL
const fileItem = dataset.items.find((it) => it.id === withFile.id);
out.dataset_file = {
  reference_class: fileItem.input.doc?.constructor?.name,
  media_id: fileItem.input.doc?.mediaId,
  content_type: fileItem.input.doc?.contentType,
  bytes_b64: Buffer.from(await (await fetch(fileItem.input.doc.url)).arrayBuffer()).toString("base64"),
  reference: JSON.parse(JSON.stringify(fileItem.input)).doc,
};
out.dataset = { name: datasetName, created_items: items, fetched_items: dataset.items.map((it) => it.id).sort() };

// dataset versions: the state at a past instant, and an experiment pinned to it
const versioned = `${datasetName}-versioned`;
await langfuse.api.datasets.create({ name: versioned });
await langfuse.dataset.createItem({ datasetName: versioned, id: `${versioned}-a`, input: { v: 1 }, expectedOutput: "one" });
await new Promise((resolve) => setTimeout(resolve, 50));
const between = new Date().toISOString();
await new Promise((resolve) => setTimeout(resolve, 50));
await langfuse.dataset.createItem({ datasetName: versioned, id: `${versioned}-a`, input: { v: 2 }, expectedOutput: "two" });
await langfuse.dataset.createItem({ datasetName: versioned, id: `${versioned}-b`, input: { v: 3 } });
const past = await langfuse.dataset.get(versioned, { version: between });
const now = await langfuse.dataset.get(versioned);
const pastRun = await past.runExperiment({ name: "versioned", runName: `${versioned}-run`, task: async ({ input }) => input.v });
out.versioned = {
  name: versioned,
  at: between,
  past: past.items.map((it) => [it.id, it.input, it.expectedOutput]),
  now: now.items.map((it) => [it.id, it.input, it.expectedOutput]).sort(),
  run: pastRun.runName,
  outputs: pastRun.itemResults.map((r) => r.output),
};

// --- experiments: on the dataset (linked run items) and on local data -------------------------------------
const runName = `js-run-${suffix}`;
const exp = await dataset.runExperiment({
  name: "js-experiment",
  runName,
  description: "experiment from js",
  task: async ({ input }) => ({ answer: input.doc ? "an attachment" : String(eval(input.question)) }),
  evaluators: [
    async ({ output, expectedOutput }) => ({
      name: "exact",
      value: output.answer === expectedOutput.answer ? 1 : 0,
    }),
  ],
  runEvaluators: [async ({ itemResults }) => ({ name: "run-mean", value: itemResults.length })],
});
out.experiment = {
  run_name: exp.runName,
  dataset_run_id: exp.datasetRunId,
  trace_ids: exp.itemResults.map((r) => r.traceId),
  evaluations: exp.itemResults.map((r) => r.evaluations.map((e) => e.value)),
};
const local = await langfuse.experiment.run({
  name: "js-local-experiment",
  data: [{ input: "a", expectedOutput: "A" }],
  task: async ({ input }) => input.toUpperCase(),
  evaluators: [async ({ output, expectedOutput }) => ({ name: "same", value: output === expectedOutput ? 1 : 0 })],
});
out.local_experiment = { trace_ids: local.itemResults.map((r) => r.traceId) };
await provider.forceFlush();
await langfuse.flush();

// --- read back through the SDK's own API client: trace, media resolution -----------------------------------
const trace = await langfuse.api.trace.get(out.trace_id);
out.read_trace = { name: trace.name, observations: trace.observations.length, scores: trace.scores.length };
const mediaObs = trace.observations.find((o) => o.id === out.with_media);
out.media_input = mediaObs.input;
const resolved = await langfuse.media.resolveReferences({ obj: mediaObs.input, resolveWith: "base64DataUri" });
out.media_resolved = resolved;

// --- the SDK's generated API client on the read routes an app or notebook uses: each call's outcome is
// recorded (the test asserts on it) so one failing route does not hide the others
const started = new Date(Date.now() - 10 * 60 * 1000).toISOString();
async function call(name, fn) {
  try {
    out.api[name] = { ok: true, value: await fn() };
  } catch (err) {
    out.api[name] = { ok: false, error: String(err?.message || err), status: err?.statusCode ?? null };
  }
}
out.api = {};
await call("traces.list", async () => (await langfuse.api.trace.list({ userId: "js-user-1" })).data.map((t) => t.id));
await call("observations.v2", async () =>
  (await langfuse.api.observations.getMany({ traceId: out.trace_id, limit: 50 })).data.map((o) => o.id).sort(),
);
await call("observations.v1", async () =>
  (await langfuse.api.legacy.observationsV1.getMany({ traceId: out.trace_id })).data.map((o) => o.id).sort(),
);
await call("sessions.get", async () => (await langfuse.api.sessions.get(`js-session-${suffix}`)).traces.map((t) => t.id));
await call("scores.v2", async () =>
  (await langfuse.api.scores.getMany({ traceId: out.trace_id })).data.map((sc) => sc.name).sort(),
);
await call("datasets.getRuns", async () => (await langfuse.api.datasets.getRuns(datasetName)).data.map((r) => r.name));
await call("datasetItems.list", async () =>
  (await langfuse.api.datasetItems.list({ datasetName })).data.map((it) => it.id).sort(),
);
await call("datasetRunItems.list", async () =>
  (await langfuse.api.datasetRunItems.list({ datasetId: dataset.id, runName })).data.map((ri) => ri.datasetItemId).sort(),
);
await call("prompts.list", async () => (await langfuse.api.prompts.list({ name: promptName })).data);
await call("prompt.update", async () => {
  await langfuse.prompt.update({ name: promptName, version: 2, newLabels: ["production"] });
  return (await langfuse.prompt.get(promptName, { cacheTtlSeconds: 0 })).version;
});
await call("media.get", async () => {
  const id = String(mediaObs.input.image).match(/id=([^|@]+)/)[1];
  const media = await langfuse.api.media.get(id);
  return { mediaId: media.mediaId, contentType: media.contentType, contentLength: media.contentLength };
});
// what the SDK does with the server's 404s: a prompt fallback, typed NotFound errors
await call("prompt.fallback", async () => {
  expectedLog = `Error fetching prompt 'missing-${suffix}`;
  const missing = await langfuse.prompt.get(`missing-${suffix}`, { fallback: "fallback {{x}}", cacheTtlSeconds: 0 });
  expectedLog = null;
  return { isFallback: missing.isFallback, compiled: missing.compile({ x: "used" }) };
});
await call("trace.missing", () => langfuse.api.trace.get(`missing-${suffix}`));
await call("dataset.missing", () => langfuse.dataset.get(`missing-${suffix}`));
await call("experiments.list", async () =>
  // the SDK names an experiment after its run (langfuse.experiment.name = run name)
  (await langfuse.api.experiments.list({ fromStartTime: started, name: runName, fields: "core,metadata" })).data.map((e) => ({
    id: e.id,
    name: e.name,
    itemCount: e.itemCount,
    datasetId: e.datasetId,
    description: e.description,
  })),
);
await call("experiments.listItems", async () =>
  (
    await langfuse.api.experiments.listItems({ fromStartTime: started, experimentName: runName, fields: "core,dataset,io" })
  ).data
    .map((it) => ({ traceId: it.traceId, itemId: it.experimentItemId, datasetId: it.experimentDatasetId,
      input: it.input, output: it.output, expectedOutput: it.expectedOutput, experimentId: it.experimentId }))
    .sort((a, b) => a.itemId.localeCompare(b.itemId)),
);

await langfuse.shutdown();
await provider.shutdown();
if (logged.length) {
  process.stderr.write(`SDK logged:\n${logged.join("\n")}\n`);
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(3);
}
process.stdout.write(`${JSON.stringify(out)}\n`);
