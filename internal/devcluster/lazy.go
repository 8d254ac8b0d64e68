package devcluster

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"time"
)

// Lazy is a control plane started by the first caller of Get and shared by
// the later ones, so that a test package whose fuzz workers and unit tests
// need none does not pay for one. The zero value starts one with no
// options.
type Lazy struct {
	// Options are the control plane's; relative CRDDirs are taken from the
	// repository root (RepoRoot).
	Options Options

	once    sync.Once
	mu      sync.Mutex // guards cluster once Get has started it
	cluster *Cluster
	err     error
}

// startTimeout bounds Lazy's start.
const startTimeout = 2 * time.Minute

// Get starts the control plane on the first call and returns it, or the
// error of that start, to every call.
func (l *Lazy) Get() (*Cluster, error) {
	l.once.Do(func() {
		opts := l.Options
		opts.CRDDirs = nil
		for _, dir := range l.Options.CRDDirs {
			if !filepath.IsAbs(dir) {
				root, err := RepoRoot()
				if err != nil {
					l.err = err
					return
				}
				dir = filepath.Join(root, dir)
			}
			opts.CRDDirs = append(opts.CRDDirs, dir)
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		l.cluster, l.err = Start(ctx, opts)
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cluster == nil && l.err == nil {
		return nil, errors.New("the control plane was stopped")
	}
	return l.cluster, l.err
}

// Stop stops the control plane if Get started one and it is still running.
// Get does not start another one afterwards.
func (l *Lazy) Stop() error {
	l.once.Do(func() {}) // nobody called Get: nothing to stop, nothing to start
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.cluster
	l.cluster = nil
	if c == nil {
		return nil
	}
	return c.Stop()
}
