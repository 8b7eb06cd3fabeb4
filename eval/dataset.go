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
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eval: open dataset: %w", err)
	}
	defer fh.Close()
	recs, err := ReadWith(fh, f, opt)
	if err != nil {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	return recs, nil
}

// Read parses a dataset in format f. A gzip-compressed input is
// decompressed (public datasets often come as .gz), and a UTF-8 byte
// order mark at the start is skipped (spreadsheets write one).
func Read(r io.Reader, f Format) ([]Record, error) { return ReadWith(r, f, ReadOptions{}) }

// ReadWith parses a dataset in format f with options (see Read).
func ReadWith(r io.Reader, f Format, opt ReadOptions) ([]Record, error) {
	if len(opt.Columns) > 0 && f != FormatCSV {
		return nil, fmt.Errorf("column names are for the csv format, not %s", f)
	}
	br := bufio.NewReader(r)
	if b, err := br.Peek(2); err == nil && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
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
		return readMovieLens(r)
	case FormatCSV:
		return readCSV(r, opt.Columns)
	case FormatDiginetica:
		return readDiginetica(r)
	case FormatOtto:
		return readOtto(r)
	}
	return nil, fmt.Errorf("unknown format %q (want movielens, csv, diginetica or otto)", f)
}

func readDiginetica(r io.Reader) ([]Record, error) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		return nil, fmt.Errorf("empty file: want the header session_id;user_id;item_id;timeframe;eventdate")
	}
	want := []string{"session_id", "user_id", "item_id", "timeframe", "eventdate"}
	if h := strings.Split(strings.TrimSpace(sc.Text()), ";"); strings.Join(h, ";") != strings.Join(want, ";") {
		return nil, fmt.Errorf("header %q: want %s", sc.Text(), strings.Join(want, ";"))
	}
	var out []Record
	ids := interner{}
	line := 1
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		f := strings.Split(s, ";")
		if len(f) != len(want) {
			return nil, fmt.Errorf("line %d: want %d ';'-separated fields, got %d", line, len(want), len(f))
		}
		if f[0] == "" || f[2] == "" {
			return nil, fmt.Errorf("line %d: missing session_id or item_id", line)
		}
		frame, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil || frame < 0 {
			return nil, fmt.Errorf("line %d: timeframe %q is not a number of milliseconds >= 0", line, f[3])
		}
		day, err := time.Parse(time.DateOnly, f[4])
		if err != nil {
			return nil, fmt.Errorf("line %d: eventdate %q: want YYYY-MM-DD", line, f[4])
		}
		out = append(out, Record{User: ids.of(f[0]), Item: ids.of(f[2]), Time: day.UnixMilli() + frame, Weight: 1})
	}
	return out, sc.Err()
}

func readOtto(r io.Reader) ([]Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64<<20)
	var out []Record
	ids := interner{}
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
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if s.Session == nil {
			return nil, fmt.Errorf("line %d: missing session", line)
		}
		for j, e := range s.Events {
			if e.Aid == nil || e.Ts == nil {
				return nil, fmt.Errorf("line %d: events[%d]: missing aid or ts", line, j)
			}
			out = append(out, Record{User: ids.of(strconv.FormatInt(*s.Session, 10)), Item: ids.of(strconv.FormatInt(*e.Aid, 10)), Time: *e.Ts, Weight: 1})
		}
	}
	return out, sc.Err()
}

func readMovieLens(r io.Reader) ([]Record, error) {
	var out []Record
	ids := interner{}
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
			return nil, fmt.Errorf("line %d: movielens format wants user, item, rating, timestamp separated by white space or \"::\"; got %d fields%s", line, len(f), hint)
		}
		ts, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: timestamp %q: %w", line, f[3], err)
		}
		out = append(out, Record{User: ids.of(f[0]), Item: ids.of(f[1]), Time: ts, Weight: 1})
	}
	return out, sc.Err()
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

func readCSV(r io.Reader, columns []string) ([]Record, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(4096)
	if len(head) == 0 {
		if err == nil || err == io.EOF {
			return nil, fmt.Errorf("empty file: want a header line")
		}
		return nil, err
	}
	cr := csv.NewReader(br)
	cr.Comma = csvSeparator(head)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	cols, err := csvLayout(cr, columns)
	if err != nil {
		return nil, err
	}
	var out []Record
	ids := interner{}
	for {
		f, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err // csv.ParseError names the line
		}
		if len(f) == 1 && strings.TrimSpace(f[0]) == "" {
			continue
		}
		rec, err := csvRecord(f, cols)
		if err != nil {
			line, _ := cr.FieldPos(0)
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		rec.User, rec.Item = ids.of(rec.User), ids.of(rec.Item)
		out = append(out, rec)
	}
}

// interner hands out one copy of each distinct id: the records of a large
// log then share their ids' memory instead of each keeping a copy (or, a
// field being a substring of its line, the whole line) alive. 10M lines
// of 1M users and 200k items took 825 MB as records, 400 MB interned.
type interner map[string]string

// of returns the interned copy of s.
func (in interner) of(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	v := strings.Clone(s)
	in[v] = v
	return v
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
// pair's first record. The pairs are found per user (a record's user and
// item numbers, and for each record the first of its pair: a few int32s
// per record rather than a map of every pair).
func Build(recs []Record, s WeightScale) *Dataset {
	users, uid := numberIDs(recs, func(r Record) string { return r.User })
	items, iid := numberIDs(recs, func(r Record) string { return r.Item })
	d := &Dataset{Users: users, Items: items}
	first := firstOfPair(uid, iid, len(users), len(items))
	// In file order: a pair's first record makes its interaction (first
	// then holds the interaction's index), the others add to it.
	for j, r := range recs {
		if f := first[j]; int(f) != j {
			in := &d.Interactions[first[f]]
			in.Weight += r.Weight
			in.Time = max(in.Time, r.Time)
			continue
		}
		first[j] = int32(len(d.Interactions))
		d.Interactions = append(d.Interactions, Interaction{User: uid[j], Item: iid[j], Time: r.Time, Weight: r.Weight})
	}
	for j := range d.Interactions {
		d.Interactions[j].Weight = s.Apply(d.Interactions[j].Weight)
	}
	return d
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

// numberIDs numbers the distinct ids of recs' field in ascending order
// (numerically when every one is an integer) and returns them with each
// record's number: one map lookup per record, each id parsed once.
func numberIDs(recs []Record, id func(Record) string) ([]string, []int32) {
	seen := map[string]int32{}
	var ids []string
	num := make([]int32, len(recs))
	for j, r := range recs {
		s := id(r)
		n, ok := seen[s]
		if !ok {
			n = int32(len(ids))
			seen[s] = n
			ids = append(ids, s)
		}
		num[j] = n
	}
	order := make([]int32, len(ids))
	for i := range order {
		order[i] = int32(i)
	}
	if values, numeric := parseIDs(ids); numeric {
		slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(values[a], values[b]) })
	} else {
		slices.SortFunc(order, func(a, b int32) int { return strings.Compare(ids[a], ids[b]) })
	}
	sorted := make([]string, len(ids))
	rank := make([]int32, len(ids))
	for r, i := range order {
		sorted[r], rank[i] = ids[i], int32(r)
	}
	for j, n := range num {
		num[j] = rank[n]
	}
	return sorted, num
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
