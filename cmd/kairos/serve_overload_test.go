package main

import (
	"io"
	"strings"
	"testing"
)

// TestMaxEventRequestsConfig: --max-event-requests and
// $KAIROS_MAX_EVENT_REQUESTS set the admission bound of the event routes
// (-1: none); 0 and other negatives are refused with a message naming the
// flag.
func TestMaxEventRequestsConfig(t *testing.T) {
	for _, tt := range []struct {
		env  string
		args []string
		want int
		err  string
	}{
		{"", nil, 256, ""},
		{"", []string{"--max-event-requests", "32"}, 32, ""},
		{"-1", nil, -1, ""},
		{"64", []string{"--max-event-requests", "8"}, 8, ""},
		{"", []string{"--max-event-requests", "0"}, 0, "--max-event-requests 0: want >= 1, or -1 for no bound"},
		{"-5", nil, 0, "--max-event-requests -5"},
		{"many", nil, 0, "$KAIROS_MAX_EVENT_REQUESTS"},
	} {
		t.Setenv("KAIROS_MAX_EVENT_REQUESTS", tt.env)
		c, err := parseServeConfig(append([]string{"--data-dir", t.TempDir()}, tt.args...), io.Discard)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("env %q %v: error %v, want one naming %q", tt.env, tt.args, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("env %q %v: %v", tt.env, tt.args, err)
		case tt.err == "" && c.MaxEventRequests != tt.want:
			t.Errorf("env %q %v: MaxEventRequests %d, want %d", tt.env, tt.args, c.MaxEventRequests, tt.want)
		}
	}
}
