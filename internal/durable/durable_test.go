package durable

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestLockFile checks that a held lock refuses a second taker, naming the
// holder's pid, and that it is free again once unlocked.
func TestLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "LOCK")
	l, err := LockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockFile(path)
	var le *LockedError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &le) || le.Holder != strconv.Itoa(os.Getpid()) || le.Path != path {
		t.Fatalf("second lock: %v, want ErrLocked held by pid %d", err, os.Getpid())
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l, err = LockFile(path)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	l.Unlock()
}

// TestWriteFile checks that WriteFile replaces a file and leaves no
// temporary file behind.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	for _, data := range []string{"first", "second"} {
		if err := WriteFile(dir, "f", []byte(data), true); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != data {
			t.Fatalf("read %q, %v; want %q", b, err, data)
		}
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, TempPattern)); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
	if err := WriteFile(filepath.Join(dir, "missing"), "f", nil, true); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

// TestScanFrames checks that frames read back as written and that a torn
// or corrupt tail stops the scan at the last sound frame.
func TestScanFrames(t *testing.T) {
	var log []byte
	payloads := []string{"a", "bc", "def"}
	for _, p := range payloads {
		log = append(log, SealFrame(append(NewFrame(nil), p...))...)
	}
	sound := int64(len(log))
	for _, tc := range []struct {
		name, torn string
		tail       []byte
	}{
		{"clean", "", nil},
		{"torn header", "truncated record header", []byte{1, 0}},
		{"torn payload", "truncated record", SealFrame(append(NewFrame(nil), "ghij"...))[:FrameHeader+2]},
		{"corrupt", "checksum mismatch", func() []byte { b := SealFrame(append(NewFrame(nil), "x"...)); b[FrameHeader] = 'y'; return b }()},
		{"zero length", "record length 0", make([]byte, FrameHeader)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			good, torn, err := ScanFrames(bytes.NewReader(append(append([]byte(nil), log...), tc.tail...)), func(p []byte) error {
				got = append(got, string(p))
				return nil
			})
			if err != nil || torn != tc.torn || good != sound || len(got) != len(payloads) {
				t.Fatalf("ScanFrames = %d, %q, %v, read %q; want %d, %q, nil, %q", good, torn, err, got, sound, tc.torn, payloads)
			}
		})
	}
}
