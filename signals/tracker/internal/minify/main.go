// Command minify regenerates tracker.min.js from tracker.js. It is run by
// `go generate ./signals/tracker` (see the directive in tracker.go).
//
// The minifier is esbuild at a pinned version, fetched and built through the
// Go module proxy by `go run` (no npm, no go.mod entry), so the output is the
// same on every machine. The first line of the output is a comment holding
// the SHA-256 of the source it was made from; the package tests compare it
// with tracker.js and fail when the minified file is stale.
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"os/exec"
)

// EsbuildVersion is the pinned esbuild module version.
const EsbuildVersion = "v0.28.2"

func main() {
	in := flag.String("in", "tracker.js", "readable source")
	out := flag.String("out", "tracker.min.js", "minified output")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "minify:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	src, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("read source: %w", err)
	}
	cmd := exec.Command("go", "run", "github.com/evanw/esbuild/cmd/esbuild@"+EsbuildVersion,
		"--minify", "--target=es2017", "--legal-comments=none", "--charset=ascii",
		"--loader=js", "--sourcefile="+in, "--log-level=warning")
	cmd.Stdin = bytes.NewReader(src)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("esbuild %s: %w", EsbuildVersion, err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "/*! Kairos tracker | source sha256:%x | esbuild %s --minify --target=es2017 */\n",
		sha256.Sum256(src), EsbuildVersion)
	b.Write(bytes.TrimSpace(stdout.Bytes()))
	b.WriteByte('\n')
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write minified: %w", err)
	}
	return nil
}
