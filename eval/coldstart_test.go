package eval

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/model"
)

// plantedDataset generates users in clusters, each interacting only with
// its own cluster's items (popular ones more often), one event a minute
// from a per-user start, so that users' histories overlap in time.
func plantedDataset(t testing.TB, clusters, usersPer, itemsPer, perUser int, seed uint64) *Dataset {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 5))
	d := &Dataset{}
	nu, ni := clusters*usersPer, clusters*itemsPer
	for u := range nu {
		d.Users = append(d.Users, fmt.Sprint(u))
	}
	for i := range ni {
		d.Items = append(d.Items, fmt.Sprint(i))
	}
	for u := range nu {
		c := u / usersPer
		start := int64(rng.IntN(3600))
		seen := map[int]bool{}
		for n := 0; len(seen) < perUser; n++ {
			i := c*itemsPer + int(float64(itemsPer)*math.Pow(rng.Float64(), 2))
			if seen[i] {
				continue
			}
			seen[i] = true
			d.Interactions = append(d.Interactions, Interaction{User: int32(u), Item: int32(i), Time: start + 60*int64(len(seen)), Weight: 1})
		}
	}
	return d
}

func testColdParams() model.Params {
	p := model.DefaultParams()
	p.Factors, p.Lambda, p.Alpha, p.Iterations, p.HalfLife = 8, 1, 10, 8, 2*time.Minute
	return p
}

func TestHoldOutUsers(t *testing.T) {
	d := plantedDataset(t, 3, 30, 20, 8, 1)
	h, err := HoldOutUsers(len(d.Users), len(d.Items), d.Interactions, 0.1, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Held) != 9 || !slices.IsSorted(h.Held) {
		t.Fatalf("held %v, want 9 users ascending", h.Held)
	}
	held := map[int32]int{}
	for j, u := range h.Held {
		held[u] = j
	}
	for _, in := range h.Train {
		if _, ok := held[in.User]; ok {
			t.Fatalf("held-out user %d has a training interaction", in.User)
		}
	}
	n := 0
	for j, ev := range h.Events {
		n += len(ev)
		for k, in := range ev {
			if in.User != h.Held[j] {
				t.Fatalf("events of user %d hold user %d", h.Held[j], in.User)
			}
			if k > 0 && (ev[k-1].Time > in.Time || ev[k-1].Time == in.Time && ev[k-1].Item > in.Item) {
				t.Fatalf("user %d: events not in replay order at %d", h.Held[j], k)
			}
		}
	}
	if n+len(h.Train) != len(d.Interactions) || n != 9*8 {
		t.Fatalf("%d held + %d training interactions of %d", n, len(h.Train), len(d.Interactions))
	}
	again, _ := HoldOutUsers(len(d.Users), len(d.Items), d.Interactions, 0.1, 7)
	other, _ := HoldOutUsers(len(d.Users), len(d.Items), d.Interactions, 0.1, 8)
	if !slices.Equal(again.Held, h.Held) {
		t.Fatal("the same seed drew other users")
	}
	if slices.Equal(other.Held, h.Held) {
		t.Fatal("another seed drew the same users")
	}
	for _, share := range []float64{0, 1, -0.1, 0.001} {
		if _, err := HoldOutUsers(len(d.Users), len(d.Items), d.Interactions, share, 7); err == nil {
			t.Errorf("share %v accepted", share)
		}
	}
}

func TestReplayOrderTies(t *testing.T) {
	// Same time: the larger item comes later (it is what PROTOCOL.md would
	// hold out as the latest).
	ins := []Interaction{{0, 5, 10, 1}, {0, 2, 10, 1}, {0, 9, 3, 1}, {1, 1, 1, 1}, {1, 2, 1, 1}}
	h := holdOutUserSet(2, 10, ins, []int32{0})
	var got []int32
	for _, in := range h.Events[0] {
		got = append(got, in.Item)
	}
	if !slices.Equal(got, []int32{9, 2, 5}) {
		t.Fatalf("replay order %v, want [9 2 5]", got)
	}
}

// key identifies an interaction for multiset comparisons.
func key(in Interaction) string { return fmt.Sprintf("%d/%d/%d", in.User, in.Item, in.Time) }

func TestStepAndPrefix(t *testing.T) {
	d := plantedDataset(t, 2, 20, 15, 6, 2)
	// Give one held-out user fewer events than the steps reach.
	h, err := HoldOutUsers(len(d.Users), len(d.Items), d.Interactions, 0.2, 3)
	if err != nil {
		t.Fatal(err)
	}
	h.Events[0] = h.Events[0][:2]
	for _, m := range []int{0, 1, 3, 5} {
		t.Run(fmt.Sprint("m=", m), func(t *testing.T) {
			var want []string
			for _, in := range h.Train {
				want = append(want, key(in))
			}
			for _, ev := range h.Events {
				for _, in := range ev[:min(m, len(ev))] {
					want = append(want, key(in))
				}
			}
			var got []string
			p := h.Prefix(m)
			for _, in := range p.Train {
				got = append(got, key(in))
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("the retrain fits %d interactions, want the %d of training plus each held user's first %d", len(got), len(want), m)
			}
			s := h.Step(m)
			for u, item := range s.Held {
				j := slices.Index(h.Held, int32(u))
				switch {
				case j < 0 && item != -1:
					t.Fatalf("training user %d is ranked", u)
				case j >= 0 && len(h.Events[j]) > m && item != h.Events[j][m].Item:
					t.Fatalf("user %d: target %d, want the (m+1)-th event's item %d", u, item, h.Events[j][m].Item)
				case j >= 0 && len(h.Events[j]) <= m && item != -1:
					t.Fatalf("user %d with %d events is ranked at m=%d", u, len(h.Events[j]), m)
				}
			}
			if !slices.Equal(p.Held, s.Held) {
				t.Fatal("Prefix and Step rank different targets")
			}
		})
	}
}

func TestFoldInIsFoldUserOfTheFirstEvents(t *testing.T) {
	d := plantedDataset(t, 3, 20, 15, 8, 4)
	cfg := DefaultColdUserConfig()
	cfg.Params = testColdParams()
	cfg.Steps = []int{0, 1, 3, 6}
	if err := cfg.fill(); err != nil {
		t.Fatal(err)
	}
	h, err := HoldOutUsers(len(d.Users), len(d.Items), d.Interactions, 0.1, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newColdRun(context.Background(), h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ws := model.NewWorkspace(8)
	for j := range h.Held {
		for _, m := range cfg.Steps {
			// The first m events in time order, weights decayed by hand
			// from the latest of them.
			ev := slices.Clone(h.Events[j])
			sort.Slice(ev, func(a, b int) bool { return ev[a].Time < ev[b].Time })
			var hist []model.ItemWeight
			for _, in := range ev[:m] {
				age := float64(ev[m-1].Time - in.Time)
				hist = append(hist, model.ItemWeight{Item: in.Item, Weight: float32(math.Exp2(-age / 120))})
			}
			want := make([]float32, 8)
			if err := r.o.FoldUser(ws, want, hist); err != nil {
				t.Fatal(err)
			}
			got := r.factors[m][j]
			for f := range want {
				if math.Abs(float64(got[f]-want[f])) > 1e-5*(1+math.Abs(float64(want[f]))) {
					t.Fatalf("user %d m=%d: factors %v, want FoldUser's %v", h.Held[j], m, got, want)
				}
			}
			if m == 0 {
				continue
			}
			scores := r.o.ScoreAll(nil, got, false)
			dst := make([]float32, h.Items)
			r.scorer("foldin", m, model.Blend{}, 0)(int(h.Held[j]), dst)
			if !slices.Equal(dst, scores) {
				t.Fatalf("user %d m=%d: foldin mode scores differ from x·Y", h.Held[j], m)
			}
		}
	}
}

func TestTrendingSeesOnlyEarlierEvents(t *testing.T) {
	// Training users 1-3 click item 2 at t=100 and item 3 at t=300; the
	// held-out user 0 acts at t=200 and t=400.
	ins := []Interaction{
		{0, 0, 200, 1}, {0, 1, 400, 1},
		{1, 2, 100, 1}, {2, 2, 100, 1}, {3, 3, 300, 1}, {1, 3, 300, 1}, {2, 3, 300, 1},
	}
	d := &Dataset{Users: []string{"0", "1", "2", "3"}, Items: []string{"0", "1", "2", "3"}, Interactions: ins}
	h := holdOutUserSet(4, 4, d.Interactions, []int32{0})
	cfg := DefaultColdUserConfig()
	cfg.Params = testColdParams()
	cfg.Steps = []int{0, 1}
	if err := cfg.fill(); err != nil {
		t.Fatal(err)
	}
	r, err := newColdRun(context.Background(), h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.trending(0, 0)[0]; !slices.Equal(got, []float32{0, 0, 2, 0}) {
		t.Fatalf("trending before t=200: %v, want item 2 twice", got)
	}
	if got := r.trending(0, 1)[0]; !slices.Equal(got, []float32{0, 0, 2, 3}) {
		t.Fatalf("trending before t=400: %v, want item 2 twice, item 3 three times", got)
	}
	// With a half-life of 100 s, at t=400 item 2's clicks are 300 s old.
	got := r.trending(100*time.Second, 1)[0]
	if math.Abs(float64(got[2])-2.0/8) > 1e-5 || math.Abs(float64(got[3])-3.0/2) > 1e-5 {
		t.Fatalf("decayed trending %v, want item 2 at 0.25, item 3 at 1.5", got)
	}
}

func TestColdUsersOnPlantedData(t *testing.T) {
	d := plantedDataset(t, 4, 40, 25, 12, 6)
	cfg := DefaultColdUserConfig()
	cfg.Params = testColdParams()
	cfg.Steps = []int{0, 1, 3, 12}
	cfg.Kappas, cfg.Taus, cfg.HalfLives, cfg.Folds = []float64{0, 2}, []float64{0, 0.5}, []time.Duration{0, time.Hour}, 2
	cfg.Threads = 2
	rep, err := ColdUsers(context.Background(), d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.HeldUsers != 16 || rep.TrainUsers != 144 {
		t.Fatalf("%d held, %d training users, want 16 and 144", rep.HeldUsers, rep.TrainUsers)
	}
	// 2 trending trials, then κ=0 once (τ plays no part) and κ=2 with two τ.
	if len(rep.Validation) != 2+1+2 {
		t.Fatalf("%d validation trials, want 5", len(rep.Validation))
	}
	for _, m := range []int{0, 1, 3} {
		for _, mode := range []string{"pop", "context", "foldin", "blend", "ceiling"} {
			r, ok := rep.Result(mode, m)
			if mode == "ceiling" && m == 0 {
				if ok {
					t.Fatal("a ceiling line at m=0")
				}
				continue
			}
			if !ok || r.Users != 16 {
				t.Fatalf("%s m=%d: present %v, %d users, want 16", mode, m, ok, r.Users)
			}
		}
	}
	// Every user has exactly 12 events: nobody is ranked at m=12.
	if r, ok := rep.Result("foldin", 12); !ok || r.Users != 0 {
		t.Fatalf("m=12: %+v, want 0 users", r)
	}
	// Three events of one cluster pin the user down: the fold-in ranks
	// within the right 25 items, popularity over all 100.
	fold, _ := rep.Result("foldin", 3)
	pop, _ := rep.Result("pop", 3)
	ceil, _ := rep.Result("ceiling", 3)
	t.Logf("m=3: fold-in HR@10 %.3f NDCG@10 %.3f (%.2f of ceiling %.3f), popularity HR@10 %.3f; blend %+v", fold.HR10, fold.NDCG10, fold.VsCeiling, ceil.NDCG10, pop.HR10, rep.Blend)
	if fold.HR10 < 0.5 || fold.HR10 < pop.HR10+0.2 {
		t.Errorf("fold-in HR@10 %.3f at m=3, popularity %.3f: want ≥ 0.5 and well above", fold.HR10, pop.HR10)
	}
	if fold.VsCeiling < 0.8 || math.Abs(fold.VsCeiling-fold.NDCG10/ceil.NDCG10) > 1e-12 {
		t.Errorf("fold-in at %.2f of the ceiling at m=3, want ≥ 0.8", fold.VsCeiling)
	}
	// Fold-in at m=0 is the context (trending).
	c0, _ := rep.Result("context", 0)
	f0, _ := rep.Result("foldin", 0)
	if !slices.Equal(c0.Ranks, f0.Ranks) {
		t.Error("fold-in at m=0 differs from the context")
	}
}

func TestColdItemsOnPlantedData(t *testing.T) {
	d := plantedDataset(t, 4, 60, 20, 10, 8)
	tags := make([][]string, len(d.Items))
	for i := range tags {
		tags[i] = []string{fmt.Sprint("cluster", i/20), "any"}
	}
	cfg := DefaultColdItemConfig()
	cfg.Params = testColdParams()
	cfg.Share = 0.15
	cfg.Steps = []int{0, 1, 5}
	cfg.Tags = tags
	cfg.Threads = 2
	res, err := ColdItems(context.Background(), d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	get := func(mode string, j int) ColdItemResult {
		t.Helper()
		for _, r := range res {
			if r.Mode == mode && r.J == j {
				return r
			}
		}
		t.Fatalf("no %s line at j=%d", mode, j)
		return ColdItemResult{}
	}
	z0, a0, z5, a5 := get("zero", 0), get("attr", 0), get("zero", 5), get("attr", 5)
	t.Logf("mean rank j=0: zero %.1f attr %.1f; j=5: zero %.1f attr %.1f (%d items)", z0.MeanRank, a0.MeanRank, z5.MeanRank, a5.MeanRank, a5.Items)
	if z0.Items != 12 || a0.Items != 12 || z0.Pairs != a0.Pairs || z0.Pairs == 0 {
		t.Fatalf("j=0: %d/%d items, %d/%d pairs, want 12 items and equal pairs", z0.Items, a0.Items, z0.Pairs, a0.Pairs)
	}
	// Within its cluster's 20 items (19 candidates for the interactor,
	// minus those already seen) a tag-placed item must rank near the top;
	// a random start ranks anywhere among ~75 candidates.
	if a0.MeanRank > 15 || a0.MeanRank > z0.MeanRank/2 {
		t.Errorf("mean rank before any interaction: attr %.1f, zero %.1f", a0.MeanRank, z0.MeanRank)
	}
	if z5.MeanRank >= z0.MeanRank {
		t.Errorf("zero knowledge does not learn: mean rank %.1f at j=5, %.1f at j=0", z5.MeanRank, z0.MeanRank)
	}
	if a5.Pairs >= a0.Pairs {
		t.Errorf("%d later interactors at j=5, %d at j=0", a5.Pairs, a0.Pairs)
	}
}

func TestLoadItemTags(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flags := func(on ...int) string {
		f := make([]string, 19)
		for i := range f {
			f[i] = "0"
		}
		for _, i := range on {
			f[i] = "1"
		}
		return strings.Join(f, "|")
	}
	for _, tc := range []struct {
		name, file string
		format     Format
		want       map[string][]string
		err        string
	}{
		{"movielens", write("u.item", "1|Toy Story (1995)|01-Jan-1995||http://x|"+flags(3, 4, 5)+"\n2|GoldenEye (1995)|01-Jan-1995||http://y|"+flags(1)+"\n"), FormatMovieLens,
			map[string][]string{"1": {"Animation", "Children's", "Comedy"}, "2": {"Action"}}, ""},
		{"movielens bad flag", write("bad.item", "1|T|d||u|"+strings.Replace(flags(), "0", "x", 1)+"\n"), FormatMovieLens, nil, "genre flag"},
		{"movielens short line", write("short.item", "1|T|0|1\n"), FormatMovieLens, nil, "fields"},
		{"csv", write("tags.csv", "item_id,title,category,tags\na,A,shoes,red|sale\nb,B,hats,\n"), FormatCSV,
			map[string][]string{"a": {"shoes", "red", "sale"}, "b": {"hats"}}, ""},
		{"csv without tags column", write("none.csv", "item,title\na,A\n"), FormatCSV, nil, "tags"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadItemTags(tc.file, tc.format)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for id, w := range tc.want {
				if !slices.Equal(got[id], w) {
					t.Fatalf("item %s: %v, want %v", id, got[id], w)
				}
			}
		})
	}
	d := &Dataset{Items: []string{"2", "1", "9"}}
	tags := d.ItemTags(map[string][]string{"1": {"x"}, "2": {"y"}})
	if len(tags) != 3 || tags[0][0] != "y" || tags[1][0] != "x" || tags[2] != nil {
		t.Fatalf("ItemTags %v", tags)
	}
}
