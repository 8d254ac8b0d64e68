package file

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// watchDeadline bounds how long a test waits for a notification; it is a
// guard against hanging, not a timing assertion.
const watchDeadline = 20 * time.Second

// startWatch runs the client's watch (with filesystem notifications or, with
// notify false, the periodic re-read only) and returns the channel of
// notifications.
func startWatch(t *testing.T, c *Client, notify bool) <-chan []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan []string, 256)
	done := make(chan error, 1)
	go func() {
		done <- c.watch(ctx, func(keys []string) { ch <- keys }, notify)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch returned %v when its context ended, want nil", err)
			}
		case <-time.After(watchDeadline):
			t.Error("Watch did not return when its context ended")
		}
	})
	return ch
}

// waitFor waits for a notification naming exactly want, failing after the
// deadline. Notifications for other keys (none are expected) fail the test.
func waitFor(t *testing.T, ch <-chan []string, want ...string) {
	t.Helper()
	select {
	case got := <-ch:
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("changed(%v), want changed(%v)", got, want)
		}
	case <-time.After(watchDeadline):
		t.Fatalf("no change notified for %v within %s", want, watchDeadline)
	}
}

// replaceFile writes content to a dot-named temporary file and renames it
// over path, so that a re-read never sees half a file (which would make an
// extra notification). The temporary name starts with a dot: not a key.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestWatchNoticesARewrite(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a"), "one")
	writeFile(t, filepath.Join(root, "sub", "b"), "one")
	c := newClient(t, root, "1h") // the poll never fires during the test
	ch := startWatch(t, c, true)

	replaceFile(t, filepath.Join(root, "a"), "two")
	waitFor(t, ch, "a")

	replaceFile(t, filepath.Join(root, "sub", "b"), "two")
	waitFor(t, ch, "sub/b")

	// A directory made after the watch started is watched too.
	if err := os.MkdirAll(filepath.Join(root, "new", "deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	replaceFile(t, filepath.Join(root, "new", "deeper", "c"), "one")
	waitFor(t, ch, "new/deeper/c")
	replaceFile(t, filepath.Join(root, "new", "deeper", "c"), "two")
	waitFor(t, ch, "new/deeper/c")

	if err := os.Remove(filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ch, "a")
}

func TestWatchNoticesTheAtomicWritersSwap(t *testing.T) {
	root := t.TempDir()
	writeAtomic(t, root, map[string]string{"tls.crt": "CERT1", "tls.key": "KEY1", "ca/ca.crt": "CA1"})
	c := newClient(t, root, "1h")
	ch := startWatch(t, c, true)

	// Only the files whose content changed are reported.
	writeAtomic(t, root, map[string]string{"tls.crt": "CERT2", "tls.key": "KEY2", "ca/ca.crt": "CA1"})
	waitFor(t, ch, "tls.crt", "tls.key")
	if got, err := get(t, c, "tls.crt"); err != nil || got != "CERT2" {
		t.Fatalf("after the swap GetSecret(tls.crt) = %q, %v", got, err)
	}

	writeAtomic(t, root, map[string]string{"tls.crt": "CERT2", "tls.key": "KEY2", "ca/ca.crt": "CA2"})
	waitFor(t, ch, "ca/ca.crt")
}

func TestPollFallbackNoticesChangesWithoutNotifications(t *testing.T) {
	root := t.TempDir()
	writeAtomic(t, root, map[string]string{"password": "one"})
	c := newClient(t, root, "100ms")
	ch := startWatch(t, c, false)

	writeAtomic(t, root, map[string]string{"password": "two"})
	waitFor(t, ch, "password")

	// Replaced inside the data directory, as no atomic writer would.
	dataDir, err := os.Readlink(filepath.Join(root, "..data"))
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, filepath.Join(root, dataDir, "password"), "three")
	waitFor(t, ch, "password")
}

func TestWatchReturnsWhenItsContextEnds(t *testing.T) {
	c := newClient(t, t.TempDir(), "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Watch(ctx, func([]string) {}) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Watch returned %v, want nil", err)
		}
	case <-time.After(watchDeadline):
		t.Fatal("Watch did not return when its context ended")
	}
}
