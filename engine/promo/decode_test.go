package promo_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/engine/promo"
	"github.com/kairoshq/kairos/internal/testutil"
)

func TestDecodeRuleErrors(t *testing.T) {
	const then = `,"then":{"offer":"o1"}`
	tests := []struct {
		body, want string
	}{
		{`[]`, `rule: must be an object, got an array`},
		{`{"when":{"exit":{}}` + then + `}`, `rule.id: missing`},
		{`{"id":"a b","when":{"exit":{}}` + then + `}`, `rule.id: "a b": want 1 to 100 letters`},
		{`{"id":"r1"` + then + `}`, `rules[r1].when: missing`},
		{`{"id":"r1","when":{"exit":{}}}`, `rules[r1].then: missing`},
		{`{"id":"r1","when":{"all":[{"exit":{}},{"scroll":{"min":50}},{"count":{"type":"view","within":"10x"}}]}` + then + `}`,
			`rules[r1].when.all[2].count.within: "10x" is not a duration`},
		{`{"id":"r1","when":{"any":[{"not":{"count":{"min":-1}}}]}` + then + `}`, `rules[r1].when.any[0].not.count.min: -1 is not an integer in [0, 1000000]`},
		{`{"id":"r1","when":{"count":{"min":3,"max":2}}` + then + `}`, `rules[r1].when.count.max: 2 is below min 3`},
		{`{"id":"r1","when":{"count":{"typ":"view"}}` + then + `}`, `rules[r1].when.count.typ: unknown member`},
		{`{"id":"r1","when":{"count":{"type":""}}` + then + `}`, `rules[r1].when.count.type: "" is not an event type`},
		{`{"id":"r1","when":{"count":{"type":["view",3]}}` + then + `}`, `rules[r1].when.count.type[1]: must be a string, got a number`},
		{`{"id":"r1","when":{"count":{"type":[]}}` + then + `}`, `rules[r1].when.count.type: empty`},
		{`{"id":"r1","when":{"exit":{},"scroll":{"min":1}}` + then + `}`, `rules[r1].when: want exactly one of all, any, not`},
		{`{"id":"r1","when":{}` + then + `}`, `rules[r1].when: want exactly one of`},
		{`{"id":"r1","when":{"sometimes":{}}` + then + `}`, `rules[r1].when.sometimes: unknown condition`},
		{`{"id":"r1","when":{"all":[]}` + then + `}`, `rules[r1].when.all: want 1 to 32 conditions, got 0`},
		{`{"id":"r1","when":{"all":{"exit":{}}}` + then + `}`, `rules[r1].when.all: must be an array of conditions, got an object`},
		{`{"id":"r1","when":{"not":[]}` + then + `}`, `rules[r1].when.not: must be an object, got an array`},
		{`{"id":"r1","when":{"dwell":{"element":"offer:7"}}` + then + `}`, `rules[r1].when.dwell.min_ms: want a number of milliseconds`},
		{`{"id":"r1","when":{"dwell":{"min_ms":"2000"}}` + then + `}`, `rules[r1].when.dwell.min_ms: must be a number, got a string`},
		{`{"id":"r1","when":{"scroll":{"min":120}}` + then + `}`, `rules[r1].when.scroll.min: want a scroll depth in percent in (0, 100]`},
		{`{"id":"r1","when":{"exit":{"type":"exit"}}` + then + `}`, `rules[r1].when.exit.type: unknown member`},
		{`{"id":"r1","when":{"affinity":{"min":0.3}}` + then + `}`, `rules[r1].when.affinity.offer: missing`},
		{`{"id":"r1","when":{"affinity":{"offer":"o1"}}` + then + `}`, `rules[r1].when.affinity.min: missing`},
		{`{"id":"r1","when":{"session":{"min_duration":"soon"}}` + then + `}`, `rules[r1].when.session.min_duration: "soon" is not a duration`},
		{`{"id":"r1","when":{"exit":{"within":"-5m"}}` + then + `}`, `rules[r1].when.exit.within: "-5m" is not in`},
		{`{"id":"r1","when":{"exit":{}},"then":{}}`, `rules[r1].then: name an offer (show it) or a slot`},
		{`{"id":"r1","when":{"exit":{}},"then":{"offer":"o1","campaign":"c"}}`, `rules[r1].then.campaign: only with the best offer`},
		{`{"id":"r1","when":{"exit":{}},"then":{"slot":"a/b"}}`, `rules[r1].then.slot: "a/b": want 1 to 50`},
		{`{"id":"r1","when":{"exit":{}}` + then + `,"cooldown":"forever"}`, `rules[r1].cooldown: "forever" is not a duration`},
		{`{"id":"r1","when":{"exit":{}}` + then + `,"cooldown":"400d"}`, `rules[r1].cooldown: "400d" is not in [0s, 366d]`},
		{`{"id":"r1","when":{"exit":{}}` + then + `,"priority":1.5}`, `rules[r1].priority: 1.5 is not an integer`},
		{`{"id":"r1","when":{"exit":{}}` + then + `,"active":"yes"}`, `rules[r1].active: must be true or false, got a string`},
		{`{"id":"r1","when":{"exit":{}}` + then + `,"extra":1}`, `rules[r1].extra: unknown member (valid: id, name, priority, when, then, cooldown, active)`},
		{`{"id":"r1","when":` + strings.Repeat(`{"not":`, 11) + `{"exit":{}}` + strings.Repeat(`}`, 11) + then + `}`, `nested deeper than 10 levels`},
		{`{"id":"r1","when":{"any":[` + strings.Repeat(`{"exit":{}},`, 31) + `{"exit":{}}]}` + then + `}`, ``},
		{`{"id":"r1","when":{"exit":{}}` + then + `,"id2":` + `"` + strings.Repeat("x", 70000) + `"}`, `rule: 70`},
		{`{"id":"r1","when":{"exit":{}}` + then, `rule: malformed JSON`},
	}
	for _, tt := range tests {
		_, err := promo.DecodeRule([]byte(tt.body), "")
		if tt.want == "" {
			if err != nil {
				t.Errorf("DecodeRule(%.80s…) = %v, want ok", tt.body, err)
			}
			continue
		}
		var ve *promo.ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeRule(%.100s)\n  = %v\n want a ValidationError containing %q", tt.body, err, tt.want)
		}
	}
}

func TestDecodeRuleRoundTrip(t *testing.T) {
	body := `{"id":"exit-shoes","name":"Exit on shoes","priority":10,"cooldown":"24h",
	 "when":{"all":[
	   {"count":{"type":"view","category":"shoes","within":"10m","min":3}},
	   {"not":{"count":{"type":["conversion","add_to_cart"],"within":"all","min":0,"max":0}}},
	   {"dwell":{"element":"offer:7","min_ms":2000}},
	   {"scroll":{"min":75,"page":"/article"}},
	   {"any":[{"exit":{}},{"session":{"min_events":5,"min_duration":"90s"}}]},
	   {"affinity":{"offer":"o1","min":0.3}}]},
	 "then":{"slot":"exit","campaign":"bf"}}`
	r, err := promo.DecodeRule([]byte(body), "exit-shoes")
	if err != nil {
		t.Fatal(err)
	}
	if r.Cooldown != promo.Duration(24*time.Hour) || !r.Active || r.Then.Slot != "exit" || len(r.When.All) != 6 {
		t.Errorf("decoded %+v", r)
	}
	if again := testutil.Redecode(t, r, promo.DecodeRule); !reflect.DeepEqual(r, again) {
		t.Errorf("round trip changed the rule:\n%+v\n%+v", r, again)
	}
	if _, err := promo.DecodeRule([]byte(body), "other"); err == nil || !strings.Contains(err.Error(), "differs from") {
		t.Errorf("path id mismatch: %v", err)
	}
}

func TestDecodeOfferAndCampaign(t *testing.T) {
	tests := []struct {
		campaign   bool
		body, want string
	}{
		{false, `{"id":"o1"}`, `offers[o1].slot: missing`},
		{false, `{"id":"o1","slot":"s","image":"javascript:alert(1)"}`, `offers[o1].image: "javascript:alert(1)" is not an absolute http(s) URL`},
		{false, `{"id":"o1","slot":"s","link":"/relative"}`, `offers[o1].link: "/relative" is not an absolute`},
		{false, `{"id":"o1","slot":"s","items":["a","a"]}`, `offers[o1].items[1]: "a" is listed twice`},
		{false, `{"id":"o1","slot":"s","items":[""]}`, `offers[o1].items[0]: must be 1 to 200 bytes`},
		{false, `{"id":"o1","slot":"s","start":"2026-12-01T00:00:00Z","end":"2026-11-01T00:00:00Z"}`, `offers[o1].end: must be after start`},
		{false, `{"id":"o1","slot":"s","start":"tomorrow"}`, `offers[o1].start: "tomorrow" is not an RFC 3339 time`},
		{false, `{"id":"o1","slot":"s","cap":{"max":3}}`, `offers[o1].cap.per: missing`},
		{false, `{"id":"o1","slot":"s","cap":{"max":0,"per":"1h"}}`, `offers[o1].cap.max: 0 is not an integer in [1, 1000000]`},
		{false, `{"id":"o1","slot":"s","cap":{"max":1,"per":"1h","x":1}}`, `offers[o1].cap.x: unknown member`},
		{false, `{"id":"o1","slot":"s","budget":-1}`, `offers[o1].budget: -1 is not an integer`},
		{false, `{"id":"o1","slot":"s","title":"a\u0000b"}`, `offers[o1].title: must be valid UTF-8 without control characters`},
		{false, `{"id":"o1","slot":"s","created":"x","updated":1,"stats":{}}`, ``},
		{true, `{"id":"c1"}`, `campaigns[c1].offers: missing`},
		{true, `{"id":"c1","offers":["o1"],"schedule":{"days":["funday"]}}`, `campaigns[c1].schedule.days[0]: "funday" is not a day`},
		{true, `{"id":"c1","offers":["o1"],"schedule":{"from":"9:00","to":"17:00"}}`, `campaigns[c1].schedule.from: "9:00" is not a time of day HH:MM`},
		{true, `{"id":"c1","offers":["o1"],"schedule":{"from":"09:00","to":"09:00"}}`, `campaigns[c1].schedule.to: equals from`},
		{true, `{"id":"c1","offers":["o1"],"schedule":{"tz":"Mars/Olympus"}}`, `campaigns[c1].schedule.tz: "Mars/Olympus" is not an IANA time zone`},
		{true, `{"id":"c1","offers":["o1"],"priority":2000000}`, `campaigns[c1].priority: 2e+06 is not an integer in [-1000000, 1000000]`},
		{true, `{"id":"c1","offers":["o1"],"schedule":{"days":["Mon","sat"],"from":"22:00","to":"24:00","tz":"Asia/Tokyo"}}`, ``},
	}
	for _, tt := range tests {
		var err error
		if tt.campaign {
			_, err = promo.DecodeCampaign([]byte(tt.body), "")
		} else {
			_, err = promo.DecodeOffer([]byte(tt.body), "")
		}
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v, want ok", tt.body, err)
			}
			continue
		}
		if !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s\n  = %v\n want %q", tt.body, err, tt.want)
		}
	}
}

// TestReferences: rules and campaigns must name existing offers; named
// offers and campaigns cannot be deleted.
func TestReferences(t *testing.T) {
	v := newEnv(t, nil)
	ctx := t.Context()
	put := func(kind promo.Kind, body string) error {
		_, _, err := v.e.PutJSON(ctx, kind, "", []byte(body))
		return err
	}
	if err := put(promo.KindCampaign, `{"id":"c","offers":["nope"]}`); err == nil || !strings.Contains(err.Error(), `campaigns[c].offers[0]: offer "nope" does not exist`) {
		t.Errorf("campaign with a missing offer: %v", err)
	}
	if err := put(promo.KindRule, `{"id":"r","when":{"all":[{"exit":{}},{"affinity":{"offer":"nope","min":1}}]},"then":{"slot":"s"}}`); err == nil || !strings.Contains(err.Error(), `rules[r].when.all[1].affinity.offer: offer "nope" does not exist`) {
		t.Errorf("rule with a missing affinity offer: %v", err)
	}
	v.put(t, promo.KindOffer, `{"id":"o","slot":"s"}`)
	v.put(t, promo.KindCampaign, `{"id":"c","offers":["o"]}`)
	v.put(t, promo.KindRule, `{"id":"r","when":{"exit":{}},"then":{"slot":"s","campaign":"c"}}`)
	if err := v.e.Delete(ctx, promo.KindOffer, "o"); !errors.Is(err, promo.ErrInUse) || !strings.Contains(err.Error(), "campaigns[c].offers[0]") {
		t.Errorf("delete of a used offer: %v", err)
	}
	if err := v.e.Delete(ctx, promo.KindCampaign, "c"); !errors.Is(err, promo.ErrInUse) || !strings.Contains(err.Error(), "rules[r].then.campaign") {
		t.Errorf("delete of a used campaign: %v", err)
	}
	for _, d := range []struct {
		kind promo.Kind
		id   string
	}{{promo.KindRule, "r"}, {promo.KindCampaign, "c"}, {promo.KindOffer, "o"}} {
		if err := v.e.Delete(ctx, d.kind, d.id); err != nil {
			t.Errorf("delete %s %s: %v", d.kind, d.id, err)
		}
		if err := v.e.Delete(ctx, d.kind, d.id); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("second delete %s %s: %v", d.kind, d.id, err)
		}
	}
	for _, kind := range []promo.Kind{promo.KindOffer, promo.KindCampaign, promo.KindRule} {
		if l, _ := v.e.List(kind); len(l) != 0 {
			t.Errorf("%s left: %v", kind, l)
		}
	}
}

// TestDefinitionsPersist: a new engine on the same store has the same
// definitions, with their times.
func TestDefinitionsPersist(t *testing.T) {
	v := newEnv(t, nil)
	v.put(t, promo.KindOffer, `{"id":"o","slot":"s","cap":{"max":2,"per":"7d"}}`)
	v.clock.Add(time.Hour)
	v.put(t, promo.KindOffer, `{"id":"o","slot":"s","title":"v2"}`)
	v.put(t, promo.KindCampaign, `{"id":"c","offers":["o"],"schedule":{"from":"09:00","to":"17:00","tz":"Europe/Paris"}}`)
	v.put(t, promo.KindRule, `{"id":"r","when":{"exit":{}},"then":{"offer":"o"}}`)
	e2 := newEnvWith(t, v.store, nil).e
	for _, kind := range []promo.Kind{promo.KindOffer, promo.KindCampaign, promo.KindRule} {
		a, _ := v.e.List(kind)
		b, _ := e2.List(kind)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Errorf("%s after reload:\n%s\nwant\n%s", kind, jb, ja)
		}
	}
	got, err := e2.Get(promo.KindOffer, "o")
	if err != nil {
		t.Fatal(err)
	}
	o := got.(promo.OfferDetail)
	if o.Title != "v2" || !o.Created.Equal(t0) || !o.Updated.Equal(t0.Add(time.Hour)) || o.Cap != nil {
		t.Errorf("offer after replace and reload: %+v (created %v updated %v)", o, o.Created, o.Updated)
	}
}
