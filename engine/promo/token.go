package promo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"time"
)

// Token is what an exposure token says: offer Offer was shown in slot
// Slot at Time to a visitor, as exposure Exposure.
type Token struct {
	Offer, Slot string
	// Visitor is the visitor's id when signing; Verify leaves it empty
	// (a token carries only a hash of it: use Matches).
	Visitor  string
	Time     time.Time
	Exposure uint64

	visitorHash uint64
}

// Matches reports whether the token was made for visitor.
func (t Token) Matches(visitor string) bool { return t.visitorHash == visitorHash(visitor) }

func visitorHash(v string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(v))
	return h.Sum64()
}

// Token format (version 1), base64url without padding of
//
//	version   1 byte (1)
//	time      uvarint, Unix milliseconds
//	exposure  8 bytes little-endian
//	visitor   8 bytes little-endian: FNV-1a 64 of the visitor id
//	offer     uvarint length, bytes
//	slot      uvarint length, bytes
//	mac       16 bytes: HMAC-SHA256 of everything before, with the secret, truncated
const (
	tokenVersion = 1
	macBytes     = 16
	maxTokenLen  = 512
)

// Signer signs and verifies exposure tokens with the installation's
// secret (SecretStore). It is safe for concurrent use.
type Signer struct {
	key []byte
}

// NewSigner returns a Signer for secret (at least 16 bytes).
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < 16 {
		return nil, fmt.Errorf("promo: token secret of %d bytes, want at least 16", len(secret))
	}
	return &Signer{key: append([]byte(nil), secret...)}, nil
}

// Sign returns the token of t: an opaque string of about 60 to 120
// characters from the URL-safe base64 alphabet.
func (s *Signer) Sign(t Token) string {
	b := make([]byte, 0, 48+len(t.Offer)+len(t.Slot))
	b = append(b, tokenVersion)
	b = binary.AppendUvarint(b, uint64(max(0, t.Time.UnixMilli())))
	b = binary.LittleEndian.AppendUint64(b, t.Exposure)
	b = binary.LittleEndian.AppendUint64(b, visitorHash(t.Visitor))
	b = binary.AppendUvarint(b, uint64(len(t.Offer)))
	b = append(b, t.Offer...)
	b = binary.AppendUvarint(b, uint64(len(t.Slot)))
	b = append(b, t.Slot...)
	b = append(b, s.mac(b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Signer) mac(b []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(b)
	return m.Sum(nil)[:macBytes]
}

// Verify decodes tok and checks its signature; a token not made with
// this secret, altered, or malformed returns ErrForged.
func (s *Signer) Verify(tok string) (Token, error) {
	var t Token
	if len(tok) > maxTokenLen || len(tok) < 4 {
		return t, ErrForged
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 1+1+16+2+macBytes {
		return t, ErrForged
	}
	body, mac := b[:len(b)-macBytes], b[len(b)-macBytes:]
	if !hmac.Equal(mac, s.mac(body)) {
		return t, ErrForged
	}
	if body[0] != tokenVersion {
		return t, ErrForged
	}
	r := body[1:]
	ms, n := binary.Uvarint(r)
	if n <= 0 || ms > 1<<53 {
		return t, ErrForged
	}
	r = r[n:]
	if len(r) < 16 {
		return t, ErrForged
	}
	t.Time = time.UnixMilli(int64(ms)).UTC()
	t.Exposure = binary.LittleEndian.Uint64(r)
	t.visitorHash = binary.LittleEndian.Uint64(r[8:])
	r = r[16:]
	var ok bool
	if t.Offer, r, ok = readStr(r); !ok {
		return Token{}, ErrForged
	}
	if t.Slot, r, ok = readStr(r); !ok || len(r) != 0 {
		return Token{}, ErrForged
	}
	return t, nil
}

func readStr(r []byte) (string, []byte, bool) {
	l, n := binary.Uvarint(r)
	if n <= 0 || l > uint64(len(r)-n) {
		return "", nil, false
	}
	return string(r[n : n+int(l)]), r[n+int(l):], true
}
