// The openai Node SDK (the newest release that still has beta.assistants) on assistd's v2 API:
// create, createAndPoll, runs.stream with finalRun(), submitToolOutputsStream,
// vectorStores.files.uploadAndPoll + file_search. Usage: node openai_node.cjs BASE_URL KEY.
// Prints JSON: what the flow saw, every JSON response and every stream event (for the test to
// validate against the spec).
const OpenAI = require("openai");
const { toFile } = require("openai");

const [baseURL, apiKey] = process.argv.slice(2);
const responses = [];
const events = [];
const client = new OpenAI({
  baseURL,
  apiKey,
  maxRetries: 0,
  fetch: async (url, init) => {
    const response = await fetch(url, init);
    if ((response.headers.get("content-type") || "").startsWith("application/json")) {
      responses.push({ method: init.method, url: String(url), status: response.status, body: await response.clone().text() });
    }
    return response;
  },
});
// A copy as the event arrived: the SDK's accumulator later edits the same objects in place (a
// message's parts gain the deltas' "index"), which is the SDK's state, not what the server sent.
const record = (stream) => stream.on("event", (e) => events.push({ event: e.event, data: structuredClone(e.data) }));

const weather = {
  type: "function",
  function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
};

async function main() {
  const out = {};
  const assistant = await client.beta.assistants.create({ model: "gpt-4o", name: "Node", tools: [weather] });
  const thread = await client.beta.threads.create({ messages: [{ role: "user", content: "Say hello from node" }] });
  const polled = await client.beta.threads.runs.createAndPoll(thread.id, { assistant_id: assistant.id }, { pollIntervalMs: 50 });
  const page = await client.beta.threads.messages.list(thread.id);
  out.poll = { status: polled.status, text: page.data[0].content[0].text.value };

  await client.beta.threads.messages.create(thread.id, { role: "user", content: "Stream a greeting" });
  const stream = record(client.beta.threads.runs.stream(thread.id, { assistant_id: assistant.id }));
  let text = "";
  stream.on("textDelta", (d) => (text += d.value));
  const final = await stream.finalRun();
  out.stream = { status: final.status, text };

  await client.beta.threads.messages.create(thread.id, { role: "user", content: "What's the weather in Paris and Oslo?" });
  const first = record(client.beta.threads.runs.stream(thread.id, { assistant_id: assistant.id }));
  const waiting = await first.finalRun();
  const calls = waiting.required_action.submit_tool_outputs.tool_calls;
  const resumed = record(
    client.beta.threads.runs.submitToolOutputsStream(waiting.id, {
      thread_id: thread.id,
      tool_outputs: calls.map((c) => ({ tool_call_id: c.id, output: "sunny" })),
    }),
  );
  let answer = "";
  resumed.on("textDelta", (d) => (answer += d.value));
  const done = await resumed.finalRun();
  out.tools = { requires: waiting.status, calls: calls.map((c) => JSON.parse(c.function.arguments).city), status: done.status, answer };

  const vs = await client.vectorStores.create({ name: "node docs" });
  const vf = await client.vectorStores.files.uploadAndPoll(
    vs.id,
    await toFile(Buffer.from("The lighthouse keeper feeds the herons at dawn."), "herons.txt"),
    { pollIntervalMs: 50 },
  );
  const searcher = await client.beta.assistants.create({
    model: "gpt-4o",
    tools: [{ type: "file_search" }],
    tool_resources: { file_search: { vector_store_ids: [vs.id] } },
  });
  const t2 = await client.beta.threads.create({ messages: [{ role: "user", content: "Who feeds the herons?" }] });
  const searched = await client.beta.threads.runs.createAndPoll(t2.id, { assistant_id: searcher.id }, { pollIntervalMs: 50 });
  const reply = (await client.beta.threads.messages.list(t2.id)).data[0].content[0].text;
  out.search = { file: vf.status, status: searched.status, text: reply.value, cited: reply.annotations.map((a) => a.file_citation.file_id), fileId: vf.id };

  out.responses = responses;
  out.events = events;
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
