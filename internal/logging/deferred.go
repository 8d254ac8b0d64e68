// Package logging holds keyferry's wrapper around the operator's logr sink.
//
// Deferred keeps the key/value pairs a logger is given with WithValues
// until a line is logged. controller-runtime gives every reconcile a logger
// with the controller, object and reconcile ID; zap encodes such values
// into a fresh buffer the moment they are added, about 3 KiB per reconcile
// whether or not the reconcile logs anything. Most reconciles log nothing
// at the default level, so the work (and the garbage) is deferred to the
// lines actually written.
package logging

import (
	"slices"

	"github.com/go-logr/logr"
)

// Deferred returns l with WithValues deferred to the first enabled line.
// Lines, their names, values, order and levels are as l would log them.
func Deferred(l logr.Logger) logr.Logger {
	base := l.GetSink()
	if base == nil {
		return l
	}
	// base was initialised by l; it is told of the one frame this sink
	// adds between the caller and it.
	if cd, ok := base.(logr.CallDepthLogSink); ok {
		base = cd.WithCallDepth(1)
	}
	return logr.New(&deferredSink{base: base}).V(l.GetV())
}

// deferredSink is a LogSink whose values are applied to base only when a
// line is logged.
type deferredSink struct {
	base logr.LogSink
	// values are the pairs given to WithValues since base was last
	// derived, oldest first.
	values []any
}

var (
	_ logr.LogSink          = (*deferredSink)(nil)
	_ logr.CallDepthLogSink = (*deferredSink)(nil)
)

// Init does nothing: base was initialised by the logger Deferred wraps.
func (s *deferredSink) Init(logr.RuntimeInfo) {}

func (s *deferredSink) Enabled(level int) bool { return s.base.Enabled(level) }

func (s *deferredSink) Info(level int, msg string, keysAndValues ...any) {
	s.withValues().Info(level, msg, keysAndValues...)
}

func (s *deferredSink) Error(err error, msg string, keysAndValues ...any) {
	s.withValues().Error(err, msg, keysAndValues...)
}

// WithValues remembers the pairs; base sees them with the next line.
func (s *deferredSink) WithValues(keysAndValues ...any) logr.LogSink {
	if len(keysAndValues) == 0 {
		return s
	}
	values := make([]any, 0, len(s.values)+len(keysAndValues))
	values = append(append(values, s.values...), keysAndValues...)
	return &deferredSink{base: s.base, values: values}
}

// WithName applies the deferred values first, so names and values nest as
// they would on base.
func (s *deferredSink) WithName(name string) logr.LogSink {
	return &deferredSink{base: s.withValues().WithName(name)}
}

func (s *deferredSink) WithCallDepth(depth int) logr.LogSink {
	cd, ok := s.base.(logr.CallDepthLogSink)
	if !ok {
		return s
	}
	return &deferredSink{base: cd.WithCallDepth(depth), values: slices.Clip(s.values)}
}

// withValues is base with the deferred values applied.
func (s *deferredSink) withValues() logr.LogSink {
	if len(s.values) == 0 {
		return s.base
	}
	return s.base.WithValues(s.values...)
}
