package tenant

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzBodyKey: any events body yields a key (or none) without failing,
// and the body stays readable whole for the tenant's server.
func FuzzBodyKey(f *testing.F) {
	for _, s := range []string{`{"key":"pk_x","events":[]}`, `[{"id":"e1"}]`, ``, `{"key":1}`, `{"key":"a"`, ` {"events":[],"key":"pk_y"} `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _ := http.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
		_ = bodyKey(req)
		got, err := io.ReadAll(req.Body)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("body after bodyKey: %q (%v), want %q", got, err, body)
		}
	})
}
