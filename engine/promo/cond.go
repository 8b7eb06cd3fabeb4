package promo

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/kairoshq/kairos/internal/jsondef"
	"github.com/kairoshq/kairos/signals"
)

// Limits of a condition.
const (
	maxDepth    = 10
	maxNodes    = 100
	maxChildren = 32
	maxTypes    = 16
)

// Cond is a rule condition: exactly one member is set. See the package
// documentation for the grammar.
type Cond struct {
	All      []Cond        `json:"all,omitempty"`
	Any      []Cond        `json:"any,omitempty"`
	Not      *Cond         `json:"not,omitempty"`
	Count    *CountCond    `json:"count,omitempty"`
	Dwell    *DwellCond    `json:"dwell,omitempty"`
	Scroll   *ScrollCond   `json:"scroll,omitempty"`
	Exit     *ExitCond     `json:"exit,omitempty"`
	Affinity *AffinityCond `json:"affinity,omitempty"`
	Session  *SessionCond  `json:"session,omitempty"`
}

// Types is a list of event types; in JSON a string or an array of strings.
type Types []signals.Type

// MarshalJSON writes one type as a string, several as an array.
func (t Types) MarshalJSON() ([]byte, error) {
	if len(t) == 1 {
		return json.Marshal(string(t[0]))
	}
	return json.Marshal([]signals.Type(t))
}

// Filter selects events of the visitor's history: of one of Type (any
// type when empty), on Item, Offer, an item of Category (from the
// catalog), a Page whose URL contains Page, within the window Within:
// "session" (the current session; the default, except for exit), "batch"
// (the events of the batch being evaluated), "all" (the whole kept
// history) or a duration ("10m": events up to that long before the
// visitor's newest event).
type Filter struct {
	Type     Types  `json:"type,omitempty"`
	Item     string `json:"item,omitempty"`
	Offer    string `json:"offer,omitempty"`
	Category string `json:"category,omitempty"`
	Page     string `json:"page,omitempty"`
	Within   string `json:"within,omitempty"`
}

// CountCond holds when the number of filtered events is at least Min
// (default 1) and, when Max is set, at most Max.
type CountCond struct {
	Filter
	Min int  `json:"min"`
	Max *int `json:"max,omitempty"`
}

// DwellCond holds when the total cursor dwell (dwell events' values, in
// ms) on Element — "item:<id>", "offer:<id>" or a data-kairos-element
// name — and the filter's item, offer, category and page, within the
// window, is at least MinMs. Custom element names are known only for the
// events of the batch (the history keeps no element).
type DwellCond struct {
	Filter
	Element string  `json:"element,omitempty"`
	MinMs   float64 `json:"min_ms"`
}

// ScrollCond holds when the deepest scroll event (value in percent) of
// the filter within the window is at least Min.
type ScrollCond struct {
	Filter
	Min float64 `json:"min"`
}

// ExitCond holds when an exit event (exit intent: the cursor left the
// viewport through the top) matches the filter; the window defaults to
// the batch.
type ExitCond struct {
	Filter
}

// AffinityCond holds when the visitor's predicted affinity for Offer is at
// least Min (never when the visitor or the offer has no factors yet).
type AffinityCond struct {
	Offer string  `json:"offer"`
	Min   float64 `json:"min"`
}

// SessionCond holds when the current session has at least MinEvents
// events and has lasted at least MinDuration (from its first to its
// latest event).
type SessionCond struct {
	MinEvents   int      `json:"min_events,omitempty"`
	MinDuration Duration `json:"min_duration,omitempty"`
}

const condNames = "all, any, not, count, dwell, scroll, exit, affinity, session"

// decodeCond decodes one condition at path.
func decodeCond(path string, raw json.RawMessage, depth int, nodes *int) (Cond, error) {
	var c Cond
	if depth >= maxDepth {
		return c, jsondef.Errorf(path, "nested deeper than %d levels", maxDepth)
	}
	if *nodes++; *nodes > maxNodes {
		return c, jsondef.Errorf(path, "the condition has more than %d parts", maxNodes)
	}
	o, err := jsondef.NewObject(path, raw)
	if err != nil {
		return c, err
	}
	keys := o.Keys()
	if len(keys) != 1 {
		return c, jsondef.Errorf(path, "want exactly one of %s; got %d members", condNames, len(keys))
	}
	key := keys[0]
	p := jsondef.Join(path, key)
	val, _ := o.Raw(key)
	switch key {
	case "all", "any":
		var raws []json.RawMessage
		if err := json.Unmarshal(val, &raws); err != nil || jsondef.IsNull(val) {
			return c, jsondef.Errorf(p, "must be an array of conditions, got %s", jsondef.Kind(val))
		}
		if len(raws) == 0 || len(raws) > maxChildren {
			return c, jsondef.Errorf(p, "want 1 to %d conditions, got %d", maxChildren, len(raws))
		}
		kids := make([]Cond, len(raws))
		for i, r := range raws {
			if kids[i], err = decodeCond(jsondef.Index(p, i), r, depth+1, nodes); err != nil {
				return c, err
			}
		}
		if key == "all" {
			c.All = kids
		} else {
			c.Any = kids
		}
	case "not":
		k, err := decodeCond(p, val, depth+1, nodes)
		if err != nil {
			return c, err
		}
		c.Not = &k
	case "count":
		lo, err := jsondef.NewObject(p, val)
		if err != nil {
			return c, err
		}
		cc := &CountCond{}
		if cc.Filter, err = decodeFilter(lo, true); err != nil {
			return c, err
		}
		min, ok, err := lo.IntIn("min", 0, 1_000_000)
		if err != nil {
			return c, err
		}
		cc.Min = 1
		if ok {
			cc.Min = int(min)
		}
		if max, ok, err := lo.IntIn("max", 0, 1_000_000); err != nil {
			return c, err
		} else if ok {
			m := int(max)
			if m < cc.Min {
				return c, jsondef.Errorf(jsondef.Join(p, "max"), "%d is below min %d", m, cc.Min)
			}
			cc.Max = &m
		}
		if err := lo.Done("type, item, offer, category, page, within, min, max"); err != nil {
			return c, err
		}
		c.Count = cc
	case "dwell":
		lo, err := jsondef.NewObject(p, val)
		if err != nil {
			return c, err
		}
		dc := &DwellCond{}
		if dc.Filter, err = decodeFilter(lo, false); err != nil {
			return c, err
		}
		if dc.Element, err = lo.Str("element", false, 2048); err != nil {
			return c, err
		}
		f, ok, err := lo.Num("min_ms")
		if err != nil {
			return c, err
		}
		if !ok || f <= 0 || f > 3_600_000 {
			return c, jsondef.Errorf(jsondef.Join(p, "min_ms"), "want a number of milliseconds in (0, 3600000]")
		}
		dc.MinMs = f
		if err := lo.Done("element, item, offer, category, page, within, min_ms"); err != nil {
			return c, err
		}
		c.Dwell = dc
	case "scroll":
		lo, err := jsondef.NewObject(p, val)
		if err != nil {
			return c, err
		}
		sc := &ScrollCond{}
		if sc.Filter, err = decodeFilter(lo, false); err != nil {
			return c, err
		}
		f, ok, err := lo.Num("min")
		if err != nil {
			return c, err
		}
		if !ok || f <= 0 || f > 100 {
			return c, jsondef.Errorf(jsondef.Join(p, "min"), "want a scroll depth in percent in (0, 100]")
		}
		sc.Min = f
		if err := lo.Done("item, offer, category, page, within, min"); err != nil {
			return c, err
		}
		c.Scroll = sc
	case "exit":
		lo, err := jsondef.NewObject(p, val)
		if err != nil {
			return c, err
		}
		ec := &ExitCond{}
		if ec.Filter, err = decodeFilter(lo, false); err != nil {
			return c, err
		}
		if err := lo.Done("item, offer, category, page, within"); err != nil {
			return c, err
		}
		c.Exit = ec
	case "affinity":
		lo, err := jsondef.NewObject(p, val)
		if err != nil {
			return c, err
		}
		ac := &AffinityCond{}
		if ac.Offer, err = lo.ID("offer", true, maxIDBytes, true); err != nil {
			return c, err
		}
		f, ok, err := lo.Num("min")
		if err != nil {
			return c, err
		}
		if !ok {
			return c, jsondef.Errorf(jsondef.Join(p, "min"), "missing: the least predicted affinity, e.g. 0.3")
		}
		ac.Min = f
		if err := lo.Done("offer, min"); err != nil {
			return c, err
		}
		c.Affinity = ac
	case "session":
		lo, err := jsondef.NewObject(p, val)
		if err != nil {
			return c, err
		}
		sc := &SessionCond{}
		n, _, err := lo.IntIn("min_events", 0, 1_000_000)
		if err != nil {
			return c, err
		}
		sc.MinEvents = int(n)
		if sc.MinDuration, err = lo.Duration("min_duration", 0, 0, maxDuration); err != nil {
			return c, err
		}
		if err := lo.Done("min_events, min_duration"); err != nil {
			return c, err
		}
		c.Session = sc
	default:
		return c, jsondef.Errorf(p, "unknown condition (valid: %s)", condNames)
	}
	return c, nil
}

// decodeFilter reads the filter members of a leaf (type only when
// withType).
func decodeFilter(o *jsondef.Object, withType bool) (Filter, error) {
	var f Filter
	var err error
	if withType {
		if raw, ok := o.Get("type"); ok {
			p := jsondef.Join(o.Path, "type")
			var one string
			if json.Unmarshal(raw, &one) == nil {
				if err := checkType(p, one); err != nil {
					return f, err
				}
				f.Type = Types{signals.Type(one)}
			} else {
				ts, err := o.Strs("type", maxTypes, checkType)
				if err != nil {
					return f, err
				}
				if len(ts) == 0 {
					return f, jsondef.Errorf(p, "empty: omit it for any type")
				}
				for _, t := range ts {
					f.Type = append(f.Type, signals.Type(t))
				}
			}
		}
	}
	if f.Item, err = o.Str("item", false, maxItemBytes); err != nil {
		return f, err
	}
	if f.Offer, err = o.Str("offer", false, maxItemBytes); err != nil {
		return f, err
	}
	if f.Category, err = o.Str("category", false, maxItemBytes); err != nil {
		return f, err
	}
	if f.Page, err = o.Str("page", false, 2048); err != nil {
		return f, err
	}
	if f.Within, err = o.Str("within", false, 20); err != nil {
		return f, err
	}
	if _, err := parseWindow(jsondef.Join(o.Path, "within"), f.Within, winSession); err != nil {
		return f, err
	}
	return f, nil
}

func checkType(path, s string) error {
	if s == "" || len(s) > 50 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return jsondef.Errorf(path, "%s is not an event type (view, click, dwell, scroll, exit, conversion, …)", quote(s))
	}
	return nil
}

// windowKind is the kind of a filter's window.
type windowKind uint8

const (
	winSession windowKind = iota
	winBatch
	winAll
	winDuration
)

type window struct {
	kind windowKind
	d    time.Duration
}

// parseWindow parses a within member; "" is def.
func parseWindow(path, s string, def windowKind) (window, error) {
	switch s {
	case "":
		return window{kind: def}, nil
	case "session":
		return window{kind: winSession}, nil
	case "batch":
		return window{kind: winBatch}, nil
	case "all":
		return window{kind: winAll}, nil
	}
	d, err := jsondef.ParseDuration(s)
	if err != nil {
		return window{}, jsondef.Errorf(path, "%s is not a duration (e.g. \"10m\", \"24h\", \"7d\") nor session, batch or all", quote(s))
	}
	if d <= 0 || d > maxDuration {
		return window{}, jsondef.Errorf(path, "%s is not in (0, %v]", quote(s), Duration(maxDuration))
	}
	return window{kind: winDuration, d: d}, nil
}
