package tenant

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/kairoshq/kairos/engine/storage"
)

// The visitors quota keeps the tenant's visitor ids in its own store: one
// map (one hash tag, so one slot on a Redis Cluster) with a field per
// visitor and the count in visitorCountField.
const (
	visitorsKey       = "{tenant-quota}:visitors"
	visitorCountField = "#count"
)

// visitorIDs returns the distinct visitor ids of an event request: the
// "visitor" members of a batch (an array, or an object's "events"), the
// anonymous_id of POST /v1/identify, or the visitor parameter of the
// pixel. The body stays readable.
func visitorIDs(req *http.Request) []string {
	seen := map[string]bool{}
	var out []string
	add := func(v string) {
		if v != "" && v != visitorCountField && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	if req.Method != http.MethodPost {
		add(req.URL.Query().Get("visitor"))
		return out
	}
	if (req.URL.Path != "/v1/events" && req.URL.Path != "/v1/identify") || req.Body == nil {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, maxPeek+1))
	req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), req.Body))
	if err != nil || len(b) > maxPeek {
		return nil
	}
	if req.URL.Path == "/v1/identify" { // its device is a visitor too
		var v struct {
			AnonymousID string `json:"anonymous_id"`
		}
		if json.Unmarshal(b, &v) == nil {
			add(v.AnonymousID)
		}
		return out
	}
	type ev struct {
		Visitor string `json:"visitor"`
	}
	var evs []ev
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '{' {
		var v struct {
			Events []json.RawMessage `json:"events"`
		}
		if json.Unmarshal(b, &v) != nil {
			return nil
		}
		for _, raw := range v.Events {
			var e ev
			if json.Unmarshal(raw, &e) == nil {
				evs = append(evs, e)
			}
		}
	} else {
		var raws []json.RawMessage
		if json.Unmarshal(b, &raws) != nil {
			return nil
		}
		for _, raw := range raws {
			var e ev
			if json.Unmarshal(raw, &e) == nil {
				evs = append(evs, e)
			}
		}
	}
	for _, e := range evs {
		add(e.Visitor)
	}
	return out
}

// newVisitors returns the ids among ids the tenant has not seen, and the
// number of visitors it has.
func newVisitors(ctx context.Context, m storage.Maps, ids []string) (fresh []string, count int64, err error) {
	fields, err := m.Fields(ctx, visitorsKey, append(ids, visitorCountField))
	if err != nil {
		return nil, 0, fmt.Errorf("tenant: visitors: %w", err)
	}
	for _, id := range ids {
		if _, ok := fields[id]; !ok {
			fresh = append(fresh, id)
		}
	}
	count, _ = strconv.ParseInt(fields[visitorCountField], 10, 64)
	return fresh, count, nil
}

// addVisitors records fresh visitors. Two requests with the same new
// visitor at the same moment may count it twice: the quota is a bound on
// the store, not an exact count.
func addVisitors(ctx context.Context, m storage.Maps, fresh []string) error {
	if len(fresh) == 0 {
		return nil
	}
	var t storage.Txn
	for _, id := range fresh {
		t.Set(visitorsKey, id, "1")
	}
	t.Incr(visitorsKey, visitorCountField, int64(len(fresh)))
	return m.Apply(ctx, t)
}
