package gitserve

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
)

// infiniteDepth is what `git fetch --unshallow` sends as "deepen N".
const infiniteDepth = 0x7fffffff

type negKind int

const (
	evHave negKind = iota
	evFlush
	evDone
)

type negEvent struct {
	kind negKind
	hash plumbing.Hash
}

// uploadPackRequest is one stateless-RPC upload-pack request (protocol v0/v1).
type uploadPackRequest struct {
	Wants    []plumbing.Hash
	Caps     map[string]string // requested capabilities; value after '=' or ""
	Shallows []plumbing.Hash
	Depth    int        // "deepen N"; 0 when absent
	Events   []negEvent // have / flush / done, in order; empty, or ends with flush or done
}

func (q *uploadPackRequest) has(c string) bool { _, ok := q.Caps[c]; return ok }

func parseHash(s string) (plumbing.Hash, error) {
	if len(s) != 40 {
		return plumbing.ZeroHash, fmt.Errorf("bad object id %q", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return plumbing.ZeroHash, fmt.Errorf("bad object id %q", s)
		}
	}
	return plumbing.NewHash(s), nil
}

// maxLines bounds the number of pkt-lines in one request.
const maxLines = 1 << 20

// parseUploadPackRequest parses a whole upload-pack request body.
func parseUploadPackRequest(body []byte) (*uploadPackRequest, error) {
	sc := pktline.NewScanner(bytes.NewReader(body))
	q := &uploadPackRequest{Caps: map[string]string{}}
	lines := 0
	// Section 1: wants, shallows, deepen; ends at the first flush.
	flushed := false
	for sc.Scan() {
		lines++
		if lines > maxLines {
			return nil, errors.New("too many pkt-lines")
		}
		line := sc.Bytes()
		if len(line) == 0 {
			flushed = true
			break
		}
		s := strings.TrimSuffix(string(line), "\n")
		cmd, arg, _ := strings.Cut(s, " ")
		switch cmd {
		case "want":
			hs, caps, _ := strings.Cut(arg, " ")
			h, err := parseHash(hs)
			if err != nil {
				return nil, err
			}
			if caps != "" {
				if len(q.Wants) > 0 {
					return nil, errors.New("capabilities are only allowed on the first want line")
				}
				for _, c := range strings.Fields(caps) {
					k, v, _ := strings.Cut(c, "=")
					q.Caps[k] = v
				}
			}
			q.Wants = append(q.Wants, h)
		case "shallow":
			h, err := parseHash(arg)
			if err != nil {
				return nil, err
			}
			q.Shallows = append(q.Shallows, h)
		case "deepen":
			n, err := strconv.Atoi(arg)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("bad deepen %q", arg)
			}
			if n > infiniteDepth {
				n = infiniteDepth
			}
			q.Depth = n
		case "deepen-since", "deepen-not", "deepen-relative":
			return nil, fmt.Errorf("%s is not supported by this server; use --depth", cmd)
		case "filter":
			return nil, errors.New("partial clone (filter) is not supported by this server")
		default:
			return nil, fmt.Errorf("unexpected line %q", truncate(s))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bad pkt-line: %w", err)
	}
	if !flushed {
		return nil, errors.New("request ended before the flush after the wants")
	}
	if len(q.Wants) == 0 {
		return nil, errors.New("no want lines")
	}
	// Section 2: haves, flushes, done.
	for sc.Scan() {
		lines++
		if lines > maxLines {
			return nil, errors.New("too many pkt-lines")
		}
		line := sc.Bytes()
		if len(line) == 0 {
			q.Events = append(q.Events, negEvent{kind: evFlush})
			continue
		}
		s := strings.TrimSuffix(string(line), "\n")
		if s == "done" {
			q.Events = append(q.Events, negEvent{kind: evDone})
			return q, nil
		}
		hs, ok := strings.CutPrefix(s, "have ")
		if !ok {
			return nil, fmt.Errorf("expected have/done, got %q", truncate(s))
		}
		h, err := parseHash(hs)
		if err != nil {
			return nil, err
		}
		q.Events = append(q.Events, negEvent{kind: evHave, hash: h})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bad pkt-line: %w", err)
	}
	// EOF right after the wants section is what a stateless client sends to
	// learn the shallow list before negotiating (git's upload-pack accepts it
	// too); otherwise the request must end with a flush or "done".
	if n := len(q.Events); n > 0 && q.Events[n-1].kind != evFlush {
		return nil, errors.New("request ended without flush or done")
	}
	return q, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
