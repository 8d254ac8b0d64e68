//go:build unix

package file

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
)

func TestSpecialFilesAreNotRead(t *testing.T) {
	root := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "big"), strings.Repeat("x", MaxFileBytes+1))
	c := newClient(t, root, "")
	_, err := get(t, c, "fifo") // must return, not block on the FIFO
	wantErr(t, err, provider.ErrNotFound)
	_, err = get(t, c, "big")
	wantErr(t, err, provider.ErrBadResponse)
	all, err := fetch.FindIn(context.Background(), c, provider.Find{Name: "fifo"})
	if err != nil || len(all) != 0 {
		t.Fatalf("Find listed a FIFO: %v, %v", sortedKeys(all), err)
	}
}
