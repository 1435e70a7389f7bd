package admin

import (
	"context"
	"net/http"
	"strconv"

	"connectrpc.com/connect"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
)

// keyBlock is POST /key/block and /key/unblock {"key": ...}: the answer is
// the key as /key/info shows it.
func (h *Handler) keyBlock(blocked bool) endpoint {
	return func(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
		f, oerr := h.readFields(r)
		if oerr != nil {
			return nil, oerr
		}
		if oerr := f.check(h.Log, r.URL.Path, []string{"key"}, nil); oerr != nil {
			return nil, oerr
		}
		ref, oerr := f.str("key")
		if oerr != nil {
			return nil, oerr
		}
		id, oerr := h.resolveKey(ctx, ref)
		if oerr != nil {
			return nil, oerr
		}
		cctx, cancel := h.rpc(ctx)
		_, err := h.Budget.UpdateKey(cctx, connect.NewRequest(&budgetv1.UpdateKeyRequest{
			Key: &budgetv1.Key{KeyId: id, Blocked: blocked}, UpdateFields: []string{"blocked"}}))
		cancel()
		if err != nil {
			return nil, fromConnect("budget", "block key", err)
		}
		h.Log.Info("key block changed", "key_id", id, "blocked", blocked)
		return h.flatKeyInfo(ctx, id)
	}
}

// flatKeyInfo is the answer of the key writes: key info with "key" (the key
// id) beside its fields, as LiteLLM's /key/update answers.
func (h *Handler) flatKeyInfo(ctx context.Context, id string) (any, *openai.Error) {
	info, oerr := h.keyInfo(ctx, id)
	if oerr != nil {
		return nil, oerr
	}
	return struct {
		Key string `json:"key"`
		*keyInfoJSON
	}{id, info}, nil
}

// keyInfo is key id as /key/info shows it, with its spend.
func (h *Handler) keyInfo(ctx context.Context, id string) (*keyInfoJSON, *openai.Error) {
	v, oerr := h.loadKey(ctx, id)
	if oerr != nil {
		return nil, oerr
	}
	return h.renderKey(ctx, v, true)
}

const (
	defaultKeyListSize = 10
	maxKeyListSize     = 100
)

// keyList is GET /key/list?page=&size=&team_id=&user_id=&return_full_object=:
// LiteLLM's paging (1-based page, size ≤ 100) over the keys ordered by id.
// keys holds tokens (key ids), or key summaries with return_full_object=true.
func (h *Handler) keyList(ctx context.Context, _ *caller, r *http.Request) (any, *openai.Error) {
	q := r.URL.Query()
	page, oerr := positiveParam(q.Get("page"), "page", 1, 0)
	if oerr != nil {
		return nil, oerr
	}
	size, oerr := positiveParam(q.Get("size"), "size", defaultKeyListSize, maxKeyListSize)
	if oerr != nil {
		return nil, oerr
	}
	full := q.Get("return_full_object") == "true"
	all, oerr := h.allKeys(ctx, q.Get("team_id"), q.Get("user_id"))
	if oerr != nil {
		return nil, oerr
	}
	from := min((page-1)*size, len(all))
	to := min(from+size, len(all))
	var keys []any
	for _, k := range all[from:to] {
		if full {
			keys = append(keys, keySummary(k))
		} else {
			keys = append(keys, k.GetKeyId())
		}
	}
	if keys == nil {
		keys = []any{}
	}
	return map[string]any{"keys": keys, "total_count": len(all), "current_page": page, "total_pages": (len(all) + size - 1) / size}, nil
}

// allKeys lists every key of a team or user (or every key), page by page.
func (h *Handler) allKeys(ctx context.Context, teamID, userID string) ([]*budgetv1.Key, *openai.Error) {
	var out []*budgetv1.Key
	token := ""
	for {
		cctx, cancel := h.rpc(ctx)
		resp, err := h.Budget.ListKeys(cctx, connect.NewRequest(&budgetv1.ListKeysRequest{TeamId: teamID, UserId: userID, PageSize: 1000, PageToken: token}))
		cancel()
		if err != nil {
			return nil, fromConnect("budget", "list keys", err)
		}
		out = append(out, resp.Msg.GetKeys()...)
		if token = resp.Msg.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// positiveParam parses a query parameter ≥ 1 (def when absent; at most max
// when max > 0).
func positiveParam(s, name string, def, max int) (int, *openai.Error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, badRequest(name, name+" must be a whole number ≥ 1")
	}
	if max > 0 && n > max {
		return 0, badRequest(name, name+" must be at most "+strconv.Itoa(max))
	}
	return n, nil
}
