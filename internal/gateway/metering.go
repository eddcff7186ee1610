package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
)

// Per-token pricing (x402 upto): the buyer authorizes at most what the request can cost
// (gatewayconfig.Prices.MaxCost), the forwarded request's max_tokens is set to that bound, and
// the gateway settles what the answer used (Prices.Cost), never above the authorization. This
// file reads the request and meters the answer.

// usage is what an answer used, as the upstream reported it or as counted.
type usage struct {
	prompt, completion int64
}

// inferenceRequest is what the gateway reads of an OpenAI-compatible request body.
type inferenceRequest struct {
	maxTokens int64 // requested completion tokens, 0 when unsaid
	stream    bool
	// promptBytes is the length of the prompt's text, for the estimate when no usage comes.
	promptBytes int64
	// injectedUsage is set when the gateway asked for stream_options.include_usage itself; the
	// usage chunk is then metered but not forwarded.
	injectedUsage bool
}

// readInferenceRequest parses body; a body that is not a JSON object yields the zero request.
func readInferenceRequest(body []byte) (inferenceRequest, map[string]json.RawMessage) {
	var req inferenceRequest
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil || obj == nil {
		return req, nil
	}
	for _, k := range []string{"max_completion_tokens", "max_tokens"} {
		var n int64
		if v, ok := obj[k]; ok && json.Unmarshal(v, &n) == nil && n > 0 {
			req.maxTokens = n
			break
		}
	}
	_ = json.Unmarshal(obj["stream"], &req.stream)
	req.promptBytes = int64(textBytes(obj["messages"]) + textBytes(obj["prompt"]) + textBytes(obj["input"]))
	return req, obj
}

// shapeInferenceRequest bounds the forwarded request to what the payment covers: max_tokens
// (and max_completion_tokens when sent) at most bound, and a stream asks for its final usage
// chunk. It returns the body to forward.
func shapeInferenceRequest(obj map[string]json.RawMessage, req *inferenceRequest, bound int64, embeddings bool) ([]byte, error) {
	if !embeddings {
		b := json.RawMessage(strconv.FormatInt(bound, 10))
		if _, ok := obj["max_completion_tokens"]; ok {
			obj["max_completion_tokens"] = b
		}
		obj["max_tokens"] = b
	}
	if req.stream {
		var so map[string]json.RawMessage
		_ = json.Unmarshal(obj["stream_options"], &so)
		var include bool
		_ = json.Unmarshal(so["include_usage"], &include)
		if !include {
			if so == nil {
				so = map[string]json.RawMessage{}
			}
			so["include_usage"] = json.RawMessage("true")
			raw, err := json.Marshal(so)
			if err != nil {
				return nil, err
			}
			obj["stream_options"] = raw
			req.injectedUsage = true
		}
	}
	return json.Marshal(obj)
}

// textBytes counts the bytes of every string inside a JSON value.
func textBytes(raw json.RawMessage) int {
	if len(raw) == 0 {
		return 0
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return 0
	}
	n := 0
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			n += len(x)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return n
}

// estimateTokens is the count used when an upstream never reported usage: one token per four
// bytes of text, rounded up (the usual average of BPE tokenizers on English text).
func estimateTokens(bytes int64) int64 { return (bytes + 3) / 4 }

// usageReport is the OpenAI usage object.
type usageReport struct {
	Usage *struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
	} `json:"usage"`
	Choices []struct {
		Delta *struct {
			Content          string `json:"content"`
			ReasoningContent string `json:"reasoning_content"`
		} `json:"delta"`
		Message *struct {
			Content string `json:"content"`
		} `json:"message"`
		Text string `json:"text"`
	} `json:"choices"`
}

// bufferedUsage reads the usage of a whole (non-streamed) answer; without a usage object it
// estimates from the prompt and the answer's text.
func bufferedUsage(body []byte, req inferenceRequest) usage {
	var r usageReport
	if json.Unmarshal(body, &r) == nil && r.Usage != nil {
		return usage{prompt: r.Usage.PromptTokens, completion: r.Usage.CompletionTokens}
	}
	text := 0
	for _, c := range r.Choices {
		if c.Message != nil {
			text += len(c.Message.Content)
		}
		text += len(c.Text)
	}
	return usage{prompt: estimateTokens(req.promptBytes), completion: estimateTokens(int64(text))}
}

// sseMeter passes a Server-Sent Events stream through event by event, counting what reached
// the client: the upstream's usage when a chunk carries it, and the content chunks delivered
// (OpenAI-compatible servers send one token per content chunk). An event is forwarded only
// whole, so what is counted is what the client received.
type sseMeter struct {
	dst     io.Writer
	req     inferenceRequest
	pending []byte
	// delivered counts content chunks written to the client; seen the upstream's usage.
	delivered int64
	seen      *usage
	writeErr  error
}

func (m *sseMeter) Write(p []byte) (int, error) {
	m.pending = append(m.pending, p...)
	for {
		i, sepLen := eventEnd(m.pending)
		if i < 0 {
			break
		}
		ev := m.pending[:i+sepLen]
		forward := m.inspect(ev[:i])
		if forward && m.writeErr == nil {
			if _, err := m.dst.Write(ev); err != nil {
				m.writeErr = err
			}
		}
		m.pending = m.pending[i+sepLen:]
	}
	if m.writeErr != nil {
		return 0, m.writeErr
	}
	return len(p), nil
}

// flush forwards what is left when the stream ended without a final blank line.
func (m *sseMeter) flush() {
	if len(m.pending) > 0 && m.writeErr == nil {
		if m.inspect(m.pending) {
			_, m.writeErr = m.dst.Write(m.pending)
		}
		m.pending = nil
	}
}

func eventEnd(b []byte) (int, int) {
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		if j := bytes.Index(b, []byte("\r\n\r\n")); j >= 0 && j < i {
			return j, 4
		}
		return i, 2
	}
	if j := bytes.Index(b, []byte("\r\n\r\n")); j >= 0 {
		return j, 4
	}
	return -1, 0
}

// inspect meters one event and reports whether to forward it.
func (m *sseMeter) inspect(ev []byte) bool {
	var data []byte
	for line := range bytes.SplitSeq(ev, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			data = append(data, bytes.TrimPrefix(d, []byte(" "))...)
		}
	}
	if len(data) == 0 || bytes.Equal(data, []byte("[DONE]")) {
		return true
	}
	var r usageReport
	if json.Unmarshal(data, &r) != nil {
		return true
	}
	content := false
	for _, c := range r.Choices {
		if (c.Delta != nil && (c.Delta.Content != "" || c.Delta.ReasoningContent != "")) || c.Text != "" {
			content = true
		}
	}
	if content {
		m.delivered++
	}
	if r.Usage != nil {
		m.seen = &usage{prompt: r.Usage.PromptTokens, completion: r.Usage.CompletionTokens}
		// The usage-only chunk the gateway asked for is the gateway's, not the client's.
		if m.req.injectedUsage && len(r.Choices) == 0 {
			return false
		}
	}
	return true
}

// used is what to charge for: the upstream's final usage when the whole stream reached the
// client; otherwise the content chunks delivered, with the prompt as reported (some servers
// report usage on every chunk) or estimated.
func (m *sseMeter) used(complete bool) usage {
	if m.seen != nil && complete {
		return *m.seen
	}
	u := usage{completion: m.delivered, prompt: estimateTokens(m.req.promptBytes)}
	if m.seen != nil {
		u.prompt = m.seen.prompt
		u.completion = min(m.delivered, m.seen.completion)
	}
	return u
}
