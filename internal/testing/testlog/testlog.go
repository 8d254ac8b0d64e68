// Package testlog holds what tests use to read what code under test logs:
// a buffer goroutines may write to while a test reads it, and the debug
// logger that writes to it. It imports nothing of keyferry, so the tests of
// any package may use it.
package testlog

import (
	"bytes"
	"io"
	"sync"

	"github.com/go-logr/logr"
	uzap "go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Buffer is an io.Writer that goroutines may write to while a test reads
// it. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Len is the number of bytes written so far.
func (l *Buffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// From returns what was written from offset (a value Len returned) on.
func (l *Buffer) From(offset int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b.Bytes()[offset:])
}

// Debug is a JSON logger at debug level that writes to w, so that tests
// can assert no secret value ever appears at any level.
func Debug(w io.Writer) logr.Logger {
	return zap.New(zap.WriteTo(w), zap.Level(uzap.NewAtomicLevelAt(zapcore.DebugLevel)))
}
