package file

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"path/filepath"
	"sort"
	"time"

	"github.com/fsnotify/fsnotify"
)

// settle is how long the watch waits after the first event of a burst
// before it re-reads: the atomic writer makes several changes (new
// directory, new link, rename, removal of the old directory) for one update.
const settle = 50 * time.Millisecond

// Watch reports changed files until ctx ends. Filesystem events on the root
// and every directory below it (including the atomic writer's rename of
// ..data) make it re-read the files, as does every pollInterval; changed is
// called with the keys whose content differs from what the client saw last
// (added and removed files included). Without filesystem notifications
// (inotify limits, an unsupported filesystem) it keeps polling.
func (c *Client) Watch(ctx context.Context, changed func(keys []string)) error {
	return c.watch(ctx, changed, true)
}

func (c *Client) watch(ctx context.Context, changed func(keys []string), notify bool) error {
	c.mu.Lock()
	seen := c.hashes
	c.mu.Unlock()

	var (
		events <-chan fsnotify.Event
		errs   <-chan error
		w      *fsnotify.Watcher
	)
	if notify {
		var err error
		if w, err = fsnotify.NewWatcher(); err != nil {
			c.log.Info("filesystem notifications are unavailable; re-reading the store root every pollInterval only", "root", c.dir, "pollInterval", c.poll.String(), "error", err.Error())
		} else {
			defer func() { _ = w.Close() }()
			events, errs = w.Events, w.Errors
			c.addWatches(w)
		}
	}

	ticker := time.NewTicker(c.poll)
	defer ticker.Stop()
	var (
		timer   *time.Timer
		settled <-chan time.Time
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	arm := func() {
		if settled == nil {
			timer = time.NewTimer(settle)
			settled = timer.C
		}
	}
	reread := func() {
		// Watch new directories before reading, so that a file written
		// into one after the read still makes an event.
		if w != nil {
			c.addWatches(w)
		}
		seen = c.reread(seen, changed)
	}
	// Changes made after the client read its baseline but before the
	// watches were in place made no event: compare once now.
	seen = c.reread(seen, changed)
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			arm()
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				c.log.Info("filesystem watch error; the periodic re-read continues", "root", c.dir, "error", err.Error())
			}
			arm()
		case <-settled:
			settled = nil
			reread()
		case <-ticker.C:
			reread()
		}
	}
}

// reread hashes the files again, calls changed with the keys that differ
// from seen, and returns the new hashes.
func (c *Client) reread(seen map[string][sha256.Size]byte, changed func(keys []string)) map[string][sha256.Size]byte {
	now, err := c.scan()
	if err != nil {
		c.log.Info("re-reading the store root failed; keeping the last state", "root", c.dir, "error", err.Error())
		return seen
	}
	var keys []string
	for k, h := range now {
		if old, ok := seen[k]; !ok || old != h {
			keys = append(keys, k)
		}
	}
	for k := range seen {
		if _, ok := now[k]; !ok {
			keys = append(keys, k)
		}
	}
	c.mu.Lock()
	c.hashes = now
	c.mu.Unlock()
	if len(keys) > 0 {
		sort.Strings(keys)
		c.log.V(1).Info("files changed", "root", c.dir, "keys", keys)
		changed(keys)
	}
	return now
}

// addWatches watches the root and every real directory below it (dot
// directories included: the atomic writer's timestamped directories hold
// the files). Already watched directories are left as they are; removed
// ones drop out of the watch by themselves.
func (c *Client) addWatches(w *fsnotify.Watcher) {
	top := c.dir
	if real, err := filepath.EvalSymlinks(c.dir); err == nil {
		top = real
	}
	_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == top {
				c.log.Info("cannot watch the store root", "root", c.dir, "error", err.Error())
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if err := w.Add(p); err != nil {
			c.log.V(1).Info("cannot watch a directory; the periodic re-read covers it", "dir", p, "error", err.Error())
		}
		return nil
	})
}
