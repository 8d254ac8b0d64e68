package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesAreFresh regenerates the CRDs and deepcopy functions
// into a temporary directory and compares them with the committed ones, so a
// change to apis/ without `make generate` fails here.
func TestGeneratedFilesAreFresh(t *testing.T) {
	root := env.Root
	tmp := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", append([]string{"tool", "controller-gen"}, args...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("controller-gen %v: %v\n%s", args, err, out)
		}
	}
	run("crd", "paths=./apis/...", "output:crd:artifacts:config="+filepath.Join(tmp, "crd"))
	compareDirs(t, filepath.Join(tmp, "crd"), filepath.Join(root, "config", "crd"))

	groups, err := filepath.Glob(filepath.Join(root, "apis", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range groups {
		rel, _ := filepath.Rel(root, dir)
		out := filepath.Join(tmp, "object", rel)
		run("object", "paths=./"+rel, "output:object:dir="+out)
		want, err := os.ReadFile(filepath.Join(out, "zz_generated.deepcopy.go"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "zz_generated.deepcopy.go"))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s/zz_generated.deepcopy.go is stale: run `make generate`", rel)
		}
	}
}

func compareDirs(t *testing.T, want, got string) {
	t.Helper()
	wantFiles, _ := filepath.Glob(filepath.Join(want, "*.yaml"))
	gotFiles, _ := filepath.Glob(filepath.Join(got, "*.yaml"))
	if len(wantFiles) != len(gotFiles) {
		t.Errorf("config/crd has %d CRDs, generation gives %d: run `make generate`", len(gotFiles), len(wantFiles))
	}
	for _, w := range wantFiles {
		a, _ := os.ReadFile(w)
		b, err := os.ReadFile(filepath.Join(got, filepath.Base(w)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("config/crd/%s is stale: run `make generate`", filepath.Base(w))
		}
	}
}
