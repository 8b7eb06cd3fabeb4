package embedded

import "strings"

func trimPID(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" || len(s) > 20 {
		return "unknown"
	}
	return s
}
