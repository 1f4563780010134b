// Seed 000's flow (written for Go's azopenaiassistants) on its JS sibling, @azure/openai-assistants
// 1.0.0-beta.6: create an assistant, upload a file, a thread, a message with fileIds, a run with
// instructions, poll it, list the messages after the question in ascending order.
// Usage: node azure_assistants.cjs azure|openai BASE KEY. Prints JSON: what the flow saw, and
// every response the client received (for the test to validate).
const { AssistantsClient, AzureKeyCredential, OpenAIKeyCredential } = require("@azure/openai-assistants");

const [mode, base, key] = process.argv.slice(2);
const responses = [];
const capture = {
  position: "perCall",
  policy: {
    name: "capture",
    sendRequest: async (request, next) => {
      const response = await next(request);
      responses.push({ method: request.method, url: request.url, status: response.status, body: response.bodyAsText });
      return response;
    },
  },
};
const options = { allowInsecureConnection: true, additionalPolicies: [capture] };
const client =
  mode === "azure"
    ? new AssistantsClient(base, new AzureKeyCredential(key), options)
    : new AssistantsClient(new OpenAIKeyCredential(key), { ...options, baseUrl: `${base}/v1` });

async function main() {
  const assistant = await client.createAssistant({
    model: "gpt-4-1106-preview", // on Azure: the deployment name
    name: "Seed 000 helper",
    instructions: "You are a helpful assistant. Use the attached file to answer.",
    tools: [{ type: "code_interpreter" }],
  });
  const file = await client.uploadFile(new TextEncoder().encode("region,sales\nnorth,10\nsouth,32\n"), "assistants", {
    filename: "sales.csv",
  });
  const thread = await client.createThread({});
  const question = await client.createMessage(thread.id, "user", "What are the total sales in sales.csv?", {
    fileIds: [file.id],
  });
  let run = await client.createRun(thread.id, {
    assistantId: assistant.id,
    instructions: "Answer in one sentence.",
  });
  while (run.status === "queued" || run.status === "in_progress") {
    await new Promise((r) => setTimeout(r, 200));
    run = await client.getRun(thread.id, run.id);
  }
  const after = await client.listMessages(thread.id, { after: question.id, order: "asc" });
  const deleted = await client.deleteAssistant(assistant.id);
  console.log(
    JSON.stringify({
      assistant: { id: assistant.id, tools: assistant.tools.map((t) => t.type), fileIds: assistant.fileIds },
      file: { id: file.id, filename: file.filename, purpose: file.purpose },
      question: { fileIds: question.fileIds, role: question.role },
      run: { status: run.status, instructions: run.instructions, fileIds: run.fileIds },
      answers: after.data.map((m) => ({ role: m.role, text: m.content[0].text.value })),
      deleted: deleted.deleted,
      responses,
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
