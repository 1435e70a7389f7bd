// Drives the gateway with the official openai npm client, as a user's app
// would: one plain completion and one streamed completion. Prints what the
// client saw as JSON for the Go test to check.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.GATEWAY_URL + "/v1", apiKey: process.env.API_KEY });

const plain = await client.chat.completions.create({
  model: "gpt-4o",
  messages: [{ role: "user", content: "Say hello." }],
  max_tokens: 32,
});

const stream = await client.chat.completions.create({
  model: "gpt-4o",
  messages: [{ role: "user", content: "Say hello, streamed." }],
  max_tokens: 32,
  stream: true,
  stream_options: { include_usage: true },
});
let streamed = "";
let streamUsage = null;
for await (const chunk of stream) {
  streamed += chunk.choices[0]?.delta?.content ?? "";
  if (chunk.usage) streamUsage = chunk.usage;
}

console.log(JSON.stringify({
  content: plain.choices[0].message.content,
  usage: plain.usage,
  streamed,
  streamUsage,
}));
