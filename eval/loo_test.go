package eval

import (
	"bytes"
	"compress/gzip"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestLeaveLastOutSkipsUsersWithOneInteraction(t *testing.T) {
	ins := []Interaction{
		{User: 0, Item: 3, Time: 5}, {User: 0, Item: 1, Time: 9}, {User: 0, Item: 2, Time: 9}, // ties: larger item
		{User: 1, Item: 0, Time: 1}, // one interaction: kept for training, not evaluated
		{User: 3, Item: 1, Time: 2}, {User: 3, Item: 0, Time: 3},
	}
	s := LeaveLastOut(4, 4, ins)
	if !slices.Equal(s.Held, []int32{2, -1, -1, 0}) || s.Skipped != 1 || len(s.Train) != 4 {
		t.Fatalf("held %v, skipped %d, %d training; want [2 -1 -1 0], 1, 4", s.Held, s.Skipped, len(s.Train))
	}
	if !slices.Contains(s.Train, ins[3]) {
		t.Fatal("the single interaction of user 1 left the training part")
	}
}

func TestHoldOutRandomFollowsTheProtocol(t *testing.T) {
	// Users in ascending order draw, each among its items in ascending
	// item order, from one PCG(0, 0) generator; users with fewer than 2
	// interactions draw nothing.
	ins := []Interaction{
		{User: 2, Item: 7}, {User: 2, Item: 4}, {User: 2, Item: 9},
		{User: 0, Item: 5}, {User: 0, Item: 1},
		{User: 1, Item: 3},
	}
	rng := rand.New(rand.NewPCG(0, 0))
	want := []int32{[]int32{1, 5}[rng.IntN(2)], -1, []int32{4, 7, 9}[rng.IntN(3)]}
	h, err := NewHoldout(HoldoutRandom)
	if err != nil {
		t.Fatal(err)
	}
	s := h.Split(3, 10, ins)
	if !slices.Equal(s.Held, want) || s.Skipped != 1 {
		t.Fatalf("held %v (skipped %d), want %v (1)", s.Held, s.Skipped, want)
	}
	// Validation continues the same generator on the training part.
	var rest2 []int32
	for _, it := range []int32{4, 7, 9} {
		if it != want[2] {
			rest2 = append(rest2, it)
		}
	}
	wantVal := []int32{-1, -1, rest2[rng.IntN(2)]}
	v := h.Validation(s)
	if !slices.Equal(v.Held, wantVal) || v.Skipped != 2 {
		t.Fatalf("validation held %v (skipped %d), want %v (2)", v.Held, v.Skipped, wantVal)
	}
	// Same rule, same split.
	h2, _ := NewHoldout(HoldoutRandom)
	if again := h2.Split(3, 10, ins); !slices.Equal(again.Held, s.Held) {
		t.Fatalf("a second holdout drew %v, the first %v", again.Held, s.Held)
	}
	if _, err := NewHoldout("oldest"); err == nil {
		t.Fatal("unknown holdout rule accepted")
	}
}

func TestReadDiginetica(t *testing.T) {
	in := "session_id;user_id;item_id;timeframe;eventdate\n1;NA;81766;526309;2016-05-09\n1;NA;31331;1031018;2016-05-09\n2;7;81766;0;2016-05-10"
	recs, err := Read(strings.NewReader(in), FormatDiginetica)
	if err != nil {
		t.Fatal(err)
	}
	day := int64(1462752000000) // 2016-05-09 UTC in ms
	want := []Record{{User: "1", Item: "81766", Time: day + 526309, Weight: 1}, {User: "1", Item: "31331", Time: day + 1031018, Weight: 1}, {User: "2", Item: "81766", Time: day + 86400000, Weight: 1}}
	if !slices.Equal(recs, want) {
		t.Fatalf("records %+v, want %+v", recs, want)
	}
	for _, bad := range []string{
		"session;item\n1;2",
		"session_id;user_id;item_id;timeframe;eventdate\n1;NA;5;x;2016-05-09",
		"session_id;user_id;item_id;timeframe;eventdate\n1;NA;5;3;09/05/2016",
		"session_id;user_id;item_id;timeframe;eventdate\n1;NA;5;3",
	} {
		if _, err := Read(strings.NewReader(bad), FormatDiginetica); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestReadOtto(t *testing.T) {
	in := `{"session":0,"events":[{"aid":11,"ts":1659304800025,"type":"clicks"},{"aid":12,"ts":1659304904511,"type":"carts"}]}
{"session":1,"events":[{"aid":11,"ts":1659367439426,"type":"orders"}]}`
	recs, err := Read(strings.NewReader(in), FormatOtto)
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{{User: "0", Item: "11", Time: 1659304800025, Weight: 1}, {User: "0", Item: "12", Time: 1659304904511, Weight: 1}, {User: "1", Item: "11", Time: 1659367439426, Weight: 1}}
	if !slices.Equal(recs, want) {
		t.Fatalf("records %+v, want %+v", recs, want)
	}
	for _, bad := range []string{`{"events":[]}`, `{"session":1,"events":[{"ts":1}]}`, `{"session":1,`} {
		if _, err := Read(strings.NewReader(bad), FormatOtto); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if FormatOtto.TimeUnit().Milliseconds() != 1 || FormatMovieLens.TimeUnit().Seconds() != 1 {
		t.Fatal("time units: otto ms, movielens s")
	}
}

func TestHoldoutFoldHoldsOutTheNextInteraction(t *testing.T) {
	ins := []Interaction{
		{User: 0, Item: 4, Time: 0}, {User: 0, Item: 0, Time: 1}, {User: 0, Item: 1, Time: 2}, {User: 0, Item: 2, Time: 3}, {User: 0, Item: 3, Time: 4},
		{User: 1, Item: 0, Time: 1}, {User: 1, Item: 1, Time: 2}, // 2 interactions: a test item, nothing more
		{User: 2, Item: 4, Time: 1}, {User: 2, Item: 2, Time: 1}, {User: 2, Item: 0, Time: 1}, {User: 2, Item: 3, Time: 1}, // ties: larger item first
	}
	h, err := NewHoldout(HoldoutLatest)
	if err != nil {
		t.Fatal(err)
	}
	test := h.Split(3, 5, ins)
	val := h.Validation(test)
	f := h.Fold(test, val)
	// Test holds out the latest, validation the second latest, the fold
	// the third latest (user 2: items 4, 3, 2 by the tie rule).
	if !slices.Equal(test.Held, []int32{3, 1, 4}) || !slices.Equal(val.Held, []int32{2, -1, 3}) || !slices.Equal(f.Held, []int32{1, -1, 2}) {
		t.Fatalf("held: test %v, validation %v, fold %v; want [3 1 4], [2 -1 3], [1 -1 2]", test.Held, val.Held, f.Held)
	}
	// The fold fits test's training part less its own held-out items:
	// validation's held-out items are fitted, test's are not.
	if len(f.Train) != len(test.Train)-2 {
		t.Fatalf("fold fits %d interactions, want %d", len(f.Train), len(test.Train)-2)
	}
	for _, in := range f.Train {
		if in.Item == test.Held[in.User] || in.Item == f.Held[in.User] {
			t.Fatalf("fold fits held-out interaction %+v", in)
		}
	}
	for u, it := range val.Held {
		if it >= 0 && !slices.ContainsFunc(f.Train, func(in Interaction) bool { return int(in.User) == u && in.Item == it }) {
			t.Fatalf("fold does not fit user %d's validation item %d", u, it)
		}
	}

	// The second fold holds out the fourth latest (user 0: item 0; user 2
	// has one interaction left, too few) and fits everything else of
	// test's training part; the first of Folds is Fold.
	fs := h.Folds(test, val, 2)
	if !slices.Equal(fs[0].Held, f.Held) || !slices.Equal(fs[1].Held, []int32{0, -1, -1}) {
		t.Fatalf("Folds held %v and %v, want %v and [0 -1 -1]", fs[0].Held, fs[1].Held, f.Held)
	}
	if len(fs[1].Train) != len(test.Train)-1 || slices.ContainsFunc(fs[1].Train, func(in Interaction) bool { return in.Item == fs[1].Held[in.User] }) {
		t.Fatalf("second fold fits %v, want test's training part less its held-out items", fs[1].Train)
	}

	// Random holdout: a third draw of the same generator, never a test or
	// validation item.
	var many []Interaction
	for u := range int32(50) {
		for i := range int32(6) {
			many = append(many, Interaction{User: u, Item: (u + i) % 20})
		}
	}
	hr, _ := NewHoldout(HoldoutRandom)
	test = hr.Split(50, 20, many)
	val = hr.Validation(test)
	f = hr.Fold(test, val)
	differs := false
	for u := range f.Held {
		if f.Held[u] < 0 || f.Held[u] == test.Held[u] || f.Held[u] == val.Held[u] {
			t.Fatalf("user %d: fold item %d, test %d, validation %d", u, f.Held[u], test.Held[u], val.Held[u])
		}
		differs = differs || f.Held[u] != (int32(u)+5)%20
	}
	if !differs || len(f.Train) != len(many)-100 {
		t.Fatalf("random fold: varied %v, %d fitted; want draws and %d", differs, len(f.Train), len(many)-100)
	}
	// Folds draws the first fold as Fold does, then a fourth draw.
	hr2, _ := NewHoldout(HoldoutRandom)
	test2 := hr2.Split(50, 20, many)
	fs = hr2.Folds(test2, hr2.Validation(test2), 2)
	if !slices.Equal(fs[0].Held, f.Held) {
		t.Fatalf("Folds' first random fold %v, Fold's %v", fs[0].Held, f.Held)
	}
	for u, it := range fs[1].Held {
		if it < 0 || it == test.Held[u] || it == val.Held[u] || it == f.Held[u] {
			t.Fatalf("user %d: second fold item %d, test %d, validation %d, first fold %d", u, it, test.Held[u], val.Held[u], f.Held[u])
		}
	}
}

// A CSV file read as MovieLens's u.data is refused with a hint at the
// format that reads it.
func TestReadMovieLensNamesOtherFormats(t *testing.T) {
	_, err := Read(strings.NewReader("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n"), FormatMovieLens)
	if err == nil || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "csv") {
		t.Fatalf("error %v: want one naming line 1 and the csv format", err)
	}
	recs, err := Read(strings.NewReader("1\t10\t4\t964982703\n"), FormatMovieLens)
	if err != nil || len(recs) != 1 || recs[0].Item != "10" {
		t.Fatalf("u.data line: %v, %v", recs, err)
	}
	// A gzip-compressed file is read as its content.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("1\t10\t4\t964982703\n2\t11\t3\t964982704\n"))
	_ = zw.Close()
	recs, err = Read(&gz, FormatMovieLens)
	if err != nil || len(recs) != 2 || recs[1].Item != "11" {
		t.Fatalf("gzip-compressed u.data: %+v, %v", recs, err)
	}
	// A byte order mark is not part of the first user id.
	recs, err = Read(strings.NewReader("\ufeff1\t10\t4\t964982703\n"), FormatMovieLens)
	if err != nil || len(recs) != 1 || recs[0].User != "1" {
		t.Fatalf("u.data line after a BOM: %+v, %v", recs, err)
	}
}

// The csv format reads the headers, separators, quoting and time forms of
// common public logs.
func TestReadCSVVariants(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []Record
	}{
		{"movielens latest", "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n", []Record{{User: "1", Item: "31", Time: 1260759144, Weight: 1}}},
		{"lastfm, tabs", "userID\tartistID\tweight\n2\t51\t13883\n", []Record{{User: "2", Item: "51", Weight: 13883}}},
		{"book-crossing, quoted and semicolons", "\"User-ID\";\"ISBN\";\"Book-Rating\"\n\"276725\";\"034545104X\";\"0\"\n", []Record{{User: "276725", Item: "034545104X", Weight: 1}}},
		{"sessions, date-times, CRLF", "session_id,product_id,event_time\r\ns1,p9,2019-10-01 00:00:05 UTC\r\n\r\ns1,p8,2019-10-01T00:00:07Z\r\n",
			[]Record{{User: "s1", Item: "p9", Time: 1569888005, Weight: 1}, {User: "s1", Item: "p8", Time: 1569888007, Weight: 1}}},
		{"decimal times, bars", "user|item|ts|count\nu|i|1700000000.75|2\n", []Record{{User: "u", Item: "i", Time: 1700000000, Weight: 2}}},
		{"a date", "customer_id,article_id,t_dat\nc,a,2020-09-20\n", []Record{{User: "c", Item: "a", Weight: 1}}},
		{"a user id before a session id", "session_id,user_id,item_id\ns1,u7,i3\n", []Record{{User: "u7", Item: "i3", Weight: 1}}},
	} {
		recs, err := Read(strings.NewReader(c.in), FormatCSV)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !slices.Equal(recs, c.want) {
			t.Errorf("%s: records %+v, want %+v", c.name, recs, c.want)
		}
	}
	for _, c := range []struct{ name, in, wantErr string }{
		{"no item column", "user,rating\n1,5\n", "no item column"},
		{"bad time", "user,item,timestamp\n1,2,yesterday\n", "line 2: time \"yesterday\""},
		{"NaN weight", "user,item,weight\n1,2,NaN\n", "line 2: weight"},
		{"missing item", "user,item\n1,\n", "line 2: missing user or item"},
		{"empty", "", "empty file"},
	} {
		_, err := Read(strings.NewReader(c.in), FormatCSV)
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.wantErr)
		}
	}
}

// TestReadWithoutHeader reads files without a header line: MovieLens 1M's
// ratings.dat ("::") as movielens, and a headerless CSV (Amazon's ratings
// files: user,item,rating,time) with its columns named; a headerless CSV
// read without names is refused with ErrHeader.
func TestReadWithoutHeader(t *testing.T) {
	recs, err := Read(strings.NewReader("1::1193::5::978300760\n1::661::3::978302109\n"), FormatMovieLens)
	want := []Record{{User: "1", Item: "1193", Time: 978300760, Weight: 1}, {User: "1", Item: "661", Time: 978302109, Weight: 1}}
	if err != nil || !slices.Equal(recs, want) {
		t.Errorf("ratings.dat: %+v, %v; want %+v", recs, err, want)
	}
	amazon := "A2CX7LUOHB2NDG,0321732944,5.0,1341100800\nA2NWSAGRHCP8N5,0439886341,1.0,1367193600\n"
	recs, err = ReadWith(strings.NewReader(amazon), FormatCSV, ReadOptions{Columns: []string{"user", "item", "rating", "time"}})
	want = []Record{{User: "A2CX7LUOHB2NDG", Item: "0321732944", Time: 1341100800, Weight: 1}, {User: "A2NWSAGRHCP8N5", Item: "0439886341", Time: 1367193600, Weight: 1}}
	if err != nil || !slices.Equal(recs, want) {
		t.Errorf("named columns: %+v, %v; want %+v", recs, err, want)
	}
	recs, err = ReadWith(strings.NewReader("u1;i1;3\n"), FormatCSV, ReadOptions{Columns: []string{"UserID", "-", "ItemID"}})
	if want := []Record{{User: "u1", Item: "3", Weight: 1}}; err != nil || !slices.Equal(recs, want) {
		t.Errorf("synonyms and a skipped column: %+v, %v; want %+v", recs, err, want)
	}
	if _, err := Read(strings.NewReader(amazon), FormatCSV); !errors.Is(err, ErrHeader) {
		t.Errorf("headerless without names: %v, want ErrHeader", err)
	}
	for _, c := range []struct {
		f       Format
		cols    []string
		wantErr string
	}{
		{FormatCSV, []string{"rating", "item"}, "name no user column"},
		{FormatMovieLens, []string{"user", "item"}, "for the csv format"},
	} {
		if _, err := ReadWith(strings.NewReader(amazon), c.f, ReadOptions{Columns: c.cols}); err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s %v: %v, want an error containing %q", c.f, c.cols, err, c.wantErr)
		}
	}
}

func TestBuildMergesRepeatedPairs(t *testing.T) {
	// Users and items are numbered by id (numerically); a repeated pair
	// is one interaction at its latest time with the weights summed, in
	// the place of the pair's first record, whoever's records come
	// between.
	recs := []Record{
		{User: "10", Item: "b", Time: 5, Weight: 1},
		{User: "2", Item: "a", Time: 1, Weight: 2},
		{User: "10", Item: "a", Time: 3, Weight: 1},
		{User: "2", Item: "a", Time: 9, Weight: 3},
		{User: "10", Item: "b", Time: 4, Weight: 4},
		{User: "2", Item: "c", Time: 2, Weight: 1},
	}
	d := Build(recs, WeightRaw)
	if !slices.Equal(d.Users, []string{"2", "10"}) || !slices.Equal(d.Items, []string{"a", "b", "c"}) {
		t.Fatalf("users %v, items %v", d.Users, d.Items)
	}
	want := []Interaction{
		{User: 1, Item: 1, Time: 5, Weight: 5}, // 10,b: times 5 and 4
		{User: 0, Item: 0, Time: 9, Weight: 5}, // 2,a: times 1 and 9
		{User: 1, Item: 0, Time: 3, Weight: 1},
		{User: 0, Item: 2, Time: 2, Weight: 1},
	}
	if !slices.Equal(d.Interactions, want) {
		t.Fatalf("interactions %+v, want %+v", d.Interactions, want)
	}
}
