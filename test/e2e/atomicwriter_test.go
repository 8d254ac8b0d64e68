package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// atomicWriter writes a set of files into a directory the way kubelet's
// atomic writer does for Secret, ConfigMap, projected and CSI volumes
// (pkg/volume/util/atomic_writer.go), so readers never see half an update:
//
//  1. the payload goes into a new hidden directory named after the time,
//     ..2006_01_02_15_04_05.<random>;
//  2. a link ..data_tmp -> that directory is renamed over ..data, which
//     switches every file at once;
//  3. each file is reachable at the top through a link name -> ..data/name,
//     made once and never changed;
//  4. the previous timestamped directory, and top-level links of files no
//     longer in the payload, are removed.
type atomicWriter struct {
	dir string
}

const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
)

func (w *atomicWriter) write(t *testing.T, payload map[string][]byte) {
	t.Helper()
	old, _ := os.Readlink(filepath.Join(w.dir, dataDirName))

	tsDir, err := os.MkdirTemp(w.dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range payload {
		if err := os.WriteFile(filepath.Join(tsDir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	tmpLink := filepath.Join(w.dir, newDataDirName)
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpLink, filepath.Join(w.dir, dataDirName)); err != nil {
		t.Fatal(err)
	}

	for name := range payload {
		link := filepath.Join(w.dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(dataDirName, name), link); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if name := e.Name(); name[0] != '.' && e.Type()&os.ModeSymlink != 0 {
			if _, ok := payload[name]; !ok {
				if err := os.Remove(filepath.Join(w.dir, name)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(w.dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}
