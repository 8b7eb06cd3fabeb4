package rotation

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
)

// A page token ("next") is
//
//	base64url(payload) "." base64url(HMAC-SHA256(key, payload)[:16])
//
// with the payload: version 1, expiry (Unix seconds, uvarint), rotation
// (ms, uvarint), the visitor (uvarint length, bytes), then the 64-bit
// FNV-1a hashes of the items of the earlier pages (8 bytes each, big
// endian). It is opaque to clients, bound to its visitor, and cannot be
// forged or altered without the server's key.

const tokenVersion = 1

// token is the state carried from one page to the next.
type token struct {
	expires  time.Time
	rotation time.Duration
	visitor  string
	shown    []uint64 // hashes of the items of the earlier pages
}

// itemHash is the 64-bit FNV-1a hash of an item id.
func itemHash(item string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(item))
	return h.Sum64()
}

var b64 = base64.RawURLEncoding

func (r *Rotation) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, r.key)
	m.Write(payload)
	return m.Sum(nil)[:16]
}

// encode signs t.
func (r *Rotation) encode(t token) string {
	b := []byte{tokenVersion}
	b = binary.AppendUvarint(b, uint64(t.expires.Unix()))
	b = binary.AppendUvarint(b, uint64(t.rotation/time.Millisecond))
	b = binary.AppendUvarint(b, uint64(len(t.visitor)))
	b = append(b, t.visitor...)
	for _, h := range t.shown {
		b = binary.BigEndian.AppendUint64(b, h)
	}
	return b64.EncodeToString(b) + "." + b64.EncodeToString(r.mac(b))
}

// errToken is wrapped by every token decoding error.
var errToken = errors.New("not a valid page token")

// decode verifies s and returns its token; the error says why it is
// refused (the caller adds the parameter's name).
func (r *Rotation) decode(s string, now time.Time) (token, error) {
	p, sig, ok := strings.Cut(s, ".")
	if !ok || len(s) > r.maxTokenLen() {
		return token{}, errToken
	}
	b, err1 := b64.DecodeString(p)
	mac, err2 := b64.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, r.mac(b)) {
		return token{}, fmt.Errorf("%w (altered, or made by another server)", errToken)
	}
	if len(b) == 0 || b[0] != tokenVersion {
		return token{}, errToken
	}
	b = b[1:]
	var t token
	exp, n := binary.Uvarint(b)
	if n <= 0 {
		return token{}, errToken
	}
	b = b[n:]
	rot, n := binary.Uvarint(b)
	if n <= 0 {
		return token{}, errToken
	}
	b = b[n:]
	vl, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < vl {
		return token{}, errToken
	}
	b = b[n:]
	t.visitor, b = string(b[:vl]), b[vl:]
	if len(b)%8 != 0 {
		return token{}, errToken
	}
	for ; len(b) > 0; b = b[8:] {
		t.shown = append(t.shown, binary.BigEndian.Uint64(b))
	}
	t.expires = time.Unix(int64(exp), 0)
	t.rotation = time.Duration(rot) * time.Millisecond
	if now.After(t.expires) {
		return token{}, fmt.Errorf("%w: expired at %s (ask for the first page again)", errToken, t.expires.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// maxTokenLen bounds an accepted token's length: MaxCandidates hashes
// and a visitor id of 200 bytes, encoded.
func (r *Rotation) maxTokenLen() int {
	return b64.EncodedLen(1+30+200+8*r.cfg.MaxCandidates) + 1 + b64.EncodedLen(16)
}
