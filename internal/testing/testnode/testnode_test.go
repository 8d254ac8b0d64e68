package testnode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestUnescapeMount(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/tmp/keyferry-node/kubelet", "/tmp/keyferry-node/kubelet"},
		{`/tmp/a\040b`, "/tmp/a b"},
		{`/tmp/tab\011x\134y`, "/tmp/tab\tx\\y"},
		{`/tmp/trailing\04`, `/tmp/trailing\04`},
	} {
		if got := unescapeMount(tc.in); got != tc.want {
			t.Errorf("unescapeMount(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestImageRefReadsTheTarballsTag(t *testing.T) {
	p := filepath.Join(t.TempDir(), "img.tar")
	tag, err := name.NewTag("keyferry.local/pause:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(p, tag, empty.Image); err != nil {
		t.Fatal(err)
	}
	ref, err := ImageRef(p)
	if err != nil || ref != "keyferry.local/pause:1.0.0" {
		t.Fatalf("ImageRef = %q, %v", ref, err)
	}
	if _, err := ImageRef(filepath.Join(t.TempDir(), "missing.tar")); err == nil {
		t.Fatal("a missing tarball gave no error")
	}
}

// A recorded PID that now belongs to another program (here: this test) is
// never signalled.
func TestStopRecordedSparesARecycledPID(t *testing.T) {
	base := t.TempDir()
	if err := recordPID(base, "kubelet", os.Getpid(), "/not/the/kubelet"); err != nil {
		t.Fatal(err)
	}
	if err := stopRecorded(base, []string{"kubelet", "containerd"}); err != nil {
		t.Fatal(err)
	}
	if waitGone(os.Getpid(), 10*time.Millisecond) {
		t.Fatal("the test process looks gone")
	}
}

func TestRecordPIDResolvesSymbolicLinks(t *testing.T) {
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Skip("no /proc/self/exe")
	}
	link := filepath.Join(t.TempDir(), "bin")
	if err := os.Symlink(filepath.Dir(self), link); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	if err := recordPID(base, "kubelet", os.Getpid(), filepath.Join(link, filepath.Base(self))); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(base, "pids", "kubelet"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(b)); len(got) != 2 || got[1] != self {
		t.Fatalf("recorded %q, want the resolved path %s that /proc/PID/exe shows", b, self)
	}
}
