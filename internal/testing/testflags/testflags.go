// Package testflags reads the go test flags a TestMain needs to decide
// what to start. It imports nothing of keyferry, so any package's tests can
// use it without an import cycle.
//
// This package is for tests only.
package testflags

import "flag"

// OnlyFuzzing says the test binary runs a fuzz target and no test (go test
// -run '^$' -fuzz ...), so a TestMain need not start servers: every fuzz
// worker runs TestMain, and a control plane per worker stalls the fuzzer.
// It parses the command line if nothing has yet.
func OnlyFuzzing() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	fuzz, run := flag.Lookup("test.fuzz"), flag.Lookup("test.run")
	return fuzz != nil && fuzz.Value.String() != "" && run != nil && run.Value.String() == "^$"
}
