package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesAreFresh regenerates the CRDs, the chart's CRD
// templates and the deepcopy functions into a temporary directory and
// compares them with the committed ones, so a change to apis/ without `make
// generate` fails here.
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
	compareDirs(t, filepath.Join(tmp, "crd"), filepath.Join(root, "config", "crd"), "config/crd")

	// The chart's CRD templates, from the freshly generated CRDs.
	chartCRDs := filepath.Join("deploy", "chart", "keyferry", "templates", "crds")
	gen := exec.Command("go", "run", "./hack/chartcrds", "-in", filepath.Join(tmp, "crd"), "-out", filepath.Join(tmp, "chartcrds"))
	gen.Dir = root
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("hack/chartcrds: %v\n%s", err, out)
	}
	compareDirs(t, filepath.Join(tmp, "chartcrds"), filepath.Join(root, chartCRDs), filepath.ToSlash(chartCRDs))

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

// compareDirs compares the YAML files of the directory got (named rel in
// messages) with the freshly generated ones in want.
func compareDirs(t *testing.T, want, got, rel string) {
	t.Helper()
	wantFiles, _ := filepath.Glob(filepath.Join(want, "*.yaml"))
	gotFiles, _ := filepath.Glob(filepath.Join(got, "*.yaml"))
	if len(wantFiles) != len(gotFiles) {
		t.Errorf("%s has %d CRDs, generation gives %d: run `make generate`", rel, len(gotFiles), len(wantFiles))
	}
	for _, w := range wantFiles {
		a, _ := os.ReadFile(w)
		b, err := os.ReadFile(filepath.Join(got, filepath.Base(w)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s/%s is stale: run `make generate`", rel, filepath.Base(w))
		}
	}
}
