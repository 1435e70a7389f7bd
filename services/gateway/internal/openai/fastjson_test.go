package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// The fast path of ParseChatRequest must answer exactly as encoding/json
// does: these tests hold it to the decoder it replaced (referenceParse, the
// previous implementation, kept here as the oracle).

var parseCorpus = []string{
	`{"model":"gpt-4o","messages":[{"role":"user","content":"hello there, how are you?"}],"max_tokens":100}`,
	`{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":10,"max_completion_tokens":20,"user":"u","metadata":{"tags":["b","a"]},"tags":["c"],"messages":[{"role":"user","content":[{"type":"text","text":"ab"},{"type":"text","text":"cd"}]}]}`,
	` { "model" : "m" , "messages" : [ { "role" : "user" , "content" : "x" } ] } `,
	`{"model":"m","messages":[{"role":"user","content":"caf\u00e9 \"q\""}]}`,
	`{"model":"m","messages":[{"role":"user","content":"café ☕"}]}`,
	"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"bad \xff utf8\"}]}",
	"{\"model\":\"m\xff\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
	`{"model":"m","messages":[{"Role":"user","content":"x"}]}`,
	`{"model":"m","messages":[{"ROLE":"user","CONTENT":"x"}]}`,
	`{"model":"m","messages":[{"role":"user","role":"system","content":"x"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x","content":[{"type":"text","text":"yy"}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":null}]}`,
	`{"model":"m","messages":[{"role":null,"content":"x"}]}`,
	`{"model":"m","messages":[null]}`,
	`{"model":"m","messages":[1]}`,
	`{"model":"m","messages":{}}`,
	`{"model":"m","messages":"x"}`,
	`{"model":"m","messages":[]}`,
	`{"model":"m","messages":null}`,
	`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"ok","name":"f"}]}`,
	`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":1}]}]}`,
	`{"model":"m","messages":[{"role":"assistant","tool_calls":"x"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x","name":5}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x","extra":{"deep":[1,2,{"a":null}]}}]}`,
	`{"model":"m","messages":[{"role":"user","content":1}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":1}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stream":null,"max_tokens":null}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stream":false,"stream_options":null}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":"yes"}}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1.5}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1e3}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":-4}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":99999999999999999999}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":-0}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"10"}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":0.7,"top_p":1}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":1e400}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":-0.0,"top_p":2E-3}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":"\n","tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"tool_choice":"auto"}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a","b"],"user":"u1"}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":3}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"user":7}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"user":"a\tb"}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"tags":"x"}}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"tags":[1]}`,
	`{"model":"m","model":"n","messages":[{"role":"user","content":"x"}]}`,
	`{"mod\u0065l":"m","messages":[{"role":"user","content":"x"}]}`,
	`{"Model":"m","messages":[{"role":"user","content":"x"}]}`,
	`{"model":"","messages":[{"role":"user","content":"x"}]}`,
	`{"model":5,"messages":[{"role":"user","content":"x"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}]} x`,
	`{"model":"m","messages":[{"role":"user","content":"x"}]}}`,
	`{"model":"m","messages":[{"role":"user","content":"x",}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"},]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"n":01}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"n":1.}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"n":.5}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"n":tru}`,
	`{"model":"m","messages":[{"role":"user","content":"\x01"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"\q"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"\u12"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"a":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}`,
	`{"model":"m"`,
	`null`,
	`[]`,
	`"x"`,
	``,
	`{}`,
}

func FuzzParseChatRequestMatchesEncodingJSON(f *testing.F) {
	for _, s := range parseCorpus {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkParseMatches(t, body) })
}

func TestParseChatRequestMatchesEncodingJSON(t *testing.T) {
	for _, s := range parseCorpus {
		checkParseMatches(t, []byte(s))
	}
}

func checkParseMatches(t *testing.T, body []byte) {
	t.Helper()
	in := bytes.Clone(body)
	got, gerr := ParseChatRequest(in)
	want, werr := referenceParse(bytes.Clone(body))
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("%q: error %v, encoding/json says %v", body, gerr, werr)
	}
	if gerr != nil {
		if *gerr != *werr {
			t.Fatalf("%q: error %+v, encoding/json says %+v", body, *gerr, *werr)
		}
		return
	}
	if g, w := summary(got), summary(want); g != w {
		t.Fatalf("%q:\n got %s\nwant %s", body, g, w)
	}
	if !reflect.DeepEqual(normRaw(got.Raw), normRaw(want.Raw)) {
		t.Fatalf("%q: raw %v, encoding/json says %v", body, got.Raw, want.Raw)
	}
	if got.TextBytes() != want.TextBytes() {
		t.Fatalf("%q: text bytes %d, encoding/json says %d", body, got.TextBytes(), want.TextBytes())
	}
	for _, stream := range []bool{false, true} {
		var g, w map[string]json.RawMessage
		gb, wb := got.UpstreamBody("back\"end<", stream), referenceUpstreamBody(want, "back\"end<", stream)
		if err := json.Unmarshal(gb, &g); err != nil {
			t.Fatalf("%q: upstream body %s: %v", body, gb, err)
		}
		_ = json.Unmarshal(wb, &w)
		if !reflect.DeepEqual(normRaw(g), normRaw(w)) {
			t.Fatalf("%q: upstream body %s, want %s", body, gb, wb)
		}
	}
}

func summary(r *ChatRequest) string {
	msgs := make([]string, len(r.Messages))
	for i, m := range r.Messages {
		tc, _ := json.Marshal(m.ToolCalls)
		msgs[i] = fmt.Sprintf("{%q %q %q %q %s %v}", m.Role, m.Content, m.Name, m.ToolCallID, tc, m.ToolCalls == nil)
	}
	tools, _ := json.Marshal(r.Tools)
	f := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("model=%q msgs=%v stream=%v iu=%v max=%d user=%q tags=%q temp=%s top=%s stop=%q tools=%s tc=%q",
		r.Model, msgs, r.Stream, r.IncludeUsage, r.MaxTokens, r.User, r.Tags, f(r.Temperature), f(r.TopP), r.Stop, tools, r.ToolChoice)
}

func normRaw(m map[string]json.RawMessage) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// referenceParse is ParseChatRequest as it was before the fast path: every
// field through encoding/json.
func referenceParse(body []byte) (*ChatRequest, *Error) {
	return parseChatRequest(body, &decoders{
		split: func(r *ChatRequest, body []byte) *Error {
			if err := json.Unmarshal(body, &r.Raw); err != nil || r.Raw == nil {
				return BadRequest("request body is not a JSON object: "+errText(err), "")
			}
			return nil
		},
		messages: func(r *ChatRequest) *Error { return field(r.Raw, "messages", &r.Messages) },
		textBytes: func(m *Message) (int64, error) {
			parts, err := m.Parts()
			return m.textBytes(parts), err
		},
		str:      func(b []byte, v *string) error { return json.Unmarshal(b, v) },
		boolean:  func(b []byte, v *bool) error { return json.Unmarshal(b, v) },
		int64p:   func(b []byte, v **int64) error { return json.Unmarshal(b, v) },
		float64p: func(b []byte, v **float64) error { return json.Unmarshal(b, v) },
	})
}

// referenceUpstreamBody is UpstreamBody as it was before.
func referenceUpstreamBody(r *ChatRequest, model string, stream bool) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	put := func(k string, v []byte) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(v)
	}
	mb, _ := json.Marshal(model)
	put("model", mb)
	for k, v := range r.Raw {
		switch {
		case k == "model", k == "stream", k == "stream_options", gatewayOnly[k]:
			continue
		}
		put(k, v)
	}
	if stream {
		put("stream", []byte("true"))
		put("stream_options", r.upstreamStreamOptions())
	}
	b.WriteByte('}')
	return b.Bytes()
}

var usageCorpus = []string{
	`{"id":"c","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}`,
	`{"id":"chatcmpl-x","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":10,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"system_fingerprint":"fp"}`,
	`{"usage":{"prompt_tokens":10,"completion_tokens":2,"cache_creation_input_tokens":3,"cache_read_input_tokens":4}}`,
	`{"usage":null}`,
	`{"choices":[]}`,
	`{"usage":{"prompt_tokens":null,"prompt_tokens_details":null}}`,
	`{"Usage":{"prompt_tokens":1}}`,
	`{"usage":{"Prompt_Tokens":1}}`,
	`{"usage":{"prompt_tokens":1},"usage":{"completion_tokens":2}}`,
	`{"usage":{"prompt_tokens":1,"prompt_tokens":2}}`,
	`{"usage":{"prompt_tokens":1.0}}`,
	`{"usage":{"prompt_tokens":"1"}}`,
	`{"usage":{"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":2}}}`,
	`{"usage":{"prompt_tokens_details":[]}}`,
	`{"us\u0061ge":{"prompt_tokens":1}}`,
	`{"usage":[1]}`,
	`{"usage":{"prompt_tokens":1}} trailing`,
	`[]`,
	`null`,
}

func FuzzReportedUsageMatchesEncodingJSON(f *testing.F) {
	for _, s := range usageCorpus {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkUsageMatches(t, body) })
}

func TestReportedUsageMatchesEncodingJSON(t *testing.T) {
	for _, s := range usageCorpus {
		checkUsageMatches(t, []byte(s))
	}
	// The shapes providers send are read on the fast path.
	for _, s := range usageCorpus[:5] {
		if _, ok := ReportedUsage([]byte(s)); !ok {
			t.Errorf("%s: not read on the fast path", s)
		}
	}
}

func checkUsageMatches(t *testing.T, body []byte) {
	t.Helper()
	u, ok := ReportedUsage(body)
	if !ok {
		return // encoding/json decides
	}
	var want struct {
		Usage *Usage `json:"usage"`
	}
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatalf("%q: fast path accepted what encoding/json rejects: %v", body, err)
	}
	if !reflect.DeepEqual(u, want.Usage) {
		g, _ := json.Marshal(u)
		w, _ := json.Marshal(want.Usage)
		t.Fatalf("%q: usage %s, encoding/json says %s", body, g, w)
	}
}
