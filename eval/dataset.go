package eval

import (
	"bufio"
	"cmp"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Record is one interaction of a dataset: user and item by their external
// ids, the time (seconds or any integer clock; compared as integers) and the
// raw weight (1 when the dataset has none).
type Record struct {
	User, Item string
	Time       int64
	Weight     float64
}

// Format names a dataset file format.
type Format string

// Supported dataset formats.
const (
	// FormatMovieLens is u.data: user TAB item TAB rating TAB timestamp, no
	// header, or ratings.dat of MovieLens 1M and 10M (the same fields
	// separated by "::"). Ratings are ignored: every rating is an implicit
	// positive.
	FormatMovieLens Format = "movielens"
	// FormatCSV has a header naming the columns, separated by commas,
	// tabs, semicolons or vertical bars (the most frequent on the header
	// line), fields optionally quoted. Names are compared lower-case
	// without punctuation ("User-ID" is userid); csvColumns lists the
	// recognised ones: user (user, userid, visitor, session, customer, …),
	// item (item, itemid, movieid, artistid, productid, aid, isbn, …),
	// time (timestamp, ts, time, datetime, date, …) and weight (weight,
	// count, plays, value, …). Other columns (e.g. a rating) are ignored.
	// A time is an integer (any clock, seconds for the half-life), a
	// decimal number (floored) or a date-time (Unix seconds). Without a
	// time column every time is 0; without a weight column every weight
	// is 1. A file without a header line is read with its columns named
	// (ReadOptions.Columns).
	FormatCSV Format = "csv"
	// FormatDiginetica is DIGINETICA's train-item-views.csv (CIKM Cup
	// 2016): a header, then session_id;user_id;item_id;timeframe;eventdate
	// separated by ';'. A session is the user (PROTOCOL.md, "Sessions as
	// users"); the time is the event date (YYYY-MM-DD, UTC midnight) in
	// milliseconds plus the timeframe (milliseconds since the session
	// started).
	FormatDiginetica Format = "diginetica"
	// FormatOtto is OTTO's train.jsonl: one session per line,
	// {"session": int, "events": [{"aid": int, "ts": unix ms, "type":
	// "clicks"|"carts"|"orders"}, …]}. A session is the user, aid the item,
	// ts the time in milliseconds; every event weighs 1.
	FormatOtto Format = "otto"
)

// TimeUnit returns the unit of the integer times the format yields:
// milliseconds for diginetica and otto, seconds otherwise.
func (f Format) TimeUnit() time.Duration {
	switch f {
	case FormatDiginetica, FormatOtto:
		return time.Millisecond
	}
	return time.Second
}

// WeightScale says how raw weights become model weights.
type WeightScale string

// Weight scalings.
const (
	WeightOne WeightScale = "one" // every interaction weighs 1 (pure implicit positives)
	WeightRaw WeightScale = "raw" // the raw weight
	WeightLog WeightScale = "log" // log(1 + raw), for play counts (lastfm)
)

// Apply returns the model weight of a raw weight.
func (s WeightScale) Apply(w float64) float64 {
	switch s {
	case WeightRaw:
		return w
	case WeightLog:
		return math.Log1p(w)
	}
	return 1
}

// ReadOptions adjust how a dataset is read.
type ReadOptions struct {
	// Columns, for FormatCSV only, names the columns of a file without a
	// header line, in order: user, item, time, weight or any name
	// FormatCSV recognises for them; other names (rating, "-") mark
	// columns to ignore. Empty: the first line is the header.
	Columns []string
}

// Load reads a dataset file.
func Load(path string, f Format) ([]Record, error) { return LoadWith(path, f, ReadOptions{}) }

// LoadWith reads a dataset file with options.
func LoadWith(path string, f Format, opt ReadOptions) ([]Record, error) {
	var recs []Record
	return recs, LoadEach(path, f, opt, collect(&recs))
}

// LoadEach reads a dataset file with options and calls emit with each
// record, in file order (a record's strings may be reused after the
// call: Builder.Add copies what it keeps), stopping at its first error.
// A large log is best built this way (LoadDataset) rather than held as
// records.
func LoadEach(path string, f Format, opt ReadOptions, emit func(Record) error) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("eval: open dataset: %w", err)
	}
	defer fh.Close()
	if err := ReadEach(fh, f, opt, emit); err != nil {
		return fmt.Errorf("eval: %s: %w", path, err)
	}
	return nil
}

// LoadDataset reads a dataset file straight into a Dataset, with the
// weights scaled by s, or WeightLog when s is "auto" and some record's
// weight is not 1 (else WeightOne).
func LoadDataset(path string, f Format, opt ReadOptions, s WeightScale) (*Dataset, error) {
	b := NewBuilder()
	if err := LoadEach(path, f, opt, b.Add); err != nil {
		return nil, err
	}
	if s == "auto" {
		s = WeightOne
		if b.Weighted() {
			s = WeightLog
		}
	}
	return b.Dataset(s), nil
}

// Read parses a dataset in format f. A gzip-compressed input is
// decompressed (public datasets often come as .gz), and a UTF-8 byte
// order mark at the start is skipped (spreadsheets write one).
func Read(r io.Reader, f Format) ([]Record, error) { return ReadWith(r, f, ReadOptions{}) }

// ReadWith parses a dataset in format f with options (see Read).
func ReadWith(r io.Reader, f Format, opt ReadOptions) ([]Record, error) {
	var recs []Record
	if err := ReadEach(r, f, opt, collect(&recs)); err != nil {
		return nil, err
	}
	return recs, nil
}

// collect returns an emit function that appends to recs, each id
// interned: the records of a large log then share their ids' memory
// instead of each keeping a copy (or, a field being a substring of its
// line, the whole line) alive.
func collect(recs *[]Record) func(Record) error {
	ids := map[string]string{}
	intern := func(s string) string {
		if v, ok := ids[s]; ok {
			return v
		}
		v := strings.Clone(s)
		ids[v] = v
		return v
	}
	return func(r Record) error {
		r.User, r.Item = intern(r.User), intern(r.Item)
		*recs = append(*recs, r)
		return nil
	}
}

// ReadEach parses a dataset in format f with options (see Read) and
// calls emit with each record, stopping at its first error.
func ReadEach(r io.Reader, f Format, opt ReadOptions, emit func(Record) error) error {
	if len(opt.Columns) > 0 && f != FormatCSV {
		return fmt.Errorf("column names are for the csv format, not %s", f)
	}
	br := bufio.NewReader(r)
	if b, err := br.Peek(2); err == nil && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	r = br
	switch f {
	case FormatMovieLens:
		return readMovieLens(r, emit)
	case FormatCSV:
		return readCSV(r, opt.Columns, emit)
	case FormatDiginetica:
		return readDiginetica(r, emit)
	case FormatOtto:
		return readOtto(r, emit)
	}
	return fmt.Errorf("unknown format %q (want movielens, csv, diginetica or otto)", f)
}

func readDiginetica(r io.Reader, emit func(Record) error) error {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		return fmt.Errorf("empty file: want the header session_id;user_id;item_id;timeframe;eventdate")
	}
	want := []string{"session_id", "user_id", "item_id", "timeframe", "eventdate"}
	if h := strings.Split(strings.TrimSpace(sc.Text()), ";"); strings.Join(h, ";") != strings.Join(want, ";") {
		return fmt.Errorf("header %q: want %s", sc.Text(), strings.Join(want, ";"))
	}
	line := 1
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		f := strings.Split(s, ";")
		if len(f) != len(want) {
			return fmt.Errorf("line %d: want %d ';'-separated fields, got %d", line, len(want), len(f))
		}
		if f[0] == "" || f[2] == "" {
			return fmt.Errorf("line %d: missing session_id or item_id", line)
		}
		frame, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil || frame < 0 {
			return fmt.Errorf("line %d: timeframe %q is not a number of milliseconds >= 0", line, f[3])
		}
		day, err := time.Parse(time.DateOnly, f[4])
		if err != nil {
			return fmt.Errorf("line %d: eventdate %q: want YYYY-MM-DD", line, f[4])
		}
		if err := emit(Record{User: f[0], Item: f[2], Time: day.UnixMilli() + frame, Weight: 1}); err != nil {
			return err
		}
	}
	return sc.Err()
}

func readOtto(r io.Reader, emit func(Record) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var s struct {
			Session *int64 `json:"session"`
			Events  []struct {
				Aid  *int64 `json:"aid"`
				Ts   *int64 `json:"ts"`
				Type string `json:"type"`
			} `json:"events"`
		}
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if s.Session == nil {
			return fmt.Errorf("line %d: missing session", line)
		}
		for j, e := range s.Events {
			if e.Aid == nil || e.Ts == nil {
				return fmt.Errorf("line %d: events[%d]: missing aid or ts", line, j)
			}
			if err := emit(Record{User: strconv.FormatInt(*s.Session, 10), Item: strconv.FormatInt(*e.Aid, 10), Time: *e.Ts, Weight: 1}); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}

func readMovieLens(r io.Reader, emit func(Record) error) error {
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		var f []string
		if strings.Contains(s, "::") {
			f = strings.Split(s, "::") // ratings.dat of MovieLens 1M and 10M
		} else {
			f = strings.Fields(s)
		}
		if len(f) < 4 {
			hint := ""
			if strings.ContainsAny(s, ",;") {
				hint = " (a comma- or semicolon-separated file: see the csv, diginetica and otto formats)"
			}
			return fmt.Errorf("line %d: movielens format wants user, item, rating, timestamp separated by white space or \"::\"; got %d fields%s", line, len(f), hint)
		}
		ts, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			return fmt.Errorf("line %d: timestamp %q: %w", line, f[3], err)
		}
		if err := emit(Record{User: f[0], Item: f[1], Time: ts, Weight: 1}); err != nil {
			return err
		}
	}
	return sc.Err()
}

// csvColumns are the recognised column names of FormatCSV, compared
// lower-case with everything but letters and digits removed ("User-ID" is
// userid).
var csvColumns = map[string][]string{
	"user":   {"user", "userid", "visitor", "visitorid", "session", "sessionid", "customer", "customerid", "member", "memberid", "uid", "reviewerid", "buyerid", "accountid", "clientid", "personid", "profileid", "readerid", "listenerid", "playerid"},
	"item":   {"item", "itemid", "movieid", "artistid", "product", "productid", "aid", "articleid", "isbn", "trackid", "songid", "bookid", "sku", "asin", "iid", "businessid", "gameid", "recipeid", "animeid", "beerid", "courseid", "videoid", "newsid", "venueid", "placeid", "hotelid", "appid", "contentid", "docid"},
	"time":   {"timestamp", "ts", "time", "datetime", "date", "eventtime", "unixtime", "unixtimestamp", "createdat", "unixreviewtime", "tstamp", "eventtimestamp"},
	"weight": {"weight", "count", "plays", "playcount", "value", "quantity"},
}

// csvTimeLayouts are the date-time forms of a FormatCSV time column
// besides integers (and decimal numbers, floored), read as UTC when they
// name no zone.
var csvTimeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999 MST", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"}

func readCSV(r io.Reader, columns []string, emit func(Record) error) error {
	br := bufio.NewReader(r)
	head, err := br.Peek(4096)
	if len(head) == 0 {
		if err == nil || err == io.EOF {
			return fmt.Errorf("empty file: want a header line")
		}
		return err
	}
	cr := csv.NewReader(br)
	cr.Comma = csvSeparator(head)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	cols, err := csvLayout(cr, columns)
	if err != nil {
		return err
	}
	for {
		f, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err // csv.ParseError names the line
		}
		if len(f) == 1 && strings.TrimSpace(f[0]) == "" {
			continue
		}
		rec, err := csvRecord(f, cols)
		if err != nil {
			line, _ := cr.FieldPos(0)
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := emit(rec); err != nil {
			return err
		}
	}
}

// ErrHeader reports a FormatCSV header without a user or an item column:
// perhaps a file without a header line, whose columns must be named
// (ReadOptions.Columns).
var ErrHeader = errors.New("no user and item columns in the header")

// csvLayout returns the column indexes of a FormatCSV file: from the
// given column names when there are some (a file without a header),
// else from the header line, read from cr.
func csvLayout(cr *csv.Reader, columns []string) (map[string]int, error) {
	if len(columns) > 0 {
		cols := csvHeader(columns)
		for _, name := range []string{"user", "item"} {
			if _, ok := cols[name]; !ok {
				return nil, fmt.Errorf("columns %q name no %s column (recognised names: %s)", strings.Join(columns, ","), name, strings.Join(csvColumns[name], ", "))
			}
		}
		return cols, nil
	}
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	cols := csvHeader(header)
	for _, name := range []string{"user", "item"} {
		if _, ok := cols[name]; !ok {
			return nil, fmt.Errorf("%w: header %q has no %s column (recognised names: %s)", ErrHeader, strings.Join(header, string(cr.Comma)), name, strings.Join(csvColumns[name], ", "))
		}
	}
	return cols, nil
}

// csvSeparator picks the separator of a header: the most frequent of
// comma, tab, semicolon and vertical bar on the first line (comma on a
// tie).
func csvSeparator(head []byte) rune {
	first, _, _ := strings.Cut(string(head), "\n")
	sep, most := ',', strings.Count(first, ",")
	for _, c := range []rune{'\t', ';', '|'} {
		if n := strings.Count(first, string(c)); n > most {
			sep, most = c, n
		}
	}
	return sep
}

// csvHeader maps the recognised columns of a header to their index: for
// each, the header column whose name comes first in csvColumns (a user id
// before a session id), then the leftmost.
func csvHeader(header []string) map[string]int {
	cols := map[string]int{}
	rank := map[string]int{}
	for i, name := range header {
		key := strings.Map(func(r rune) rune {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				return unicode.ToLower(r)
			}
			return -1
		}, name)
		for col, names := range csvColumns {
			j := slices.Index(names, key)
			if r, seen := rank[col]; j >= 0 && (!seen || j < r) {
				cols[col], rank[col] = i, j
			}
		}
	}
	return cols
}

func csvRecord(f []string, cols map[string]int) (Record, error) {
	get := func(name string) (string, bool) {
		i, ok := cols[name]
		if !ok {
			return "", false
		}
		if i >= len(f) {
			return "", true
		}
		return strings.TrimSpace(f[i]), true
	}
	rec := Record{Weight: 1}
	rec.User, _ = get("user")
	rec.Item, _ = get("item")
	if rec.User == "" || rec.Item == "" {
		return rec, fmt.Errorf("missing user or item")
	}
	if s, ok := get("time"); ok {
		t, err := csvTime(s)
		if err != nil {
			return rec, err
		}
		rec.Time = t
	}
	if s, ok := get("weight"); ok {
		w, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(w) || math.IsInf(w, 0) || w <= 0 {
			return rec, fmt.Errorf("weight %q is not a positive number", s)
		}
		rec.Weight = w
	}
	return rec, nil
}

// csvTime reads a time column's value: an integer as it is, a decimal
// number floored, a date-time (csvTimeLayouts) as Unix seconds.
func csvTime(s string) (int64, error) {
	if t, err := strconv.ParseInt(s, 10, 64); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && math.Abs(f) < 9e18 {
		return int64(math.Floor(f)), nil
	}
	for _, layout := range csvTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix(), nil
		}
	}
	return 0, fmt.Errorf("time %q: want an integer, a decimal number or a date-time like 2006-01-02 15:04:05", s)
}

// Dataset is a loaded interaction log with dense user and item numbering:
// users and items are numbered in ascending order of their ids (numerically
// when every id is an integer), so results do not depend on file order.
type Dataset struct {
	Users, Items []string
	// Interactions holds one entry per distinct (user, item) pair, kept at
	// its latest time (PROTOCOL.md, "Repeated pairs") with summed weight.
	Interactions []Interaction
}

// Interaction is one distinct (user, item) pair of a Dataset.
type Interaction struct {
	User, Item int32
	Time       int64
	Weight     float64
}

// Build numbers users and items and merges repeated pairs (kept at the
// latest time, weights summed, then scaled by s), in the order of each
// pair's first record (see Builder).
func Build(recs []Record, s WeightScale) *Dataset {
	b := NewBuilder()
	for _, r := range recs {
		_ = b.Add(r)
	}
	return b.Dataset(s)
}

// Builder makes a Dataset from records added one at a time, keeping per
// record only its user and item numbers, time and weight (24 bytes) and
// one copy of each id: a log need not be held as records first
// (LoadDataset). 10M lines of 1M users and 200k items peak at about half
// the memory of records then Build.
type Builder struct {
	users, items idNumbers
	uid, iid     []int32
	times        []int64
	weights      []float64
	weighted     bool
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{users: idNumbers{num: map[string]int32{}}, items: idNumbers{num: map[string]int32{}}}
}

// Add adds one record (its strings are copied when kept). It fails only
// past math.MaxInt32 records (records are numbered with int32s).
func (b *Builder) Add(r Record) error {
	if len(b.uid) == math.MaxInt32 {
		return fmt.Errorf("more than %d records: too many for one dataset", math.MaxInt32)
	}
	b.uid = append(b.uid, b.users.of(r.User))
	b.iid = append(b.iid, b.items.of(r.Item))
	b.times = append(b.times, r.Time)
	b.weights = append(b.weights, r.Weight)
	b.weighted = b.weighted || r.Weight != 1
	return nil
}

// Weighted reports whether some record's weight is not 1.
func (b *Builder) Weighted() bool { return b.weighted }

// Dataset numbers users and items in ascending order of their ids
// (numerically when every one is an integer) and merges repeated pairs
// (kept at the latest time, weights summed, then scaled by s), in the
// order of each pair's first record. The pairs are found per user (for
// each record the first of its pair: a few int32s per record rather than
// a map of every pair). The Builder is spent.
func (b *Builder) Dataset(s WeightScale) *Dataset {
	users, urank := b.users.sorted()
	items, irank := b.items.sorted()
	for j := range b.uid {
		b.uid[j], b.iid[j] = urank[b.uid[j]], irank[b.iid[j]]
	}
	d := &Dataset{Users: users, Items: items}
	first := firstOfPair(b.uid, b.iid, len(users), len(items))
	// In record order: a pair's first record makes its interaction (first
	// then holds the interaction's index), the others add to it.
	for j := range b.uid {
		if f := first[j]; int(f) != j {
			in := &d.Interactions[first[f]]
			in.Weight += b.weights[j]
			in.Time = max(in.Time, b.times[j])
			continue
		}
		first[j] = int32(len(d.Interactions))
		d.Interactions = append(d.Interactions, Interaction{User: b.uid[j], Item: b.iid[j], Time: b.times[j], Weight: b.weights[j]})
	}
	for j := range d.Interactions {
		d.Interactions[j].Weight = s.Apply(d.Interactions[j].Weight)
	}
	*b = Builder{}
	return d
}

// idNumbers numbers ids in order of appearance.
type idNumbers struct {
	num map[string]int32
	ids []string
}

// of returns id's number, numbering it (a copy) when new.
func (n *idNumbers) of(id string) int32 {
	if k, ok := n.num[id]; ok {
		return k
	}
	k := int32(len(n.ids))
	id = strings.Clone(id)
	n.num[id] = k
	n.ids = append(n.ids, id)
	return k
}

// sorted returns the ids in ascending order (numerically when every one
// is an integer, each parsed once) and each appearance number's rank.
func (n *idNumbers) sorted() ([]string, []int32) {
	order := make([]int32, len(n.ids))
	for i := range order {
		order[i] = int32(i)
	}
	if values, numeric := parseIDs(n.ids); numeric {
		slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(values[a], values[b]) })
	} else {
		slices.SortFunc(order, func(a, b int32) int { return strings.Compare(n.ids[a], n.ids[b]) })
	}
	sorted := make([]string, len(n.ids))
	rank := make([]int32, len(n.ids))
	for r, i := range order {
		sorted[r], rank[i] = n.ids[i], int32(r)
	}
	return sorted, rank
}

// firstOfPair returns, for each record j of the (user, item) pairs
// uid[j], iid[j], the index of the first record of its pair.
func firstOfPair(uid, iid []int32, users, items int) []int32 {
	// The records grouped by user, in file order within each.
	ptr := make([]int, users+1)
	for _, u := range uid {
		ptr[u+1]++
	}
	for u := range users {
		ptr[u+1] += ptr[u]
	}
	order := make([]int32, len(uid))
	next := slices.Clone(ptr[:users])
	for j, u := range uid {
		order[next[u]] = int32(j)
		next[u]++
	}
	first := make([]int32, len(uid))
	seenAt := make([]int32, items)
	for i := range seenAt {
		seenAt[i] = -1
	}
	for u := range users {
		recsOf := order[ptr[u]:ptr[u+1]]
		for _, j := range recsOf {
			if at := seenAt[iid[j]]; at >= 0 {
				first[j] = at
			} else {
				seenAt[iid[j]], first[j] = j, j
			}
		}
		for _, j := range recsOf {
			seenAt[iid[j]] = -1
		}
	}
	return first
}

// parseIDs returns ids as integers, and whether every one is one.
func parseIDs(ids []string) ([]int64, bool) {
	values := make([]int64, len(ids))
	for i, s := range ids {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, false
		}
		values[i] = v
	}
	return values, true
}
